"""A command-line image reference → the source to read it from (engine, registry, archive,
OCI layout)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from imagescope.errors import SourceNotFound, UsageError
from imagescope.layer.digests import Digest

ENGINE = "engine"
REGISTRY = "registry"
DOCKER_ARCHIVE = "docker-archive"
OCI = "oci"
OCI_ARCHIVE = "oci-archive"
ARCHIVE = "archive"  # a tar given by bare path: docker-archive or oci-archive, told by its content

# skopeo's transport words: `docker://` is a registry, `docker-daemon:` the local engine.
_PREFIXES = {
    "docker://": REGISTRY,
    "docker-daemon:": ENGINE,
    "docker-archive:": DOCKER_ARCHIVE,
    "oci:": OCI,
    "oci-archive:": OCI_ARCHIVE,
}

# The distribution/reference grammar: [domain[:port]/]component(/component)*[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?)"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?"
)
_PATH_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".oci")


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where an image lives.

    `kind` is engine | registry | docker-archive | oci | oci-archive | archive; `location` is
    the engine or registry reference or the filesystem path; `selector` picks one image inside an archive or layout:
    a reference (`name:tag`, or an OCI ref name) or `@N`, a zero-based index.
    """

    kind: str
    location: str
    selector: str | None = None


def parse_ref(text: str) -> SourceRef:
    """Read a CLI reference.

    An explicit skopeo-style prefix decides. Otherwise an existing path is a file source (a
    directory is an OCI layout, a file an archive told by its content); something that looks like
    a path but does not exist is SourceNotFound, never an engine lookup; the rest is an engine
    reference. `PREFIX:PATH:SELECTOR` splits at the first colon after the path, as skopeo does,
    unless the whole remainder names an existing path.
    """
    if not text:
        raise UsageError("empty image reference")
    for prefix, kind in _PREFIXES.items():
        if text.startswith(prefix):
            rest = text[len(prefix):]
            if kind == ENGINE:
                return SourceRef(ENGINE, _engine_reference(rest.removeprefix("//"), text))
            if kind == REGISTRY:
                return SourceRef(REGISTRY, str(RegistryName.parse(rest, text)))
            path, selector = _split_selector(rest, prefix)
            return SourceRef(kind, path, selector)
    if text.startswith("docker:") and not os.path.exists(text):
        rest = text.removeprefix("docker:")
        raise UsageError(f"{text!r}: say docker://{rest} to read it from its registry, or "
                         f"docker-daemon:{rest} (or just {rest}) from the local Docker engine")
    if os.path.exists(text):
        return SourceRef(OCI if os.path.isdir(text) else ARCHIVE, text)
    if looks_like_path(text):
        raise SourceNotFound(f"no such file or directory: {text}")
    if not is_engine_reference(text):
        raise SourceNotFound(
            f"{text!r} is neither an existing file or directory nor a valid image reference"
        )
    return SourceRef(ENGINE, text)


DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"  # where docker.io's distribution API answers
_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_API})


@dataclass(frozen=True, slots=True)
class RegistryName:
    """An image in a registry, as `docker pull` reads its name: a first component with a `.`
    or a `:`, or `localhost`, is the host (else Docker Hub, where a one-component name is in
    `library/`); an untagged name without a digest means `:latest`."""

    host: str  # as written (`docker.io` for Docker Hub): credentials are filed under it
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, text: str, original: str | None = None) -> RegistryName:
        """`[HOST[:PORT]/]REPO[:TAG][@DIGEST]`; anything else is a UsageError."""
        original = original or text
        name, _, digest = text.partition("@")
        first, slash, remainder = name.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            host, path = first, remainder
        else:
            host, path = DOCKER_HUB, name
        repository, tag = split_tag(path)
        if host in _HUB_ALIASES:
            host = DOCKER_HUB
            if "/" not in repository:
                repository = f"library/{repository}"
        parsed = Digest.parse(digest) if digest else None
        if digest and (parsed is None or len(parsed.encoded) < 32) or not re.fullmatch(
                rf"{_DOMAIN}", host) or not re.fullmatch(
                rf"{_COMPONENT}(?:/{_COMPONENT})*", repository) or (
                tag is not None and not re.fullmatch(_TAG, tag)):
            raise UsageError(f"{original!r}: not a valid registry reference (expected "
                             "docker://[HOST[:PORT]/]REPO[:TAG] or …@sha256:…)")
        return cls(host, repository, tag if tag or digest else "latest", digest or None)

    @property
    def api_host(self) -> str:
        """Where the distribution API of `host` answers."""
        return DOCKER_HUB_API if self.host == DOCKER_HUB else self.host

    @property
    def reference(self) -> str:
        """What the manifest is fetched by: the digest when given, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        return (f"{self.host}/{self.repository}" + (f":{self.tag}" if self.tag else "")
                + (f"@{self.digest}" if self.digest else ""))


def looks_like_path(text: str) -> bool:
    """True for what a user means as a path: `/…`, `./…`, `../…`, `~…`, a trailing `/`, `*.tar`."""
    return (
        text.startswith(("/", "./", "../", "~"))
        or text in (".", "..")
        or text.endswith("/")
        or "\\" in text
        or text.lower().endswith(_PATH_SUFFIXES)
    )


def is_engine_reference(text: str) -> bool:
    """True for `name[:tag][@digest]` by the distribution grammar, or an image ID `sha256:<hex>`."""
    return is_image_id(text) or bool(_REFERENCE.fullmatch(text))


def is_image_id(text: str) -> bool:
    """True for a full image ID (`sha256:<64 hex>`): it names local content and cannot be pulled."""
    digest = Digest.parse(text)
    return digest is not None and digest.algorithm == "sha256" and digest.canonical


def familiar(reference: str) -> str:
    """The short form Docker shows: no `docker.io/` or `library/`, `:latest` when untagged.

    `docker.io/library/busybox` → `busybox:latest`; `ghcr.io/a/b:1` stays as it is. A reference
    with a digest keeps it and gets no tag.
    """
    name, digest = reference, ""
    if "@" in reference:
        name, _, digest = reference.partition("@")
        digest = "@" + digest
    repo, tag = split_tag(name)
    repo = repo.removeprefix("docker.io/").removeprefix("index.docker.io/")
    repo = repo.removeprefix("library/") if repo.count("/") == 1 else repo
    if tag is None and not digest:
        tag = "latest"
    return repo + (f":{tag}" if tag else "") + digest


def split_tag(name: str) -> tuple[str, str | None]:
    """`repo:tag` → (repo, tag); a colon inside the domain (`host:5000/repo`) is not a tag."""
    repo, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        return name, None
    return repo, tag


def _engine_reference(text: str, original: str) -> str:
    if not is_engine_reference(text):
        raise UsageError(f"{original!r}: not a valid image reference (expected name[:tag] or "
                         "name@sha256:…)")
    return text


def _split_selector(rest: str, prefix: str) -> tuple[str, str | None]:
    if not rest:
        raise UsageError(f"{prefix} needs a path, e.g. {prefix}image.tar")
    if os.path.exists(rest):
        return rest, None
    path, sep, selector = rest.partition(":")
    if sep and path and selector:
        return path, selector
    return rest, None


__all__ = [
    "ARCHIVE",
    "DOCKER_ARCHIVE",
    "ENGINE",
    "OCI",
    "OCI_ARCHIVE",
    "REGISTRY",
    "RegistryName",
    "SourceRef",
    "familiar",
    "is_engine_reference",
    "is_image_id",
    "looks_like_path",
    "parse_ref",
    "split_tag",
]
