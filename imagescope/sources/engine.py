"""The local Docker engine through the Docker SDK: pull policy, then a streamed `docker save`."""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, cast

import docker
import docker.errors
import docker.models.images
import requests

from imagescope.errors import (
    EngineError,
    EngineUnreachable,
    ImageNotFound,
    ImagescopeError,
    PlatformNotFound,
    PullFailed,
)
from imagescope.layers import read_layer
from imagescope.model import Entry, Image, Layer
from imagescope.progress import Progress
from imagescope.refs import ENGINE, SourceRef, familiar, is_image_id, split_tag
from imagescope.sources.blobs import missing_blob, resolve_link, tar_errors, walk_stream
from imagescope.sources.manifests import (
    MAX_DOCUMENT_BYTES,
    LayerRef,
    Plan,
    Platform,
    docker_plan,
    to_image,
)

_CHUNK = 1 << 20
_DOCUMENTS = frozenset({"manifest.json", "index.json", "repositories", "oci-layout"})
_SDK_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


@dataclass(slots=True)
class Saved:
    """What a streamed `docker save` left: small JSON documents, layers parsed as they passed."""

    documents: dict[str, bytes] = dataclasses.field(default_factory=dict)
    layers: dict[str, tuple[list[Entry], int]] = dataclasses.field(default_factory=dict)
    links: dict[str, str] = dataclasses.field(default_factory=dict)


def load(source: SourceRef, *, reference: str, pull: str, platform: Platform | None,
         progress: Progress) -> Image:
    """Read `source.location` from the engine at DOCKER_HOST (or the default socket).

    Pull policy: `missing` pulls when the engine lacks the image (or holds it for another
    platform than an explicit --platform), `always` pulls first, `never` never does. The image
    is read from `image.save()` as a stream: nothing is written to disk, and every layer is
    parsed (contents hashed) as it passes, since legacy archives put manifest.json last.
    """
    name = source.location
    client = _connect()
    try:
        image = _resolve(client, name, pull, platform, progress)
        attrs: dict[str, Any] = image.attrs
        with _translated(f"reading {name} from the Docker engine failed", EngineError):
            saved = _stream(image, name, attrs.get("Size"), progress)
    finally:
        client.close()
    result = assemble(saved, name=name, reference=reference, platform=platform)
    result.image_id = attrs.get("Id") or result.image_id
    result.repo_digest = _repo_digest(name, attrs.get("RepoDigests"))
    found = _platform_of(attrs)
    result.platform = str(found) if found else result.platform
    return result


def assemble(saved: Saved, *, name: str, reference: str, platform: Platform | None) -> Image:
    """The image from what the stream left: manifest.json orders the layers parsed on the way."""
    where = f"the engine's archive of {name}"
    if "manifest.json" not in saved.documents:
        raise EngineError(f"the Docker engine saved {name} without a manifest.json; this engine "
                          "version is not supported")
    read = _reader(saved, where)
    plan = docker_plan(read("manifest.json"), read, selector=None, wanted=platform, where=where,
                       oci_index=saved.documents.get("index.json"),
                       how_to_pick="name the image by ID")
    return to_image(plan, _layers(plan, saved, where), reference=reference, source=ENGINE)


def _connect() -> docker.DockerClient:
    host = os.environ.get("DOCKER_HOST") or "the default socket"
    try:
        return docker.from_env()
    except _SDK_ERRORS as exc:
        raise EngineUnreachable(f"cannot reach the Docker engine at {host}: start Docker or set "
                                f"DOCKER_HOST ({_reason(exc)})") from None


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
        _pull(client, name, platform, progress)
        local = _local(client, name)
        if local is None:
            raise PullFailed(f"pulled {name} but the engine does not list it")
    if local is None:
        hint = ("pull or build it, or drop --pull never" if pull == "never"
                else "an image ID is never pulled: check `docker images`")
        raise ImageNotFound(f"image {name} is not in the Docker engine; {hint}")
    found = _platform_of(local.attrs)
    if platform is not None and not _matches(found, platform):
        hint = ("the registry has no image for it" if pulled
                else f"pull one with --pull always --platform {platform}")
        raise PlatformNotFound(f"{name} in the Docker engine is for "
                               f"{found or 'an unknown platform'}, not {platform}; {hint}")
    return local


