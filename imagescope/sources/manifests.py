"""Manifest, index, platform and config resolution shared by every source (pure: no I/O)."""

from __future__ import annotations

import hashlib
import json
import platform as host_platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from imagescope.errors import (
    CorruptArchive,
    DigestMismatch,
    ImageNotFound,
    ImagescopeError,
    MissingBlob,
    NotAnImage,
    PlatformNotFound,
    UnsupportedMediaType,
    UsageError,
)
from imagescope.layer.compression import compression_of
from imagescope.layer.digests import Digest, blob_path, digest_of_path
from imagescope.model import HistoryStep, Image, Layer, Provenance
from imagescope.sources.refs import familiar

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
CONFIG_TYPES = frozenset({
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
})
REF_NAME = "org.opencontainers.image.ref.name"  # OCI: the tag (or name) of a layout entry
IMAGE_NAME = "io.containerd.image.name"  # containerd / Docker >= 25: the full reference
REFERENCE_TYPE = "vnd.docker.reference.type"  # buildx: "attestation-manifest" entries
REFERENCE_DIGEST = "vnd.docker.reference.digest"  # … and the manifest they attest
IN_TOTO = "application/vnd.in-toto+json"  # an attestation manifest's layers: in-toto statements
PREDICATE_TYPE = "in-toto.io/predicate-type"  # annotation of such a layer: what it states
SLSA_PROVENANCE = frozenset({"https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1"})
MAX_PROVENANCE_BYTES = 16 << 20  # a provenance statement bigger than this is not read
MAX_DOCUMENT_BYTES = 32 << 20  # a JSON document bigger than this is not a manifest or config
_MAX_INDEX_DEPTH = 8
MAX_LAYERS = 1000  # overlayfs stacks at most 500 layers, Docker 128: more is not an image

ReadDoc = Callable[[str], bytes]
"""Bytes of a document by its path in the layout or archive (`blobs/sha256/…`, `manifest.json`,
`<hex>.json`); raises MissingBlob when absent."""


# --------------------------------------------------------------------------- platforms

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386",
                 "i686": "386", "armhf": "arm", "armel": "arm"}
_HOST_VARIANTS = {"armv5l": "v5", "armv6l": "v6", "armv7l": "v7", "armv7": "v7", "armv8l": "v8",
                  "armhf": "v7", "armel": "v6"}


@dataclass(frozen=True, slots=True)
class Platform:
    """`os/arch[/variant]`, normalised as containerd does.

    Architecture aliases fold (x86_64 → amd64, aarch64 → arm64); a default variant is no variant
    (amd64/v1, arm64/v8) except for arm, where none means v7.
    """

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`linux/arm64`, `linux/arm/v7`; anything else is a usage error."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise UsageError(f"--platform {text!r}: expected os/arch[/variant], e.g. linux/amd64")
        return cls(*parts).normalized()

    @classmethod
    def host(cls) -> Platform:
        """linux on this machine's architecture (containers are linux images)."""
        machine = host_platform.machine().lower()
        return cls("linux", machine, _HOST_VARIANTS.get(machine)).normalized()

    @classmethod
    def from_doc(cls, doc: Any) -> Platform | None:
        """From a descriptor's `platform` or an image config (`os`, `architecture`, `variant`)."""
        if not isinstance(doc, dict):
            return None
        os_name, arch = doc.get("os"), doc.get("architecture")
        if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
            return None
        variant = doc.get("variant")
        return cls(os_name, arch, variant if isinstance(variant, str) and variant else None)

    def normalized(self) -> Platform:
        arch = self.architecture.lower()
        variant = self.variant.lower() if self.variant else None
        if arch.startswith("armv") and arch[-1] == "l":  # armv7l as an architecture
            arch, variant = "arm", variant or _HOST_VARIANTS.get(arch)
        if arch in ("armhf", "armel") and variant is None:
            variant = _HOST_VARIANTS[arch]
        arch = _ARCH_ALIASES.get(arch, arch)
        if variant and variant.isdigit():
            variant = "v" + variant
        if (arch, variant) in (("amd64", "v1"), ("arm64", "v8")):
            variant = None
        if arch == "arm" and variant is None:
            variant = "v7"
        return Platform(self.os.lower(), arch, variant)

    def matches(self, wanted: Platform) -> bool:
        return self.normalized() == wanted.normalized()

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class Option:
    """One image a source could mean: its platform (None when undeclared) and its identity."""

    platform: Platform | None
    identity: str  # equal identities are the same image (e.g. one manifest under two tags)
    name: str  # how to list it to the user
    payload: Any = None


