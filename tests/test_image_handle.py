"""One image handle per inspect: an archive's documents are parsed once and each layer read
once, whether or not the cache is asked first; a re-read goes through the same handle; the
cache key covers what changes a scan (the code, the limits, the verification mode)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures import imagegen as g
from imagescope import api
from imagescope.limits import ReadLimits
from imagescope.model import Entry, EntryKind
from imagescope.sources import blobs, manifests, resolve, stream
from imagescope.sources.source import ReadStats
from imagescope.store import cache as cache_module
from imagescope.store.cache import LayerCache

WRITERS: dict[str, Callable[..., Any]] = {
    "docker-legacy": g.write_docker_legacy,
    "docker25": g.write_docker25,
    "oci-archive": g.write_oci_archive,
    "oci-layout": g.write_oci_layout,
}


def image() -> g.ImageSpec:
    return g.ImageSpec(layers=[
        g.layer_tar([g.dir("etc"), g.file("etc/motd", size=300)]),
        g.layer_tar([g.file("etc/motd", size=120), g.file("app/run", size=50)]),
        g.layer_tar([g.whiteout("app/run")]),
    ])


def written(tmp_path: Path, form: str) -> str:
    path = tmp_path / ("layout" if form == "oci-layout" else f"{form}.tar")
    WRITERS[form](path, image())
    return f"oci:{path}" if form == "oci-layout" else str(path)


class Reads:
    """Counts every JSON document parsed (by what it is) and every layer blob parsed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.documents: Counter[str] = Counter()
        self.layers: Counter[str] = Counter()
        parse_json, read_layer = manifests.parse_json, blobs.read_layer

        def counted_json(data: bytes, what: str) -> Any:
            self.documents[what] += 1
            return parse_json(data, what)

        def counted_layer(raw: Any, **options: Any) -> list[Entry]:
            self.layers[options["label"]] += 1
            return read_layer(raw, **options)

        monkeypatch.setattr(manifests, "parse_json", counted_json)
        monkeypatch.setattr(blobs, "read_layer", counted_layer)
        monkeypatch.setattr(stream, "read_layer", counted_layer)
        monkeypatch.setenv("IMAGESCOPE_READERS", "2,threads")  # layers parsed in this process


@pytest.mark.parametrize("form", list(WRITERS))
@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "cache"])
def test_inspect_parses_each_document_once_and_reads_each_layer_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str, cached: bool) -> None:
    reference = written(tmp_path, form)
    reads = Reads(monkeypatch)
    stats = ReadStats()
    report = api.inspect(reference, cache=LayerCache(tmp_path / "c") if cached else None,
                         stats=stats)
    assert reads.documents and set(reads.documents.values()) == {1}, reads.documents
    assert sorted(reads.layers.values()) == [1, 1, 1], reads.layers
    assert (stats.layers_read, stats.layers_from_cache) == (3, 0)
    # 300 bytes of etc/motd overwritten, 50 of app/run whited out
    assert report.summary.wasted_bytes == 300 + 50


@pytest.mark.parametrize("form", list(WRITERS))
def test_a_stored_report_parses_the_documents_once_and_reads_no_layer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    reference = written(tmp_path, form)
    cache = LayerCache(tmp_path / "c")
    first = api.inspect(reference, cache=cache)
    reads = Reads(monkeypatch)
    stats = ReadStats()
    again = api.inspect(reference, cache=cache, stats=stats)
    assert again == first and stats.reports_from_cache == 1
    assert set(reads.documents.values()) == {1} and not reads.layers


def test_diff_reuses_the_stored_reports_of_images_the_cache_holds(tmp_path: Path) -> None:
    old, new = written(tmp_path, "docker-legacy"), written(tmp_path, "oci-layout")
    cache = LayerCache(tmp_path / "c")
    cold = api.compare(old, new, cache=cache)
    stats = ReadStats()
    warm = api.compare(old, new, cache=cache, stats=stats)
    assert stats.reports_from_cache == 2 and stats.layers_read == 0
    assert warm == cold
    assert warm[0].wasted_bytes.new == 350


def test_a_handle_resolves_once_and_reads_again_through_itself(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    reference = written(tmp_path, "docker25")
    reads = Reads(monkeypatch)
    with resolve(reference) as handle:
        known = handle.identity()
        assert known is not None and all(layer.entries == [] for layer in known.layers)
        assert not reads.layers
        image = handle.image()
        assert [len(layer.entries) for layer in image.layers] == [2, 2, 1]
        assert handle.image().layers[1].entries == image.layers[1].entries
    assert set(reads.documents.values()) == {1}
    assert sorted(reads.layers.values()) == [2, 2, 2]  # two reads, no second resolve


DIFF_ID = "sha256:" + "cd" * 32
ENTRIES = [Entry("etc/motd", EntryKind.FILE, size=5, digest=b"\2" * 16)]


@pytest.mark.parametrize("other", [ReadLimits(verify=False), ReadLimits(max_layer_ratio=7),
                                   ReadLimits(max_layer_size=1 << 30)],
                         ids=["no-verify", "ratio", "size"])
def test_entries_made_under_other_limits_are_a_miss(tmp_path: Path, other: ReadLimits) -> None:
    LayerCache(tmp_path / "c").put(DIFF_ID, ENTRIES)
    assert LayerCache(tmp_path / "c").get(DIFF_ID) == ENTRIES
    assert LayerCache(tmp_path / "c", other).get(DIFF_ID) is None
    assert LayerCache(tmp_path / "c").under(other).get(DIFF_ID) is None


def test_the_scan_fingerprint_covers_every_module_of_the_layer_package() -> None:
    from imagescope import layer

    package = Path(layer.__file__).parent
    covered = {path.name for path in cache_module.scan_sources()}
    assert {path.name for path in package.glob("*.py")} <= covered
    assert {"tar.py", "compression.py", "fileio.py", "codec.py", "capture.py", "model.py",
            "limits.py"} <= covered


def test_a_report_with_a_named_base_is_stored_and_served(tmp_path: Path) -> None:
    base_path = tmp_path / "base.tar"
    g.write_docker_legacy(base_path, g.ImageSpec(layers=image().layers[:1]))
    reference = written(tmp_path, "oci-archive")
    base = api.BaseRef.of(api.inspect(str(base_path)))
    cache = LayerCache(tmp_path / "c")
    first = api.inspect(reference, cache=cache, base=base)
    stats = ReadStats()
    again = api.inspect(reference, cache=cache, base=base, stats=stats)
    assert stats.reports_from_cache == 1 and again == first
    assert first.base is not None and first.base.layer_count == 1
    unnamed = ReadStats()
    api.inspect(reference, cache=cache, stats=unnamed)  # another base count: another report
    assert unnamed.reports_from_cache == 0
