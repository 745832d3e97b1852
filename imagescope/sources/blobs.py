"""Outer archive tars (indexed by seeking, or walked as a stream) and the layer blobs inside."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import os
import pickle
import posixpath
import stat
import tarfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import IO, Any, BinaryIO, cast

from imagescope.errors import CorruptArchive, MissingBlob, NotAnImage
from imagescope.layer.codec import decode_entries, digests_incomplete, encode_entries
from imagescope.layer.compression import blob_compression, decoded, sniff_compression
from imagescope.layer.fileio import HashingReader, LimitedReader, PositionedFile, Readable
from imagescope.layer.tar import normalize_path, read_layer
from imagescope.limits import ReadLimits
from imagescope.model import Entry, Image, Layer
from imagescope.progress import Progress
from imagescope.sources.manifests import LayerRef, Plan, to_image
from imagescope.sources.source import ImageHandle, LayerStore, Reuse
from imagescope.sources.spanhash import Span, identity_of
from imagescope.sources.verify import (
    BlobChecks,
    DeferredBlob,
    DeferredChecks,
    SpanHasher,
    check_digests,
    plan_checks,
)
from imagescope.sources.workers import Readers, start_workers

BLOCK = 512
_STREAM_BUFFER = 1 << 20
_MAX_LINK_HOPS = 16


@dataclass(frozen=True, slots=True)
class Member:
    """A regular file inside an archive: where its content starts and how long it is."""

    name: str
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class StreamMember:
    """A member met while streaming: a regular file (`file` readable now, before the next one)
    or a link to another member (`link`, resolved to an archive path)."""

    name: str
    size: int
    file: IO[bytes] | None
    link: str | None


@dataclass(frozen=True, slots=True)
class BlobSpan:
    """A blob inside a seekable file; `path` is that file (the layer's content_file when plain)."""

    file: BinaryIO
    offset: int
    size: int
    path: str


Locate = Callable[[LayerRef], AbstractContextManager[BlobSpan]]


class NotRegularFile(OSError):
    """A path names a pipe, socket or device: reading it could block forever."""


def open_regular(path: str) -> BinaryIO:
    """Open `path` for reading when it is a regular file (following symlinks), without ever
    blocking on a FIFO. IsADirectoryError for a directory, NotRegularFile for anything else
    that is not a regular file, other OSErrors as `open` raises them."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file (a pipe, socket or device)",
                                 path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def index_tar(file: BinaryIO, where: str) -> dict[str, Member]:
    """Index a seekable tar by walking its headers only (contents are seeked past).

    Names are normalised (`./x` is `x`); symlinks and hardlinks (`docker save` links a layer.tar
    already written for an identical layer) resolve to the member they name. A file that is not
    a tar is NotAnImage; truncation or garbage after the first header is CorruptArchive.
    """
    head = file.read(BLOCK)
    file.seek(0)
    if sniff_compression(head) != "plain":
        raise NotAnImage(f"{where} is a compressed file; decompress it (e.g. gunzip) and "
                         "inspect the .tar")
    if 0 < len(head) < BLOCK and b"\0" in head:  # NUL-padded fields: a tar header, cut short
        raise CorruptArchive(f"{where} is truncated inside its first tar header "
                             f"({len(head)} bytes)")
    members: dict[str, Member] = {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=file, mode="r:") as tar:
            for info in tar:
                _note(info, members, links)
            end = tar.offset
    except tarfile.ReadError as exc:
        if not members and not links:
            raise NotAnImage(f"{where} is not a tar archive ({exc})") from None
        raise CorruptArchive(f"{where} is truncated or corrupt ({exc})") from None
    file.seek(end)
    if file.read(BLOCK) != bytes(BLOCK):
        raise CorruptArchive(f"{where} is truncated or corrupt (no end-of-archive marker after "
                             f"offset {end})")
    for name in links:
        target = resolve_link(name, members, links)
        if target is not None:
            members[name] = dataclasses.replace(members[target], name=name)
    return members


def walk_stream(stream: IO[bytes]) -> Iterator[StreamMember]:
    """Walk a non-seekable tar member by member without holding any member in memory.

    Each regular file's `file` reads its content straight from `stream` (one copy, into the
    reader's buffer) and must be used before the next member is asked for; what is left unread
    is skipped. Headers are ustar, pax (path, linkpath, size) and GNU long names, as Go's
    archive/tar writes them; the archive ends at a zero block, and a stream that stops before
    one is cut short. Tar errors surface as tarfile.TarError: wrap the walk in `tar_errors`.
    """
    header = bytearray(BLOCK)
    pending: dict[str, str] = {}
    while True:
        if _read_exactly(stream, header) < BLOCK:
            raise tarfile.ReadError("unexpected end of data")
        if not any(header):
            return
        info = tarfile.TarInfo.frombuf(bytes(header), "utf-8", "surrogateescape")
        if info.type in _META_TYPES:
            if info.size > _MAX_META_BYTES:
                raise tarfile.ReadError(f"a {info.size}-byte extended header")
            data = bytearray(info.size)
            if _read_exactly(stream, data) < info.size:
                raise tarfile.ReadError("unexpected end of data")
            _skip(stream, -info.size % BLOCK)
            _note_meta(info.type, bytes(data), pending)
            continue
        info.name = pending.pop("path", info.name)
        info.linkname = pending.pop("linkpath", info.linkname)
        size = int(pending.pop("size", info.size))
        pending.clear()
        name = normalize_path(info.name)
        if info.type in _REGULAR_TYPES:
            member = _MemberReader(stream, size)
            yield StreamMember(name, size, io.BufferedReader(member, _STREAM_BUFFER), None)
            _skip(stream, member.remaining + (-size % BLOCK))
            continue
        if info.issym() or info.islnk():
            yield StreamMember(name, 0, None, _link_target(name, info))
        _skip(stream, size + (-size % BLOCK) if info.type not in _NO_DATA_TYPES else 0)


_META_TYPES = frozenset({tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                         tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK})
_REGULAR_TYPES = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE})
# Go's reader, like tarfile, gives links, devices, dirs and fifos no data whatever the size
_NO_DATA_TYPES = frozenset({tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
                            tarfile.DIRTYPE, tarfile.FIFOTYPE})
_MAX_META_BYTES = 1 << 20


def _note_meta(kind: bytes, data: bytes, pending: dict[str, str]) -> None:
    """What an extended header says of the next member: pax records (a global header's
    are not kept), or a GNU long name or link name."""
    if kind == tarfile.GNUTYPE_LONGNAME:
        pending["path"] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        return
    if kind == tarfile.GNUTYPE_LONGLINK:
        pending["linkpath"] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        return
    position = 0
    while position < len(data) and data[position:position + 1] != b"\0":
        space = data.find(b" ", position)
        try:
            length = int(data[position:space])
        except ValueError:
            raise tarfile.ReadError("invalid pax header") from None
        record = data[space + 1:position + length]
        if space < 0 or length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise tarfile.ReadError("invalid pax header")
        key, _, value = record[:-1].partition(b"=")
        if kind != tarfile.XGLTYPE and key in (b"path", b"linkpath", b"size"):
            text = value.decode("utf-8", "surrogateescape")
            if key == b"size" and not text.isdigit():
                raise tarfile.ReadError("invalid pax size")
            pending[key.decode()] = text
        position += length


class _MemberReader(io.RawIOBase):
    """The next `remaining` bytes of a tar stream: a member's content."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        super().__init__()
        self._stream = stream
        self.remaining = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.remaining)
        if count == 0:
            return 0
        got = self._stream.readinto(memoryview(buffer)[:count])  # type: ignore[attr-defined]
        if not got:
            raise tarfile.ReadError("unexpected end of data")
        self.remaining -= got
        return int(got)


