"""Images read straight from a registry (`docker://HOST/REPO:TAG`), without an engine.

The manifest (or index) the name points at is resolved as an OCI layout's index.json would
be, through `manifests.oci_plan`, from documents fetched on demand: the platform picked
through an index, each document checked against its digest. Each layer blob is then streamed
through the layer reader, its digest and diff_id hashed on the way (as containerd checks on
unpack); nothing is written to disk but the verified analysis in the layer cache. A layer the
cache holds, or one this request already read for another image, is not fetched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from imagescope.errors import CorruptArchive, DigestMismatch, UnsupportedMediaType
from imagescope.layer.codec import digests_incomplete
from imagescope.layer.compression import blob_compression, decoded
from imagescope.layer.digests import Digest, blob_path
from imagescope.layer.fileio import HashingReader, Readable, uncounted
from imagescope.model import Entry, Image, Layer
from imagescope.progress import Progress
from imagescope.sources.blobs import SharedProgress, cache_lookup
from imagescope.sources.credentials import find_credentials
from imagescope.sources.distribution import RegistryClient
from imagescope.sources.manifests import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    LayerRef,
    Plan,
    oci_plan,
    to_image,
    verifying,
)
from imagescope.sources.refs import REGISTRY, RegistryName, SourceRef
from imagescope.sources.source import ImageHandle, LayerStore, ReadStats, Request, Reuse
from imagescope.sources.stream import read_member
from imagescope.sources.verify import HASH_ALGORITHMS, DeferredChecks, check_digests, plan_checks

_BUFFER = 1 << 20
_MAX_FETCHES = 4  # layer blobs fetched side by side (skopeo and containerd fetch 3-6)
_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v1+prettyjws")


class RegistrySource:
    """Resolves `docker://` references: connects, authenticates, reads the documents."""

    def resolve(self, ref: SourceRef, reference: str, request: Request) -> RegistryImage:
        name = RegistryName.parse(ref.location)
        access = request.registry
        client = RegistryClient(name, find_credentials(name.host, access.creds),
                                access.ca_cert, access.insecure, access.policy)
        try:
            request.progress.status(f"resolving {name} in its registry")
            client.connect()
            plan = _plan(client, name, request)
        except BaseException:
            client.close()
            raise
        return RegistryImage(reference, request, client, name, plan)


class RegistryImage(ImageHandle):
    """One image of a registry: its plan resolved, its layer blobs fetched when read."""

    def __init__(self, reference: str, request: Request, client: RegistryClient,
                 name: RegistryName, plan: Plan) -> None:
        super().__init__(reference, request)
        self.client = client
        self.name = name
        self.plan = plan
        self._reported = 0

    def identity(self, store: LayerStore | None = None) -> Image:
        layers = [Layer(index=i, entries=[], digest=ref.digest, diff_id=ref.diff_id,
                        media_type=ref.media_type, stored_bytes=ref.size)
                  for i, ref in enumerate(self.plan.layers)]
        return self._image(layers)

    def count_in(self, stats: ReadStats) -> None:
        self._note_fetches(stats)

    def read(self, reuse: Reuse, later: DeferredChecks | None = None) -> Image:
        self.request.progress.status(f"reading {len(self.plan.layers)} layers of {self.name}")
        layers: list[Layer] = []
        done: dict[tuple[str | None, str | None], Layer] = {}
        copies: list[tuple[Layer, Layer]] = []  # a layer, and the earlier one of the same blob
        fetches: list[tuple[Layer, LayerRef]] = []
        try:
            for index, ref in enumerate(self.plan.layers):
                layer = Layer(index=index, entries=[], digest=ref.digest, diff_id=ref.diff_id,
                              media_type=ref.media_type, stored_bytes=ref.size)
                layers.append(layer)
                if not reuse.wanted(ref.diff_id):
                    continue
                seen = done.get((ref.digest, ref.diff_id))
                if seen is not None:
                    copies.append((layer, seen))
                    continue
                done[(ref.digest, ref.diff_id)] = layer
                cached = cache_lookup(reuse, ref, plain=False)
                if cached is not None:
                    layer.entries = cached
                    layer.digests_incomplete = digests_incomplete(cached)
                    continue
                shared = self._shared(ref) if reuse.only is None else None
                if shared is not None:
                    layer.entries = [dataclasses.replace(e) for e in shared]
                    reuse.stats.layers_shared += 1
                    continue
                fetches.append((layer, ref))
            self._fetch_all(fetches, reuse)
        finally:
            self._note_fetches(reuse.stats)
        for layer, seen in copies:  # the same blob twice: each layer its own entries
            layer.entries = [dataclasses.replace(e) for e in seen.entries]
            layer.digests_incomplete = seen.digests_incomplete
        return self._image(layers)

    @contextmanager
    def open_layer(self, index: int) -> Iterator[Readable]:
        ref = self.plan.layers[index]
        assert ref.digest is not None
        with self.client.open_blob(ref.digest, ref.size, "layer", uncounted) as stream:
            yield decoded(io.BufferedReader(stream, _BUFFER), ref.media_type,
                          f"{self.name}: layer {index}", self.request.limits)

    def _fetch_all(self, fetches: list[tuple[Layer, LayerRef]], reuse: Reuse) -> None:
        """Fetch and read `fetches`: side by side on `readers.count` threads (the network,
        inflate and hashlib all let go of the GIL) under one progress bar, or one by one
        with a bar each; stored in layer order, the first failure in that order raised."""
        progress = self.request.progress
        count = min(self.request.readers.count, _MAX_FETCHES, len(fetches))
        if count < 2:
            for layer, ref in fetches:
                self._store(layer, ref, self._fetch(layer.index, ref, progress), reuse)
            return
        from concurrent.futures import ThreadPoolExecutor

        shared = SharedProgress(progress, f"{len(fetches)} layers of {self.name}",
                                sum(ref.size or 0 for _, ref in fetches))
        try:
            with ThreadPoolExecutor(max_workers=count,
                                    thread_name_prefix="imagescope-fetch") as pool:
                largest_first = sorted(fetches, key=lambda item: item[1].size or 0,
                                       reverse=True)
                submitted = {id(layer): pool.submit(self._fetch, layer.index, ref, shared)
                             for layer, ref in largest_first}
                try:
                    for layer, ref in fetches:
                        self._store(layer, ref, submitted[id(layer)].result(), reuse)
                except BaseException:
                    shared.cancelled = True  # the other fetches stop at their next chunk
                    for future in submitted.values():
                        future.cancel()
                    raise
        finally:
            shared.finish()

    def _store(self, layer: Layer, ref: LayerRef, fetched: tuple[list[Entry], str | None],
               reuse: Reuse) -> None:
        """A layer fetched and verified: its entries, counted, cached under the digest they
        were verified against, and kept for this request's other images."""
        entries, key = fetched
        layer.entries = entries
        reuse.read(key, entries)
        if key is not None:
            self.request.run_layers[key] = entries

    def close(self) -> None:
        self.client.close()
        super().close()

    def _image(self, layers: list[Layer]) -> Image:
        image = to_image(self.plan, layers, reference=self.reference, source=REGISTRY)
        if self.plan.manifest_digest is not None:
            image.repo_digest = (f"{self.name.host}/{self.name.repository}"
                                 f"@{self.plan.manifest_digest}")
        return image

    def _shared(self, ref: LayerRef) -> list[Entry] | None:
        for key in (ref.diff_id, ref.digest):
            if key is not None and key in self.request.run_layers:
                return self.request.run_layers[key]
        return None

    def _fetch(self, index: int, ref: LayerRef, progress: Progress
               ) -> tuple[list[Entry], str | None]:
        """Stream one layer blob through the reader, verified as it passes: its entries, and
        the digest they may be cached under (None: unverified)."""
        assert ref.digest is not None
        limits = self.request.limits
        label = f"{self.name}: layer {index} ({ref.digest[:19]}…)"
        progress.read_started(label, ref.size)
        wanted = {digest.partition(":")[0] for digest in (ref.digest, ref.diff_id)
                  if digest} & HASH_ALGORITHMS if limits.verify else set()
        try:
            with self.client.open_blob(ref.digest, ref.size, "layer",
                                       progress.read_advanced) as stream:
                hashing = HashingReader(stream, wanted)  # the stored bytes, as they arrive
                file = cast(io.BufferedReader, io.BufferedReader(hashing, _BUFFER))
                compression = blob_compression(file.peek(4)[:4], ref.media_type, label)
                checks = plan_checks(ref, compression == "plain", limits, tar_too=True)
                try:
                    streamed = read_member(
                        file, ref.size or 0, label=label, index=index, limits=limits,
                        tar_too=True, media_type=ref.media_type, algorithms=(),
                        tar_algorithm=min(checks.algorithms()[1], default="sha256"))
                except CorruptArchive:
                    # bytes that do not decode: when they are not the blob named either, say so
                    while file.read(_BUFFER):
                        pass
                    check_digests(label, checks.stored, hashing.finish())
                    raise
                while file.read(_BUFFER):  # what the tar reader left: its padding
                    pass
                hashes = hashing.finish()
                fetched = stream.position
        finally:
            progress.read_finished()
        if ref.size is not None and fetched != ref.size:
            raise CorruptArchive(f"{label}: the registry sent {fetched:,} bytes, the manifest "
                                 f"says {ref.size:,}")
        check_digests(label, checks.stored, hashes)
        check_digests(label, checks.tar, streamed.tar_hashes, what="decompressed tar")
        return streamed.entries, checks.cache_key(ref)

    def _note_fetches(self, stats: ReadStats) -> None:
        for fetch in self.client.fetched[self._reported:]:
            stats.fetched.append(fetch.line())
            stats.fetched_bytes += fetch.size
        self._reported = len(self.client.fetched)