def choose(options: Sequence[Option], wanted: Platform | None, where: str,
           how_to_pick: str) -> Option:
    """The option for `wanted`, or for the host's platform when none was asked.

    A lone image is taken whatever its platform unless a platform was asked for explicitly and
    it declares another. Among several, the one declaring the platform wins; failing that, a
    lone image declaring none (its config is checked later); none left is PlatformNotFound
    listing the platforms present; several different images left is ambiguous.
    """
    if not options:
        raise NotAnImage(f"{where} holds no image")
    if len({o.identity for o in options}) == 1 and (
        wanted is None or options[0].platform is None or options[0].platform.matches(wanted)
    ):
        return options[0]
    target = wanted or Platform.host()
    hits = [o for o in options if o.platform is not None and o.platform.matches(target)]
    if not hits:
        hits = [o for o in options if o.platform is None]
    if not hits:
        present = sorted({str(o.platform) for o in options})
        asked = "the host platform " if wanted is None else ""
        hint = "; choose one with --platform" if len(present) > 1 or wanted is None else ""
        raise PlatformNotFound(f"{where} has no image for {asked}{target} "
                               f"(platforms present: {', '.join(present)}){hint}")
    if len({o.identity for o in hits}) > 1:
        raise UsageError(f"{where} holds several images ({', '.join(_listed(hits))}); "
                         f"{how_to_pick}")
    return hits[0]


def _listed(options: Sequence[Option]) -> list[str]:
    """Each image once, by a name that picks it: its first name no other image shares, else
    its identity (a manifest digest, which picks it too)."""
    names_of: dict[str, list[str]] = {}
    for option in options:
        names = names_of.setdefault(option.identity, [])
        if option.name not in names:
            names.append(option.name)
    holders: dict[str, int] = {}
    for names in names_of.values():
        for name in names:
            holders[name] = holders.get(name, 0) + 1
    return sorted(next((n for n in names if holders[n] == 1), identity)
                  for identity, names in names_of.items())


# --------------------------------------------------------------------------- plans


@dataclass(slots=True)
class LayerRef:
    """A layer to read: `key` names its blob for the source (archive member or `blobs/alg/hex`)."""

    key: str
    digest: str | None
    diff_id: str | None
    media_type: str | None
    size: int | None  # as the manifest declares it, when it does


@dataclass(slots=True)
class Plan:
    """Everything but the layer contents: what to read, and the config that describes it."""

    config: dict[str, Any]
    image_id: str
    manifest_digest: str | None
    layers: list[LayerRef]
    provenance: Provenance | None = None  # the SLSA provenance attached to the manifest
    warnings: list[str] = field(default_factory=list)  # what could not be read, for the image