def _read_exactly(stream: IO[bytes], buffer: bytearray) -> int:
    """Fill `buffer` from `stream`; fewer bytes only at its end."""
    view, filled = memoryview(buffer), 0
    while filled < len(buffer):
        got = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not got:
            break
        filled += got
    return filled


def _skip(stream: IO[bytes], count: int) -> None:
    scratch = memoryview(bytearray(min(count, _STREAM_BUFFER))) if count else None
    while count:
        assert scratch is not None
        got = stream.readinto(scratch[:min(count, len(scratch))])  # type: ignore[attr-defined]
        if not got:
            raise tarfile.ReadError("unexpected end of data")
        count -= got


@contextmanager
def tar_errors(where: str) -> Iterator[None]:
    """Turn tarfile's errors met while reading `where` into CorruptArchive."""
    try:
        yield
    except tarfile.TarError as exc:
        raise CorruptArchive(f"{where} is truncated or corrupt ({exc})") from None


def resolve_link(name: str, members: Mapping[str, object], links: Mapping[str, str]) -> str | None:
    """The regular member a chain of links ends at, or None when it ends nowhere."""
    for _ in range(_MAX_LINK_HOPS):
        name = links.get(name, name)
        if name in members and name not in links:
            return name
        if name not in links:
            return None
    return None


