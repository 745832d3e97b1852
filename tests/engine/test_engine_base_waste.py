"""The before/after pair of a base that already ships apt lists and archives, built by the engine:
the fix imagescope recommends (one RUN that cleans up) must pass the README's CI gate, and the
base's files the fix hides must be reported as such, never as new waste.

The base is a stand-in for `debian:bookworm`: busybox with apt lists and a .deb archive already
in it, an `apt-get` that writes what the real one writes (sizes fixed, so every figure below is
worked out by hand), and a `CMD`, which is where the history shows the FROM boundary.
"""

from __future__ import annotations

import json

import pytest

from imagescope.errors import ExitCode
from tests.engine.support import BaseImage, Cli, SessionImages

pytestmark = pytest.mark.engine

APT_GET = b"""#!/bin/sh
# apt-get for the tests: fixed sizes, distinct contents
case "$1" in
  update)
    mkdir -p /var/lib/apt/lists /var/cache/apt
    head -c 90000 /dev/zero | tr '\\0' u > /var/lib/apt/lists/main
    head -c 40000 /dev/zero | tr '\\0' p > /var/cache/apt/pkgcache.bin ;;
  install)
    head -c 41000 /dev/zero | tr '\\0' q > /var/cache/apt/pkgcache.bin
    head -c 30000 /dev/zero | tr '\\0' d > /var/cache/apt/archives/curl.deb
    head -c 100000 /dev/zero | tr '\\0' c > /usr/bin/curl ;;
  clean)
    rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin ;;
esac
"""
BASE = ('COPY apt-get /usr/bin/apt-get\n'
        'RUN chmod 755 /usr/bin/apt-get && mkdir -p /var/lib/apt/lists /var/cache/apt/archives '
        '&& head -c 80000 /dev/zero | tr "\\0" l > /var/lib/apt/lists/main '
        '&& head -c 20000 /dev/zero | tr "\\0" b > /var/cache/apt/archives/libc.deb\n'
        'CMD ["sh"]\n')
APP = b"#!/bin/sh\necho app\n"
BEFORE = ("RUN apt-get update\n"
          "RUN apt-get install -y curl jq\n"
          "COPY app.sh /app/\n"
          "RUN chmod +x /app/app.sh\n")
AFTER = ("RUN apt-get update && apt-get install -y --no-install-recommends curl jq "
         "&& apt-get clean && rm -rf /var/lib/apt/lists/*\n"
         "COPY app.sh /app/\n"
         "USER 1000\n")


@pytest.fixture(scope="module")
def pair(images: SessionImages, base_image: BaseImage) -> tuple[str, str, str]:
    base = images.build("apt-base", BASE, {"apt-get": APT_GET})
    second_from = f"FROM {base}\n"  # a second FROM: the build's last stage is on the apt base
    before = images.build("apt-before", second_from + BEFORE, {"app.sh": APP})
    after = images.build("apt-after", second_from + AFTER, {"app.sh": APP})
    return base, before, after


def inspect(imagescope: Cli, reference: str, *extra: str) -> dict:  # type: ignore[type-arg]
    result = imagescope("inspect", reference, "--format", "json", "--pull", "never", *extra)
    assert result.exit_code == ExitCode.OK, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_history_shows_the_base_and_the_waste_is_split(
        imagescope: Cli, pair: tuple[str, str, str], base_image: BaseImage) -> None:
    _, before, after = pair
    layers = base_image.layer_count + 2  # busybox, the COPY of apt-get, the RUN
    old = inspect(imagescope, before)
    assert old["base"]["detected_from"] == "history"
    assert old["base"]["layer_count"] == layers
    # own steps: the update's 40,000-byte pkgcache rewritten by the install, the COPY's 20 bytes
    # rewritten by chmod; the base's 80,000 bytes of lists hidden by the update; inside the base,
    # its own chmod rewrote the apt-get it had copied
    assert (old["base"]["own_wasted_bytes"], old["base"]["base_hidden_bytes"],
            old["base"]["inherited_wasted_bytes"]) == (40000 + len(APP), 80000, len(APT_GET))
    new = inspect(imagescope, after)
    # the one RUN leaves no own waste; it hides the base's lists and its .deb
    assert (new["base"]["own_wasted_bytes"], new["base"]["base_hidden_bytes"]) == (0, 100000)
    assert new["layers"][0]["instruction"] is not None  # the JSON keeps the instructions
    # the estimate keeps the base: never below what the base ships
    assert new["optimized"]["optimized_bytes"] >= new["base"]["base_bytes"]
    assert old["optimized"]["optimized_bytes"] >= old["base"]["base_bytes"]


def test_the_recommended_fix_passes_the_readme_gate(imagescope: Cli,
                                                    pair: tuple[str, str, str]) -> None:
    _, before, after = pair
    result = imagescope("diff", before, after, "--format", "json", "--pull", "never",
                        "--max-new-waste", "10MB", "--max-growth", "5%")
    assert result.exit_code == ExitCode.OK, result.stdout + result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary["new_waste_bytes"] == 0
    assert summary["own_wasted_bytes"] == {"old": 40000 + len(APP), "new": 0,
                                           "delta": -(40000 + len(APP))}
    assert summary["newly_hidden_base_bytes"] == 20000  # the base's .deb; its lists were hidden
    # before: 90,000 + 40,000 | 41,000 + 30,000 + 100,000 | app | app → after: 100,000 | app
    assert summary["total_bytes"]["delta"] == (100000 + len(APP)) - (130000 + 171000
                                                                     + 2 * len(APP))


def test_with_base_and_own_only_too(imagescope: Cli, pair: tuple[str, str, str]) -> None:
    base, before, after = pair
    result = imagescope("diff", before, after, "--pull", "never", "--base", base, "--own-only",
                        "--max-new-waste", "10MB", "--max-growth", "5%", "--max-wasted", "0")
    assert result.exit_code == ExitCode.OK, result.stdout + result.stderr
    doc = inspect(imagescope, after, "--base", base)
    assert doc["base"]["reference"] == base and doc["base"]["detected_from"] == "base-option"
    table = imagescope("inspect", after, "--pull", "never", "--base", base)
    assert "base image" in table.stdout
