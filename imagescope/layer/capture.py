"""Which file contents the analysis reads while streaming: package databases and secret suspects.

Everything else is seen by its header only. Captured files are small by rule, so memory stays
proportional to the number of entries, not to bytes.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

MAX_DATABASE_BYTES = 16 << 20  # dpkg status / apk installed of a large image stay well below
MAX_SUSPECT_BYTES = 64 << 10  # a key or a credentials file is small; larger files are not read

PACKAGE_DATABASES = (
    "var/lib/dpkg/status",
    "var/lib/dpkg/info/*.list",
    "lib/apk/db/installed",
)

# Names that hold secrets by convention; matched against the basename, case-sensitively.
SECRET_NAMES = (
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "*.pem", "*.key", "*.p12", "*.pfx",
    ".env", ".env.*", "*.env", ".npmrc", ".pypirc", ".netrc", ".git-credentials", "credentials",
    "credentials.json", "config.json", "application_default_credentials.json",
    "credentials.db", "access_tokens.db", "kubeconfig", "config",
)

_DATABASE_RE = re.compile("|".join(fnmatch.translate(p) for p in PACKAGE_DATABASES))


def _name_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """`fnmatch.fnmatchcase(name, p)` for any p, with exact names, `*X` and `X*` (the whole
    table today) tested as set lookups and string ends; anything else through one regex."""
    exact: set[str] = set()
    suffixes: list[str] = []
    prefixes: list[str] = []
    other: list[str] = []
    for pattern in patterns:
        body = pattern[1:] if pattern.startswith("*") else pattern.removesuffix("*")
        if any(c in body for c in "*?["):
            other.append(pattern)
        elif body is pattern:
            exact.add(pattern)
        elif pattern.startswith("*"):
            suffixes.append(body)
        else:
            prefixes.append(body)
    ends, starts = tuple(suffixes), tuple(prefixes)
    rest = re.compile("|".join(fnmatch.translate(p) for p in other)).match if other else None

    def matches(name: str) -> bool:
        return (name in exact or name.endswith(ends) or name.startswith(starts)
                or (rest is not None and rest(name) is not None))

    return matches


_is_secret_name = _name_matcher(SECRET_NAMES)


def should_capture(path: str, size: int) -> bool:
    """True for the contents a finding needs: package databases and small secret suspects."""
    if size <= MAX_SUSPECT_BYTES and _is_secret_name(path.rpartition("/")[2]):
        return True
    return size <= MAX_DATABASE_BYTES and _DATABASE_RE.match(path) is not None