def read_layers(refs: list[LayerRef], locate: Locate, progress: Progress,
                reuse: Reuse | None = None, limits: ReadLimits | None = None,
                later: DeferredChecks | None = None, readers: Readers | None = None
                ) -> list[Layer]:
    """Read every layer of a plan from seekable blobs, bottom-up.

    A plain blob is walked with seeks: entries record absolute offsets into the file, contents
    are not read (Layer.content_file lets digests be filled later). A compressed blob is
    decompressed in one pass, hashing contents on the way. A blob listed twice is read once.
    With `limits.verify` each blob read is hashed and checked (`plan_checks`): a plain one by
    a thread reading it beside the seeking parser; a compressed one in the pass that decodes
    it, or, the stored bytes of those `later` takes, beside that pass (`DeferredChecks`).
    With `reuse`, a layer the cache holds (`cache_lookup`) is served from it (its offsets
    rebased to this file when the blob is plain) and every layer read is stored under the
    digest it was verified against (`BlobChecks.cache_key`; not at all when unverified), once
    it was: a blob `later` took is stored when `later` settles. A layer `reuse` does not want
    (a re-read of other layers, an identification) is located and left empty.

    Compressed blobs are decoded side by side by `readers` (`_read_all`); whatever fails, the error is the
    one reading the layers in order would meet first.
    """
    reuse = reuse or Reuse()
    limits = limits or ReadLimits()
    readers = readers or Readers()
    # a blob listed twice under the same digests is read once; under others, checked again
    done: dict[tuple[str, int, str | None, str | None], Layer] = {}
    layers: list[Layer] = []
    reads: list[_Read] = []
    copies: list[tuple[Layer, Layer]] = []  # a layer, and the earlier one with its blob
    with ExitStack() as open_spans:
        try:
            for index, ref in enumerate(refs):
                span = open_spans.enter_context(locate(ref))
                if ref.size is not None and ref.size != span.size:
                    raise CorruptArchive(f"{_label(index, ref)}: blob is {span.size} bytes but "
                                         f"the manifest says {ref.size}")
                if not reuse.wanted(ref.diff_id):
                    layers.append(Layer(index=index, entries=[], digest=ref.digest,
                                        diff_id=ref.diff_id, media_type=ref.media_type,
                                        stored_bytes=span.size))
                    continue
                seen = done.get((span.path, span.offset, ref.digest, ref.diff_id))
                incomplete = False
                read: _Read | None = None
                if seen is not None:
                    entries: list[Entry] = []  # copied from `seen` once it is read
                    content_file = seen.content_file
                    incomplete = seen.digests_incomplete
                else:
                    label = _label(index, ref)
                    span.file.seek(span.offset)
                    compression = blob_compression(span.file.read(4), ref.media_type, label)
                    plain = compression == "plain"
                    base = span.offset if plain else None
                    # a re-read for digests also checks a compressed blob's diff_id, so that it
                    # upgrades (or repairs) the entry every source shares
                    checks = plan_checks(ref, plain, limits, tar_too=reuse.only is not None)
                    cached = cache_lookup(reuse, ref, plain, offset_base=base)
                    if cached is not None:
                        entries = cached
                        incomplete = not plain and digests_incomplete(entries)
                    else:
                        entries = []  # filled by the read
                        read = _Read(span, index, label, ref, plain, checks, base)
                        if later is not None and checks.stored and not checks.tar:
                            # (None when over its budget: checked in the pass)
                            read.later = later.take(index, label, Span(
                                span.path, identity_of(span.file.fileno()), span.offset,
                                span.size, tuple(sorted(checks.algorithms()[0]))), checks.stored)
                    content_file = span.path if plain else None
                layer = Layer(index=index, entries=entries, digest=ref.digest,
                              diff_id=ref.diff_id, media_type=ref.media_type,
                              stored_bytes=span.size, content_file=content_file,
                              digests_incomplete=incomplete)
                if read is not None:
                    read.layer = layer
                    reads.append(read)
                elif seen is not None:
                    copies.append((layer, seen))
                done.setdefault((span.path, span.offset, ref.digest, ref.diff_id), layer)
                layers.append(layer)
        except Exception:
            _read_all(reads, progress, limits, reuse, readers)  # the layers below fail first
            raise
        _read_all(reads, progress, limits, reuse, readers,
                  started=later.start if later is not None else _no_checks)
    for layer, seen in copies:
        layer.entries = [dataclasses.replace(e) for e in seen.entries]
    return layers