def _local(client: docker.DockerClient, name: str) -> docker.models.images.Image | None:
    with _translated(f"looking up {name} in the Docker engine failed", EngineError):
        try:
            return client.images.get(name)
        except docker.errors.NotFound:
            return None


def _pull(client: docker.DockerClient, name: str, platform: Platform | None,
          progress: Progress) -> None:
    progress.status(f"pulling {name}")
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


def _stream(image: docker.models.images.Image, name: str, size: Any,
            progress: Progress) -> Saved:
    progress.status(f"reading {name}")
    return read_stream(image.save(chunk_size=_CHUNK), name=name, size=size, progress=progress)


def read_stream(chunks: Iterator[bytes], *, name: str, size: Any,
                progress: Progress) -> Saved:
    """Walk a `docker save` stream once, keeping JSON documents and parsing layers as they pass."""
    saved = Saved()
    # The engine reports the image's uncompressed size: an estimate of the stream's length.
    progress.read_started(name, size if isinstance(size, int) and size > 0 else None)
    reader = _ChunkReader(chunks, progress)
    try:
        with tar_errors(f"the engine's archive of {name}"):
            for member in walk_stream(cast(IO[bytes], reader)):
                if member.link is not None:
                    saved.links[member.name] = member.link
                elif member.file is not None:
                    file = cast(io.BufferedReader, member.file)
                    if _is_document(member.name, member.size, file):
                        saved.documents[member.name] = file.read()
                    elif _is_layer(member.name):
                        entries = read_layer(file, index=len(saved.layers),
                                             label=f"{name}: {member.name}", media_type=None,
                                             hash_contents=True, base_offset=None)
                        saved.layers[member.name] = (entries, member.size)
        reader.drain()  # the padding after the end-of-archive marker
    finally:
        progress.read_finished()
        close = getattr(chunks, "close", None)  # a generator holds the HTTP response open
        if close is not None:
            close()
    return saved


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


def _layers(plan: Plan, saved: Saved, where: str) -> list[Layer]:
    layers: list[Layer] = []
    used: set[str] = set()
    for index, ref in enumerate(plan.layers):
        key = resolve_link(ref.key, saved.layers, saved.links) or _parse_kept(ref, saved, where)
        entries, size = saved.layers[key]
        if key in used:  # the same blob twice: give each layer its own entries
            entries = [dataclasses.replace(e) for e in entries]
        used.add(key)
        layers.append(Layer(index=index, entries=entries, digest=ref.digest, diff_id=ref.diff_id,
                            media_type=ref.media_type, stored_bytes=size))
    return layers


def _parse_kept(ref: LayerRef, saved: Saved, where: str) -> str:
    """A layer blob that opened with `{` was kept as a document: parse it now."""
    key = resolve_link(ref.key, saved.documents, saved.links)
    if key is None:
        raise missing_blob(where, ref.key)
    data = saved.documents[key]
    entries = read_layer(io.BytesIO(data), index=0, label=f"{where}: {key}",
                         media_type=ref.media_type, hash_contents=True, base_offset=None)
    saved.layers[key] = (entries, len(data))
    return key


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
    explanation = getattr(exc, "explanation", None)
    return _one_line(str(explanation or exc) or type(exc).__name__)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _ChunkReader(io.RawIOBase):
    """The chunks of `image.save()` as a non-seekable file; counts them to `progress`."""

    def __init__(self, chunks: Iterator[bytes], progress: Progress) -> None:
        super().__init__()
        self._chunks = chunks
        self._progress = progress
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._view:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._progress.read_advanced(len(chunk))
            self._view = memoryview(chunk)
        count = min(len(buffer), len(self._view))
        buffer[:count] = self._view[:count]
        self._view = self._view[count:]
        return count

    def drain(self) -> None:
        """Consume the rest of the stream."""
        self._view = memoryview(b"")
        for chunk in self._chunks:
            self._progress.read_advanced(len(chunk))


__all__ = ["Saved", "assemble", "load", "read_stream"]
