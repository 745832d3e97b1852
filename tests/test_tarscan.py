"""The compiled scan of plain headers (imagescope/layer/_tarscan.c) reads every tar as Python does.

`layers._parse` hands the headers it can to the scan and reads the rest itself; whatever the
tar, the entries (every field: digests, offsets, captured contents) and the errors must be the
ones Python alone gives.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagescope.errors import CorruptArchive
from imagescope.layer import tar as layers
from imagescope.layer.capture import should_capture
from imagescope.layer.fileio import LimitedReader
from imagescope.model import Entry, EntryKind

needs_scan = pytest.mark.skipif(layers.compiled_scan() is None,
                                reason="imagescope.layer._tarscan is not built (no C compiler at install)")


def test_the_compiled_scan_is_built_where_ci_requires_it() -> None:
    """CI installs a compiler: there the scan must be built, not quietly left out."""
    if not os.environ.get("IMAGESCOPE_REQUIRE_COMPILED"):
        pytest.skip("IMAGESCOPE_REQUIRE_COMPILED is not set (CI sets it)")
    assert layers.compiled_scan() is not None


def _chunks(blob: bytes, size: int) -> Iterator[bytes]:
    for at in range(0, len(blob), size):
        yield blob[at:at + size]


Outcome = list[Entry] | str


def _parse(blob: bytes, chunk: int, *, compiled: bool, hash_contents: bool = True) -> Outcome:
    """The entries of `blob` fed in `chunk`-byte pieces, or the error's message."""
    stream = layers._TarStream(_chunks(blob, chunk), None, lambda n: None)
    try:
        return layers._parse(stream, label="layer", hash_contents=hash_contents,
                             base_offset=None, capture=should_capture,
                             scan=layers.compiled_scan() if compiled else None)
    except CorruptArchive as exc:
        return str(exc)


def _both(blob: bytes, chunk: int, **options: bool) -> Outcome:
    python = _parse(blob, chunk, compiled=False, **options)
    compiled = _parse(blob, chunk, compiled=True, **options)
    assert compiled == python
    return python


