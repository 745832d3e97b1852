"""The layer analysis cache: exact round trips, hits counted in layers read, corruption ignored and
rewritten, concurrent writers, and the same figures whichever source filled it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures import imagegen as g
from imagescope.api import analyze, ensure_digests
from imagescope.model import Entry, EntryKind
from imagescope.render.json import report_document
from imagescope.sources import load
from imagescope.sources.source import ReadStats, SavedImage, SavedLayer
from imagescope.store import cache as cache_module
from imagescope.store.cache import LayerCache
from tests import cli as cli_harness
from tests.cli import CliResult
from tests.test_formats import EXPECTED_SUMMARY, EXPECTED_WASTED_FILES, reference_image

ROOT = Path(__file__).resolve().parent.parent
DIFF_ID = "sha256:" + "ab" * 32
OTHER_DIFF_ID = "sha256:" + "cd" * 32


def sample_entries() -> list[Entry]:
    """One entry of every kind, with every field set to something other than its default."""
    return [
        Entry("etc", EntryKind.DIR, mode=0o755, uid=0, gid=0),
        Entry("etc/passwd", EntryKind.FILE, size=1234, mode=0o644, uid=0, gid=0,
              digest=bytes(range(16)), offset=1536,
              content=b"root:x:0:0::/root:/bin/sh\n"),
        Entry("srv/big.bin", EntryKind.FILE, size=(1 << 40) + 3, mode=0o4755, uid=65534,
              gid=4294967294, offset=4096),
        Entry("srv/hashed", EntryKind.FILE, size=7, digest=b"\xff" * 16),
        Entry("srv/empty", EntryKind.FILE, size=0, offset=9728),
        Entry("srv/link", EntryKind.HARDLINK, link_target="srv/big.bin", uid=-1),
        Entry("srv/sym", EntryKind.SYMLINK, mode=0o777, link_target="../ünïcode/\udcff"),
        Entry("dev/fifo", EntryKind.SPECIAL, mode=0o600),
        Entry("var/gone", EntryKind.WHITEOUT, mode=0),
        Entry("opt", EntryKind.OPAQUE),
        Entry("bad/\udce9name", EntryKind.FILE, size=3, content=b"", digest=b"\x01" * 16),
    ]


def rebased(entries: list[Entry], shift: int | None) -> list[Entry]:
    out = []
    for e in entries:
        offset = None if shift is None or e.offset is None else e.offset + shift
        out.append(Entry(e.path, e.kind, e.size, e.mode, e.uid, e.gid, e.link_target, e.digest,
                         offset, e.content))
    return out


def cache_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --------------------------------------------------------------------------- the store itself


@pytest.mark.parametrize("stored_base, read_base", [(0, 0), (512, 512), (512, 10_000), (0, None),
                                                    (None, 0), (None, None)])
def test_round_trip_keeps_every_field(tmp_path: Path, stored_base: int | None,
                                      read_base: int | None) -> None:
    """Offsets are stored relative to the layer and rebased to where the reader's layer starts."""
    cache = LayerCache(tmp_path / "c")
    entries = rebased(sample_entries(), stored_base)
    assert cache.put(DIFF_ID, entries, offset_base=stored_base)
    got = cache.get(DIFF_ID, offset_base=read_base)
    shift = None if stored_base is None or read_base is None else read_base
    assert got == rebased(sample_entries(), shift)
    assert all(type(e.kind) is EntryKind for e in got)