def _plan(client: RegistryClient, name: RegistryName, request: Request) -> Plan:
    """The manifest `name` points at, resolved (through an index: to the platform asked for)
    to one image's plan, every document fetched checked against its digest."""
    where = str(name)
    top, content_type = client.manifest(name.reference, "manifest")
    media_type = _declared_type(top, content_type)
    if media_type in _SCHEMA1:
        raise UnsupportedMediaType(f"{where} is a Docker schema 1 manifest (deprecated since "
                                   "2017; push it again with a current client)")
    if media_type not in INDEX_TYPES | MANIFEST_TYPES:
        raise UnsupportedMediaType(f"{where}: the manifest has media type {media_type!r}, "
                                   "not an image manifest or index")
    asked = Digest.parse(name.digest) if name.digest else None
    algorithm = asked.algorithm if asked is not None and asked.verifiable else "sha256"
    top_digest = f"{algorithm}:{hashlib.new(algorithm, top).hexdigest()}"
    if name.digest is not None and top_digest != name.digest and request.limits.verify:
        raise DigestMismatch(f"{where}: the registry sent a manifest that does not match the "
                             "digest asked for (--no-verify skips this check)")
    if name.digest is not None:
        top_digest = name.digest
    documents = {blob_path(top_digest): top}
    manifests = {top_digest}

    def read(key: str) -> bytes:
        if key in documents:
            return documents[key]
        digest = Digest.of_path(key)
        if digest is None:
            raise CorruptArchive(f"{where}: {key!r} is not a digest")
        text = str(digest)
        if text in manifests:
            data, _ = client.manifest(text, "manifest")
        else:
            data = client.blob_bytes(text, "config")
        manifests.update(_listed_manifests(data))
        documents[key] = data
        return data

    manifests.update(_listed_manifests(top))
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": media_type, "digest": top_digest, "size": len(top)}]}).encode()
    return oci_plan(index, verifying(read) if request.limits.verify else read, selector=None,
                    wanted=request.platform, where=where,
                    how_to_pick="name one by digest (docker://…@sha256:…) or use --platform")


def _declared_type(document: bytes, content_type: str | None) -> str | None:
    """The media type a manifest declares, else the one it was served as."""
    try:
        declared = json.loads(document).get("mediaType")
    except (ValueError, AttributeError):
        declared = None
    if isinstance(declared, str) and declared:
        return declared
    return content_type.split(";")[0].strip() if content_type else None


def _listed_manifests(document: bytes) -> set[str]:
    """The digests an index lists (manifests, fetched from /manifests/, not /blobs/)."""
    try:
        listed: Any = json.loads(document).get("manifests")
    except (ValueError, AttributeError):
        return set()
    return {item["digest"] for item in listed if isinstance(item, dict)
            and isinstance(item.get("digest"), str)} if isinstance(listed, list) else set()


SOURCE = RegistrySource()

__all__ = ["SOURCE", "RegistryImage", "RegistrySource"]