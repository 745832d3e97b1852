"""`docker save img | gzip` (and zstd, and compressed OCI archives) read as `docker load` reads
them: one decompressed stream, the same figures as the plain archive, the same cache keys."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import zstandard

from fixtures import imagegen as g
from imagescope.errors import ExitCode
from imagescope.sources import load
from imagescope.sources.source import ReadStats
from imagescope.store.cache import LayerCache

from .hostile import comparable, inspect, write
from .test_fuzz import _ARCHIVE_BYTES, ARCHIVES

COMPRESS = {"gzip": gzip.compress, "zstd": lambda data: zstandard.ZstdCompressor().compress(data)}


@pytest.mark.parametrize("name", sorted(ARCHIVES))
@pytest.mark.parametrize("compression", sorted(COMPRESS))
def test_a_compressed_archive_reads_as_the_plain_one(tmp_path: Path, name: str,
                                                     compression: str) -> None:
    plain = inspect(write(tmp_path, "image.tar", _ARCHIVE_BYTES[name]))
    packed = inspect(write(tmp_path, "image.tar.gz",
                           COMPRESS[compression](_ARCHIVE_BYTES[name])))
    assert plain.code == packed.code == ExitCode.OK, packed.stderr
    assert comparable(packed.report) == comparable(plain.report)
    assert packed.report is not None and packed.report["summary"]["identical_rewrite_bytes"] \
        == 1500


def test_the_layer_cache_keys_are_the_plain_archives(tmp_path: Path) -> None:
    """Layers read from the gzip archive serve the plain one, and the other way round."""
    plain = write(tmp_path, "image.tar", _ARCHIVE_BYTES["docker-legacy"])
    packed = write(tmp_path, "image.tar.gz", gzip.compress(_ARCHIVE_BYTES["docker-legacy"]))
    cache = LayerCache(tmp_path / "cache")
    first, second = ReadStats(), ReadStats()
    load(str(packed), cache=cache, stats=first)
    assert first.layers_from_cache == 0
    load(str(plain), cache=cache, stats=second)
    assert second.layers_from_cache == 3  # every layer of the seed image


def test_several_images_in_a_gzip_archive_are_picked_by_tag(tmp_path: Path) -> None:
    one = g.ImageSpec(layers=[g.layer_tar([g.file("a", size=10)])], repo_tag="one:1")
    two = g.ImageSpec(layers=[g.layer_tar([g.file("b", size=20)])], repo_tag="two:2")
    members, _ = g.docker_legacy_members(one)
    more, _ = g.docker_legacy_members(two)
    manifests = [m for m in members + more if m.name == "manifest.json"]
    merged = json.dumps([json.loads(m.data)[0] for m in manifests]).encode()
    union = {m.name: m for m in members + more if m.name != "manifest.json"}
    archive = g.tar_bytes([*union.values(), g.Member("manifest.json", merged)])
    path = write(tmp_path, "two.tar.gz", gzip.compress(archive))
    both = inspect(path)
    assert both.code == ExitCode.USAGE
    assert "docker-archive:" in both.stderr and ":REPO:TAG" in both.stderr
    picked = inspect(f"docker-archive:{path}:two:2")
    assert picked.code == ExitCode.OK, picked.stderr
    assert picked.report is not None and picked.report["summary"]["total_bytes"] == 20


@pytest.mark.parametrize("cut", [10, 100, -20, -8])
def test_a_cut_gzip_archive_is_corrupt(tmp_path: Path, cut: int) -> None:
    data = gzip.compress(_ARCHIVE_BYTES["docker-legacy"])
    outcome = inspect(write(tmp_path, "cut.tar.gz", data[:cut]))
    assert outcome.code == ExitCode.CORRUPT_ARCHIVE, outcome


def test_a_gzip_file_that_is_no_tar_is_not_an_image(tmp_path: Path) -> None:
    outcome = inspect(write(tmp_path, "notes.gz", gzip.compress(b"hello, world\n" * 100)))
    assert outcome.code in (ExitCode.NOT_AN_IMAGE, ExitCode.CORRUPT_ARCHIVE), outcome