def test_empty_layer_round_trips(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    assert cache.put(DIFF_ID, [], offset_base=0)
    assert cache.get(DIFF_ID, offset_base=0) == []


def test_miss_on_an_empty_cache_creates_nothing(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "never-made")
    assert cache.get(DIFF_ID) is None
    assert not (tmp_path / "never-made").exists()


@pytest.mark.parametrize("key", [None, "", "sha256:../../etc/passwd", "../" + "a" * 64,
                                 "sha256:" + "A" * 64, "sha256:abc"])
def test_keys_that_are_not_digests_are_never_stored(tmp_path: Path, key: str | None) -> None:
    cache = LayerCache(tmp_path / "c")
    assert not cache.put(key, sample_entries())
    assert cache.get(key) is None
    assert not (tmp_path / "c").exists()


def test_files_are_private(tmp_path: Path) -> None:
    """Captured contents (suspected secrets) live in the entries: 0700 directory, 0600 files."""
    cache = LayerCache(tmp_path / "c")
    cache.put(DIFF_ID, sample_entries())
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o700
    assert [p.stat().st_mode & 0o777 for p in (tmp_path / "c").iterdir()] == [0o600]


def test_default_location_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert LayerCache.default().directory == tmp_path / "imagescope" / "layers" / "v1"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # ignored, as the spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert LayerCache.default().directory == tmp_path / "home/.cache/imagescope/layers/v1"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert LayerCache.default().directory == tmp_path / "home/.cache/imagescope/layers/v1"


def test_without_a_home_directory_the_cache_is_unused(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_home() -> Path:
        raise KeyError("getpwuid(): uid not found: 12345")

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(Path, "home", no_home)
    cache = LayerCache.default()
    assert not cache.put(DIFF_ID, sample_entries())
    assert cache.get(DIFF_ID) is None


def test_without_a_home_directory_nothing_is_said(monkeypatch: pytest.MonkeyPatch,
                                                 legacy_archive: Path) -> None:
    """No home (an arbitrary UID in a container) is no untrusted cache: the run says nothing."""
    from imagescope.cli import main

    def no_home() -> Path:
        raise KeyError("getpwuid(): uid not found: 12345")

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(Path, "home", no_home)
    assert LayerCache.default().untrusted() is None
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()), \
            pytest.raises(SystemExit) as exit_status:
        main(["inspect", str(legacy_archive), "--format", "json"])
    assert (exit_status.value.code, stderr.getvalue()) == (0, "")


def make_untrusted(directory: Path, how: str) -> None:
    """Make `directory` (an existing, trusted one) untrustworthy in the way `how` says."""
    if how == "symlink":
        moved = directory.with_name(directory.name + "-real")
        directory.rename(moved)
        directory.symlink_to(moved)
    elif how == "group-writable":
        directory.chmod(0o770)
    elif how == "world-writable":
        directory.chmod(0o703)
    else:
        os.chown(directory, 12345, 12345)


@pytest.mark.parametrize("level", ["imagescope", "layers", "v1"])
@pytest.mark.parametrize("how, reason", [
    ("symlink", "is a symlink"), ("group-writable", "is writable by its group (mode 770)"),
    ("world-writable", "is writable by others (mode 703)"),
    ("foreign", "belongs to another user (uid 12345)")])
def test_an_untrusted_directory_is_neither_read_nor_written(private_cache_home: Path, level: str,
                                                            how: str, reason: str) -> None:
    """Any directory from the cache root down, not only the root: a hit would be someone
    else's answer, a write would hand them this user's captured contents."""
    if how == "foreign" and os.geteuid() != 0:
        pytest.skip("making a directory another user's needs root")
    cache = LayerCache.default()
    assert cache.put(DIFF_ID, sample_entries())
    directory = {"imagescope": cache.directory.parents[1], "layers": cache.directory.parent,
                 "v1": cache.directory}[level]
    make_untrusted(directory, how)
    before = sorted(p.name for p in private_cache_home.rglob("*"))
    cache = LayerCache.default()
    assert cache.untrusted() == f"{directory} {reason}"
    assert cache.get(DIFF_ID) is None
    assert not cache.put(OTHER_DIFF_ID, sample_entries())
    assert cache.get_image(DIFF_ID) is None and cache.get_report(DIFF_ID) is None
    assert sorted(p.name for p in private_cache_home.rglob("*")) == before


def test_a_cache_refused_once_stays_refused(tmp_path: Path) -> None:
    """Not used at all means not after a repair mid-run either: a run sees one cache."""
    cache = LayerCache(tmp_path / "c")
    assert cache.put(DIFF_ID, sample_entries())
    (tmp_path / "c").chmod(0o777)
    assert cache.get(DIFF_ID) is None
    (tmp_path / "c").chmod(0o700)
    assert cache.get(DIFF_ID) is None and not cache.put(OTHER_DIFF_ID, [])
    assert LayerCache(tmp_path / "c").get(DIFF_ID) is not None  # a new run trusts it again


def test_an_entry_too_large_to_be_read_back_is_not_written(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "MAX_FILE_BYTES", 200)  # an empty layer's is 157 bytes
    cache = LayerCache(tmp_path / "c")
    assert not cache.put(DIFF_ID, sample_entries())
    assert cache_files(tmp_path / "c") == []
    assert cache.put(DIFF_ID, [])  # (an empty layer's entry is smaller)
    assert cache.get(DIFF_ID) == []


def test_image_records_are_verified_by_their_config_digest(tmp_path: Path) -> None:
    config = b'{"rootfs":{"diff_ids":[]}}'
    digest = g.sha256(config)
    record = SavedImage(config, digest, None,
                        (SavedLayer("a/layer.tar", DIFF_ID, DIFF_ID, None, 2048),))
    cache = LayerCache(tmp_path)
    assert cache.put_image(digest, record)
    assert cache.get_image(digest) == record
    assert cache.get_image(OTHER_DIFF_ID) is None
    forged = SavedImage(config + b" ", digest, None, record.layers)  # config ≠ its digest
    assert cache.put_image(digest, forged)
    assert cache.get_image(digest) is None


# --------------------------------------------------------------------------- never trusted


def corrupt_flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


CORRUPTIONS: dict[str, Callable[[bytes, bytes], bytes]] = {
    "flipped payload byte": lambda data, other: corrupt_flip(data),
    "flipped checksum byte": lambda data, other: data[:-1] + bytes([data[-1] ^ 0x80]),
    "bad magic": lambda data, other: b"X" + data[1:],
    "other format version": lambda data, other: data[:8] + b"\x63\x00" + data[10:],
    "truncated": lambda data, other: data[: len(data) - 40],
    "truncated to the header": lambda data, other: data[:20],
    "empty": lambda data, other: b"",
    "garbage": lambda data, other: os.urandom(len(data)),
    "foreign entry (another key)": lambda data, other: other,
    "trailing bytes": lambda data, other: data + b"\0",
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_a_corrupt_entry_is_a_miss(tmp_path: Path, how: str) -> None:
    cache = LayerCache(tmp_path)
    cache.put(DIFF_ID, sample_entries(), offset_base=0)
    cache.put(OTHER_DIFF_ID, sample_entries()[:3], offset_base=0)
    path = tmp_path / f"sha256-{'ab' * 32}.layer"
    other = (tmp_path / f"sha256-{'cd' * 32}.layer").read_bytes()
    path.write_bytes(CORRUPTIONS[how](path.read_bytes(), other))
    assert cache.get(DIFF_ID) is None
    cache.put(DIFF_ID, sample_entries(), offset_base=0)  # the next put rewrites it
    assert cache.get(DIFF_ID, offset_base=0) == sample_entries()


def test_entries_of_an_older_analysis_are_a_miss(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries made by other parsing or capture code (another fingerprint) are not reused."""
    cache = LayerCache(tmp_path)
    cache.put(DIFF_ID, sample_entries())
    monkeypatch.setattr(cache_module, "_FINGERPRINTS",
                        {mode: code ^ 1 for mode, code in cache_module._FINGERPRINTS.items()})
    assert cache.get(DIFF_ID) is None


@pytest.mark.parametrize("payload", [
    ("not", "a", "layer"),
    (1, ["a"], b"\x00", b"", b"", b"", b"", b"", [None], {}, {}),  # short int columns
    (1, ["a"], b"\x09", bytes(8), bytes(8), bytes(8), bytes(8), bytes(8), [None], {}, {}),
    (1, [b"a"], b"\x00", bytes(8), bytes(8), bytes(8), bytes(8), bytes(8), [None], {}, {}),
    (1, ["a"], b"\x00", bytes(8), bytes(8), bytes(8), bytes(8), bytes(8), [b"short"], {}, {}),
    (1, ["a"], b"\x00", bytes(8), bytes(8), bytes(8), bytes(8), bytes(8), [None], {5: "x"}, {}),
])
def test_a_well_sealed_but_malformed_payload_is_a_miss(tmp_path: Path, payload: Any) -> None:
    """A checksum only proves the bytes are as written: the payload's shape is checked too."""
    import marshal

    import zstandard

    cache = LayerCache(tmp_path)
    data = zstandard.ZstdCompressor().compress(marshal.dumps(payload))
    assert cache._write(DIFF_ID, 1, data)
    assert cache.get(DIFF_ID) is None


def test_failed_writes_leave_no_temp_files(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cache = LayerCache(tmp_path)

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module.os, "replace", fail)
    assert not cache.put(DIFF_ID, sample_entries())
    assert cache_files(tmp_path) == []

    def interrupt(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        cache.put(DIFF_ID, sample_entries())
    assert cache_files(tmp_path) == []


def test_an_unwritable_cache_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = LayerCache(blocker / "cache")
    assert not cache.put(DIFF_ID, sample_entries())
    assert cache.get(DIFF_ID) is None


def test_stale_temp_files_of_killed_runs_are_swept(tmp_path: Path) -> None:
    stale, fresh = tmp_path / ".tmp-dead.layer", tmp_path / ".tmp-live.layer"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (1, 1))
    LayerCache(tmp_path).put(DIFF_ID, [])
    assert not stale.exists() and fresh.exists()


# --------------------------------------------------------------------------- inspect with a cache


def report(reference: str | Path, cache: LayerCache | None) -> tuple[dict[str, Any], ReadStats]:
    """The report with layers from `cache` (never a stored report: see test_report_cache)."""
    stats = ReadStats()
    document = report_document(analyze(load(str(reference), cache=cache, stats=stats)))
    return document, stats


def analysis(document: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the source format or the cache (the image's own figures)."""
    return {key: document[key] for key in ("summary", "wasted_files", "findings")} | {
        "layers": [{k: v for k, v in layer.items()
                    if k not in ("digest", "media_type", "stored_bytes")}
                   for layer in document["layers"]]}


@pytest.fixture
def legacy_archive(tmp_path: Path) -> Path:
    path = tmp_path / "legacy.tar"
    g.write_docker_legacy(path, reference_image())
    return path


def test_second_inspect_reads_no_layer_and_reports_the_same(tmp_path: Path,
                                                            legacy_archive: Path) -> None:
    cache = LayerCache(tmp_path / "cache")
    cold, cold_stats = report(legacy_archive, cache)
    warm, warm_stats = report(legacy_archive, cache)
    assert (cold_stats.layers_read, cold_stats.layers_from_cache) == (3, 0)
    assert (warm_stats.layers_read, warm_stats.layers_from_cache) == (0, 3)
    assert warm == cold
    uncached, _ = report(legacy_archive, None)
    assert uncached == cold
    assert {key: cold["summary"][key] for key in EXPECTED_SUMMARY} == EXPECTED_SUMMARY
    assert cold["wasted_files"] == EXPECTED_WASTED_FILES


def test_images_sharing_a_base_read_the_shared_layers_once(tmp_path: Path) -> None:
    base = [g.layer_tar([g.dir("usr"), g.file("usr/lib.so", size=5000)]),
            g.layer_tar([g.file("usr/tool", size=700), g.file("etc/conf", size=30)])]
    first = g.ImageSpec(layers=[*base, g.layer_tar([g.file("app/v1", size=100)])])
    second = g.ImageSpec(layers=[*base, g.layer_tar([g.file("app/v2", size=120),
                                                    g.whiteout("usr/tool")])])
    g.write_docker_legacy(tmp_path / "v1.tar", first)
    g.write_oci_archive(tmp_path / "v2.tar", second, compression="zstd")
    cache = LayerCache(tmp_path / "cache")
    _, stats = report(tmp_path / "v1.tar", cache)
    assert (stats.layers_read, stats.layers_from_cache) == (3, 0)
    document, stats = report(tmp_path / "v2.tar", cache)
    assert (stats.layers_read, stats.layers_from_cache) == (1, 2)
    assert analysis(document) == analysis(report(tmp_path / "v2.tar", None)[0])
    assert document["summary"]["removed_bytes"] == 700


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_a_corrupt_entry_is_read_again_and_rewritten(tmp_path: Path, legacy_archive: Path,
                                                     how: str) -> None:
    cache = LayerCache(tmp_path / "cache")
    expected, _ = report(legacy_archive, cache)
    layer_files = sorted((tmp_path / "cache").glob("*.layer"))
    victim, donor = layer_files[0], layer_files[1]
    victim.write_bytes(CORRUPTIONS[how](victim.read_bytes(), donor.read_bytes()))
    again, stats = report(legacy_archive, cache)
    assert (stats.layers_read, stats.layers_from_cache) == (1, 2)
    assert again == expected
    healed, stats = report(legacy_archive, cache)
    assert (stats.layers_read, stats.layers_from_cache) == (0, 3)
    assert healed == expected


# --------------------------------------------------------------------------- identical rewrites


def write_formats(directory: Path) -> dict[str, Path]:
    image = reference_image()
    paths = {"legacy": directory / "legacy.tar", "docker25": directory / "docker25.tar",
             "oci-gzip": directory / "gzip.tar", "oci-zstd-dir": directory / "zstd-layout",
             "oci-plain-dir": directory / "plain-layout"}
    g.write_docker_legacy(paths["legacy"], image)
    g.write_docker25(paths["docker25"], image)
    g.write_oci_archive(paths["oci-gzip"], image, compression="gzip")
    g.write_oci_layout(paths["oci-zstd-dir"], image, compression="zstd")
    g.write_oci_layout(paths["oci-plain-dir"], image, compression="plain")
    return paths


@pytest.mark.parametrize("first", ["legacy", "oci-gzip", "oci-plain-dir"])
@pytest.mark.parametrize("then", ["legacy", "docker25", "oci-gzip", "oci-zstd-dir",
                                  "oci-plain-dir"])
def test_identical_rewrites_do_not_depend_on_the_cache(tmp_path: Path, first: str,
                                                       then: str) -> None:
    """Cached by one format, read by another: the same figures as without a cache.

    A seeking pass (plain layers) caches entries by diff_id, without content digests; a
    compressed source has no offsets to compute them from, so it reads the layers that need
    them again and caches its own entries, once. A compressed blob is verified by its own
    digest, not its diff_id (see `blobs.cache_key`): its entries serve only that blob.
    """
    paths = write_formats(tmp_path)
    cache = LayerCache(tmp_path / "cache")
    report(paths[first], cache)
    uncached, _ = report(paths[then], None)
    warm, stats = report(paths[then], cache)
    assert warm == uncached
    assert warm["summary"]["identical_rewrite_bytes"] == 400
    plain_first = first != "oci-gzip"
    compressed_then = then in ("oci-gzip", "oci-zstd-dir")
    shared = plain_first or then == first
    assert stats.layers_from_cache == (3 if shared else 0)
    # /same is rewritten in layer 1 over layer 0: both layers' digests are needed
    assert stats.layers_read == (2 if plain_first and compressed_then else 0 if shared else 3)
    again, stats = report(paths[then], cache)
    assert again == uncached
    assert (stats.layers_read, stats.layers_from_cache) == (0, 3)


def test_a_rewrite_candidate_keeps_its_cached_digests_after_a_reread(tmp_path: Path) -> None:
    """Read again for digests, the upgraded entries serve plain sources as well."""
    paths = write_formats(tmp_path)
    cache = LayerCache(tmp_path / "cache")
    report(paths["legacy"], cache)
    report(paths["oci-gzip"], cache)
    upgraded = cache.get(g.sha256(reference_image().layers[0]))
    assert upgraded is not None
    assert all(e.digest is not None for e in upgraded if e.kind is EntryKind.FILE)
    document, stats = report(paths["legacy"], cache)
    assert (stats.layers_read, stats.layers_from_cache) == (0, 3)
    assert document["summary"]["identical_rewrite_bytes"] == 400


def test_digests_read_again_land_on_the_same_entries(tmp_path: Path) -> None:
    """`ensure_digests` fills the entries a caller already holds (e.g. a diff's final files)."""
    paths = write_formats(tmp_path)
    cache = LayerCache(tmp_path / "cache")
    report(paths["legacy"], cache)
    image = load(str(paths["oci-gzip"]), cache=cache)
    assert [layer.digests_incomplete for layer in image.layers] == [True, True, True]
    held = [e for e in image.layers[1].entries if e.path in ("same", "over")]
    assert [e.digest for e in held] == [None, None]
    assert ensure_digests(image, held) is False  # nothing replaced: the same objects filled
    assert all(e.digest is not None for e in held)
    assert [layer.digests_incomplete for layer in image.layers] == [True, False, True]


def test_a_cached_analysis_the_source_contradicts_is_replaced(tmp_path: Path) -> None:
    """Entries cached under a diff_id they do not describe (valid file, wrong content) are
    replaced as soon as the layer is read again, and the figures come from the source."""
    paths = write_formats(tmp_path)
    cache = LayerCache(tmp_path / "cache")
    report(paths["legacy"], cache)
    diff_id = g.sha256(reference_image().layers[0])
    poisoned = cache.get(diff_id, offset_base=0)
    assert poisoned is not None
    poisoned.append(Entry("bogus", EntryKind.FILE, size=5, offset=10_000))
    cache.put(diff_id, poisoned, offset_base=0)
    document, stats = report(paths["oci-gzip"], cache)
    assert document == report(paths["oci-gzip"], None)[0]
    assert stats.layers_read == 2
    assert len(cache.get(diff_id) or []) == len(poisoned) - 1  # upgraded from the source


# --------------------------------------------------------------------------- the command line


def run_cli(*args: str | Path, env: dict[str, str] | None = None) -> CliResult:
    return cli_harness.run_cli(*args, cwd=ROOT, env=env)


def test_cli_uses_the_xdg_cache_and_prints_stats(legacy_archive: Path,
                                                 private_cache_home: Path) -> None:
    cold = run_cli("inspect", legacy_archive, "--format", "json", "--stats")
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr == "imagescope: layers: 3 read, 0 from cache\n"
    directory = private_cache_home / "imagescope" / "layers" / "v1"
    assert len(list(directory.glob("*.layer"))) == 3
    assert len(list(directory.glob("*.report"))) == 1
    warm = run_cli("inspect", legacy_archive, "--format", "json", "--stats")
    assert warm.stderr == "imagescope: layers: 0 read, 0 from cache; reports from cache: 1\n"
    assert warm.stdout == cold.stdout
    quiet = run_cli("inspect", legacy_archive, "--format", "json")
    assert quiet.stderr == "" and quiet.stdout == cold.stdout
    for stored in directory.glob("*.report"):
        stored.unlink()
    from_layers = run_cli("inspect", legacy_archive, "--format", "json", "--stats")
    assert from_layers.stderr == "imagescope: layers: 0 read, 3 from cache\n"
    assert from_layers.stdout == cold.stdout


def test_no_cache_leaves_the_cache_alone(legacy_archive: Path, private_cache_home: Path) -> None:
    result = run_cli("inspect", legacy_archive, "--format", "json", "--no-cache", "--stats")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "imagescope: layers: 3 read, 0 from cache\n"
    assert list(private_cache_home.iterdir()) == []
    assert json.loads(result.stdout)["summary"]["identical_rewrite_bytes"] == 400


def test_concurrent_runs_share_a_fresh_cache(tmp_path: Path) -> None:
    archive = tmp_path / "big.tar"
    layers = [g.layer_tar([g.file(f"l{n}/f{i}", size=i % 300, seed=f"{n}/{i}")
                           for i in range(3000)]) for n in range(4)]
    layers.append(g.layer_tar([g.whiteout("l0"), g.file("l1/f7", size=7, seed="1/7")]))
    built = g.write_oci_archive(archive, g.ImageSpec(layers=layers), compression="gzip")
    home = tmp_path / "xdg"
    command = [sys.executable, "-m", "imagescope", "inspect", str(archive), "--format", "json"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                             env={**os.environ, "XDG_CACHE_HOME": str(home)})
            for _ in range(4)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, [err for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1
    directory = home / "imagescope" / "layers" / "v1"
    assert [name for name in cache_files(directory)
            if not name.endswith((".layer", ".report"))] == []
    cache = LayerCache(directory)
    # gzip blobs are verified by their own digests, and cached under them (verify.BlobChecks)
    assert all(cache.get(digest) is not None for digest in built.layer_digests)
    warm = run_cli("inspect", archive, "--format", "json", "--stats",
                   env={"XDG_CACHE_HOME": str(home)})
    assert warm.stderr == "imagescope: layers: 0 read, 0 from cache; reports from cache: 1\n"
    assert warm.stdout.encode() == outputs[0][0]

