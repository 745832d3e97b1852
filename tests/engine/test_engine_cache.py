"""The cache against a real engine: a stored report answers without `docker save` and without
a layer; warm layers answer without `docker save`, a partial layer cache streams once and parses
only what it lacks, and entries cached from an archive of the same image (no content digests)
still give the exact identical-rewrite bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import docker
import pytest

from imagescope.errors import ExitCode
from tests.engine.support import BaseImage, Cli, CliResult, SessionImages

pytestmark = pytest.mark.engine

# /data (3000 bytes) is rewritten unchanged by chmod: an identical rewrite that only content
# digests can tell from an overwrite.
DOCKERFILE = ("RUN dd if=/dev/zero of=/data bs=1000 count=3\n"
              "RUN chmod 600 /data\n"
              "RUN echo hi > /x\n")
OWN_LAYERS = 3
IDENTICAL_REWRITE_BYTES = 3000
_STATS = re.compile(r"imagescope: layers: (\d+) read, (\d+) from cache"
                    r"(?:; reports from cache: (\d+))?(?:; engine saves streamed: (\d+))?\n")
REPORT_HIT = (0, 0, 1, 0)


@pytest.fixture(scope="module")
def cache_image(images: SessionImages) -> str:
    return images.build("cache", DOCKERFILE)


def inspect(imagescope: Cli, reference: str, *extra: str) -> tuple[CliResult, tuple[int, ...]]:
    """The JSON report and (layers read, layers from cache, reports from cache, engine saves
    streamed or -1)."""
    result = imagescope("inspect", reference, "--format", "json", "--pull", "never", "--stats",
                        *extra)
    assert result.exit_code == ExitCode.OK, result.stderr
    counts = _STATS.fullmatch(result.stderr)
    assert counts is not None, result.stderr
    read, cached, reports, saves = counts.groups()
    return result, (int(read), int(cached), int(reports or 0), int(saves) if saves else -1)


def layer_files(cache_home: Path) -> list[Path]:
    return sorted((cache_home / "imagescope" / "layers" / "v1").glob("*.layer"))


def forget_reports(cache_home: Path) -> None:
    """Leave only layers and image records: the next inspect analyses the layers again."""
    for stored in (cache_home / "imagescope" / "layers" / "v1").glob("*.report"):
        stored.unlink()


def test_a_warm_cache_answers_without_streaming_the_image(
        imagescope: Cli, cache_image: str, base_image: BaseImage,
        private_cache_home: Path) -> None:
    layers = base_image.layer_count + OWN_LAYERS
    cold, counts = inspect(imagescope, cache_image)
    assert counts == (layers, 0, 0, 1)
    stored, counts = inspect(imagescope, cache_image)
    assert counts == REPORT_HIT
    assert stored.stdout == cold.stdout
    forget_reports(private_cache_home)
    warm, counts = inspect(imagescope, cache_image)
    assert counts == (0, layers, 0, 0)
    assert warm.stdout == cold.stdout
    uncached, counts = inspect(imagescope, cache_image, "--no-cache")
    assert counts == (layers, 0, 0, 1)
    assert uncached.stdout == cold.stdout
    assert f'"identical_rewrite_bytes": {IDENTICAL_REWRITE_BYTES},' in cold.stdout


def test_a_partial_cache_streams_once_and_parses_only_what_it_lacks(
        imagescope: Cli, cache_image: str, base_image: BaseImage,
        private_cache_home: Path) -> None:
    layers = base_image.layer_count + OWN_LAYERS
    cold, _ = inspect(imagescope, cache_image)
    layer_files(private_cache_home)[0].write_bytes(b"not an entry")
    forget_reports(private_cache_home)
    partial, counts = inspect(imagescope, cache_image)
    assert counts == (1, layers - 1, 0, 1)
    assert partial.stdout == cold.stdout
    forget_reports(private_cache_home)
    _, counts = inspect(imagescope, cache_image)
    assert counts == (0, layers, 0, 0)


def test_entries_cached_from_an_archive_still_decide_identical_rewrites(
        imagescope: Cli, cache_image: str, base_image: BaseImage, private_cache_home: Path,
        docker_client: docker.DockerClient, tmp_path: Path) -> None:
    """A `docker save` archive is read by seeking: its entries are cached without content
    digests. The engine image then served from them must read the layers that decide the
    identical rewrite again (one stream), and afterwards not at all."""
    layers = base_image.layer_count + OWN_LAYERS
    expected, _ = inspect(imagescope, cache_image)  # caches the engine's layout of the image
    archive = tmp_path / "saved.tar"
    with archive.open("wb") as out:
        for chunk in docker_client.images.get(cache_image).save():
            out.write(chunk)
    for entry in layer_files(private_cache_home):
        entry.unlink()
    forget_reports(private_cache_home)
    _, counts = inspect(imagescope, f"docker-archive:{archive}")
    assert counts == (layers, 0, 0, -1)
    forget_reports(private_cache_home)
    served, counts = inspect(imagescope, cache_image)
    assert counts == (2, layers, 0, 1)  # the layers writing /data twice, read again for digests
    assert served.stdout == expected.stdout
    forget_reports(private_cache_home)
    again, counts = inspect(imagescope, cache_image)
    assert counts == (0, layers, 0, 0)
    assert again.stdout == expected.stdout
    stored, counts = inspect(imagescope, cache_image)
    assert counts == REPORT_HIT
    assert stored.stdout == expected.stdout


def test_a_tag_moved_to_another_image_is_not_answered_by_the_old_report(
        imagescope: Cli, images: SessionImages, docker_client: docker.DockerClient,
        base_image: BaseImage) -> None:
    """The stored report is keyed by what the engine says the tag names now (image ID, layers):
    retagging a rebuilt image makes the next inspect analyse the new one."""
    first = images.build("moving-first", "RUN echo one > /version\n")
    second = images.build("moving-second", "RUN dd if=/dev/zero of=/big bs=1000 count=5\n")
    before, counts = inspect(imagescope, first)
    assert counts == (base_image.layer_count + 1, 0, 0, 1)
    repository, _, tag = first.rpartition(":")
    docker_client.images.get(second).tag(repository, tag)
    after, counts = inspect(imagescope, first)
    assert counts[2] == 0  # no stored report: the image is another one
    growth = (json.loads(after.stdout)["summary"]["total_bytes"]
              - json.loads(before.stdout)["summary"]["total_bytes"])
    assert growth == 5000 - len("one\n")  # /big instead of /version
    again, counts = inspect(imagescope, first)
    assert counts == REPORT_HIT and again.stdout == after.stdout


@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "cache"])
def test_an_inspect_connects_once_and_looks_the_image_up_once(
        cache_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: bool) -> None:
    """Cold and with the cache (identity first, then the layers): one connection, one lookup,
    one `docker save`; warm: one lookup and no save."""
    from docker.models.images import Image, ImageCollection

    from imagescope import api
    from imagescope.sources.source import ReadStats
    from imagescope.store.cache import LayerCache

    calls = {"connect": 0, "get": 0, "save": 0}
    from_env, get, save = docker.from_env, ImageCollection.get, Image.save

    def counted(name: str, real):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(docker, "from_env", counted("connect", from_env))
    monkeypatch.setattr(ImageCollection, "get", counted("get", get))
    monkeypatch.setattr(Image, "save", counted("save", save))
    cache = LayerCache(tmp_path / "c") if cached else None
    cold = api.inspect(cache_image, pull="never", cache=cache)
    assert calls == {"connect": 1, "get": 1, "save": 1}
    if cached:
        calls.update(connect=0, get=0, save=0)
        stats = ReadStats()
        warm = api.inspect(cache_image, pull="never", cache=cache, stats=stats)
        assert calls == {"connect": 1, "get": 1, "save": 0}
        assert stats.reports_from_cache == 1 and warm == cold