def parse_json(data: bytes, what: str) -> Any:
    """Decode a JSON document; malformed JSON is CorruptArchive naming the document (so are
    nesting too deep to decode and integers too long to convert)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise CorruptArchive(f"{what} is not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limits
        raise CorruptArchive(f"{what} is not valid JSON ({_clipped(str(exc))})") from None


def _clipped(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def verifying(read: ReadDoc) -> ReadDoc:
    """`read` that checks every content-addressed document (`blobs/<alg>/<hex>`) against the
    digest its path names; a mismatch, or an algorithm imagescope does not hash, is
    DigestMismatch."""
    def read_verified(key: str) -> bytes:
        data = read(key)
        digest = Digest.of_path(key)
        if digest is not None:
            algorithm, expected = digest.algorithm, digest.encoded
            if not digest.verifiable:
                raise DigestMismatch(f"cannot verify {key[:80]!r}: imagescope checks sha256, "
                                     "sha384 and sha512 digests (--no-verify reads the image "
                                     "unchecked)")
            if hashlib.new(algorithm, data).hexdigest() != expected:
                raise DigestMismatch(f"{key[:80]} does not match its digest; the image is "
                                     "corrupt or was altered (--no-verify skips this check)")
        return data

    return read_verified


def oci_plan(index_doc: bytes, read: ReadDoc, *, selector: str | None,
             wanted: Platform | None, where: str, how_to_pick: str) -> Plan:
    """Resolve an OCI `index.json` to one image manifest and its config.

    `selector` picks top-level entries by `org.opencontainers.image.ref.name` (or the
    containerd image name) or `@N`, or any image manifest, nested or not, by its digest
    (`sha256:…`, `@sha256:…`); nested indexes are walked; attestation manifests,
    `unknown/unknown` entries and artifacts (an `artifactType`, or a config that is no image
    config: SBOMs, signatures, Helm charts) are skipped; the platform decides among what is left
    (`choose`). The chosen manifest's SLSA provenance, when an attestation manifest refers to
    it, is read too (`_provenance`); one that cannot be read is a warning, never an error.
    """
    index = _object(parse_json(index_doc, f"{where}: index.json"), f"{where}: index.json")
    top = _descriptors(index, f"{where}: index.json")
    attestations: dict[str, dict[str, Any]] = {}  # attested manifest digest → its attestation
    _note_attestation(top, attestations)  # (whatever the selector picks among them)
    by_digest = _digest_selector(selector)
    if selector is not None and by_digest is None:
        top = _select_by_ref_name(top, selector, where)
    options: list[Option] = []
    artifacts: list[str] = []
    parsed: dict[str, dict[str, Any]] = {}  # each manifest parsed once, by digest
    _collect(top, read, options, where, depth=0, parsed=parsed, artifacts=artifacts,
             attestations=attestations)
    if by_digest is not None:
        found = [o for o in options if o.identity == by_digest]
        if not found:
            shown = ", ".join(sorted({o.identity for o in options})) or "none"
            raise ImageNotFound(f"{where} has no image manifest {by_digest} (images: {shown})")
        options = found
    if not options and artifacts:
        raise NotAnImage(f"{where} holds no container image, only artifacts "
                         f"({', '.join(sorted(set(artifacts)))})")
    chosen = choose(options, wanted, where, how_to_pick)
    manifest_digest: str = chosen.identity
    manifest = parsed.get(manifest_digest) or _object(
        parse_json(_read_doc(read, blob_path(manifest_digest), "manifest"),
                   f"manifest {manifest_digest}"), f"manifest {manifest_digest}")
    media_type = (_media_type(manifest, f"manifest {manifest_digest}")
                  or _media_type(chosen.payload, f"{where}: index entry"))
    if media_type not in (None, *MANIFEST_TYPES):
        raise UnsupportedMediaType(f"manifest {manifest_digest} has unsupported media type "
                                   f"{media_type!r}")
    config_desc = _object(manifest.get("config"), f"manifest {manifest_digest}: config")
    config_type = _media_type(config_desc, f"manifest {manifest_digest}: config")
    if config_type is not None and config_type not in CONFIG_TYPES:
        raise NotAnImage(f"{where}: manifest {manifest_digest} is not a container image "
                         f"(config media type {config_type})")
    config_digest = _string(config_desc.get("digest"), f"manifest {manifest_digest}: config")
    config = _config(_read_doc(read, blob_path(config_digest), "config"), config_digest)
    layers = []
    for i, raw in enumerate(_list(manifest.get("layers"), f"manifest {manifest_digest}: layers")):
        desc = _object(raw, f"manifest {manifest_digest}: layer {i}")
        digest = _string(desc.get("digest"), f"manifest {manifest_digest}: layer {i}")
        layer_type = desc.get("mediaType")
        size = desc.get("size")
        layers.append(LayerRef(key=blob_path(digest), digest=digest, diff_id=None,
                               media_type=layer_type if isinstance(layer_type, str) else None,
                               size=size if isinstance(size, int) else None))
    plan = Plan(config=config, image_id=config_digest, manifest_digest=manifest_digest,
                layers=layers)
    _attach_diff_ids(plan, where, wanted)
    attestation = attestations.get(manifest_digest)
    if attestation is not None:
        try:
            plan.provenance = _provenance(attestation, read)
        except ImagescopeError as exc:
            plan.warnings.append(f"the image's provenance attestation is not used ({exc}): "
                                 "layers are not mapped to Dockerfile lines from it")
    return plan


def _provenance(attestation: dict[str, Any], read: ReadDoc) -> Provenance | None:
    """The SLSA provenance statement (v0.2 or v1) of an attestation manifest, read (as the
    image's documents are: verified when they are) and checked to be a JSON object stating that
    predicate; None when the manifest holds none (an SBOM alone). An unreadable one raises."""
    digest = _string(attestation.get("digest"), "attestation manifest")
    what = f"attestation manifest {digest}"
    manifest = _object(parse_json(_read_doc(read, blob_path(digest), "manifest"), what), what)
    for raw in _list(manifest.get("layers"), f"{what}: layers"):
        desc = _dict(raw)
        predicate = _dict(desc.get("annotations")).get(PREDICATE_TYPE)
        if desc.get("mediaType") != IN_TOTO or predicate not in SLSA_PROVENANCE:
            continue
        blob = _string(desc.get("digest"), f"{what}: provenance layer")
        declared = desc.get("size")
        if isinstance(declared, int) and declared > MAX_PROVENANCE_BYTES:
            raise CorruptArchive(f"its statement {blob} is {declared:,} bytes; imagescope reads "
                                 f"at most {MAX_PROVENANCE_BYTES:,}")
        data = read(blob_path(blob))
        if len(data) > MAX_PROVENANCE_BYTES:
            raise CorruptArchive(f"its statement {blob} is over {MAX_PROVENANCE_BYTES:,} bytes")
        statement = _object(parse_json(data, f"provenance statement {blob}"),
                            f"provenance statement {blob}")
        if statement.get("predicateType") != predicate:
            raise CorruptArchive(f"provenance statement {blob} states "
                                 f"{_clipped(str(statement.get('predicateType')), 80)}, "
                                 f"not the {predicate} its manifest says")
        return Provenance(blob, str(predicate), data)
    return None


def docker_plan(manifest_doc: bytes, read: ReadDoc, *, selector: str | None,
                wanted: Platform | None, where: str, how_to_pick: str,
                oci_index: bytes | None = None) -> Plan:
    """Resolve a `docker save` `manifest.json` to one image (legacy or Docker >= 25 layout).

    `selector` is a reference matched against RepoTags (`busybox` means `busybox:latest`,
    `docker.io/library/` is implied) or `@N`. A layer file's compression is told by its magic
    bytes alone: LayerSources, and the OCI manifest beside manifest.json (Docker >= 25), describe
    the registry's blob (gzip, foreign, nondistributable), not the file in the archive, so no
    media type is taken from them. The OCI manifest gives the image's manifest digest.
    """
    entries = _list(parse_json(manifest_doc, f"{where}: manifest.json"), f"{where}: manifest.json")
    items = [(i, _object(e, f"{where}: manifest.json entry {i}")) for i, e in enumerate(entries)]
    if selector is not None:
        items = _select_by_tag(items, selector, where)
    options = []
    configs: dict[str, tuple[bytes, dict[str, Any]]] = {}  # each config read and parsed once
    for i, item in items:
        config_key = _string(item.get("Config"), f"{where}: manifest.json entry {i}: Config")
        if config_key not in configs:
            data = _read_doc(read, config_key, "config")
            configs[config_key] = data, _config(data, config_key)
        data, config = configs[config_key]
        tags = _tags(item)
        options.append(Option(Platform.from_doc(config), config_key, tags[0] if tags else f"@{i}",
                              (item, config, data)))
    chosen = choose(options, wanted, where, how_to_pick)
    item, config, data = chosen.payload
    config_key = chosen.identity
    config_digest = digest_of_path(config_key) or "sha256:" + hashlib.sha256(data).hexdigest()
    manifest_digest = _oci_manifest_digest(oci_index, read, config_digest)
    diff_ids = _diff_ids(config, config_key)
    layers = []
    paths = _list(item.get("Layers"), f"{where}: manifest.json Layers")
    for i, path in enumerate(paths):
        key = _string(path, f"{where}: manifest.json Layers[{i}]")
        diff_id = diff_ids[i] if i < len(diff_ids) else None
        digest = digest_of_path(key)
        layers.append(LayerRef(key=key, digest=digest or diff_id, diff_id=diff_id,
                               media_type=None, size=None))
    plan = Plan(config=config, image_id=config_digest, manifest_digest=manifest_digest,
                layers=layers)
    _attach_diff_ids(plan, where, wanted)
    return plan


def to_image(plan: Plan, layers: list[Layer], *, reference: str, source: str) -> Image:
    """The Image: layers as read, history, user and platform from the config."""
    config = plan.config
    history = []
    steps = config.get("history")
    for raw in steps if isinstance(steps, list) else []:
        if not isinstance(raw, dict):
            continue
        comment = raw.get("comment")
        history.append(HistoryStep(created_by=str(raw.get("created_by") or ""),
                                   empty_layer=bool(raw.get("empty_layer")),
                                   comment=comment if isinstance(comment, str) else None))
    user = _dict(config.get("config")).get("User")
    found = Platform.from_doc(config)
    return Image(reference=reference, source=source, layers=layers, history=history,
                 image_id=plan.image_id, repo_digest=plan.manifest_digest,
                 platform=str(found) if found else None,
                 user=user if isinstance(user, str) and user else None,
                 warnings=list(plan.warnings), provenance=plan.provenance)


# --------------------------------------------------------------------------- helpers


def _collect(descriptors: list[dict[str, Any]], read: ReadDoc, out: list[Option], where: str,
             depth: int, parsed: dict[str, dict[str, Any]] | None = None,
             artifacts: list[str] | None = None,
             attestations: dict[str, dict[str, Any]] | None = None) -> None:
    """Flatten (nested) indexes into image-manifest options, skipping attestations (noted in
    `attestations` by the digest they attest).

    Each document is parsed once and each index walked once (`parsed`, by digest): an index
    listing the same child many times, level after level, costs no more than listing it once.
    """
    parsed = {} if parsed is None else parsed
    if depth > _MAX_INDEX_DEPTH:
        raise CorruptArchive(f"{where}: image indexes nest deeper than {_MAX_INDEX_DEPTH}")
    if attestations is not None:
        _note_attestation(descriptors, attestations)
    for desc in descriptors:
        annotations = _dict(desc.get("annotations"))
        found = Platform.from_doc(desc.get("platform"))
        if annotations.get(REFERENCE_TYPE) == "attestation-manifest" or (
                found is not None and (found.os, found.architecture) == ("unknown", "unknown")):
            continue
        digest = _string(desc.get("digest"), f"{where}: index entry")
        media_type = _media_type(desc, f"{where}: index entry {digest}")
        child: dict[str, Any] | None = None
        walked = digest in parsed
        if media_type is None or media_type in INDEX_TYPES:  # mediaType is optional in old indexes
            child = parsed.get(digest)
            if child is None:
                child = _object(parse_json(_read_doc(read, blob_path(digest), "manifest"),
                                           f"manifest {digest}"), f"manifest {digest}")
                parsed[digest] = child
            media_type = media_type or _media_type(child, f"manifest {digest}") or (
                OCI_INDEX if "manifests" in child else OCI_MANIFEST)
        if media_type in INDEX_TYPES and child is not None:
            if not walked:
                _collect(_descriptors(child, f"index {digest}"), read, out, where, depth + 1,
                         parsed, artifacts, attestations)
        elif media_type in MANIFEST_TYPES:
            kind = _artifact_type(desc, digest, read, parsed)
            if kind is not None:
                if artifacts is not None:
                    artifacts.append(kind)
                continue
            name = annotations.get(REF_NAME) or annotations.get(IMAGE_NAME) or digest
            out.append(Option(found, digest, str(name), desc))
        elif isinstance(media_type, str) and "manifest.v1" in media_type:
            raise UnsupportedMediaType(f"{where}: {digest} is a Docker schema 1 manifest, which "
                                       "imagescope does not read")
        # anything else (artifacts, signatures) is not an image: skip it


def _note_attestation(descriptors: list[dict[str, Any]],
                      attestations: dict[str, dict[str, Any]]) -> None:
    """Note each attestation manifest of `descriptors` by the manifest digest it attests (the
    first listed for a digest wins)."""
    for desc in descriptors:
        annotations = _dict(desc.get("annotations"))
        attested = annotations.get(REFERENCE_DIGEST)
        if annotations.get(REFERENCE_TYPE) == "attestation-manifest" and isinstance(attested, str):
            attestations.setdefault(attested, desc)


def _artifact_type(desc: dict[str, Any], digest: str, read: ReadDoc,
                   parsed: dict[str, dict[str, Any]]) -> str | None:
    """What an OCI manifest holds when it is no container image (its `artifactType`, or its
    config's media type when that is no image config); None for an image."""
    declared = desc.get("artifactType")
    if isinstance(declared, str) and declared:
        return declared
    manifest = parsed.get(digest)
    if manifest is None:
        manifest = _object(parse_json(_read_doc(read, blob_path(digest), "manifest"),
                                      f"manifest {digest}"), f"manifest {digest}")
        parsed[digest] = manifest
    declared = manifest.get("artifactType")
    if isinstance(declared, str) and declared:
        return declared
    config_type = _dict(manifest.get("config")).get("mediaType")
    if isinstance(config_type, str) and config_type not in CONFIG_TYPES:
        return config_type
    return None


def _digest_selector(selector: str | None) -> str | None:
    """`sha256:…` (or `@sha256:…`) when the selector names a manifest by digest."""
    if selector is None:
        return None
    digest = Digest.parse(selector.removeprefix("@"))
    return str(digest) if digest is not None and digest.verifiable else None


def _select_by_ref_name(top: list[dict[str, Any]], selector: str,
                        where: str) -> list[dict[str, Any]]:
    if selector.startswith("@"):
        return [_by_index(top, selector, where)]
    wanted = familiar(selector)
    hits = []
    names = []
    for desc in top:
        annotations = _dict(desc.get("annotations"))
        ref_name, image_name = annotations.get(REF_NAME), annotations.get(IMAGE_NAME)
        if isinstance(ref_name, str):
            names.append(ref_name)
        if ref_name == selector or (isinstance(image_name, str)
                                    and familiar(image_name) == wanted):
            hits.append(desc)
    if not hits:
        shown = ", ".join(sorted(set(names))) or "none"
        raise ImageNotFound(f"{where} has no image named {selector!r} (names: {shown})")
    digests = sorted({str(d.get("digest")) for d in hits})
    if len(digests) > 1:
        raise UsageError(f"{where}: the name {selector!r} is ambiguous: it names "
                         f"{' and '.join(digests)}; pick one by its digest")
    return hits


def _select_by_tag(items: list[tuple[int, dict[str, Any]]], selector: str,
                   where: str) -> list[tuple[int, dict[str, Any]]]:
    if selector.startswith("@"):
        return [_by_index(items, selector, where)]
    if "@" in selector:
        raise UsageError(f"{selector!r}: a docker-archive image is chosen by tag or @N, not by "
                         "digest")
    wanted = familiar(selector)
    hits = [(i, item) for i, item in items
            if any(familiar(t) == wanted for t in _tags(item))]
    if not hits:
        tags = sorted({t for _, item in items for t in _tags(item)})
        raise ImageNotFound(f"{where} has no image tagged {selector!r} "
                            f"(tags: {', '.join(tags) or 'none'})")
    return hits


def _by_index(items: list[Any], selector: str, where: str) -> Any:
    try:
        number = int(selector[1:])
    except ValueError:
        raise UsageError(f"{selector!r}: expected @N, a zero-based image index") from None
    if not 0 <= number < len(items):
        raise ImageNotFound(f"{where} has {len(items)} image(s); {selector} is out of range")
    return items[number]


def _oci_manifest_digest(index_doc: bytes | None, read: ReadDoc,
                        config_digest: str) -> str | None:
    """The digest of the OCI manifest of `config_digest`.

    Docker >= 25 writes such a manifest next to manifest.json (the classic store lists only
    foreign layers in it, containerd's store lists all); a manifest listing no layers, or
    unreadable or absent documents, give nothing: manifest.json stays the authority.
    """
    if index_doc is None:
        return None
    try:
        index = parse_json(index_doc, "index.json")
        pending = list(index.get("manifests") or []) if isinstance(index, dict) else []
        for _ in range(64):
            if not pending:
                break
            desc = pending.pop(0)
            if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
                continue
            doc = parse_json(read(blob_path(desc["digest"])), "manifest")
            if not isinstance(doc, dict):
                continue
            if isinstance(doc.get("manifests"), list):
                pending.extend(doc["manifests"])
                continue
            layers = doc.get("layers") if isinstance(doc.get("layers"), list) else []
            if _dict(doc.get("config")).get("digest") == config_digest and layers:
                return str(desc["digest"])
    except (MissingBlob, CorruptArchive):
        pass
    return None


def _attach_diff_ids(plan: Plan, where: str, wanted: Platform | None) -> None:
    """Check the config against the manifest (layer count, platform) and media types."""
    diff_ids = _diff_ids(plan.config, plan.image_id)
    if len(plan.layers) > MAX_LAYERS:
        raise CorruptArchive(f"{where}: the manifest lists {len(plan.layers)} layers; no "
                             f"container runtime stacks that many (imagescope reads at most "
                             f"{MAX_LAYERS})")
    if len(diff_ids) != len(plan.layers):
        raise CorruptArchive(f"{where}: the manifest lists {len(plan.layers)} layers but the "
                             f"image config has {len(diff_ids)} diff_ids")
    for index, (layer, diff_id) in enumerate(zip(plan.layers, diff_ids, strict=True)):
        layer.diff_id = diff_id
        try:
            compression_of(layer.media_type)  # refuse before any layer is read
        except UnsupportedMediaType as exc:
            raise UnsupportedMediaType(f"{where}: layer {index}: {exc}") from None
    found = Platform.from_doc(plan.config)
    if wanted is not None and found is not None and not found.matches(wanted):
        raise PlatformNotFound(f"{where} has no image for {wanted} (platforms present: {found})")


def _config(data: bytes, what: str) -> dict[str, Any]:
    config = _object(parse_json(data, f"image config {what}"), f"image config {what}")
    _diff_ids(config, what)
    return config


def _diff_ids(config: dict[str, Any], what: str) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise CorruptArchive(f"image config {what} has no rootfs.diff_ids list")
    return diff_ids


def _read_doc(read: ReadDoc, key: str, what: str) -> bytes:
    data = read(key)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise CorruptArchive(f"{what} {key} is {len(data)} bytes: too large for a JSON document")
    return data


def _descriptors(index: dict[str, Any], what: str) -> list[dict[str, Any]]:
    return [_object(d, f"{what}: manifests entry")
            for d in _list(index.get("manifests"), f"{what}: manifests")]


def _media_type(document: dict[str, Any], what: str) -> str | None:
    """A document's optional `mediaType`, which must be a string when present."""
    value = document.get("mediaType")
    if value is None or isinstance(value, str):
        return value
    raise CorruptArchive(f"{what}: mediaType is not a string")


def _dict(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (for optional fields)."""
    return value if isinstance(value, dict) else {}


def _tags(item: dict[str, Any]) -> list[str]:
    tags = item.get("RepoTags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CorruptArchive(f"{what} is not a JSON object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise CorruptArchive(f"{what} is not a JSON list")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise CorruptArchive(f"{what} has no digest or path")
    return value


__all__ = [
    "LayerRef",
    "Option",
    "Plan",
    "Platform",
    "choose",
    "docker_plan",
    "oci_plan",
    "parse_json",
    "to_image",
    "verifying",
]
