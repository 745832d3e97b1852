"""Blob digests checked beside the decoding (`verify.DeferredChecks`, `spanhash`): the same
errors as checking in the decoding pass, in the same order; nothing cached before a blob
matched; a child process, or this one when there is none."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from fixtures import imagegen as g
from imagescope import api
from imagescope.errors import CorruptArchive, DigestMismatch, ExitCode
from imagescope.model import Image
from imagescope.sources import load, spanhash
from imagescope.sources.spanhash import Span, hash_span, identity_of
from imagescope.sources.verify import DeferredChecks
from imagescope.store.cache import LayerCache
from tests.hostile import inspect

pytestmark = pytest.mark.usefixtures("readers")  # (their child starts once workers are forked)

LAYERS = [g.layer_tar([g.file("a", size=700)]), g.layer_tar([g.file("b", size=300)])]


def flip_content(tar: bytes) -> bytes:
    """`tar` with one byte of its first file's content changed: a valid tar, other bytes."""
    return tar[:512] + bytes([tar[512] ^ 0x01]) + tar[513:]


def layout(tmp_path: Path, *, forge: int | None = None, truncate: int | None = None,
           compression: g.Compression = "gzip") -> tuple[Path, g.Built]:
    """An OCI layout of LAYERS; layer `forge` swapped for a valid blob of other bytes (its
    digest kept), layer `truncate` cut short."""
    directory = tmp_path / "layout"
    built = g.write_oci_layout(directory, g.ImageSpec(layers=LAYERS), compression=compression)
    if forge is not None:
        blob = directory / g.blob_path(built.layer_digests[forge])
        blob.write_bytes(g.compress(flip_content(LAYERS[forge]), compression))
    if truncate is not None:
        blob = directory / g.blob_path(built.layer_digests[truncate])
        blob.write_bytes(blob.read_bytes()[:-20])
    return directory, built


def later(*, child: bool = True, budget: int = 1 << 40) -> DeferredChecks:
    """Checks that start a child however small the blobs (`child=False`: none)."""
    return DeferredChecks(budget, child_from=0 if child else 1 << 60)


def layer_files(cache: Path) -> set[str]:
    return {p.name for p in cache.glob("*.layer")}


@pytest.mark.parametrize("child", [True, False], ids=["child", "in-process"])
@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_forged_blob_is_found_when_the_checks_settle(tmp_path: Path, child: bool,
                                                       compression: g.Compression) -> None:
    directory, built = layout(tmp_path, forge=1, compression=compression)
    image = load(str(directory), later=later(child=child))
    assert image.pending is not None  # loaded: its checks still run
    assert [len(layer.entries) for layer in image.layers] == [1, 1]
    with pytest.raises(DigestMismatch, match="layer 1") as raised:
        image.pending.settle()
    assert "gives " + built.layer_digests[1][:23] in str(raised.value)


@pytest.mark.parametrize("child", [True, False], ids=["child", "in-process"])
def test_intact_blobs_settle_quietly_and_are_cached_only_then(tmp_path: Path,
                                                               child: bool) -> None:
    directory, built = layout(tmp_path)
    cache = LayerCache(tmp_path / "cache")
    image = load(str(directory), cache=cache, later=later(child=child))
    assert image.pending is not None
    if not child:
        assert layer_files(cache.directory) == set()  # nothing stored before the blobs matched
    image.pending.settle()
    assert layer_files(cache.directory) == {
        digest.replace(":", "-") + ".layer" for digest in built.layer_digests}


@pytest.mark.parametrize("forged", [0, 1])
def test_a_forged_blob_is_never_cached_the_intact_ones_are(tmp_path: Path, forged: int) -> None:
    directory, built = layout(tmp_path, forge=forged)
    cache = LayerCache(tmp_path / "cache")
    image = load(str(directory), cache=cache, later=later())
    assert image.pending is not None
    with pytest.raises(DigestMismatch, match=f"layer {forged}"):
        image.pending.settle()
    intact = built.layer_digests[1 - forged]
    assert layer_files(cache.directory) == {intact.replace(":", "-") + ".layer"}


def test_a_blob_the_child_already_matched_is_stored_when_its_read_ends() -> None:
    """Stored at once (not held until `settle`) when the child's digest matches; held when it
    does not match or is not known yet, then settled as before."""
    from imagescope.sources.verify import DeferredBlob

    content = b"layer bytes"
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    span = Span("unused", (0, 0, 0), 0, len(content), ("sha256",))
    expected = ((digest, "the image config"),)
    reported: list[dict[str, str] | str | None] = [
        {"sha256": hashlib.sha256(content).hexdigest()}, {"sha256": "0" * 64}, "truncated"]
    stored: list[int] = []
    blobs = [DeferredBlob(n, f"layer {n}", span, expected, n, reported) for n in range(4)]
    for n, blob in enumerate(blobs):
        blob.read(partial(stored.append, n))
    assert stored == [0]  # 1 mismatched, 2 failed, 3 not hashed yet: none stored
    assert blobs[0].store is not None
    blobs[0].store()
    assert stored == [0]  # settling it again does not store it twice
    for blob in blobs[1:]:
        assert blob.store is not None
        blob.store()
    assert stored == [0, 1, 2, 3]  # (what `settle` does once each matched)


