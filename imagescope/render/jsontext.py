"""`json.dumps(obj, indent=2, ensure_ascii=True)`, byte for byte, several times faster.

The standard library drops to its pure-Python encoder whenever `indent` is set; reports list tens
of thousands of files. Strings go through the same C escaper the standard library uses; lists
of flat records (dicts with the same keys and scalar values: wasted files, a finding's files)
are written through one format template per list.
"""

from __future__ import annotations

import math
from json.encoder import encode_basestring_ascii as _string
from typing import Any

_float = float.__repr__
_int = int.__repr__
_CONTAINERS = (dict, list, tuple)
_INFINITY = float("inf")


class _Nested(Exception):
    """A record's value is a container: the list is not one of flat records."""


def dumps(obj: Any) -> str:
    """The text `json.dumps(obj, indent=2, ensure_ascii=True)` gives (same errors too)."""
    parts: list[str] = []
    _encode(obj, "\n", parts)
    return "".join(parts)


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is int:
        return _int(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, _CONTAINERS):
        raise _Nested
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value in (_INFINITY, -_INFINITY):
            return "Infinity" if value > 0 else "-Infinity"
        return _float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _string(key)
    if isinstance(key, float | int | bool) or key is None:
        return _string(_scalar(key))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _encode(obj: Any, newline: str, parts: list[str]) -> None:
    append = parts.append
    if isinstance(obj, dict):
        if not obj:
            append("{}")
            return
        inner = newline + "  "
        opening = "{"
        for key, value in obj.items():
            append(opening + inner + _key(key) + ": ")
            opening = ","
            if isinstance(value, _CONTAINERS):
                _encode(value, inner, parts)
            else:
                append(_scalar(value))
        append(newline + "}")
    elif isinstance(obj, list | tuple):
        if not obj:
            append("[]")
            return
        inner = newline + "  "
        if type(obj[0]) is dict and obj[0] and _records(obj, inner, parts):
            return
        opening = "["
        for value in obj:
            append(opening + inner)
            opening = ","
            if isinstance(value, _CONTAINERS):
                _encode(value, inner, parts)
            else:
                append(_scalar(value))
        append(newline + "]")
    else:
        append(_scalar(obj))


def _records(items: list[Any] | tuple[Any, ...], inner: str, parts: list[str]) -> bool:
    """Write a list of flat records through one template; False, writing nothing, when `items`
    is not one (then it is written the general way)."""
    keys = tuple(items[0])
    field = inner + "  "
    template = ("{" + ",".join(field + _key(k).replace("%", "%%") + ": %s" for k in keys)
                + inner + "}")
    out = []
    scalar = _scalar
    try:
        for item in items:
            if type(item) is not dict or tuple(item) != keys:
                return False
            out.append(template % tuple(map(scalar, item.values())))
    except _Nested:
        return False
    parts.append("[" + inner + ("," + inner).join(out) + inner[:-2] + "]")
    return True


__all__ = ["dumps"]