class SeekableImage(ImageHandle):
    """An image whose documents were resolved to `plan` and whose layer blobs sit in seekable
    files (`locate` finds each): an archive read seekably, an OCI layout."""

    plan: Plan
    kind: str

    def locate(self, ref: LayerRef) -> AbstractContextManager[BlobSpan]:
        """The span of the blob `ref` names; MissingBlob when there is none."""
        raise NotImplementedError

    def identity(self, store: LayerStore | None = None) -> Image:
        return self._image(Reuse.nothing(), None)

    @contextmanager
    def open_layer(self, index: int) -> Iterator[Readable]:
        ref = self.plan.layers[index]
        with self.locate(ref) as span:
            span.file.seek(span.offset)
            yield decoded(LimitedReader(span.file, span.size), ref.media_type,
                          _label(index, ref), self.request.limits)

    def read(self, reuse: Reuse, later: DeferredChecks | None = None) -> Image:
        self.request.progress.status(f"reading {len(self.plan.layers)} layers")
        return self._image(reuse, later)

    def _image(self, reuse: Reuse, later: DeferredChecks | None) -> Image:
        layers = read_layers(self.plan.layers, self.locate, self.request.progress, reuse,
                             self.request.limits, later, self.request.readers)
        return to_image(self.plan, layers, reference=self.reference, source=self.kind)


@dataclass(slots=True)
class _Read:
    """A layer to read from its blob; `layer` receives the entries."""

    span: BlobSpan
    index: int
    label: str
    ref: LayerRef
    plain: bool
    checks: BlobChecks
    base: int | None
    layer: Layer | None = None
    later: DeferredBlob | None = None  # its stored bytes checked beside the read, not in it

    def in_pass(self) -> BlobChecks:
        """The checks made while the blob is read."""
        return self.checks if self.later is None else BlobChecks((), self.checks.tar)

    def entries(self, progress: Progress, limits: ReadLimits, *, own_position: bool = False
                ) -> list[Entry]:
        """Read the blob (through a file position of its own when other readers share the
        file)."""
        span = _own_position(self.span) if own_position else self.span
        return _read_span(span, self.index, self.label, self.ref, self.plain, self.in_pass(),
                          progress, limits)

    def finish(self, entries: list[Entry], reuse: Reuse, encoded: bytes | None = None) -> None:
        """The read gave `entries` (`encoded` by `encode_entries` too, when they came from a
        worker so): count them, and store them now, or once the blob's deferred check matched.
        """
        assert self.layer is not None
        self.layer.entries = entries
        store = reuse.read_later(self.checks.cache_key(self.ref), entries,
                                 offset_base=self.base, encoded=encoded)
        if self.later is None:
            store()
        else:
            self.later.read(store)


def _no_checks() -> None:
    """`started` of a read with no deferred checks to start."""


