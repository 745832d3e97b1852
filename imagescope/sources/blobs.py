"""Outer archive tars (indexed by seeking, or walked as a stream) and the layer blobs inside."""

from __future__ import annotations

import dataclasses
import posixpath
import tarfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

from imagescope.cache import Reuse, digests_incomplete
from imagescope.errors import CorruptArchive, MissingBlob, NotAnImage
from imagescope.layers import (
    LimitedReader,
    blob_compression,
    normalize_path,
    read_layer,
    sniff_compression,
)
from imagescope.model import Entry, Layer
from imagescope.progress import Progress
from imagescope.sources.manifests import LayerRef

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

    Each regular file's `file` reads its content and must be used before the next member is
    asked for; what is left unread is skipped. Tar errors surface as tarfile.TarError: wrap the
    whole walk in `tar_errors`.
    """
    with tarfile.open(fileobj=stream, mode="r|", bufsize=_STREAM_BUFFER) as tar:
        for info in tar:
            name = normalize_path(info.name)
            if info.isreg():
                yield StreamMember(name, info.size, tar.extractfile(info), None)
            elif info.issym() or info.islnk():
                yield StreamMember(name, 0, None, _link_target(name, info))
        # tarfile ends quietly when the stream stops at a header: demand a whole last block
        if tar.fileobj.tell() != tar.offset + BLOCK:
            raise tarfile.ReadError("unexpected end of data")


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
                reuse: Reuse | None = None) -> list[Layer]:
    """Read every layer of a plan from seekable blobs, bottom-up.

    A plain blob is walked with seeks: entries record absolute offsets into the file, contents
    are not read (Layer.content_file lets digests be filled later). A compressed blob is
    decompressed in one pass, hashing contents on the way. A blob listed twice is read once.
    With `reuse`, a layer whose diff_id is cached is served from the cache (its offsets rebased
    to this file when the blob is plain) and every layer read is stored; a layer `reuse` does
    not want (a re-read of other layers) is left empty.
    """
    reuse = reuse or Reuse()
    done: dict[tuple[str, int], Layer] = {}
    layers: list[Layer] = []
    for index, ref in enumerate(refs):
        if not reuse.wanted(ref.diff_id):
            layers.append(Layer(index=index, entries=[], digest=ref.digest, diff_id=ref.diff_id,
                                media_type=ref.media_type, stored_bytes=ref.size))
            continue
        with locate(ref) as span:
            if ref.size is not None and ref.size != span.size:
                raise CorruptArchive(f"{_label(index, ref)}: blob is {span.size} bytes but the "
                                     f"manifest says {ref.size}")
            seen = done.get((span.path, span.offset))
            incomplete = False
            if seen is not None:
                entries = [dataclasses.replace(e) for e in seen.entries]
                content_file = seen.content_file
                incomplete = seen.digests_incomplete
            else:
                label = _label(index, ref)
                span.file.seek(span.offset)
                plain = blob_compression(span.file.read(4), ref.media_type, label) == "plain"
                base = span.offset if plain else None
                cached = reuse.lookup(ref.diff_id, offset_base=base)
                if cached is not None:
                    entries = cached
                    incomplete = not plain and digests_incomplete(entries)
                else:
                    entries = _read_span(span, index, label, ref.media_type, plain, progress)
                    reuse.read(ref.diff_id, entries, offset_base=base)
                content_file = span.path if plain else None
            layer = Layer(index=index, entries=entries, digest=ref.digest, diff_id=ref.diff_id,
                          media_type=ref.media_type, stored_bytes=span.size,
                          content_file=content_file, digests_incomplete=incomplete)
            done.setdefault((span.path, span.offset), layer)
            layers.append(layer)
    return layers


def missing_blob(where: str, key: str) -> MissingBlob:
    """The error for a document or layer the manifest names but the source lacks."""
    return MissingBlob(f"{where}: {key} is missing (the manifest references it); the image is "
                       "incomplete — save or copy it again")


def _read_span(span: BlobSpan, index: int, label: str, media_type: str | None, plain: bool,
               progress: Progress) -> list[Entry]:
    span.file.seek(span.offset)
    progress.read_started(label, span.size)
    try:
        raw = cast(BinaryIO, LimitedReader(span.file, span.size))
        return read_layer(raw, index=index, label=label, media_type=media_type,
                          hash_contents=not plain, base_offset=span.offset if plain else None,
                          progress=progress)
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
    "Locate",
    "Member",
    "StreamMember",
    "index_tar",
    "missing_blob",
    "read_layers",
    "resolve_link",
    "tar_errors",
    "walk_stream",
]
