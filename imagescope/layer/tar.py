"""A layer blob → its tar entries, in one sequential pass, never holding file contents."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from zlib import adler32

import xxhash

Scan = Callable[..., int]
_COMPILED: Scan | None = None
try:  # the common headers read in C (imagescope/layer/_tarscan.c); every header in Python without it
    from imagescope.layer._tarscan import scan as _COMPILED
except ImportError:  # installed without a C compiler
    pass

from imagescope.errors import CorruptArchive
from imagescope.layer.capture import should_capture
from imagescope.layer.compression import blob_compression, decompressed_chunks
from imagescope.layer.fileio import BlobReader, Hasher, Joined, Readable, uncounted
from imagescope.limits import ReadLimits
from imagescope.model import Entry, EntryKind, normalize_path
from imagescope.progress import Progress

Capture = Callable[[str, int], bool]

BLOCK = 512
_STREAM_CHUNK = 1 << 20  # compressed / non-seekable reads
_MAX_METADATA_BYTES = 16 << 20  # a PAX header or GNU long name; real ones are a few KiB
_SEEK_CHUNK = 32 << 10  # seekable plain reads: small, so skipped contents are rarely read
_ZERO_BLOCK = bytes(BLOCK)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


def _plain_chunks(raw: Readable, on_raw: Callable[[int], None], chunk: int) -> Iterator[bytes]:
    while True:
        data = raw.read(chunk)
        if not data:
            return
        on_raw(len(data))
        yield data


class _TarStream:
    """Buffered access to an uncompressed tar stream, with seek-skips when the source allows."""

    def __init__(self, chunks: Iterator[bytes], seek_raw: BlobReader | None,
                 on_raw: Callable[[int], None]) -> None:
        self._chunks = chunks
        self._seek_raw = seek_raw
        self._on_raw = on_raw
        self._buf = b""
        self._at = 0  # read position inside _buf
        self.pos = 0  # absolute position in the uncompressed stream

    def exhausted(self) -> bool:
        """True when a read came short and left no byte unread."""
        return len(self._buf) == self._at

    def take(self, n: int) -> bytes | None:
        """Exactly n bytes, or None when the stream ends first."""
        at = self._at
        if len(self._buf) - at >= n:
            self._at = at + n
            self.pos += n
            return self._buf[at:at + n]
        return self._take_across(n)

    def _take_across(self, n: int) -> bytes | None:
        """`take` of bytes that run past the buffered chunk. Only they are joined: the chunk
        they end in becomes the buffer, uncopied (a header straddling two chunks costs a few
        hundred bytes, not a chunk)."""
        parts = [self._buf[self._at:]]
        have = len(parts[0])
        while True:
            chunk = next(self._chunks, b"")
            if not chunk:
                self._buf, self._at = b"".join(parts), 0
                return None
            if have + len(chunk) >= n:
                break
            parts.append(chunk)
            have += len(chunk)
        head = n - have
        parts.append(chunk[:head])
        self._buf, self._at = chunk, head
        self.pos += n
        return b"".join(parts)

    def skip(self, n: int) -> bool:
        """Skip n bytes; False when the stream ends first."""
        avail = len(self._buf) - self._at
        if n <= avail:
            self._at += n
            self.pos += n
            return True
        n -= avail
        self.pos += avail
        self._buf, self._at = b"", 0
        if self._seek_raw is not None:
            start = self._seek_raw.tell()
            try:
                end = self._seek_raw.seek(n, io.SEEK_CUR)
            except (OverflowError, OSError, ValueError):  # a size no file can have
                return False
            self._on_raw(end - start)
            self.pos += end - start
            return end - start == n
        while n:
            chunk = next(self._chunks, b"")
            if not chunk:
                return False
            if len(chunk) > n:
                self._buf, self._at = chunk, n
                self.pos += n
                return True
            n -= len(chunk)
            self.pos += len(chunk)
        return True

    def scan(self, scan: Scan, entries: list[Entry], capture: Capture | None,
             hash_contents: bool, base_offset: int | None) -> None:
        """Let `scan` (see _tarscan.c) append the entries that lie whole in the buffer (the
        next chunk, when the buffer is used up)."""
        if self._at == len(self._buf):
            self._buf, self._at = next(self._chunks, b""), 0
        at = self._at
        origin = None if base_offset is None else base_offset + self.pos - at
        taken = scan(self._buf, at, entries, Entry, _KINDS, capture, xxhash.xxh3_128_digest,
                     hash_contents, origin)
        self.pos += taken - at
        self._at = taken

    def digest(self, n: int, padded: int) -> bytes | None:
        """The xxh3-128 digest of the next n bytes, `padded` (≥ n) bytes being consumed; None
        when the stream ends first."""
        at = self._at
        if padded <= len(self._buf) - at:  # most files lie inside the buffered chunk
            self._at = at + padded
            self.pos += padded
            return xxhash.xxh3_128_digest(memoryview(self._buf)[at:at + n])
        hasher = xxhash.xxh3_128()
        if not self.hash(n, hasher):
            return None
        self.skip(padded - n)  # padding cut short ends the stream (see _parse)
        return hasher.digest()

    def hash(self, n: int, hasher: xxhash.xxh3_128) -> bool:
        """Feed the next n bytes to hasher; False when the stream ends first."""
        while n:
            avail = len(self._buf) - self._at
            if not avail:
                chunk = next(self._chunks, b"")
                if not chunk:
                    return False
                self._buf, self._at = chunk, 0
                avail = len(chunk)
            step = min(n, avail)
            hasher.update(memoryview(self._buf)[self._at:self._at + step])
            self._at += step
            self.pos += step
            n -= step
        return True


_OWNERS: dict[bytes, tuple[int, int, int]] = {}  # mode, uid, gid fields → values: they repeat
_MAX_OWNERS = 4096


def _owner(fields: bytes) -> tuple[int, int, int]:
    """The permission bits, uid and gid of the header's adjacent mode, uid and gid fields."""
    found = _OWNERS.get(fields)
    if found is None:
        found = (_number(fields[0:8]) & 0o7777, _number(fields[8:16]), _number(fields[16:24]))
        if len(_OWNERS) < _MAX_OWNERS:
            _OWNERS[fields] = found
    return found