def _read_all(reads: list[_Read], progress: Progress, limits: ReadLimits, reuse: Reuse,
              readers: Readers, started: Callable[[], None] = _no_checks) -> None:
    """Read the layers of `reads`, storing each in the cache (or handing it to its deferred
    check) in order; the first failure in layer order is raised. `started` is called once the
    reading has begun (with workers: once they are forked).

    Two or more compressed blobs are read side by side, each through its own positioned reads
    of the file, their bytes advancing one progress bar, the largest first (so that no reader
    is left decoding a big layer alone at the end):
    - in forked worker processes (`workers`) where `readers` may fork: they share no GIL,
      and send each layer back in the cache's encoding (stored as is);
    - else on threads (zlib, ISA-L, zstd and hashlib let go of the GIL while they work).
    """
    if readers.count < 2 or sum(1 for read in reads if not read.plain) < 2:
        started()
        for read in reads:
            read.finish(read.entries(progress, limits), reuse)
        return
    shared = SharedProgress(progress, f"{len(reads)} layers",
                             sum(read.span.size for read in reads))
    largest_first = sorted(range(len(reads)), key=lambda p: reads[p].span.size, reverse=True)
    try:
        pool = None
        if readers.may_fork():
            try:
                pool = start_workers(partial(_read_in_worker, reads, limits), largest_first,
                                     readers.count)
            except OSError:  # (no process to spare: threads)
                pass
        if pool is not None:
            with pool:
                started()
                _finish_in_order(reads, reuse, pool.outcomes(shared))
        else:
            started()
            _read_on_threads(reads, largest_first, shared, limits, reuse, readers.count)
    finally:
        shared.finish()


def _read_in_worker(reads: list[_Read], limits: ReadLimits, position: int,
                    progress: Progress) -> bytes:
    """In a worker: the entries of `reads[position]`, in the cache's encoding (b"C"), or
    pickled (b"P") when it cannot hold them (a number beyond 64 bits)."""
    read = reads[position]
    entries = read.entries(progress, limits, own_position=True)
    try:
        return b"C" + encode_entries(entries, read.base)
    except (OverflowError, TypeError, ValueError):
        return b"P" + pickle.dumps(entries)


def _finish_in_order(reads: list[_Read], reuse: Reuse,
                     outcomes: Iterator[tuple[int, bytes | BaseException]]) -> None:
    """Decode each worker's result as it arrives; finish the reads in layer order, raising
    the first failure in that order (the workers are stopped then)."""
    ready: dict[int, tuple[list[Entry], bytes | None] | BaseException] = {}
    position = 0
    for done, outcome in outcomes:
        if isinstance(outcome, BaseException):
            ready[done] = outcome
        elif outcome[:1] == b"C":
            encoded = outcome[1:]
            ready[done] = decode_entries(encoded, reads[done].base), encoded
        else:
            ready[done] = pickle.loads(outcome[1:]), None
        while position in ready:
            result = ready.pop(position)
            if isinstance(result, BaseException):
                raise result
            reads[position].finish(result[0], reuse, result[1])
            position += 1


def _read_on_threads(reads: list[_Read], largest_first: list[int], shared: SharedProgress,
                     limits: ReadLimits, reuse: Reuse, count: int) -> None:
    """`_read_all` on up to `count` threads."""
    from concurrent.futures import ThreadPoolExecutor  # (it imports logging: 7 ms a run)

    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="imagescope-read") as pool:
        submitted = {position: pool.submit(reads[position].entries, shared, limits,
                                           own_position=True)
                     for position in largest_first}
        futures = [submitted[position] for position in range(len(reads))]
        try:
            for read, future in zip(reads, futures, strict=True):
                read.finish(future.result(), reuse)
        except BaseException:
            shared.cancelled = True  # the other reads stop at their next chunk
            for future in futures:
                future.cancel()
            raise


class Cancelled(Exception):
    """Stops a layer read whose result is no longer wanted (another one failed first)."""


class SharedProgress(Progress):
    """One bar for layers read side by side: each adds its stored bytes read."""

    def __init__(self, progress: Progress, label: str, total_bytes: int) -> None:
        self._progress = progress
        self.cancelled = False
        progress.read_started(label, total_bytes)

    def read_started(self, label: str, total_bytes: int | None) -> None:
        """One layer starting: the shared bar already counts it."""

    def read_advanced(self, nbytes: int) -> None:
        if self.cancelled:
            raise Cancelled
        self._progress.read_advanced(nbytes)

    def read_finished(self) -> None:
        """One layer done: the bar ends with `finish`."""

    def finish(self) -> None:
        self._progress.read_finished()


