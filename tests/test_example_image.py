"""The bundled demo image: reproducible from fixtures/generate.py, its figures worked out here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures import generate
from imagescope.cli import main
from imagescope.errors import ExitCode

EXAMPLE = Path(generate.__file__).resolve().parent / generate.EXAMPLE_NAME


def test_regenerating_gives_identical_bytes(tmp_path: Path) -> None:
    written = generate.build(tmp_path)
    assert written.read_bytes() == EXAMPLE.read_bytes(), (
        "fixtures/example-image.tar is stale: run `python -m fixtures.generate`"
    )


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first = generate.build(tmp_path / "one").read_bytes()
    second = generate.build(tmp_path / "two").read_bytes()
    assert first == second


def test_example_is_small() -> None:
    assert EXAMPLE.stat().st_size < 200_000


# File sizes as `tar -tvf` lists them for each layer.tar of the example:
#   layer 0 base: busybox 6000 (+ 2 hard links), passwd 78, group 22, os-release 71,
#                 ld.so.cache 1200, libc.so.6 5000, magic 6000                      = 18371
#   layer 1 apt-get install: ld.so.cache 1300, gcc-12 8000, cc1 10000, collect2 3000,
#                 .deb 7000, pkgcache 5000, srcpkgcache 4000, InRelease 3000,
#                 Packages 6000, lock 0                                             = 47300
#   layer 2 apt-get remove / rm -rf: ld.so.cache 1250 + whiteouts + opaque lists    =  1250
#   layer 3 chmod -R: magic 6000 (same bytes)                                       =  6000
#   layer 4 COPY: 67 + 17 + 21 + 50 + 1100 + 6000 + 41 + 41 + 1500 + 0 + 73 + 900    =  9810
# removed (layer 1, by layer 2): 8000 + 10000 + 3000 + 7000 + 5000 + 4000 + 3000 + 6000 = 46000
# overwritten: ld.so.cache 1200 (0 by 1) + 1300 (1 by 2) + magic 6000 (identical, 0 by 3) = 8500
EXPECTED_SUMMARY = {
    "total_bytes": 82731,
    "final_bytes": 82731 - 54500,
    "wasted_bytes": 54500,
    "removed_bytes": 46000,
    "overwritten_bytes": 8500,
    "identical_rewrite_bytes": 6000,
    "efficiency": round((82731 - 54500) / 82731, 6),
    "layer_count": 5,
}
EXPECTED_LAYERS = [  # added, wasted, entries, hidden_by
    (18371, 7200, 21, [{"layer_index": 1, "bytes": 1200}, {"layer_index": 3, "bytes": 6000}]),
    (47300, 47300, 21, [{"layer_index": 2, "bytes": 47300}]),
    (1250, 0, 12, []),
    (6000, 0, 2, []),
    (9810, 0, 19, []),
]
LISTS = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_"
EXPECTED_WASTED = [  # path, bytes, layer, hidden by, how — largest first, then by path
    ("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", 10000, 1, 2, "removed"),
    ("/usr/bin/gcc-12", 8000, 1, 2, "removed"),
    ("/var/cache/apt/archives/gcc-12_12.2.0-14_amd64.deb", 7000, 1, 2, "removed"),
    ("/usr/share/misc/magic", 6000, 0, 3, "identical_rewrite"),
    (LISTS + "main_binary-amd64_Packages", 6000, 1, 2, "removed"),
    ("/var/cache/apt/pkgcache.bin", 5000, 1, 2, "removed"),
    ("/var/cache/apt/srcpkgcache.bin", 4000, 1, 2, "removed"),
    ("/usr/lib/gcc/x86_64-linux-gnu/12/collect2", 3000, 1, 2, "removed"),
    (LISTS + "InRelease", 3000, 1, 2, "removed"),
    ("/etc/ld.so.cache", 1300, 1, 2, "overwritten"),
    ("/etc/ld.so.cache", 1200, 0, 1, "overwritten"),
]


def test_example_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["inspect", str(EXAMPLE), "--format", "json"])
    out, err = capfd.readouterr()
    assert exited.value.code == ExitCode.OK, err
    doc = json.loads(out)
    assert doc["summary"] == EXPECTED_SUMMARY
    got_layers = [(la["added_bytes"], la["wasted_bytes"], la["entry_count"], la["hidden_by"])
                  for la in doc["layers"]]
    assert got_layers == EXPECTED_LAYERS
    got_wasted = [(w["path"], w["bytes"], w["layer_index"], w["hidden_by_layer"], w["how"])
                  for w in doc["wasted_files"]]
    assert got_wasted == EXPECTED_WASTED
    assert doc["image"]["source"] == "docker-archive"
    assert doc["image"]["platform"] == "linux/amd64"
    assert [la["created_by"] for la in doc["layers"]][1:] == [
        "RUN /bin/sh -c apt-get update && apt-get install -y build-essential # buildkit",
        (
            "RUN /bin/sh -c apt-get remove -y build-essential && apt-get autoremove -y"
            " && rm -rf /var/lib/apt/lists/* /var/cache/apt # buildkit"
        ),
        "RUN /bin/sh -c chmod -R a+rX /usr/share/misc # buildkit",
        "COPY . /app # buildkit",
    ]
    assert list(tmp_path.iterdir()) == []