def _number(field: bytes) -> int:
    """A tar numeric field: octal text, or GNU base-256 when the high bit is set.

    Octal text ends at its first NUL and may be padded with spaces; the common spelling (digits,
    then NULs or spaces) is read in one step.
    """
    try:
        return int(field.rstrip(b"\0 "), 8)  # (fails on a NUL or a high byte inside)
    except ValueError:
        pass
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:  # negative base-256
            value -= 1 << (8 * (len(field) - 1) + 6)
        else:
            value += (field[0] & 0x3F) << (8 * (len(field) - 1))
        return value
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _checksum_ok(header: bytes) -> bool:
    stored = header[148:156]
    try:
        expected = _number(stored)
    except ValueError:
        return False
    # the bytes' sum with the checksum field read as 8 spaces; adler32's low half is 1 + the sum
    # mod 65521, and 256 bytes sum to at most 65280: exact, and done in C
    if len(header) == BLOCK:
        unsigned = ((adler32(header[:256]) & 0xFFFF) + (adler32(header[256:]) & 0xFFFF) - 2
                    - sum(stored) + 256)
    else:
        unsigned = sum(header[:148]) + 256 + sum(header[156:])
    if expected == unsigned:
        return True
    signed = sum(b - 256 if b > 127 else b for b in header[:148] + header[156:]) + 256
    return expected == signed


def _pax_records(data: bytes, label: str) -> dict[str, str]:
    """Parse `LEN key=value\\n` records of a PAX extended header."""
    records: dict[str, str] = {}
    at = 0
    while at < len(data):
        space = data.find(b" ", at)
        if space < 0:
            if not data[at:].strip(b"\0\n"):
                break
            raise CorruptArchive(f"{label}: malformed PAX header")
        try:
            length = int(data[at:space])
        except ValueError:
            raise CorruptArchive(f"{label}: malformed PAX header") from None
        if length <= 0 or at + length > len(data):
            raise CorruptArchive(f"{label}: malformed PAX header")
        record = data[space + 1:at + length - 1]
        key, _, value = record.partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        at += length
    return records


