"""The local Docker engine through the Docker SDK: pull policy, then a streamed `docker save`."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import http.client
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import docker
import docker.errors
import docker.models.images
import requests
import urllib3.exceptions

from imagescope.errors import (
    CorruptArchive,
    EngineError,
    EngineUnreachable,
    ImageNotFound,
    ImagescopeError,
    PlatformNotFound,
    PullFailed,
)
from imagescope.layer.codec import digests_incomplete
from imagescope.layer.fileio import Readable
from imagescope.limits import ReadLimits
from imagescope.model import Entry, Image, Layer
from imagescope.progress import Progress
from imagescope.sources.blobs import resolve_link
from imagescope.sources.manifests import (
    LayerRef,
    Plan,
    Platform,
    parse_json,
    to_image,
)
from imagescope.sources.prefetch import Prefetched
from imagescope.sources.refs import ENGINE, SourceRef, familiar, is_image_id, split_tag
from imagescope.sources.source import (
    ImageHandle,
    LayerStore,
    ReadStats,
    Request,
    Reuse,
    SavedImage,
    SavedLayer,
)
from imagescope.sources.stream import (
    MANIFEST_JSON,
    Saved,
    StreamedLayers,
    UnservedLayer,
    assemble,
    read_stream,
)
from imagescope.sources.verify import DeferredChecks

_CHUNK = 1 << 20
_DOCUMENTS = frozenset({"manifest.json", "index.json", "repositories", "oci-layout"})
# image.save() streams from urllib3 directly: a connection dropped mid-stream raises urllib3's
# own errors, not requests'
_SDK_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException,
               urllib3.exceptions.HTTPError, OSError)
# what registries and the engine say when a pull needs credentials
_CREDENTIALS_WANTED = ("no basic auth credentials", "unauthorized", "authentication required",
                       "requested access to the resource is denied")
_STREAM_HASH = "sha256"  # the engine names blobs by sha256; manifest.json comes last


class EngineSource:
    """The engine at DOCKER_HOST (or the default socket)."""

    def resolve(self, ref: SourceRef, reference: str, request: Request) -> ImageHandle:
        """Connect and look the image up once, applying the pull policy: `missing` pulls when
        the engine lacks the image (or holds it for another platform than an explicit
        --platform), `always` pulls first, `never` never does."""
        client = _connect()
        try:
            image = _resolve(client, ref.location, request.pull, request.platform,
                             request.progress)
        except BaseException:
            client.close()
            raise
        return EngineImage(client, image, ref.location, reference, request)


class EngineImage(ImageHandle):
    """An image the engine holds, looked up once (by name; then known by its ID).

    It is read from `image.save()` as a stream: nothing is written to disk, and every layer is
    parsed (contents hashed) as it passes, since legacy archives put manifest.json last. With
    a layer store that holds the image's record (config and layout, by image ID) and every
    layer (by the diff_ids the engine lists), `image.save()` is not called at all; otherwise
    layers the store holds are drained from the stream unparsed, and the others, and the
    record, are stored. With verification each layer parsed is hashed as it passes and
    checked against manifest.json and the config once they have come (`verify.plan_checks`).
    """

    def __init__(self, client: docker.DockerClient, image: docker.models.images.Image,
                 name: str, reference: str, request: Request) -> None:
        super().__init__(reference, request)
        self._client = client
        self._image = image
        self._name = name
        self.attrs: dict[str, Any] = image.attrs
        self._layers: StreamedLayers | None = None

    def identity(self, store: LayerStore | None = None) -> Image | None:
        """From the engine's metadata and the image record in `store`; None when that record
        is missing or disagrees with the engine."""
        found = _cached_plan(self.attrs, store, self.request.platform) if store else None
        if found is None:
            return None
        plan, record = found
        layers = [Layer(index=index, entries=[], digest=saved.digest, diff_id=saved.diff_id,
                        media_type=saved.media_type, stored_bytes=saved.stored_bytes)
                  for index, saved in enumerate(record.layers)]
        return _described(to_image(plan, layers, reference=self.reference, source=ENGINE),
                          self.attrs, self._name)

    def count_in(self, stats: ReadStats) -> None:
        if stats.engine_saves is None:
            stats.engine_saves = 0

    def read(self, reuse: Reuse, later: DeferredChecks | None = None) -> Image:
        self.count_in(reuse.stats)
        attrs, name, platform = self.attrs, self._name, self.request.platform
        result = _from_cache(attrs, reuse, reference=self.reference, platform=platform)
        if result is None:
            try:
                with _translated(f"reading {name} from the Docker engine failed", EngineError):
                    result = _streamed(self._client, self._image, attrs, name=name,
                                       reference=self.reference,
                                       platform=platform, progress=self.request.progress,
                                       reuse=reuse, limits=self.request.limits)
            except (EngineError, CorruptArchive):
                if _removed(self._client, attrs.get("Id")):
                    raise ImageNotFound(f"image {name} was removed from the Docker engine "
                                        "while it was being read") from None
                raise
        return _described(result, attrs, name)

    def open_layer(self, index: int) -> AbstractContextManager[Readable]:
        if self._layers is None:
            self._layers = StreamedLayers(
                lambda: Prefetched(self._image.save(chunk_size=_CHUNK)),
                where=f"the engine's archive of {self._name}", platform=self.request.platform,
                selector=None, limits=self.request.limits)
        return self._layers.open_layer(index)

    def resolved_again(self, ref: SourceRef) -> SourceRef:
        image_id = self.attrs.get("Id")
        return SourceRef(ENGINE, image_id) if isinstance(image_id, str) else ref

    def close(self) -> None:
        self._client.close()
        super().close()


SOURCE = EngineSource()


def _described(result: Image, attrs: dict[str, Any], name: str) -> Image:
    """`result` with what the engine says of the image: ID, repo digest, platform."""
    result.image_id = attrs.get("Id") or result.image_id
    result.repo_digest = _repo_digest(name, attrs.get("RepoDigests"))
    found = _platform_of(attrs)
    result.platform = str(found) if found else result.platform
    return result


def _assembled(saved: Saved, *, name: str, reference: str, platform: Platform | None,
               reuse: Reuse, served: Mapping[str, list[Entry]],
               limits: ReadLimits) -> tuple[Image, Plan]:
    if MANIFEST_JSON not in saved.documents:
        raise EngineError(f"the Docker engine saved {name} without a manifest.json; this engine "
                          "version is not supported")
    return assemble(saved, where=f"the engine's archive of {name}", reference=reference,
                    source_kind=ENGINE, platform=platform, reuse=reuse, served=served,
                    limits=limits)


def _streamed(client: docker.DockerClient, image: docker.models.images.Image,
              attrs: dict[str, Any], *, name: str, reference: str, platform: Platform | None,
              progress: Progress, reuse: Reuse, limits: ReadLimits) -> Image:
    """Stream `image.save()` once, draining the layers the cache holds; a second time, parsing
    every layer, if a member drained turns out not to be the layer expected."""
    skip, served = _skippable(attrs, reuse)
    vouched = limits.verify and layer_store_verifies(client)
    while True:
        reuse.stats.engine_saves = (reuse.stats.engine_saves or 0) + 1
        saved = _stream(image, name, attrs.get("Size"), progress, skip, limits,
                        tar_too=reuse.only is not None, vouched=vouched)
        try:
            result, plan = _assembled(saved, name=name, reference=reference, platform=platform,
                                      reuse=reuse, served=served, limits=limits)
        except UnservedLayer:
            if not skip:
                raise
            skip, served = {}, {}
            continue
        _store_record(reuse, attrs.get("Id"), saved, plan, result.layers)
        return result


def _from_cache(attrs: dict[str, Any], reuse: Reuse, *, reference: str,
                platform: Platform | None) -> Image | None:
    """The image from the cache alone, or None unless the record (`_cached_plan`) and every
    layer are there."""
    cache = reuse.cache
    if cache is None or reuse.only is not None:
        return None
    found = _cached_plan(attrs, cache, platform)
    if found is None:
        return None
    plan, record = found
    served: dict[str, list[Entry]] = {}
    layers: list[Layer] = []
    for index, saved in enumerate(record.layers):
        entries = served.get(saved.diff_id)
        if entries is None:
            entries = cache.get(saved.diff_id)
            if entries is None:
                return None
            served[saved.diff_id] = entries
        else:
            entries = [dataclasses.replace(e) for e in entries]
        layers.append(Layer(index=index, entries=entries, digest=saved.digest,
                            diff_id=saved.diff_id, media_type=saved.media_type,
                            stored_bytes=saved.stored_bytes,
                            digests_incomplete=digests_incomplete(entries)))
    reuse.stats.layers_from_cache += len(served)
    return to_image(plan, layers, reference=reference, source=ENGINE)


def _cached_plan(attrs: dict[str, Any], cache: LayerStore,
                 platform: Platform | None) -> tuple[Plan, SavedImage] | None:
    """The plan of the image from its cached record, if the record agrees with the engine:
    same image ID (its key), same diff_ids in the config and in the engine's RootFS.Layers, a
    config for the platform asked."""
    record = cache.get_image(attrs.get("Id"))
    if record is None:
        return None
    try:
        config = parse_json(record.config, "cached image config")
    except CorruptArchive:
        return None
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if (not isinstance(diff_ids, list) or diff_ids != _engine_diff_ids(attrs)
            or diff_ids != [layer.diff_id for layer in record.layers]):
        return None
    found = Platform.from_doc(config)
    if platform is not None and found is not None and not found.matches(platform):
        return None
    plan = Plan(config=config, image_id=record.config_digest,
                manifest_digest=record.manifest_digest,
                layers=[LayerRef(key=s.key, digest=s.digest, diff_id=s.diff_id,
                                 media_type=s.media_type, size=s.stored_bytes)
                        for s in record.layers])
    return plan, record


def _skippable(attrs: dict[str, Any],
               reuse: Reuse) -> tuple[dict[str, str], dict[str, list[Entry]]]:
    """Archive members this load need not parse (member → the diff_id it must hold), and the
    cached entries of those layers (diff_id → entries), read and verified before streaming.

    A member is known by its name only: `blobs/sha256/<hex>` names an uncompressed layer by its
    diff_id, and the image's cached record names the members of an earlier save of the same
    image (legacy `<v1 id>/layer.tar` names depend on the image, not only on the layer).
    `_layers` checks each guess against manifest.json. A layer a re-read does not want is
    drained without entries.
    """
    if reuse.cache is None:
        return {}, {}
    members = {f"blobs/{d.replace(':', '/', 1)}": d for d in _engine_diff_ids(attrs)}
    record = reuse.cache.get_image(attrs.get("Id"))
    if record is not None:
        members.update((layer.key, layer.diff_id) for layer in record.layers)
    skip: dict[str, str] = {}
    served: dict[str, list[Entry]] = {}
    for member, diff_id in members.items():
        if not reuse.wanted(diff_id):
            skip[member] = diff_id
            continue
        entries = served.get(diff_id)
        if entries is None:
            entries = reuse.lookup_quietly(diff_id)
        if entries is not None:
            skip[member] = diff_id
            served[diff_id] = entries
    return skip, served


def _store_record(reuse: Reuse, image_id: Any, saved: Saved, plan: Plan,
                  layers: list[Layer]) -> None:
    """Remember the config and the layout of this save, for `_from_cache` next time."""
    if reuse.cache is None or reuse.only is not None or not isinstance(image_id, str):
        return
    config = _config_document(saved, plan.image_id)
    if config is None:
        return
    saved_layers = []
    for ref, layer in zip(plan.layers, layers, strict=True):
        if ref.diff_id is None or layer.stored_bytes is None:
            return
        saved_layers.append(SavedLayer(key=ref.key, digest=ref.digest, diff_id=ref.diff_id,
                                       media_type=ref.media_type,
                                       stored_bytes=layer.stored_bytes))
    reuse.cache.put_image(image_id, SavedImage(config=config, config_digest=plan.image_id,
                                               manifest_digest=plan.manifest_digest,
                                               layers=tuple(saved_layers)))


def _config_document(saved: Saved, config_digest: str) -> bytes | None:
    """The config as saved (`blobs/sha256/<hex>` or legacy `<hex>.json`), checked by its digest."""
    algorithm, _, hex_digest = config_digest.partition(":")
    for key in (f"blobs/{algorithm}/{hex_digest}", f"{hex_digest}.json"):
        target = resolve_link(key, saved.documents, saved.links)
        data = saved.documents.get(target) if target is not None else None
        if data is not None and algorithm == "sha256" and (
                "sha256:" + hashlib.sha256(data).hexdigest() == config_digest):
            return data
    return None


def _engine_diff_ids(attrs: dict[str, Any]) -> list[str]:
    rootfs = attrs.get("RootFS")
    layers = rootfs.get("Layers") if isinstance(rootfs, dict) else None
    if not isinstance(layers, list) or not all(isinstance(d, str) for d in layers):
        return []
    return layers


def _host() -> str:
    return os.environ.get("DOCKER_HOST") or "the default socket"


def _connect() -> docker.DockerClient:
    try:
        return docker.from_env()
    except _SDK_ERRORS as exc:
        cause = _socket_error(exc)
        reason = (f"{cause}; start dockerd, or set DOCKER_HOST to its socket" if cause
                  else _reason(exc))
        raise EngineUnreachable(f"cannot reach the Docker engine at {_host()}: {reason}") \
            from None


def _resolve(client: docker.DockerClient, name: str, pull: str, platform: Platform | None,
             progress: Progress) -> docker.models.images.Image:
    """The local image for `name` after applying the pull policy."""
    progress.status(f"looking up {name}")
    local = _local(client, name)
    wrong_platform = (local is not None and platform is not None
                      and not _matches(_platform_of(local.attrs), platform))
    pulled = (pull == "always" or (pull == "missing" and (local is None or wrong_platform))) \
        and not is_image_id(name)
    if pulled:
        try:
            _pull(client, name, platform, progress)
        except PullFailed as exc:
            if wrong_platform and local is not None:  # say what the engine has, first
                raise PlatformNotFound(
                    f"{name} in the Docker engine is for {_platform_of(local.attrs)}, not "
                    f"{platform}; pulling one for {platform} failed: {exc}") from None
            if local is None and pull == "missing":
                raise PullFailed(f"the Docker engine has no image {name}{_close(client, name)}; "
                                 f"pulling it failed: {exc}") from None
            raise
        local = _local(client, name)
        if local is None:
            raise PullFailed(f"pulled {name} but the engine does not list it")
    if local is None:
        hint = ("pull or build it, or drop --pull never" if pull == "never"
                else "an image ID is never pulled: check `docker images`")
        raise ImageNotFound(f"image {name} is not in the Docker engine"
                            f"{_close(client, name)}; {hint}")
    found = _platform_of(local.attrs)
    if platform is not None and not _matches(found, platform):
        hint = ("the registry has no image for it" if pulled
                else f"pull one with --pull always --platform {platform}")
        raise PlatformNotFound(f"{name} in the Docker engine is for "
                               f"{found or 'an unknown platform'}, not {platform}; {hint}")
    return local


def _close(client: docker.DockerClient, name: str) -> str:
    """` (close names it has: a, b)` for a name the engine lacks, or nothing."""
    try:
        tags = [tag for image in client.images.list() for tag in image.tags]
    except _SDK_ERRORS:
        return ""
    wanted = familiar(name)
    known = {familiar(tag): tag for tag in tags}
    close = difflib.get_close_matches(wanted, list(known), n=3, cutoff=0.75)
    return f" (close names it has: {', '.join(known[c] for c in close)})" if close else ""


def _removed(client: docker.DockerClient, image_id: Any) -> bool:
    """Whether the engine answers that the image `image_id` no longer exists (after a read
    failed: a stream cut short by `docker rmi` looks like any other broken stream)."""
    if not isinstance(image_id, str):
        return False
    try:
        client.images.get(image_id)
    except docker.errors.NotFound:
        return True
    except _SDK_ERRORS:
        return False
    return False


def _local(client: docker.DockerClient, name: str) -> docker.models.images.Image | None:
    with _translated(f"looking up {name} in the Docker engine failed", EngineError):
        try:
            return client.images.get(name)
        except docker.errors.NotFound:
            return None


def _pull(client: docker.DockerClient, name: str, platform: Platform | None,
          progress: Progress) -> None:
    progress.status(f"pulling {name}")
    try:
        with _translated(f"cannot pull {name}", PullFailed):
            events = client.api.pull(name, stream=True, decode=True,
                                     platform=str(platform) if platform else None)
            for event in events:
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    raise PullFailed(f"cannot pull {name}: {_one_line(str(event['error']))}")
                detail = event.get("progressDetail") or {}
                progress.pull(str(event.get("id") or ""), str(event.get("status") or ""),
                              _int(detail.get("current")), _int(detail.get("total")))
    except PullFailed as exc:
        text = str(exc)
        if any(word in text.lower() for word in _CREDENTIALS_WANTED):
            first, _, rest = name.partition("/")
            registry = first if rest and (first == "localhost" or "." in first
                                          or ":" in first) else "docker.io"
            text += f" (the registry wants credentials: docker login {registry})"
        raise PullFailed(text) from None


def _stream(image: docker.models.images.Image, name: str, size: Any, progress: Progress,
            skip: Mapping[str, str], limits: ReadLimits, *, tar_too: bool,
            vouched: bool) -> Saved:
    progress.status(f"reading {name}")
    # the engine gives the image's uncompressed size: an estimate of the stream's length
    return read_stream(Prefetched(image.save(chunk_size=_CHUNK)), name=name, size=size,
                       progress=progress, skip=skip, limits=limits, tar_too=tar_too,
                       vouched=vouched,
                       where=f"the engine's archive of {name}")


def layer_store_verifies(client: docker.DockerClient) -> bool:
    """Whether the engine checks every layer it exports against its diff_id: Docker's own
    layer store (a graph driver: overlay2, vfs, btrfs…) does, in `docker save` (moby's
    `roLayer.TarStream` hashes the tar it reassembles and fails the stream on a mismatch); the
    containerd image store (`driver-type io.containerd.snapshotter.v1`) is not relied on, nor
    an engine that does not say."""
    try:
        info = client.api.info()
    except _SDK_ERRORS:
        return False
    status = info.get("DriverStatus") if isinstance(info, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("Driver"), str):
        return False
    pairs = status if isinstance(status, list) else []
    return not any(isinstance(pair, list) and "io.containerd.snapshotter" in str(pair)
                   for pair in pairs)


def _platform_of(attrs: dict[str, Any]) -> Platform | None:
    return Platform.from_doc({"os": attrs.get("Os"), "architecture": attrs.get("Architecture"),
                              "variant": attrs.get("Variant")})


def _matches(found: Platform | None, wanted: Platform) -> bool:
    return found is not None and found.matches(wanted)


def _repo_digest(name: str, repo_digests: Any) -> str | None:
    """The manifest digest the registry gave this image, preferring the repository asked for."""
    digests = [d for d in repo_digests or [] if isinstance(d, str) and "@" in d]
    if not digests:
        return None
    repository = split_tag(name.partition("@")[0])[0]
    wanted = familiar(repository).rpartition(":")[0]
    for candidate in digests:
        repo, _, digest = candidate.partition("@")
        if familiar(repo).rpartition(":")[0] == wanted:
            return digest
    return digests[0].partition("@")[2]


@contextmanager
def _translated(action: str, error: type[ImagescopeError]) -> Iterator[None]:
    """Docker SDK, HTTP and socket failures → `error` with one line (ours pass through)."""
    try:
        yield
    except ImagescopeError:
        raise
    except _SDK_ERRORS as exc:
        raise error(f"{action}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """One plain clause for what the SDK raised: the engine's own explanation, or the socket
    error under the HTTP library's wrapping (never its tuple and pool reprs)."""
    if isinstance(exc, urllib3.exceptions.ProtocolError | requests.exceptions.ChunkedEncodingError):
        return "the engine broke the connection mid-stream (did it stop or restart?)"
    explanation = getattr(exc, "explanation", None)
    if explanation:
        return _one_line(str(explanation))
    cause = _socket_error(exc)
    if cause is not None:
        return f"{cause} at {_host()} (is dockerd running? DOCKER_HOST names its socket)"
    if _inside(exc, _HTTP_ERRORS):
        return (f"{_host()} did not answer as a Docker engine does (the connection was closed "
                "or refused; is DOCKER_HOST its socket?)")
    return _one_line(str(exc) or type(exc).__name__)


