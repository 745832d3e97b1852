"""The streaming walk of an archive's outer tar (`blobs.walk_stream`): members as tarfile lists
them, in ustar, pax and GNU form, whatever the chunking; a stream cut anywhere is an error;
and the read-ahead of a stream (`prefetch.Prefetched`) gives the same bytes and the source's
own error."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import pytest

from imagescope.errors import CorruptArchive
from imagescope.layer.fileio import ChunkReader
from imagescope.sources.blobs import tar_errors, walk_stream
from imagescope.sources.prefetch import Prefetched

LONG = "blobs/sha256/" + "d" * 64 + "/" + "n" * 120  # over ustar's 100 + 155 split


def archive(fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in (("manifest.json", b"[]"), (LONG, b"x" * 1500),
                           ("empty", b""), ("ü-name.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo("dir")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        link = tarfile.TarInfo("dir/link.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../" + LONG
        tar.addfile(link)
    return buffer.getvalue()


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def walked(data: bytes, chunk: int) -> list[tuple[str, bytes | None, str | None]]:
    reader = ChunkReader(chunked(data, chunk), lambda n: None)
    with tar_errors("test"):
        return [(m.name, m.file.read() if m.file else None, m.link)
                for m in walk_stream(reader)]  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("chunk", [7, 512, 1 << 20])
def test_members_are_what_tarfile_lists(fmt: int, chunk: int) -> None:
    if fmt == tarfile.USTAR_FORMAT:
        with pytest.raises(ValueError):
            archive(fmt)  # (ustar cannot hold the long name: the other two formats can)
        return
    expected = [("manifest.json", b"[]", None), (LONG, b"x" * 1500, None), ("empty", b"", None),
                ("ü-name.json", b"{}", None), ("dir/link.tar", None, LONG)]
    assert walked(archive(fmt), chunk) == expected


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_a_stream_cut_anywhere_is_corrupt(fmt: int) -> None:
    data = archive(fmt)
    end = data.index(bytes(1024), len(data) - 10240)  # the end-of-archive marker
    for cut in range(0, end, 97):
        with pytest.raises(CorruptArchive):
            walked(data[:cut], 64)


def test_unread_content_is_skipped() -> None:
    reader = ChunkReader(chunked(archive(tarfile.PAX_FORMAT), 100), lambda n: None)
    names = [m.name for m in walk_stream(reader)]  # type: ignore[arg-type]
    assert names == ["manifest.json", LONG, "empty", "ü-name.json", "dir/link.tar"]


def test_prefetched_gives_every_chunk_then_the_source_error() -> None:
    def source() -> Iterator[bytes]:
        yield from (bytes([n]) * 1000 for n in range(50))
        raise OSError("connection reset")

    ahead = Prefetched(source(), ahead=4096)  # the thread waits whenever 4 KiB are queued
    got: list[bytes] = []
    with pytest.raises(OSError, match="connection reset"):
        got.extend(ahead)
    ahead.close()
    assert got == [bytes([n]) * 1000 for n in range(50)]


def test_prefetched_close_stops_the_source() -> None:
    closed = []

    def source() -> Iterator[bytes]:
        try:
            while True:
                yield b"z" * 1000
        finally:
            closed.append(True)

    ahead = Prefetched(source(), ahead=2000)
    assert next(ahead) == b"z" * 1000
    ahead.close()
    assert closed == [True]