def _tar(members: list[tarfile.TarInfo], contents: list[bytes], fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt, encoding="utf-8",
                      errors="surrogateescape") as archive:
        for info, data in zip(members, contents, strict=True):
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def _info(name: str, kind: bytes, size: int = 0, link: str = "", uid: int = 0,
          mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.uid, info.gid, info.mode = \
        kind, size, link, uid, uid, mode
    return info


HAND_MADE = [
    ("usr/bin/tool", tarfile.REGTYPE, b"x" * 700),
    ("usr/bin/", tarfile.DIRTYPE, b""),
    ("./etc/./hosts", tarfile.REGTYPE, b"127.0.0.1\n"),
    ("/abs//path/", tarfile.REGTYPE, b""),  # type '0', a trailing slash: a file (as in Go)
    ("old//dir/", tarfile.AREGTYPE, b""),  # type NUL, a trailing slash: a directory
    ("a/b/../../../c", tarfile.REGTYPE, b"c"),
    ("..", tarfile.DIRTYPE, b""),  # normalizes to nothing: no entry
    ("usr/lib/link", tarfile.SYMTYPE, b""),
    ("usr/lib/hard", tarfile.LNKTYPE, b""),
    ("dev/null", tarfile.CHRTYPE, b""),
    ("pipe", tarfile.FIFOTYPE, b""),
    ("cont", tarfile.CONTTYPE, b"c" * 10),
    ("var/.wh.gone", tarfile.REGTYPE, b""),
    (".wh.top", tarfile.REGTYPE, b""),
    ("var/cache/.wh..wh..opq", tarfile.REGTYPE, b""),
    (".wh..wh..opq", tarfile.REGTYPE, b""),
    ("var/.wh..wh.plnk", tarfile.REGTYPE, b""),  # aufs bookkeeping: no entry
    ("var/.wh.", tarfile.REGTYPE, b""),
    ("x/.wh.dir/file", tarfile.REGTYPE, b"f"),  # .wh. in a parent: an ordinary file
    ("root/.ssh/id_rsa", tarfile.REGTYPE, b"-----BEGIN KEY-----"),  # captured
    ("var/lib/dpkg/status", tarfile.REGTYPE, b"Package: x\n"),  # captured
    ("caf\u00e9/menu", tarfile.REGTYPE, b"non-ASCII"),
    ("bad\udcff/name", tarfile.REGTYPE, b"not UTF-8"),
    ("p" * 120 + "/" + "n" * 90, tarfile.REGTYPE, b"prefix field"),
    ("l" * 300, tarfile.REGTYPE, b"long name"),
]


def _hand_made(fmt: int) -> bytes:
    infos, contents = [], []
    for name, kind, data in HAND_MADE:
        if fmt == tarfile.USTAR_FORMAT and (len(name) > 100 and "/" not in name[-101:]
                                            or not name.isascii()):
            continue
        link = "../lib/./target" if kind in (tarfile.LNKTYPE, tarfile.SYMTYPE) else ""
        infos.append(_info(name, kind, len(data) if kind in tarfile.REGULAR_TYPES else 0, link))
        contents.append(data)
    if fmt != tarfile.USTAR_FORMAT:  # a uid ustar cannot hold: a PAX record or base-256
        infos.append(_info("big/uid", tarfile.REGTYPE, 3, uid=3_000_000))
        contents.append(b"uid")
    return _tar(infos, contents, fmt)


@needs_scan
@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("chunk", [1, 100, 512, 700, 1 << 20])
def test_every_kind_of_header_reads_the_same(fmt: int, chunk: int) -> None:
    entries = _both(_hand_made(fmt), chunk)
    assert isinstance(entries, list)
    paths = {e.path: e for e in entries}
    assert paths["usr/bin/tool"].size == 700
    assert paths["abs/path"].kind is EntryKind.FILE
    assert paths["old/dir"].kind is EntryKind.DIR
    assert paths["c"].size == 1
    assert paths["var/gone"].kind is EntryKind.WHITEOUT
    assert paths["var/cache"].kind is EntryKind.OPAQUE
    assert paths["usr/lib/hard"].link_target == "lib/target"  # normalized: it names an entry
    assert paths["usr/lib/link"].link_target == "../lib/./target"  # as written
    assert paths["root/.ssh/id_rsa"].content == b"-----BEGIN KEY-----"
    assert fmt == tarfile.USTAR_FORMAT or paths["big/uid"].uid == 3_000_000
    assert "var/.wh..wh.plnk" not in paths and ".." not in paths


@needs_scan
def test_the_scan_takes_the_plain_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a scan that leaves every header to Python: it reads the ordinary entries."""
    compiled = layers.compiled_scan()
    assert compiled is not None
    taken = []

    def counting(buffer: bytes, at: int, entries: list[Entry], *rest: object) -> int:
        before = len(entries)
        end = compiled(buffer, at, entries, *rest)
        taken.append(len(entries) - before)
        return end

    monkeypatch.setattr(layers, "_COMPILED", counting)  # (a spy)
    blob = _tar([_info(f"f{i}", tarfile.REGTYPE, i) for i in range(50)],
                [bytes(i) for i in range(50)], tarfile.GNU_FORMAT)
    entries = layers.read_layer(io.BytesIO(blob), index=0, label="layer", media_type=None,
                                hash_contents=True, base_offset=None)
    assert sum(taken) == len(entries) == 50


@needs_scan
@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_seek_mode_offsets_and_skipped_digests_are_the_same(
        fmt: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "layer.tar"
    path.write_bytes(b"\0" * 1000 + _hand_made(fmt))

    def read() -> list[Entry]:
        with open(path, "rb") as handle:
            handle.seek(1000)
            window = LimitedReader(handle, path.stat().st_size - 1000)
            return layers.read_layer(window, index=0, label="layer", media_type=None,
                                     hash_contents=False, base_offset=1000)

    compiled = read()
    monkeypatch.setenv("IMAGESCOPE_TAR_SCAN", "python")
    python = read()
    assert compiled == python
    assert [e.offset for e in compiled if e.path == "usr/bin/tool"] == [1000 + 512]


@needs_scan
@pytest.mark.parametrize("hash_contents", [True, False])
def test_without_content_hashing_too(hash_contents: bool) -> None:
    entries = _both(_hand_made(tarfile.GNU_FORMAT), 4096, hash_contents=hash_contents)
    assert isinstance(entries, list)
    digests = [e.digest for e in entries if e.kind is EntryKind.FILE]
    assert all(d is not None for d in digests) == hash_contents


NAME_PARTS = ["usr", "a", ".", "..", "", ".wh.a", ".wh..wh..opq", ".wh..wh.x", ".wh.", "id_rsa",
              "config", "caf\u00e9", "b\udcfe", "x" * 60]
KINDS = [tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
         tarfile.CHRTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE]


@st.composite
def tars(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    infos, contents = [], []
    for _ in range(draw(st.integers(0, 8))):
        name = "/".join(draw(st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=5)))
        kind = draw(st.sampled_from(KINDS))
        size = draw(st.integers(0, 1100)) if kind in tarfile.REGULAR_TYPES else 0
        link = "/".join(draw(st.lists(st.sampled_from(NAME_PARTS), max_size=3)))
        info = _info(name, kind, size, link, uid=draw(st.sampled_from([0, 1000, 2_200_000])),
                     mode=draw(st.sampled_from([0o644, 0o4755, 0o777777])))
        infos.append(info)
        contents.append(bytes([len(infos)]) * size)
    try:
        blob = _tar(infos, contents, fmt)
    except ValueError:  # a name or number the format cannot hold
        blob = _tar(infos, contents, tarfile.PAX_FORMAT)
    for _ in range(draw(st.integers(0, 3))):  # mutations, mostly inside headers
        if not blob:
            break
        at = draw(st.integers(0, len(blob) - 1))
        blob = blob[:at] + bytes([draw(st.integers(0, 255))]) + blob[at + 1:]
    if draw(st.booleans()):
        blob = blob[:draw(st.integers(0, len(blob)))]
    return blob


@needs_scan
@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(blob=tars(), chunk=st.sampled_from([1, 3, 512, 513, 1500, 1 << 20]))
def test_any_tar_reads_the_same_with_and_without_the_scan(blob: bytes, chunk: int) -> None:
    _both(blob, chunk)


@needs_scan
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(header=st.binary(min_size=512, max_size=512), chunk=st.sampled_from([512, 4096]))
def test_any_header_block_reads_the_same(header: bytes, chunk: int) -> None:
    """Raw bytes with a valid checksum, so the header's fields are what gets compared."""
    block = bytearray(header)
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    _both(bytes(block) + bytes(2048), chunk)
