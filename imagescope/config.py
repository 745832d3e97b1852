"""Settings from `.imagescope.toml` or `[tool.imagescope]` in `pyproject.toml`, found upward.

Search starts in the working directory and climbs to the filesystem root; the first directory
holding either file wins, `.imagescope.toml` before `pyproject.toml` (a pyproject without a
`[tool.imagescope]` table is passed over). Command-line flags win over the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagescope.errors import ConfigError, ImagescopeError

# Keys as written in the file (the long option names), and what each holds.
KNOWN_KEYS = {
    "max-wasted": "size", "min-efficiency": "ratio", "max-size": "size",
    "fail-on-secrets": "bool", "max-growth": "growth", "max-new-waste": "size",
    "ignore": "list", "base": "str", "own-only": "bool",
    "insecure-registries": "list", "ca-cert": "str",
    "dockerfile": "str",  # relative to the config file's directory
}


@dataclass(frozen=True, slots=True)
class FileSettings:
    """Raw values from the config file (None: not set) and where they came from."""

    values: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None


def find_config(start: Path | None = None) -> Path | None:
    """The config file that applies to `start` (default: the working directory)."""
    directory = (start or Path.cwd()).resolve()
    for folder in (directory, *directory.parents):
        dedicated = folder / ".imagescope.toml"
        if dedicated.is_file():
            return dedicated
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "tool" in (table := _load(pyproject)) \
                and "imagescope" in table["tool"]:
            return pyproject
    return None


def load_settings(start: Path | None = None) -> FileSettings:
    """Validated settings from the applicable config file (empty when there is none)."""
    path = find_config(start)
    if path is None:
        return FileSettings()
    data = _load(path)
    table = data.get("tool", {}).get("imagescope", {}) if path.name == "pyproject.toml" else data
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.imagescope] must be a table")
    unknown = sorted(set(table) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(KNOWN_KEYS))}")
    values = {key: _checked(path, key, value) for key, value in table.items()}
    return FileSettings(values, path)


def _load(path: Path) -> dict[str, Any]:
    import tomllib  # (9 ms: only where a config file may be)

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8
        raise ConfigError(f"{path}: invalid TOML (not UTF-8: {exc.reason} at byte "
                          f"{exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None


def _checked(path: Path, key: str, value: Any) -> Any:
    from imagescope.sizes import parse_growth, parse_ratio, parse_size

    kind = KNOWN_KEYS[key]
    try:
        if kind == "size":
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ConfigError(f"{path}: {key} must be a size such as \"50MB\" or 1048576")
            return parse_size(value, what=key)
        if kind == "ratio":
            return parse_ratio(value, what=key)
        if kind == "growth":
            return parse_growth(value, what=key)
        if kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{path}: {key} must be true or false")
            return value
        if kind == "list":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{path}: {key} must be a list of strings")
            return tuple(value)
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {key} must be a string")
        return value
    except ConfigError:
        raise
    except ImagescopeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
