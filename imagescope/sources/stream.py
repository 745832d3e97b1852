"""An image archive read as one tar stream, front to back: what the engine's `docker save`
streams, and archives that cannot be read seekably (gzip- or zstd-compressed `docker save` and
OCI archives). JSON documents are kept, layers parsed as they pass (legacy archives put
manifest.json last), then manifest.json or index.json orders them."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, cast

from imagescope.errors import NotAnImage
from imagescope.layer.codec import digests_incomplete
from imagescope.layer.compression import sniff_compression
from imagescope.layer.fileio import ChunkReader, HashingReader, Readable, uncounted
from imagescope.layer.tar import read_layer
from imagescope.limits import ReadLimits
from imagescope.model import Entry, Image, Layer
from imagescope.progress import Progress
from imagescope.sources.blobs import missing_blob, resolve_link, tar_errors, walk_stream
from imagescope.sources.manifests import (
    MAX_DOCUMENT_BYTES,
    LayerRef,
    Plan,
    Platform,
    docker_plan,
    oci_plan,
    to_image,
    verifying,
)
from imagescope.sources.source import Reuse
from imagescope.sources.verify import check_digests, plan_checks

MANIFEST_JSON = "manifest.json"
INDEX_JSON = "index.json"
_DOCUMENTS = frozenset({MANIFEST_JSON, INDEX_JSON, "repositories", "oci-layout"})
_STREAM_HASH = "sha256"  # the engine names blobs by sha256; manifest.json comes last


@dataclass(slots=True)
class StreamedLayer:
    """A layer member parsed as it passed: its entries, stored size and compression, and the
    hex digests of its stored bytes and of its decompressed tar (empty when not verified)."""

    entries: list[Entry]
    size: int
    compression: str
    hashes: dict[str, str] = dataclasses.field(default_factory=dict)
    tar_hashes: dict[str, str] = dataclasses.field(default_factory=dict)
    vouched: bool = False  # the source checked it against its diff_id as it sent it


@dataclass(slots=True)
class Saved:
    """What a streamed archive left: small JSON documents, layers parsed as they passed."""

    documents: dict[str, bytes] = dataclasses.field(default_factory=dict)
    layers: dict[str, StreamedLayer] = dataclasses.field(default_factory=dict)
    links: dict[str, str] = dataclasses.field(default_factory=dict)
    # layers passed over unparsed (their analysis is cached): member → (diff_id expected, size)
    drained: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)


class UnservedLayer(Exception):
    """A layer was drained on the expectation that it is a layer the cache holds, and
    manifest.json says it is another."""


def assemble(saved: Saved, *, where: str, reference: str, source_kind: str,
             platform: Platform | None, selector: str | None = None,
             how_to_pick: str = "name the image by ID", reuse: Reuse | None = None,
             served: Mapping[str, list[Entry]] | None = None,
             limits: ReadLimits | None = None) -> tuple[Image, Plan]:
    """The image from what the stream left: manifest.json (a `docker save` archive), else
    index.json (an OCI archive), orders the layers parsed on the way.

    Layers drained unparsed take their entries from `served` (diff_id → cached entries);
    layers parsed are verified (per `limits`), counted and stored in `reuse`'s cache. A
    member drained on a wrong guess is UnservedLayer: stream again without skipping.
    """
    reuse = reuse or Reuse()
    limits = limits or ReadLimits()
    plan = plan_of(saved, where=where, platform=platform, selector=selector,
                   how_to_pick=how_to_pick, verify=limits.verify)
    layers = _layers(plan, saved, where, reuse, served or {}, limits)
    return to_image(plan, layers, reference=reference, source=source_kind), plan


def plan_of(saved: Saved, *, where: str, platform: Platform | None, selector: str | None,
            how_to_pick: str, verify: bool) -> Plan:
    """The plan manifest.json (a `docker save` archive), else index.json (an OCI archive),
    makes of what the stream left."""
    read = verifying(_reader(saved, where)) if verify else _reader(saved, where)
    if MANIFEST_JSON in saved.documents:
        plan = docker_plan(read(MANIFEST_JSON), read, selector=selector, wanted=platform,
                           where=where, oci_index=saved.documents.get(INDEX_JSON),
                           how_to_pick=how_to_pick)
    elif INDEX_JSON in saved.documents:
        plan = oci_plan(read(INDEX_JSON), read, selector=selector, wanted=platform, where=where,
                        how_to_pick=how_to_pick)
    else:
        raise NotAnImage(f"{where} is a tar but not an image archive (no manifest.json nor "
                         "index.json)")
    return plan


@contextmanager
def streamed_member(chunks: Iterator[bytes], key: str, links: Mapping[str, str], *,
                    where: str) -> Iterator[Readable]:
    """The content of member `key` (or of the member its chain of `links` ends at) of an
    archive streamed again as `chunks`; MissingBlob when it is not there."""
    name = key
    for _ in range(len(links)):
        if name not in links:
            break
        name = links[name]
    reader = ChunkReader(chunks, uncounted)
    try:
        with tar_errors(where):
            for member in walk_stream(cast(IO[bytes], reader)):
                if member.name == name and member.file is not None:
                    yield member.file
                    return
        raise missing_blob(where, key)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def read_stream(chunks: Iterator[bytes], *, name: str, size: Any,
                progress: Progress, skip: Mapping[str, str] | None = None,
                limits: ReadLimits | None = None, tar_too: bool = False,
                where: str | None = None, counted: bool = False,
                layers_wanted: bool = True, vouched: bool = False) -> Saved:
    """Walk an image archive's tar stream once, keeping JSON documents and parsing layers as
    they pass. `name` labels the layers and the progress, `where` (default: `name`) the errors;
    `counted` says the chunks' bytes were already counted to `progress` (decompressed ones);
    without `layers_wanted` only the documents are kept (layers pass unread).

    Layer members named in `skip` (member → diff_id) are drained unparsed. With
    `limits.verify` every layer parsed is hashed (sha256) as it passes, and with `tar_too` a
    compressed layer's decompressed tar as well, for `_layers` to check. With `vouched` the
    source checks each layer against its diff_id as it sends it (an error breaks the stream):
    layers are not hashed again, and their analyses are stored under their diff_ids.
    """
    saved = Saved()
    skip = skip or {}
    limits = limits or ReadLimits()
    progress.read_started(name, size if isinstance(size, int) and size > 0 else None)
    reader = ChunkReader(chunks, uncounted if counted else progress.read_advanced)
    layer_limits = dataclasses.replace(limits, verify=False) if vouched else limits
    try:
        with tar_errors(where or name):
            for member in walk_stream(cast(IO[bytes], reader)):
                if member.link is not None:
                    saved.links[member.name] = member.link
                elif member.file is not None:
                    file = cast(io.BufferedReader, member.file)
                    if _is_document(member.name, member.size, file):
                        saved.documents[member.name] = file.read()
                    elif not layers_wanted:
                        continue
                    elif _is_layer(member.name) and member.name in skip:
                        saved.drained[member.name] = (skip[member.name], member.size)
                    elif _is_layer(member.name):
                        layer = read_member(file, member.size, label=f"{name}: {member.name}",
                                            index=len(saved.layers), limits=layer_limits,
                                            tar_too=tar_too)
                        layer.vouched = vouched
                        saved.layers[member.name] = layer
        reader.drain()  # the padding after the end-of-archive marker
    finally:
        progress.read_finished()
        close = getattr(chunks, "close", None)  # a generator holds the HTTP response open
        if close is not None:
            close()
    return saved


def read_member(file: io.BufferedReader, size: int, *, label: str, index: int,
                limits: ReadLimits, tar_too: bool, media_type: str | None = None,
                algorithms: tuple[str, ...] = (_STREAM_HASH,),
                tar_algorithm: str = _STREAM_HASH) -> StreamedLayer:
    """Parse one layer blob read front to back, hashing it (when verifying) in the same pass:
    its stored bytes with `algorithms`, to its end; with `tar_too` a compressed blob's
    decompressed tar with `tar_algorithm`."""
    compression = sniff_compression(file.peek(4)[:4])
    if not limits.verify:
        entries = read_layer(file, index=index, label=label, media_type=media_type,
                             hash_contents=True, base_offset=None, limits=limits)
        return StreamedLayer(entries, size, compression)
    hashing = HashingReader(file, algorithms)
    tar_hasher = hashlib.new(tar_algorithm)
    hash_tar = tar_too and compression != "plain"
    entries = read_layer(cast(io.BufferedReader, hashing), index=index, label=label,
                         media_type=media_type, hash_contents=True, base_offset=None,
                         limits=limits,
                         tar_hashers=[tar_hasher] if hash_tar else [])
    return StreamedLayer(entries, size, compression, hashing.finish(),
                         {tar_algorithm: tar_hasher.hexdigest()} if hash_tar else {})


def _is_document(name: str, size: int, file: io.BufferedReader) -> bool:
    """Small JSON worth keeping: the archive's own files, configs, blobs that open with `{`."""
    if size > MAX_DOCUMENT_BYTES:
        return False
    if name in _DOCUMENTS or ("/" not in name and name.endswith(".json")):
        return True
    return name.startswith("blobs/") and file.peek(1)[:1] == b"{"