_PAX_KEYS = frozenset({"path", "linkpath", "size", "uid", "gid"})
_FILE_TYPES = frozenset(b"07")
_SPECIAL_TYPES = frozenset(b"346")


_METADATA_TYPES = frozenset(b"xgLK")
# hard and symbolic links, devices, directories, FIFOs: no data section whatever the size field
# says (Go's archive/tar isHeaderOnlyType, so Docker and containerd; Python's tarfile too)
_HEADER_ONLY_TYPES = frozenset(b"123456")
_KIND_OF_TYPE: dict[int, EntryKind] = {  # typeflag → kind, for a path that is no whiteout
    **dict.fromkeys((0, *_FILE_TYPES), EntryKind.FILE),
    0x35: EntryKind.DIR,  # '5'
    0x31: EntryKind.HARDLINK,  # '1'
    0x32: EntryKind.SYMLINK,  # '2'
}


def _header_name(header: bytes) -> str:
    """The name a header holds: its name field, after the ustar prefix field when set."""
    name = _text(header[0:100])
    if header[345] != 0 and header[257:263] == b"ustar\x00":
        return _text(header[345:500]) + "/" + name
    return name


def _classify(path: str, typeflag: int) -> tuple[str, EntryKind] | None:
    """Entry kind and effective path; None for overlay metadata that is not a filesystem entry."""
    parent, _, base = path.rpartition("/")
    if base.startswith(WHITEOUT_PREFIX):
        if base == OPAQUE_MARKER:
            return parent, EntryKind.OPAQUE
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return None  # aufs bookkeeping such as .wh..wh.plnk
        hidden = base[len(WHITEOUT_PREFIX):]
        return (f"{parent}/{hidden}" if parent else hidden), EntryKind.WHITEOUT
    if typeflag in _FILE_TYPES or typeflag == 0:
        return path, EntryKind.FILE
    if typeflag == 0x35:  # '5'
        return path, EntryKind.DIR
    if typeflag == 0x31:  # '1'
        return path, EntryKind.HARDLINK
    if typeflag == 0x32:  # '2'
        return path, EntryKind.SYMLINK
    return path, EntryKind.SPECIAL


def read_layer(raw: BlobReader, *, index: int, label: str, media_type: str | None,
               hash_contents: bool, base_offset: int | None,
               progress: Progress | None = None,
               capture: Capture | None = should_capture,
               limits: ReadLimits | None = None,
               tar_hashers: Sequence[Hasher] = ()) -> list[Entry]:
    """Read one layer blob into entries (tar order).

    Compression is told by magic bytes and must agree with `media_type` when one is given.
    With `base_offset` (a seekable, plain layer) contents are skipped by seeking and each FILE
    records the absolute `offset` of its content, for `fill_digests` later. Files `capture`
    accepts keep their content in `Entry.content`. An empty blob, or one that decompresses to
    nothing, is an empty layer (Go's archive/tar, hence Docker and containerd, read it so); a
    blob cut inside its first header is not a tar. A layer expanding past `limits` is
    LayerTooLarge (see `limits.ReadLimits`). `tar_hashers` are fed every byte of the
    uncompressed tar (not with `base_offset`: a seeking pass does not read every byte).
    """
    limits = limits or ReadLimits()
    head = raw.read(4)
    actual = blob_compression(head, media_type, label)
    on_raw: Callable[[int], None] = progress.read_advanced if progress is not None else uncounted
    if actual == "plain" and limits.max_layer_size is not None:
        on_raw = _size_checked(on_raw, label, limits)
    seekable = base_offset is not None and actual == "plain" and raw.seekable()
    if seekable:
        raw.seek(0)
        chunks = _plain_chunks(raw, on_raw, _SEEK_CHUNK)
    else:
        joined = Joined(head, raw)
        if actual == "plain":
            chunks = _plain_chunks(joined, on_raw, _STREAM_CHUNK)
        else:
            chunks = decompressed_chunks(joined, actual, label, on_raw, limits)
    if tar_hashers:
        if seekable:
            raise ValueError("a seeking pass cannot hash the whole tar")
        chunks = _hashed(chunks, tar_hashers)
    stream = _TarStream(chunks, raw if seekable else None, on_raw)
    entries = _parse(stream, label=label, hash_contents=hash_contents,
                     base_offset=base_offset if seekable else None, capture=capture,
                     scan=compiled_scan())
    if actual != "plain" or tar_hashers:
        for _ in chunks:  # decode to the end: a truncated or corrupt tail is still an error
            pass
    return entries


