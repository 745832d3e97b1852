"""Image configuration: running as root, and more layers than the content calls for."""

from __future__ import annotations

import pytest

from imagescope.analysis.findings import config
from imagescope.analysis.findings.model import Category, Severity
from imagescope.model import Entry
from tests.stacks import directory, file, view

MIB = 1 << 20


@pytest.mark.parametrize("user", [None, "", "0", "root", "0:0", "root:root", "0:1000",
                                  "root:staff", " root "])
def test_root_user(user: str | None) -> None:
    (finding,) = config.find_root_user(view([file("a", 1)], user=user))
    assert (finding.rule, finding.category, finding.severity, finding.subject) == (
        "root-user", Category.CONFIG, Severity.MEDIUM, "root")
    assert (finding.bytes, finding.files, finding.removable) == (0, (), False)
    assert ("no USER" in finding.title) is not bool((user or "").strip())


@pytest.mark.parametrize("user", ["1000", "app", "1000:0", "app:root", "nobody:nogroup",
                                  "rootless"])
def test_not_root_user(user: str) -> None:
    assert config.find_root_user(view([file("a", 1)], user=user)) == []


def layers(*sizes: int) -> list[list[Entry]]:
    """One layer per size: a file of that many bytes (0: a directory only)."""
    return [[file(f"l{i}", size)] if size else [directory(f"d{i}")]
            for i, size in enumerate(sizes)]


def test_more_than_max_layers_is_a_finding_whatever_they_hold() -> None:
    count = config.MAX_LAYERS + 1  # 16 layers of 2 MiB, none small
    (finding,) = config.find_layer_count(view(*layers(*[2 * MIB] * count)))
    assert (finding.rule, finding.category, finding.severity) == (
        "layer-count", Category.CONFIG, Severity.LOW)
    assert (finding.bytes, finding.files, finding.layers) == (0, (), ())
    assert finding.title.startswith("16 layers")


def test_max_layers_of_big_content_is_fine() -> None:
    assert config.find_layer_count(view(*layers(*[2 * MIB] * config.MAX_LAYERS))) == []


def test_many_small_layers_is_a_finding_naming_them() -> None:
    # 6 layers, 3 under 1 MiB (layers 1, 3 and 4; 1 MiB − 1 byte is under, 1 MiB is not)
    v = view(*layers(5 * MIB, 10, 2 * MIB, 0, MIB - 1, MIB))
    (finding,) = config.find_layer_count(v)
    assert finding.layers == (1, 3, 4)
    assert finding.title == "6 layers, 3 of them adding under 1 MiB each"
    assert "1, 3, 4" in finding.detail


def test_few_small_layers_or_few_layers_are_fine() -> None:
    assert config.find_layer_count(view(*layers(5 * MIB, 10, 2 * MIB, 3 * MIB, 20, MIB))) == []
    assert config.find_layer_count(view(*layers(1, 2, 3, 4, 5))) == []  # 5 layers: not more


def test_layer_bytes_are_the_files_it_adds() -> None:
    layer = view([directory("d"), file("d/a", 10), file("d/b", 5)]).image.layers[0]
    assert layer.added_bytes() == 15