def _is_layer(name: str) -> bool:
    return name == "layer.tar" or name.endswith("/layer.tar") or name.startswith("blobs/")


def _reader(saved: Saved, where: str) -> Callable[[str], bytes]:
    def read(key: str) -> bytes:
        target = resolve_link(key, saved.documents, saved.links)
        if target is None:
            raise missing_blob(where, key)
        return saved.documents[target]

    return read


def _layers(plan: Plan, saved: Saved, where: str, reuse: Reuse,
            served: Mapping[str, list[Entry]], limits: ReadLimits) -> list[Layer]:
    layers: list[Layer] = []
    used: dict[str, list[Entry]] = {}
    handed: set[int] = set()
    for index, ref in enumerate(plan.layers):
        if not reuse.wanted(ref.diff_id):  # a re-read of other layers: this one is not needed
            layers.append(Layer(index=index, entries=[], digest=ref.digest, diff_id=ref.diff_id,
                                media_type=ref.media_type))
            continue
        key = (resolve_link(ref.key, saved.layers, saved.links)
               or resolve_link(ref.key, saved.drained, saved.links)
               or _parse_kept(ref, saved, where, limits, tar_too=reuse.only is not None))
        streamed = saved.layers.get(key)
        checks = None
        if streamed is not None:  # parsed as it passed: check it against what names it
            checks = plan_checks(ref, streamed.compression == "plain", limits,
                                 tar_too=bool(streamed.tar_hashes), vouched=streamed.vouched)
            label = f"{where}: layer {index} ({key})"
            check_digests(label, checks.stored, streamed.hashes)
            check_digests(label, checks.tar, streamed.tar_hashes, what="decompressed tar")
        if key in used:  # the same blob twice: give each layer its own entries
            entries = [dataclasses.replace(e) for e in used[key]]
        elif key in saved.drained:
            expected = saved.drained[key][0]
            cached = served.get(expected) if expected == ref.diff_id else None
            if cached is None:
                raise UnservedLayer(key)
            entries = [dataclasses.replace(e) for e in cached] if id(cached) in handed else cached
            handed.add(id(cached))
            reuse.stats.layers_from_cache += 1
        else:
            assert streamed is not None and checks is not None
            entries = streamed.entries
            reuse.read(checks.cache_key(ref), entries)
        drained = key in saved.drained
        size = saved.drained[key][1] if drained else saved.layers[key].size
        used.setdefault(key, entries)
        layers.append(Layer(index=index, entries=entries, digest=ref.digest, diff_id=ref.diff_id,
                            media_type=ref.media_type, stored_bytes=size,
                            digests_incomplete=drained and digests_incomplete(entries)))
    return layers


