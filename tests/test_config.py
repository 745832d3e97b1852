"""Config discovery upward from the working directory, validation and precedence of files."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagescope.config import find_config, load_settings
from imagescope.errors import ConfigError
from imagescope.sizes import Growth


def test_found_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.imagescope]\nmax-wasted = "50MB"\n'
                                             'ignore = ["/var/cache/keep/*"]\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    settings = load_settings(deep)
    assert settings.path == tmp_path / "pyproject.toml"
    assert settings.values == {"max-wasted": 50_000_000, "ignore": ("/var/cache/keep/*",)}


def test_dedicated_file_wins_in_the_same_directory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.imagescope]\nmax-size = 1\n")
    (tmp_path / ".imagescope.toml").write_text('min-efficiency = "90%"\nmax-growth = "5%"\n')
    settings = load_settings(tmp_path)
    assert settings.values == {"min-efficiency": 0.9, "max-growth": Growth(percent=5.0)}


def test_nearest_directory_wins(tmp_path: Path) -> None:
    (tmp_path / ".imagescope.toml").write_text("max-size = 1\n")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[tool.imagescope]\nmax-size = 2\n")
    assert load_settings(inner).values == {"max-size": 2}


def test_pyproject_without_our_table_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / ".imagescope.toml").write_text("fail-on-secrets = true\n")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert find_config(inner) == tmp_path / ".imagescope.toml"


@pytest.mark.parametrize(("text", "message"), [
    ("max-wasted = true\n", "max-wasted must be a size"),
    ("nonsense = 1\n", "unknown setting"),
    ("max-wasted = \"lots\"\n", "not a size"),
    ("own-only = \"yes\"\n", "true or false"),
    ("max-wasted = \n", "invalid TOML"),
])
def test_invalid_settings_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / ".imagescope.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path)


def test_registry_settings(tmp_path: Path) -> None:
    (tmp_path / ".imagescope.toml").write_text(
        'insecure-registries = ["reg.internal:5000", "mirror.lan"]\nca-cert = "/etc/ca.pem"\n')
    values = load_settings(tmp_path).values
    assert values["insecure-registries"] == ("reg.internal:5000", "mirror.lan")
    assert values["ca-cert"] == "/etc/ca.pem"


def test_insecure_registries_must_be_strings(tmp_path: Path) -> None:
    (tmp_path / ".imagescope.toml").write_text("insecure-registries = [5000]\n")
    with pytest.raises(ConfigError, match="insecure-registries must be a list of strings"):
        load_settings(tmp_path)