def test_abandoned_checks_store_nothing_and_stop_the_child(tmp_path: Path) -> None:
    directory, _ = layout(tmp_path, forge=1)
    cache = LayerCache(tmp_path / "cache")
    checks = later()
    load(str(directory), cache=cache, later=checks)
    child = checks._child
    assert child is not None
    checks.abandon()
    assert child.returncode is not None  # stopped and reaped
    checks.settle()  # nothing left to check: no error
    assert layer_files(cache.directory) == set()


def test_the_lowest_failure_wins_as_in_the_decoding_pass(tmp_path: Path) -> None:
    """Layer 0 forged (it decodes fine), layer 1 truncated (its read fails): checking in the
    decoding pass would meet layer 0's mismatch first, and so does a load that checks later."""
    directory, _ = layout(tmp_path, forge=0, truncate=1)
    with pytest.raises(DigestMismatch, match="layer 0"):
        load(str(directory), later=later())
    with pytest.raises(DigestMismatch, match="layer 0"):
        load(str(directory))  # in the pass: the same error
    intact, _ = layout(tmp_path / "other", truncate=1)
    with pytest.raises(CorruptArchive, match="layer 1"):
        load(str(intact), later=later())


def test_over_the_budget_a_blob_is_checked_in_the_decoding_pass(tmp_path: Path) -> None:
    directory, _ = layout(tmp_path, forge=1)
    with pytest.raises(DigestMismatch, match="layer 1"):
        load(str(directory), later=later(budget=0))
    checks = later(budget=1 << 40)
    image = load(str(directory), later=checks)  # within it: found when settling
    assert image.pending is checks
    with pytest.raises(DigestMismatch):
        checks.settle()


def test_without_verification_nothing_is_left_to_check(tmp_path: Path) -> None:
    from imagescope.limits import ReadLimits

    directory, _ = layout(tmp_path, forge=1)
    image = load(str(directory), limits=ReadLimits(verify=False), later=later())
    assert image.pending is None


def test_without_an_interpreter_to_start_the_blobs_are_hashed_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory, _ = layout(tmp_path, forge=1)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    checks = later()
    image = load(str(directory), later=checks)
    assert checks._child is None
    assert image.pending is not None
    with pytest.raises(DigestMismatch, match="layer 1"):
        image.pending.settle()


def test_a_blob_changed_since_it_was_read_is_an_error(tmp_path: Path) -> None:
    """Hashed after the decoding, a blob must still be the file that was decoded."""
    directory, built = layout(tmp_path)
    image = load(str(directory), later=later(child=False))
    blob = directory / g.blob_path(built.layer_digests[1])
    data = blob.read_bytes()
    blob.unlink()
    blob.write_bytes(data)  # the same bytes, another file
    assert image.pending is not None
    with pytest.raises(CorruptArchive, match="layer 1.*changed while it was read"):
        image.pending.settle()


def test_inspect_reports_a_forged_blob_with_its_exit_code(tmp_path: Path) -> None:
    directory, _ = layout(tmp_path, forge=1, compression="zstd")
    outcome = inspect(directory, cache=tmp_path / "home")
    assert outcome.code == ExitCode.DIGEST_MISMATCH and "layer 1" in outcome.stderr
    assert not list((tmp_path / "home").rglob("*.report"))  # no report stored either


class Recorded:
    """PendingChecks that record what was asked of them."""

    def __init__(self, fails: bool = False) -> None:
        self.calls: list[str] = []
        self.fails = fails

    def settle(self) -> None:
        self.calls.append("settle")
        if self.fails:
            raise DigestMismatch("layer 0: the blob does not match its digest")

    def abandon(self) -> None:
        self.calls.append("abandon")


def image_with(pending: Recorded) -> Image:
    return Image(reference="x", source="oci", layers=[], pending=pending)


def test_settled_work_is_followed_by_the_checks() -> None:
    pending = Recorded()
    image = image_with(pending)
    with api.settled([image]):
        assert pending.calls == []
    assert pending.calls == ["settle"] and image.pending is None


def test_a_mismatch_outranks_what_the_work_raised() -> None:
    """Work on a forged image may fail in any way: the forgery is the error to report."""
    pending = Recorded(fails=True)
    with pytest.raises(DigestMismatch) as raised, api.settled([image_with(pending)]):
        raise ValueError("work on forged bytes went wrong")
    assert isinstance(raised.value.__context__, ValueError)
    assert pending.calls == ["settle"]


