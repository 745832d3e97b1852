"""Records kept as parallel columns: a long list of small records that costs one object per
column, not one per record, until a record is read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import attrgetter
from typing import Any, Generic, TypeVar, overload

_T = TypeVar("_T")


class Records(Sequence[_T], Generic[_T]):
    """An immutable sequence of `make(*row)` over rows of equal-length `columns`.

    A record is made each time it is read; `columns` serve readers (renderers) that want the
    fields of every record without making the records. Equal to any sequence of equal records.
    """

    __slots__ = ("_make", "columns")

    def __init__(self, make: Callable[..., _T], columns: Sequence[Sequence[Any]]) -> None:
        lengths = {len(column) for column in columns}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        self._make = make
        self.columns = tuple(columns)

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    @overload
    def __getitem__(self, index: int) -> _T: ...

    @overload
    def __getitem__(self, index: slice) -> Records[_T]: ...

    def __getitem__(self, index: int | slice) -> _T | Records[_T]:
        if isinstance(index, slice):
            return Records(self._make, [column[index] for column in self.columns])
        return self._make(*(column[index] for column in self.columns))

    def __iter__(self) -> Iterator[_T]:
        return map(self._make, *self.columns)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Records({list(self)!r})"


def columns_of(records: Sequence[Any], record_type: type) -> tuple[Sequence[Any], ...]:
    """The fields of `records` (named tuples of `record_type`) as columns, in field order: as
    kept, for Records made by `record_type`; else read record by record."""
    if isinstance(records, Records):
        return records.columns
    width = len(record_type._fields)  # type: ignore[attr-defined]
    if not records:
        return ((),) * width
    return tuple(zip(*records, strict=True))


_BY_PATH = attrgetter("path", "layer_index")
_BYTES = attrgetter("bytes")


def largest_first(records: Iterable[_T]) -> list[_T]:
    """File records (with `bytes`, `path` and `layer_index`) sorted by bytes, largest first,
    then by path and layer: the order of sorting by `(-bytes, path, layer_index)`, in two
    stable sorts keyed in C."""
    ordered = sorted(records, key=_BY_PATH)
    ordered.sort(key=_BYTES, reverse=True)  # (reverse sorts keep equal records in order)
    return ordered


__all__ = ["Records", "columns_of", "largest_first"]
