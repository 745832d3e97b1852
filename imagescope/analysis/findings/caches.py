"""Package-manager caches and indexes alive in the final image (pure).

A cache is a directory a package manager fills while installing and never reads at run time:
downloaded archives, package indexes, build caches. Every file alive below one (the table below)
is removable: one finding per cache kind, with the exact bytes of its files. apt's `lock` file is
kept (apt recreates it), and empty directories hold no bytes.
"""

from __future__ import annotations

import re

from imagescope.analysis.findings.model import Category, Finding, Severity
from imagescope.analysis.findings.tables import (
    PathTable,
    glob_regex,
    grouped_findings,
    severity_by_bytes,
)
from imagescope.analysis.findings.view import ImageView

RULE = "package-cache"

# (cache kind, glob): one row per place the cache lives. `~/` is any home (/root, /home/<user>).
CACHES: tuple[tuple[str, str], ...] = (
    ("apt-lists", "var/lib/apt/lists/**"),
    ("apt-archives", "var/cache/apt/archives/**/*.deb"),
    ("apt-cache", "var/cache/apt/*.bin"),
    ("apk", "var/cache/apk/**"),
    ("dnf", "var/cache/dnf/**"),
    ("yum", "var/cache/yum/**"),
    ("pip", "~/.cache/pip/**"),
    ("npm", "~/.npm/_cacache/**"),
    ("yarn", "~/.cache/yarn/**"),
    ("yarn", "usr/local/share/.cache/yarn/**"),
    ("pnpm", "~/.local/share/pnpm/store/**"),
    ("pnpm", "~/.pnpm-store/**"),
    ("go-build", "~/.cache/go-build/**"),
    ("go-mod", "go/pkg/mod/**"),
    ("go-mod", "~/go/pkg/mod/**"),
    ("cargo", "~/.cargo/registry/**"),
    ("cargo", "usr/local/cargo/registry/**"),
    ("maven", "~/.m2/repository/**"),
    ("gradle", "~/.gradle/caches/**"),
    ("conda", "opt/conda/pkgs/**"),
    ("conda", "*/miniconda3/pkgs/**"),
    ("conda", "*/anaconda3/pkgs/**"),
    ("conda", "~/miniconda3/pkgs/**"),
    ("conda", "~/anaconda3/pkgs/**"),
    ("poetry", "~/.cache/pypoetry/**"),
)

# Below a cache, yet not cache content.
NOT_CACHES: tuple[str, ...] = (
    "var/lib/apt/lists/lock",
)

LABELS: dict[str, str] = {
    "apt-lists": "apt package lists (/var/lib/apt/lists)",
    "apt-archives": "downloaded .deb archives (/var/cache/apt/archives)",
    "apt-cache": "apt package caches (/var/cache/apt/*.bin)",
    "apk": "apk cache (/var/cache/apk)",
    "dnf": "dnf cache (/var/cache/dnf)",
    "yum": "yum cache (/var/cache/yum)",
    "pip": "pip cache (~/.cache/pip)",
    "npm": "npm cache (~/.npm/_cacache)",
    "yarn": "yarn cache",
    "pnpm": "pnpm store",
    "go-build": "Go build cache (~/.cache/go-build)",
    "go-mod": "Go module cache (go/pkg/mod)",
    "cargo": "cargo registry (.cargo/registry)",
    "maven": "Maven repository (~/.m2/repository)",
    "gradle": "Gradle caches (~/.gradle/caches)",
    "conda": "conda package cache (pkgs/)",
    "poetry": "poetry cache (~/.cache/pypoetry)",
}

# A cache is a medium finding; one this large is a high one.
HIGH_BYTES = 100 << 20

_TABLE = PathTable(CACHES, exclude=NOT_CACHES)


def find(view: ImageView) -> list[Finding]:
    """One finding per cache kind holding bytes in the final image."""
    return grouped_findings(view, _TABLE, rule=RULE, category=Category.PACKAGE_CACHE,
                            labels=LABELS, severity=_severity, where="left in the final image",
                            why="not needed at run time")


def _severity(nbytes: int) -> Severity:
    return severity_by_bytes(nbytes, high_from=HIGH_BYTES)


def cache_kind(path: str) -> str | None:
    """The cache kind an absolute path lies in (None: in none)."""
    return _TABLE.subject(path.lstrip("/"))


_ROOTS: dict[str, list[re.Pattern[str]]] = {}
for _kind, _glob in CACHES:
    if _glob.endswith("/**"):
        _ROOTS.setdefault(_kind, []).append(re.compile(glob_regex(_glob[:-3]) + "(?=/)"))


def cache_root(kind: str, path: str) -> str:
    """The directory of a `kind` cache that an absolute path in it lies under (`/root/.cache/pip`
    for `/root/.cache/pip/http/x`); the path's directory when no row of `kind` names one."""
    relative = path.lstrip("/")
    for pattern in _ROOTS.get(kind, ()):
        found = pattern.match(relative)
        if found:
            return "/" + found.group(0)
    return "/" + relative.rpartition("/")[0]