def compiled_scan() -> Scan | None:
    """The compiled header scan layers are read with: None where it is not built, or when
    IMAGESCOPE_TAR_SCAN=python asks for the Python reader alone (what such an install does)."""
    if _COMPILED is None or os.environ.get("IMAGESCOPE_TAR_SCAN") == "python":
        return None
    return _COMPILED


def _hashed(chunks: Iterator[bytes], hashers: Sequence[Hasher]) -> Iterator[bytes]:
    for chunk in chunks:
        for hasher in hashers:
            hasher.update(chunk)
        yield chunk


def _size_checked(on_raw: Callable[[int], None], label: str,
                  limits: ReadLimits) -> Callable[[int], None]:
    """`on_raw` that also holds a plain layer (read or seeked through) to `max_layer_size`."""
    total = 0

    def advanced(nbytes: int) -> None:
        nonlocal total
        total += nbytes
        limits.check_size(label, total)
        on_raw(nbytes)

    return advanced


_KINDS = tuple(EntryKind)  # by value, for the compiled scan


def _parse(stream: _TarStream, *, label: str, hash_contents: bool,
           base_offset: int | None, capture: Capture | None,
           scan: Scan | None = None) -> list[Entry]:
    """The entries of a layer tar. `scan`, when given, reads the plain headers; the rest, and
    any header it leaves, are read here."""
    entries: list[Entry] = []
    append = entries.append
    take, skip, digest = stream.take, stream.skip, stream.digest
    file_kind, hardlink_kind, symlink_kind = EntryKind.FILE, EntryKind.HARDLINK, EntryKind.SYMLINK
    pax: dict[str, str] = {}
    global_pax: dict[str, str] = {}
    long_name: str | None = None
    long_link: str | None = None
    while True:
        if scan is not None and not pax and not global_pax and long_name is None \
                and long_link is None:
            stream.scan(scan, entries, capture, hash_contents, base_offset)
        header = take(BLOCK)
        if header is None:
            if stream.exhausted():
                return entries  # the end on a header boundary, end-of-archive marker or not
            if stream.pos == 0:
                raise CorruptArchive(f"{label}: layer is not a tar archive (too short)")
            raise CorruptArchive(f"{label}: layer tar is truncated inside a tar header at "
                                 f"offset {stream.pos}")
        if header == _ZERO_BLOCK:
            break
        if not _checksum_ok(header):
            if stream.pos == BLOCK:
                raise CorruptArchive(f"{label}: layer is not a tar archive")
            raise CorruptArchive(f"{label}: corrupt tar header at offset {stream.pos - BLOCK}")
        typeflag = header[156]
        try:
            size = _number(header[124:136])
        except ValueError:
            raise CorruptArchive(f"{label}: corrupt size field at offset {stream.pos - BLOCK}") \
                from None
        meta = {**global_pax, **pax} if global_pax else pax
        if "size" in meta and typeflag not in (0x78, 0x67):
            try:
                size = int(meta["size"])
            except ValueError:
                raise CorruptArchive(f"{label}: corrupt PAX size") from None
        if typeflag in _METADATA_TYPES:  # x, g, L, K carry metadata for the next entry
            if size < 0:
                raise CorruptArchive(f"{label}: negative size in tar header")
            if size > _MAX_METADATA_BYTES:
                raise CorruptArchive(f"{label}: a {chr(typeflag)!r} metadata entry of {size} "
                                     f"bytes at offset {stream.pos - BLOCK}; tar writers make "
                                     "them a few KiB")
            data = take(size)
            if data is None:
                raise CorruptArchive(f"{label}: layer tar is truncated inside a "
                                     f"{chr(typeflag)!r} metadata entry")
            skip(-size % BLOCK)  # padding cut short ends the stream (see _parse)
            if typeflag == 0x78:
                pax = _pax_records(data, label)
            elif typeflag == 0x67:  # only what entries read: every entry copies these
                global_pax.update((k, v) for k, v in _pax_records(data, label).items()
                                  if k in _PAX_KEYS)
            elif typeflag == 0x4C:
                long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            else:
                long_link = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            continue
        link: str | None = long_link  # None: the header's linkname field, read only for a link
        if meta:
            if "path" in meta:
                name = meta["path"].split("\0", 1)[0]  # a filesystem name ends at a NUL
            elif long_name is not None:
                name = long_name
            else:
                name = _header_name(header)
            if "linkpath" in meta:
                link = meta["linkpath"].split("\0", 1)[0]
            pax = {}
        elif long_name is not None:
            name = long_name
        else:
            name = _header_name(header)
        long_name = long_link = None

        if typeflag == 0 and name.endswith("/"):  # (only the pre-POSIX type: '0' is a file)
            typeflag = 0x35
        if typeflag in _HEADER_ONLY_TYPES:
            size = 0  # whatever the size field says: the next header follows this one
        elif size < 0:
            raise CorruptArchive(f"{label}: negative size in tar header")
        padding = -size % BLOCK
        path = normalize_path(name)
        if not path:
            classified = None
        elif WHITEOUT_PREFIX in path:
            classified = _classify(path, typeflag)
        else:  # (what _classify gives a path that is no whiteout)
            classified = path, _KIND_OF_TYPE.get(typeflag, EntryKind.SPECIAL)
        if classified is not None:
            path, kind = classified
            try:
                if meta and ("uid" in meta or "gid" in meta):  # PAX owner records (rare)
                    mode = _number(header[100:108]) & 0o7777
                    uid = int(meta.get("uid") or _number(header[108:116]))
                    gid = int(meta.get("gid") or _number(header[116:124]))
                else:
                    mode, uid, gid = _owner(header[100:124])
            except ValueError:
                raise CorruptArchive(f"{label}: corrupt mode, uid or gid in the tar header at "
                                     f"offset {stream.pos - BLOCK}") from None
            if kind is file_kind:
                entry = Entry(path, kind, size, mode, uid, gid)
                if capture is not None and capture(path, size):
                    data = take(size)
                    if data is None:
                        raise CorruptArchive(f"{label}: layer tar is truncated inside the data of "
                                             f"{path!r}")
                    entry.content = data
                    entry.digest = xxhash.xxh3_128_digest(data)
                    size = 0
                elif hash_contents:
                    entry.digest = digest(size, size + padding)
                    if entry.digest is None:
                        raise CorruptArchive(f"{label}: layer tar is truncated inside the data of "
                                             f"{path!r}")
                    append(entry)  # (a FILE's path is never empty)
                    continue  # its content and padding are consumed
                elif base_offset is not None:
                    entry.offset = base_offset + stream.pos
            else:
                entry = Entry(path, kind, 0, mode, uid, gid)
                if kind is hardlink_kind:
                    entry.link_target = normalize_path(link if link is not None
                                                       else _text(header[157:257]))
                elif kind is symlink_kind:
                    entry.link_target = link if link is not None else _text(header[157:257])
            if path or kind is EntryKind.OPAQUE:
                append(entry)
        if size and not skip(size):
            raise CorruptArchive(f"{label}: layer tar is truncated inside the data of "
                                 f"{path or name!r}")
        if padding:
            skip(padding)  # cut short, it ends the stream: the next header is then no header
    return entries


__all__ = ["BLOCK", "OPAQUE_MARKER", "WHITEOUT_PREFIX", "normalize_path", "read_layer"]