def _own_position(span: BlobSpan) -> BlobSpan:
    """`span` read through a position of its own (`PositionedFile`)."""
    return dataclasses.replace(span, file=cast(BinaryIO, PositionedFile(span.file)))


def cache_lookup(reuse: Reuse, ref: LayerRef, plain: bool, *,
                 offset_base: int | None = None) -> list[Entry] | None:
    """The cached analysis of a layer: a compressed blob's under its own digest first, then
    any under the diff_id.

    Every entry was verified against its key when stored (`BlobChecks.cache_key`), so a hit
    needs no verification, with or without `--no-verify`. An entry under a diff_id serves every
    compression of the layer (without content digests when a seeking pass made it: that is why
    a compressed blob's own entry comes first).
    """
    keys = [ref.diff_id] if plain else [ref.digest, ref.diff_id]
    for key in dict.fromkeys(k for k in keys if k is not None):
        entries = reuse.lookup(key, offset_base=offset_base)
        if entries is not None:
            return entries
    return None


def missing_blob(where: str, key: str) -> MissingBlob:
    """The error for a document or layer the manifest names but the source lacks."""
    return MissingBlob(f"{where}: {key} is missing (the manifest references it); the image is "
                       "incomplete — save or copy it again")


def _read_span(span: BlobSpan, index: int, label: str, ref: LayerRef, plain: bool,
               checks: BlobChecks, progress: Progress, limits: ReadLimits) -> list[Entry]:
    """Entries of one blob, verified by `checks`."""
    stored_algorithms, tar_algorithms = checks.algorithms()
    span.file.seek(span.offset)
    progress.read_started(label, span.size)
    try:
        raw = cast(BinaryIO, LimitedReader(span.file, span.size))
        if not checks.stored and not checks.tar:
            return read_layer(raw, index=index, label=label, media_type=ref.media_type,
                              hash_contents=not plain,
                              base_offset=span.offset if plain else None,
                              progress=progress, limits=limits)
        if not plain:
            hashing = HashingReader(raw, stored_algorithms)
            tar_hashers = {name: hashlib.new(name) for name in sorted(tar_algorithms)}
            entries = read_layer(cast(BinaryIO, hashing), index=index, label=label,
                                 media_type=ref.media_type, hash_contents=True,
                                 base_offset=None, progress=progress, limits=limits,
                                 tar_hashers=list(tar_hashers.values()))
            check_digests(label, checks.stored, hashing.finish())
            check_digests(label, checks.tar,
                          {name: hasher.hexdigest() for name, hasher in tar_hashers.items()},
                          what="decompressed tar")
            return entries
        hasher = SpanHasher(span.file.fileno(), span.offset, span.size, stored_algorithms)
        try:
            entries = read_layer(raw, index=index, label=label, media_type=ref.media_type,
                                 hash_contents=False, base_offset=span.offset,
                                 progress=progress, limits=limits)
        except BaseException:
            hasher.cancel()
            raise
        check_digests(label, checks.stored, hasher.result(label))
        return entries
    finally:
        progress.read_finished()


def _label(index: int, ref: LayerRef) -> str:
    digest = ref.digest or ref.diff_id
    return f"layer {index} ({digest[:19]})" if digest else f"layer {index}"


def _note(info: tarfile.TarInfo, members: dict[str, Member], links: dict[str, str]) -> None:
    name = normalize_path(info.name)
    if info.isreg():
        members[name] = Member(name, info.offset_data, info.size)
    elif info.issym() or info.islnk():
        links[name] = _link_target(name, info)


def _link_target(name: str, info: tarfile.TarInfo) -> str:
    """A symlink's target is relative to its directory; a hardlink's names an archive path."""
    if info.issym() and not info.linkname.startswith("/"):
        return normalize_path(posixpath.join(posixpath.dirname(name), info.linkname))
    return normalize_path(info.linkname)


__all__ = [
    "BlobSpan",
    "Cancelled",
    "Locate",
    "Member",
    "NotRegularFile",
    "SharedProgress",
    "StreamMember",
    "cache_lookup",
    "index_tar",
    "missing_blob",
    "open_regular",
    "read_layers",
    "resolve_link",
    "tar_errors",
    "walk_stream",
]
