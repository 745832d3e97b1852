"""Sizes and ratios as users write them on the command line and in config files."""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagescope.errors import UsageError

# Decimal units as humanize and registries use them; binary units spelled out (KiB, MiB…).
# A bare K/M/G/T (as in `docker run -m 512m`) is binary.
_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int, *, what: str = "size") -> int:
    """`50MB` (10^6), `1.5GiB` (2^30), `512M` (binary), `123` or `123B` → bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise UsageError(f"{what}: {text} is negative")
        return text
    match = _SIZE.match(str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise UsageError(f"{what}: {text!r} is not a size (examples: 50MB, 1.5GiB, 1048576)")
    return int(float(match.group(1)) * _UNITS[unit])


def parse_ratio(text: str | float, *, what: str = "ratio") -> float:
    """`0.9` or `90%` → 0.9; must lie in [0, 1]."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not a ratio (examples: 0.9, 90%)") from None
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{what}: {text!r} is outside 0..1 (0%..100%)")
    return value


@dataclass(frozen=True, slots=True)
class Growth:
    """A growth limit: absolute bytes, or a percentage of the old size."""

    bytes: int | None = None
    percent: float | None = None

    def limit_for(self, old_bytes: int) -> int:
        """The largest growth in bytes allowed from an image of `old_bytes`."""
        if self.bytes is not None:
            return self.bytes
        assert self.percent is not None
        return int(old_bytes * self.percent / 100)

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else f"{self.bytes} bytes"


def parse_growth(text: str | int, *, what: str = "growth") -> Growth:
    """`10%` (of the old size) or a size (`50MB`)."""
    raw = str(text).strip()
    if raw.endswith("%"):
        try:
            percent = float(raw[:-1])
        except ValueError:
            raise UsageError(f"{what}: {text!r} is not a percentage (example: 5%)") from None
        if percent < 0:
            raise UsageError(f"{what}: {text!r} is negative")
        return Growth(percent=percent)
    return Growth(bytes=parse_size(text, what=what))
