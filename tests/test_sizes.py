"""Sizes, ratios and growth limits as users write them."""

from __future__ import annotations

import pytest

from imagescope.errors import UsageError
from imagescope.sizes import Growth, parse_growth, parse_ratio, parse_size


@pytest.mark.parametrize(("text", "nbytes"), [
    ("50MB", 50_000_000), ("1.5GiB", 1_610_612_736), ("123", 123), ("123B", 123),
    ("10kB", 10_000), ("2KiB", 2048), ("512M", 536_870_912), (" 7 mib ", 7_340_032), (42, 42),
])
def test_parse_size(text: str | int, nbytes: int) -> None:
    assert parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "MB", "-5", "12XB", "1.2.3MB", "ten"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="not a size"):
        parse_size(text)


def test_parse_ratio() -> None:
    assert parse_ratio("0.9") == 0.9
    assert parse_ratio("95%") == 0.95
    with pytest.raises(UsageError):
        parse_ratio("1.5")
    with pytest.raises(UsageError):
        parse_ratio("abc")


def test_parse_growth() -> None:
    assert parse_growth("5%") == Growth(percent=5.0)
    assert parse_growth("5%").limit_for(1000) == 50
    assert parse_growth("1MB") == Growth(bytes=1_000_000)
    assert parse_growth("1MB").limit_for(10) == 1_000_000