def _parse_kept(ref: LayerRef, saved: Saved, where: str, limits: ReadLimits, *,
                tar_too: bool) -> str:
    """A layer blob that opened with `{` was kept as a document: parse it now."""
    key = resolve_link(ref.key, saved.documents, saved.links)
    if key is None:
        raise missing_blob(where, ref.key)
    data = saved.documents[key]
    with io.BytesIO(data) as file:
        saved.layers[key] = read_member(cast(io.BufferedReader, io.BufferedReader(file)),
                                         len(data), label=f"{where}: {key}", index=0,
                                         limits=limits, tar_too=tar_too,
                                         media_type=ref.media_type)
    return key


__all__ = ["Saved", "StreamedLayer", "UnservedLayer", "assemble", "read_member", "read_stream"]


class StreamedLayers:
    """Layer tars of an archive that can only be streamed (the engine's `docker save`, a
    compressed archive): a first pass reads its documents for the plan (once), each layer
    asked for is another pass, up to its member."""

    def __init__(self, stream: Callable[[], Iterator[bytes]], *, where: str,
                 platform: Platform | None, selector: str | None, limits: ReadLimits) -> None:
        self._stream = stream
        self._where = where
        self._platform = platform
        self._selector = selector
        self._limits = limits
        self._found: tuple[Plan, dict[str, str]] | None = None

    @contextmanager
    def open_layer(self, index: int) -> Iterator[Readable]:
        from imagescope.layer.compression import decoded

        if self._found is None:
            saved = read_stream(self._stream(), name=self._where, size=None, progress=Progress(),
                                where=self._where, counted=True, layers_wanted=False)
            self._found = plan_of(saved, where=self._where, platform=self._platform,
                                  selector=self._selector, how_to_pick="name the image by ID",
                                  verify=self._limits.verify), saved.links
        plan, links = self._found
        ref = plan.layers[index]
        with streamed_member(self._stream(), ref.key, links, where=self._where) as member:
            yield decoded(member, ref.media_type, f"{self._where}: layer {index}", self._limits)