def test_an_interrupted_work_stops_the_checks() -> None:
    pending = Recorded(fails=True)
    with pytest.raises(KeyboardInterrupt), api.settled([image_with(pending)]):
        raise KeyboardInterrupt
    assert pending.calls == ["abandon"]


# --------------------------------------------------------------------------- spanhash


def test_the_child_reports_each_span_in_order(tmp_path: Path) -> None:
    """`python -I -S spanhash.py`: a JSON list of spans in, a JSON line per span out."""
    path = tmp_path / "blobs"
    data = os.urandom(3 * spanhash.CHUNK // 2)
    path.write_bytes(data)
    with open(path, "rb") as file:
        identity = identity_of(file.fileno())
    spans = [Span(str(path), identity, 10, len(data) - 10, ("sha256", "sha512")),
             Span(str(path), identity, 5, 7, ("sha384",)),
             Span(str(path), identity, len(data) - 3, 4, ("sha256",)),  # runs past the end
             Span(str(path), (0, 0, 0), 0, 1, ("sha256",))]  # another file's identity
    done = subprocess.run([sys.executable, "-I", "-S", spanhash.__file__, "5"],
                          input=json.dumps(spans).encode(), capture_output=True, check=True)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines == [
        {"sha256": hashlib.sha256(data[10:]).hexdigest(),
         "sha512": hashlib.sha512(data[10:]).hexdigest()},
        {"sha384": hashlib.sha384(data[5:12]).hexdigest()},
        "truncated",
        "changed",
    ]
    assert [hash_span(span) for span in spans] == lines  # the same answers in-process


def test_a_span_of_a_missing_file_says_why(tmp_path: Path) -> None:
    result = hash_span(Span(str(tmp_path / "gone"), (0, 0, 0), 0, 1, ("sha256",)))
    assert isinstance(result, str) and result.startswith("cannot open the blob again")


@pytest.mark.parametrize("command", [
    ("sleep", "30"),  # a child that never reports: starved of CPU, say
    (sys.executable, "-c", "import sys; sys.stdin.read(); print('nonsense'); print('[1]')"),
], ids=["silent", "garbled"])
def test_settle_hashes_what_the_child_does_not_report(tmp_path: Path,
                                                      command: tuple[str, ...]) -> None:
    """The checks never wait on a child that reports nothing usable: settling hashes the
    blobs here, and stops the child."""
    import time

    directory, _ = layout(tmp_path, forge=1)
    checks = DeferredChecks(1 << 40, child_from=0, command=command)
    image = load(str(directory), later=checks)
    child = checks._child
    assert child is not None and image.pending is checks
    started = time.monotonic()
    with pytest.raises(DigestMismatch, match="layer 1"):
        checks.settle()
    assert time.monotonic() - started < 10
    assert child.returncode is not None  # stopped and reaped
    intact, _ = layout(tmp_path / "intact")
    checks = DeferredChecks(1 << 40, child_from=0, command=command)
    load(str(intact), later=checks)
    checks.settle()


def test_hashing_here_stops_once_the_child_has_reported_that_blob(tmp_path: Path) -> None:
    """`settle` hashes from the last blob back; the blob it is on, once the child reports it,
    is left to the child."""
    import io
    import threading

    from imagescope.sources.verify import _ChildProgress

    progress = _ChildProgress()
    assert not progress.reached(1)  # watching blob 1
    progress.collect(io.BytesIO(b'"truncated"\n{"sha256": "ab"}\nnot json\n'), count=5)
    assert progress.overtaken.is_set() and progress.reached(1)
    assert progress.reported == ["truncated", {"sha256": "ab"}, None]
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 1000)
    with open(path, "rb") as file:
        span = Span(str(path), identity_of(file.fileno()), 0, 1000, ("sha256",))
    stop = threading.Event()
    assert hash_span(span, stop) == {"sha256": hashlib.sha256(b"x" * 1000).hexdigest()}
    stop.set()
    assert hash_span(span, stop) == "stopped"


def test_a_load_interrupted_while_reading_stops_the_child(tmp_path: Path) -> None:
    from imagescope.progress import Progress

    class Interrupting(Progress):
        def read_started(self, label: str, total_bytes: int | None) -> None:
            raise KeyboardInterrupt

    directory, _ = layout(tmp_path)
    checks = later()
    with pytest.raises(KeyboardInterrupt):
        load(str(directory), progress=Interrupting(), later=checks)
    assert checks._child is None  # stopped and reaped (abandon), nothing left running


def test_when_one_image_fails_its_checks_the_others_are_stopped() -> None:
    """`compare` settles two images: a forged first one leaves no check of the second running."""
    first, second = Recorded(fails=True), Recorded()
    images = [image_with(first), image_with(second)]
    with pytest.raises(DigestMismatch), api.settled(images):
        pass
    assert first.calls == ["settle"] and second.calls == ["abandon"]
    assert all(image.pending is None for image in images)
