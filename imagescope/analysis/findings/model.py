"""What a finding is: a rule's verdict with exact bytes, the files and the steps involved."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter
from typing import NamedTuple

from imagescope.records import largest_first


class Category(StrEnum):
    HIDDEN_WASTE = "hidden_waste"  # written by one step, removed or overwritten by a later one
    IDENTICAL_REWRITE = "identical_rewrite"  # rewritten unchanged (chmod/chown -R, touch)
    PACKAGE_CACHE = "package_cache"
    TOOLCHAIN = "toolchain"
    BUILD_CONTEXT = "build_context"
    SECRET = "secret"
    DOCS = "docs"
    CONFIG = "config"


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class FileRef(NamedTuple):
    """One file a finding concerns. `hidden_by` is None when the file is alive in the final image.

    `(layer_index, path)` identifies the content: two findings naming the same pair name the same
    bytes, which is how savings avoid double counting.
    """

    path: str  # absolute, as shown to users
    bytes: int
    layer_index: int  # the layer that wrote the content
    hidden_by: int | None = None

    @property
    def key(self) -> tuple[int, str]:
        return (self.layer_index, self.path)


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's verdict. `bytes` is exact: the sum over `files`, each content counted once.

    `removable` findings concern files alive in the final image that the image does not need:
    their bytes count toward the optimized size. `subject` names what was found (a cache kind,
    a package, a secret kind) for renderers and recommendations.
    """

    rule: str  # stable id, e.g. "package-cache"
    category: Category
    severity: Severity
    title: str  # one line, no file contents
    subject: str
    bytes: int
    files: Sequence[FileRef]  # largest first, then by path
    layers: tuple[int, ...]  # the steps involved, ascending
    removable: bool = False
    detail: str = ""


_KEY = attrgetter("layer_index", "path")  # FileRef.key


def unique_refs(refs: Iterable[FileRef]) -> Iterable[FileRef]:
    """The first ref of each content (`FileRef.key`), keyed in C (order not kept)."""
    backwards = list(refs)[::-1]  # a dict keeps the last value given for a key
    return dict(zip(map(_KEY, backwards), backwards)).values()


def make_finding(*, rule: str, category: Category, severity: Severity, title: str, subject: str,
                 files: list[FileRef], removable: bool = False, detail: str = "",
                 layers: tuple[int, ...] | None = None) -> Finding:
    """A Finding with bytes summed once per content, files sorted and layers derived."""
    ordered = tuple(largest_first(unique_refs(files)))
    if layers is None:
        involved = {r.layer_index for r in ordered} | {r.hidden_by for r in ordered
                                                       if r.hidden_by is not None}
        layers = tuple(sorted(involved))
    return Finding(rule=rule, category=category, severity=severity, title=title,
                   subject=subject, bytes=sum(r.bytes for r in ordered), files=ordered,
                   layers=layers, removable=removable, detail=detail)