_HTTP_ERRORS = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                http.client.HTTPException, ConnectionError)


def _inside(exc: BaseException, kinds: tuple[type[BaseException], ...], depth: int = 0) -> bool:
    """Whether `exc`, or an exception it wraps (args, reason, cause), is one of `kinds`."""
    if isinstance(exc, kinds):
        return True
    if depth > 6:
        return False
    return any(_inside(item, kinds, depth + 1) for item in _wrapped(exc))


def _socket_error(exc: BaseException, depth: int = 0) -> str | None:
    """The strerror of the OSError somewhere inside `exc` (args, reason, cause), if any."""
    if depth > 6:
        return None
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    for item in _wrapped(exc):
        found = _socket_error(item, depth + 1)
        if found is not None:
            return found
    return None


def _wrapped(exc: BaseException) -> list[BaseException]:
    """The exceptions `exc` carries: in its args (tuples too, as requests nests them), its
    `reason`, its cause and context."""
    found: list[BaseException] = []
    pending: list[object] = [*exc.args, getattr(exc, "reason", None), exc.__cause__,
                             exc.__context__]
    while pending:
        item = pending.pop(0)
        if isinstance(item, BaseException):
            found.append(item)
        elif isinstance(item, tuple):
            pending.extend(item)
    return found


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


__all__ = ["SOURCE", "EngineImage", "EngineSource"]
