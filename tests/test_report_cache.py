"""Whole reports kept between runs: exact round trips, the image identity that keys them, hits
that read no layer, and every reason a stored report must not answer."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from fixtures import imagegen as g
from imagescope.analysis.report import Report
from imagescope.api import analyze, inspect
from imagescope.limits import ReadLimits
from imagescope.records import Records
from imagescope.render import json as json_render
from imagescope.render import markdown, terminal
from imagescope.sources import load, resolve
from imagescope.sources.source import ReadStats
from imagescope.store import cache as cache_module
from imagescope.store import report_codec
from imagescope.store.cache import LayerCache
from tests.hostile import time_limit
from tests.test_formats import EXPECTED_SUMMARY, EXPECTED_WASTED_FILES, reference_layers


def findings_image(extra: bytes | None = None) -> g.ImageSpec:
    """The reference image plus a layer with a package cache, a context leak and a secret
    deleted later: findings with files in every column."""
    leaky = g.layer_tar([g.file("var/lib/apt/lists/deb_dists_main", size=5000),
                         g.file("app/.git/config", size=90), g.file("app/.env", size=40),
                         g.file("root/.ssh/id_rsa", data=b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
                                                          b"x\n")])
    cleanup = g.layer_tar([g.whiteout("root/.ssh/id_rsa")])
    layers = [*reference_layers(), leaky, cleanup] + ([extra] if extra is not None else [])
    return g.ImageSpec(layers=layers)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "image.tar"
    g.write_docker_legacy(path, findings_image())
    return path


def fresh_report(reference: str | Path) -> Report:
    return analyze(load(str(reference)))


def renders(report: Report) -> tuple[str, str, str]:
    return (json_render.render(report), markdown.render(report, top=5),
            terminal.render(report, top=5, width=120, color=False))


# --------------------------------------------------------------------------- the codec


def test_a_report_survives_encoding_exactly(archive: Path) -> None:
    report = fresh_report(archive)
    assert report.findings and any(len(f.files) > 1 for f in report.findings)
    decoded = report_codec.decode(report_codec.encode(report))
    assert decoded == report
    assert isinstance(decoded.wasted_files, Records)
    assert list(decoded.wasted_files) == list(report.wasted_files)
    assert [list(f.files) for f in decoded.findings] == [list(f.files) for f in report.findings]
    assert renders(decoded) == renders(report)
    again = report_codec.decode(report_codec.encode(decoded))  # from columns, as stored
    assert renders(again) == renders(report)


def test_the_document_is_plain_json_and_renders_as_json_dumps(archive: Path) -> None:
    from imagescope.analysis.gates import GateResult

    gates = [GateResult("max-size", False, "size 1 bytes, limit 0 bytes: 1 bytes over")]
    for report in (fresh_report(archive),
                   report_codec.decode(report_codec.encode(fresh_report(archive)))):
        document = json_render.report_document(report, gates)
        assert json_render.render(report, gates) == json.dumps(document, indent=2) + "\n"
        assert json.loads(json_render.render(report, gates)) == document


def test_a_report_with_a_base_survives_encoding(archive: Path) -> None:
    from imagescope.api import BaseRef, analyze
    from imagescope.sources import load

    whole = fresh_report(archive)
    base = BaseRef("base:1", tuple(layer.diff_id for layer in whole.layers[:1]))
    report = analyze(load(str(archive)), base)
    assert report.base is not None and report.base.reference == "base:1"
    assert report_codec.decode(report_codec.encode(report)) == report


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x00" * 64, json.dumps([1, 2]).encode()])
def test_decoding_what_is_not_a_report_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        report_codec.decode(data)


# --------------------------------------------------------------------------- the identity


def test_the_identity_is_the_same_for_two_loads_and_for_the_handle(archive: Path) -> None:
    with resolve(str(archive)) as handle:
        known = handle.identity()
    assert known is not None and all(layer.entries == [] for layer in known.layers)
    key = report_codec.image_key(load(str(archive)))
    assert key is not None and key.startswith("sha256:")
    assert report_codec.image_key(known) == key == report_codec.image_key(load(str(archive)))


@pytest.mark.parametrize("change", ["reference", "diff_id", "digest", "stored_bytes", "history",
                                    "user", "platform", "warnings"])
def test_whatever_the_report_shows_changes_the_identity(archive: Path, change: str) -> None:
    image = load(str(archive))
    key = report_codec.image_key(image)
    layer = image.layers[1]
    if change == "reference":
        image.reference = "elsewhere.tar"
    elif change == "diff_id":
        layer.diff_id = "sha256:" + "0" * 64
    elif change == "digest":
        layer.digest = "sha256:" + "1" * 64
    elif change == "stored_bytes":
        layer.stored_bytes = (layer.stored_bytes or 0) + 1
    elif change == "history":
        image.history[0] = dataclasses.replace(image.history[0], created_by="RUN other")
    elif change == "user":
        image.user = "nobody"
    elif change == "platform":
        image.platform = "linux/arm64"
    else:
        image.warnings.append("a warning")
    assert report_codec.image_key(image) != key


def test_an_image_with_a_layer_without_diff_id_has_no_identity(archive: Path) -> None:
    image = load(str(archive))
    image.layers[0].diff_id = None
    assert report_codec.image_key(image) is None


# --------------------------------------------------------------------------- inspect


def stored_reports(cache: LayerCache) -> list[Path]:
    return sorted(cache.directory.glob("*.report"))


def test_a_second_inspect_is_answered_by_the_stored_report(archive: Path) -> None:
    cache = LayerCache(archive.parent / "cache")
    cold_stats, warm_stats = ReadStats(), ReadStats()
    cold = inspect(str(archive), cache=cache, stats=cold_stats)
    assert (cold_stats.layers_read, cold_stats.reports_from_cache) == (5, 0)
    assert len(stored_reports(cache)) == 1
    warm = inspect(str(archive), cache=cache, stats=warm_stats)
    assert (warm_stats.layers_read, warm_stats.layers_from_cache,
            warm_stats.reports_from_cache) == (0, 0, 1)
    assert warm == cold
    assert renders(warm) == renders(cold) == renders(fresh_report(archive))


def test_the_stored_report_holds_the_exact_figures(tmp_path: Path) -> None:
    g.write_docker_legacy(tmp_path / "reference.tar", g.ImageSpec(layers=reference_layers()))
    cache = LayerCache(tmp_path / "cache")
    inspect(str(tmp_path / "reference.tar"), cache=cache)
    document = json.loads(json_render.render(inspect(str(tmp_path / "reference.tar"),
                                                     cache=cache)))
    assert {key: document["summary"][key] for key in EXPECTED_SUMMARY} == EXPECTED_SUMMARY
    assert document["wasted_files"] == EXPECTED_WASTED_FILES


def test_an_archive_rewritten_in_place_is_analysed_again(archive: Path) -> None:
    """Same path, different layers: a different identity, never the old report."""
    cache = LayerCache(archive.parent / "cache")
    before = inspect(str(archive), cache=cache)
    g.write_docker_legacy(archive, findings_image(g.layer_tar([g.file("new", size=777)])))
    stats = ReadStats()
    after = inspect(str(archive), cache=cache, stats=stats)
    assert stats.reports_from_cache == 0 and stats.layers_read == 1
    assert after.summary.total_bytes == before.summary.total_bytes + 777
    assert after == fresh_report(archive)


def test_the_same_layers_under_another_format_are_reported_by_their_own_source(
        tmp_path: Path) -> None:
    image = findings_image()
    g.write_docker_legacy(tmp_path / "legacy.tar", image)
    g.write_oci_archive(tmp_path / "oci.tar", image, compression="zstd")
    cache = LayerCache(tmp_path / "cache")
    inspect(str(tmp_path / "legacy.tar"), cache=cache)
    stats = ReadStats()
    oci = inspect(str(tmp_path / "oci.tar"), cache=cache, stats=stats)
    assert stats.reports_from_cache == 0
    assert oci.image.source == "oci-archive"
    assert oci == fresh_report(tmp_path / "oci.tar")


@pytest.mark.parametrize("damage", ["flip a payload byte", "truncate", "empty", "foreign"])
def test_a_damaged_report_is_a_miss_and_is_rewritten(archive: Path, tmp_path: Path,
                                                     damage: str) -> None:
    cache = LayerCache(tmp_path / "cache")
    expected = inspect(str(archive), cache=cache)
    [stored] = stored_reports(cache)
    data = stored.read_bytes()
    if damage == "flip a payload byte":
        data = data[:60] + bytes([data[60] ^ 1]) + data[61:]
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = b""
    else:  # a valid report of another image, copied under this image's name
        other = tmp_path / "other.tar"
        g.write_docker_legacy(other, g.ImageSpec(layers=reference_layers()))
        other_cache = LayerCache(tmp_path / "other-cache")
        inspect(str(other), cache=other_cache)
        [foreign] = stored_reports(other_cache)
        data = foreign.read_bytes()
    stored.write_bytes(data)
    stats = ReadStats()
    assert inspect(str(archive), cache=cache, stats=stats) == expected
    assert stats.reports_from_cache == 0
    stats = ReadStats()
    assert inspect(str(archive), cache=cache, stats=stats) == expected
    assert stats.reports_from_cache == 1


@pytest.mark.parametrize("hostile", ["a link to /dev/zero", "a FIFO"])
def test_a_report_file_that_never_ends_or_never_answers_is_a_miss(archive: Path, tmp_path: Path,
                                                                  hostile: str) -> None:
    """Read unbounded, a link to /dev/zero fills memory and a FIFO blocks for ever: either is
    a miss at once, and the next inspect stores a real report in its place."""
    cache = LayerCache(tmp_path / "cache")
    expected = inspect(str(archive), cache=cache)
    [stored] = stored_reports(cache)
    stored.unlink()
    if hostile == "a FIFO":
        os.mkfifo(stored)
    else:
        stored.symlink_to("/dev/zero")
    stats = ReadStats()
    with time_limit(10):
        assert inspect(str(archive), cache=cache, stats=stats) == expected
    assert (stats.reports_from_cache, stats.layers_from_cache) == (0, 5)
    assert stored.is_file() and not stored.is_symlink()  # replaced, never written through
    stats = ReadStats()
    assert inspect(str(archive), cache=cache, stats=stats) == expected
    assert stats.reports_from_cache == 1


def test_reports_of_other_code_are_misses(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = LayerCache(archive.parent / "cache")
    inspect(str(archive), cache=cache)
    cache_module.report_fingerprint()
    monkeypatch.setattr(cache_module, "_REPORT_FINGERPRINTS",
                        {mode: code + 1 for mode, code in cache_module._REPORT_FINGERPRINTS.items()})
    stats = ReadStats()
    inspect(str(archive), cache=cache, stats=stats)
    assert stats.reports_from_cache == 0
    assert stats.layers_from_cache == 5  # the layer entries' code did not change


def test_an_unverified_read_stores_no_report(archive: Path) -> None:
    cache = LayerCache(archive.parent / "cache")
    inspect(str(archive), cache=cache, limits=ReadLimits(verify=False))
    assert stored_reports(cache) == []


def test_without_a_cache_nothing_is_stored_or_served(archive: Path,
                                                     private_cache_home: Path) -> None:
    stats = ReadStats()
    inspect(str(archive), stats=stats)
    inspect(str(archive), stats=stats)
    assert (stats.layers_read, stats.reports_from_cache) == (10, 0)
    assert list(private_cache_home.iterdir()) == []
