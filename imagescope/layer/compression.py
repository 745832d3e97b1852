"""Layer blob compression: told by magic bytes (gzip, zstd and its skippable frames, plain),
checked against the media type, and decoded in bounded chunks held to `ReadLimits`."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import IO, cast

import zstandard

from imagescope.errors import CorruptArchive, UnsupportedMediaType
from imagescope.layer.fileio import ChunkReader, Joined, Readable, uncounted
from imagescope.limits import ReadLimits

_inflate: ModuleType = zlib
try:  # ISA-L's inflate decodes gzip layers 2-3x faster than zlib, with the same results
    from isal import isal_zlib as _inflate
except ImportError:  # no wheel for this platform: zlib
    pass
_INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, _inflate.error)
_STREAM_CHUNK = 1 << 20  # compressed bytes per read
_OUT_CHUNK = 1 << 20  # decompressed bytes one step may hold, however much the input expands
# compressed bytes per zstd read, growing from the first to the last: a bomb shows within a few
# small ones; large ones mean fewer calls into Python (with layers decoded on threads, each call
# a wait for the GIL: 128 KiB reads cost a tenth of the wall time then)
_ZSTD_FIRST_READ = 128 << 10
_ZSTD_READ = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


_LAYER_MEDIA_TYPES: dict[str, str] = {
    "application/vnd.oci.image.layer.v1.tar": "plain",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "plain",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "plain",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar": "plain",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
}


def compression_of(media_type: str | None) -> str | None:
    """The compression a layer media type declares; None when the source gives no media type."""
    if media_type is None:
        return None
    try:
        return _LAYER_MEDIA_TYPES[media_type]
    except KeyError:
        raise UnsupportedMediaType(
            f"unsupported layer media type {media_type!r}: imagescope reads tar, tar+gzip and "
            "tar+zstd layers"
        ) from None


def sniff_compression(head: bytes) -> str:
    """Compression told by a blob's first bytes: gzip, zstd (a frame, or a skippable frame as
    zstd:chunked writers put first, RFC 8878), or plain (anything else)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC) or (
            len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18"):
        return "zstd"
    if head.startswith((b"BZh", b"\xfd7zXZ\x00")):
        return "unsupported"
    return "plain"


def _gzip_chunks(raw: Readable, label: str, on_raw: Callable[[int], None],
                 limits: ReadLimits) -> Iterator[bytes]:
    """Yield decompressed chunks of a (possibly multi-member) gzip stream.

    No chunk exceeds _OUT_CHUNK bytes, however much one compressed chunk expands; the expansion
    so far is checked against `limits`. Truncation is an error.
    """
    decomp = _inflate.decompressobj(31)
    started = ended = False
    consumed = produced = 0
    data = b""
    while True:
        if not data and not ended:
            data = raw.read(_STREAM_CHUNK)
            if data:
                on_raw(len(data))
                consumed += len(data)
            else:
                ended = True
        if decomp.eof:
            if not data.lstrip(b"\0"):  # the end, or NUL padding after the last member
                if ended:
                    break
                data = b""
                continue
            decomp = _inflate.decompressobj(31)
        elif ended and not data and not started:
            break
        before = len(data)
        try:
            out = decomp.decompress(data, _OUT_CHUNK)
        except _INFLATE_ERRORS as exc:
            raise CorruptArchive(f"{label}: corrupt gzip data ({exc})") from None
        started = True
        data = decomp.unused_data if decomp.eof else decomp.unconsumed_tail
        if out:
            produced += len(out)
            limits.check_expansion(label, produced, consumed - len(data))
            yield out
        elif ended and (not data or len(data) == before) and not decomp.eof:
            break  # no input left and no output pending
    if not started or not decomp.eof:
        raise CorruptArchive(f"{label}: gzip stream is truncated")


def _zstd_chunks(raw: Readable, label: str, on_raw: Callable[[int], None],
                 limits: ReadLimits) -> Iterator[bytes]:
    """Yield decompressed chunks of a (possibly multi-frame) zstd stream.

    No chunk exceeds _OUT_CHUNK bytes; the expansion so far is checked against `limits`.
    zstandard's reader ends quietly inside a truncated frame, so `_ZstdFrames` follows the frame
    and block headers as the bytes pass and tells truncation.
    """
    source = _ZstdSource(raw, on_raw)
    reader = zstandard.ZstdDecompressor().stream_reader(
        cast(IO[bytes], source), read_size=_ZSTD_READ, read_across_frames=True, closefd=False)
    produced = 0
    while True:
        try:
            out = reader.read(_OUT_CHUNK)
        except zstandard.ZstdError as exc:
            raise CorruptArchive(f"{label}: corrupt zstd data ({exc})") from None
        if not out:
            break
        produced += len(out)
        limits.check_expansion(label, produced, source.consumed)
        yield out
    while source.read(_ZSTD_READ):  # whatever the reader left must end the stream cleanly
        pass
    frames = source.frames
    if frames.bad is not None:
        raise CorruptArchive(f"{label}: corrupt zstd data ({frames.bad})")
    if not frames.complete():
        raise CorruptArchive(f"{label}: zstd stream is truncated")


class _ZstdSource:
    """The compressed bytes as zstandard's reader pulls them: counted, and followed by frame."""

    def __init__(self, raw: Readable, on_raw: Callable[[int], None]) -> None:
        self._raw = raw
        self._on_raw = on_raw
        self._step = _ZSTD_FIRST_READ  # doubles with each read, up to _ZSTD_READ
        self.consumed = 0
        self.frames = _ZstdFrames()

    def read(self, size: int = -1) -> bytes:
        step = self._step
        self._step = min(2 * step, _ZSTD_READ)
        data = self._raw.read(min(size, step) if size > 0 else step)
        if data:
            self._on_raw(len(data))
            self.consumed += len(data)
            self.frames.feed(data)
        return data


_ZSTD_FRAME_MAGIC = 0xFD2FB528
_ZSTD_SKIPPABLE_MASK = 0xFFFFFFF0
_ZSTD_SKIPPABLE_MAGIC = 0x184D2A50
_ZSTD_DICT_ID_BYTES = (0, 1, 2, 4)
_ZSTD_CONTENT_SIZE_BYTES = (0, 2, 4, 8)


class _ZstdFrames:
    """Follows zstd frame, skippable-frame and block headers (RFC 8878) through a stream fed in
    pieces; `complete()` when it stopped right after a whole frame. Reads no block contents."""

    def __init__(self) -> None:
        self._state = "magic"
        self._want = 4  # header bytes the state needs
        self._head = b""  # header bytes gathered so far
        self._skip = 0  # content bytes to pass over before the next header
        self._checksum = False
        self.frames = 0
        self.bad: str | None = None

    def feed(self, data: bytes) -> None:
        at, size = 0, len(data)
        while at < size and self.bad is None:
            if self._skip:
                step = min(self._skip, size - at)
                self._skip -= step
                at += step
                continue
            take = min(self._want - len(self._head), size - at)
            self._head += data[at:at + take]
            at += take
            if len(self._head) == self._want:
                head, self._head = self._head, b""
                self._advance(int.from_bytes(head, "little"))

    def _advance(self, value: int) -> None:
        state = self._state
        if state == "magic":
            if value == _ZSTD_FRAME_MAGIC:
                self._state, self._want = "descriptor", 1
            elif value & _ZSTD_SKIPPABLE_MASK == _ZSTD_SKIPPABLE_MAGIC:
                self._state, self._want = "skippable", 4
            else:
                self.bad = f"unknown frame magic {value:#010x}"
        elif state == "skippable":
            self._skip = value
            self._state, self._want = "magic", 4
        elif state == "descriptor":
            if value & 0x08:
                self.bad = "reserved bit set in a frame header"
                return
            single_segment = bool(value & 0x20)
            content_size = _ZSTD_CONTENT_SIZE_BYTES[value >> 6] or (1 if single_segment else 0)
            self._checksum = bool(value & 0x04)
            self._skip = ((0 if single_segment else 1) + _ZSTD_DICT_ID_BYTES[value & 3]
                          + content_size)
            self._state, self._want = "block", 3
        else:  # a block header: last flag, type, size
            block_type, block_size = (value >> 1) & 3, value >> 3
            if block_type == 3:
                self.bad = "reserved block type"
                return
            self._skip = 1 if block_type == 1 else block_size  # an RLE block holds one byte
            if value & 1:  # the last block of its frame
                self._skip += 4 if self._checksum else 0
                self.frames += 1
                self._state, self._want = "magic", 4

    def complete(self) -> bool:
        return (self.bad is None and self.frames > 0 and self._state == "magic"
                and not self._head and not self._skip)


def decompressed_chunks(raw: Readable, compression: str, label: str,
                        on_raw: Callable[[int], None], limits: ReadLimits) -> Iterator[bytes]:
    """The decompressed bytes of a gzip or zstd stream, in chunks of at most 1 MiB, held to
    `limits`; truncation and corruption are CorruptArchive naming `label`."""
    if compression == "gzip":
        return _gzip_chunks(raw, label, on_raw, limits)
    if compression == "zstd":
        return _zstd_chunks(raw, label, on_raw, limits)
    raise ValueError(f"not a compression imagescope decodes: {compression}")


def blob_compression(head: bytes, media_type: str | None, label: str) -> str:
    """The compression of a blob told by its first bytes (gzip, zstd, plain), which must agree
    with `media_type` when one is given."""
    declared = compression_of(media_type)
    actual = sniff_compression(head)
    if actual == "unsupported":
        raise UnsupportedMediaType(f"{label}: bzip2/xz-compressed layers are not supported")
    if declared is not None and declared != actual:
        raise CorruptArchive(
            f"{label}: media type {media_type} declares {declared} but the blob is {actual}"
        )
    return actual


def decoded(raw: Readable, media_type: str | None, label: str,
            limits: ReadLimits) -> Readable:
    """A layer blob's tar, read through `raw`: decompressed when the blob is compressed."""
    head = raw.read(4)
    compression = blob_compression(head, media_type, label)
    joined = Joined(head, raw)
    if compression == "plain":
        return joined
    return ChunkReader(decompressed_chunks(joined, compression, label, uncounted, limits), uncounted)


__all__ = ["GZIP_MAGIC", "ZSTD_MAGIC", "blob_compression", "compression_of", "decoded",
           "decompressed_chunks", "sniff_compression"]
