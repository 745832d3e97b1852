"""Streaming, deterministic writers of layer tars and image archives too large to hold in memory.

`fixtures.imagegen` builds every layer and archive as bytes, which is right for test fixtures
and impossible for a multi-gigabyte benchmark image. Here a layer is a *recipe*: an iterator of
entry records (`Dir`, `File`, `Link`, `Sym`, `Whiteout`, `Opaque`), written to disk as it is
produced, one header and one content chunk at a time. File contents are slices of a fixed
pseudo-random corpus chosen by a content key, so equal keys give equal bytes (an identical
rewrite) and different keys different bytes; memory stays at the corpus plus one chunk.

Every header is fixed (mtime, owner names), so the same recipe gives the same bytes on every
run of the same Python, zlib and zstandard. The corpus mixes incompressible blocks with
low-entropy ones so gzip and zstd compress it about 2:1, as they do real images.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

MTIME = 1_700_000_000  # fixed header mtime (2023-11-14)
EPOCH = "2023-11-14T22:13:20Z"
BLOCK = 512
CHUNK = 1 << 20
CORPUS_BYTES = 64 << 20
_CORPUS_SEED = "imagescope-bench-corpus-1"

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = {
    "plain": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
SUFFIX = {"plain": ".tar", "gzip": ".tar.gz", "zstd": ".tar.zst"}


# --------------------------------------------------------------------------- entry records


@dataclass(frozen=True, slots=True)
class Dir:
    path: str
    mode: int = 0o755
    uid: int = 0


@dataclass(frozen=True, slots=True)
class File:
    """A regular file of `size` bytes: corpus bytes chosen by `key`, or `data` verbatim."""

    path: str
    size: int = 0
    key: str = ""
    mode: int = 0o644
    uid: int = 0
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A hard link to `target`, an earlier entry of the same layer."""

    path: str
    target: str


@dataclass(frozen=True, slots=True)
class Sym:
    path: str
    target: str


@dataclass(frozen=True, slots=True)
class Whiteout:
    """`parent/.wh.NAME`: hides `path` of lower layers."""

    path: str


@dataclass(frozen=True, slots=True)
class Opaque:
    """`dir/.wh..wh..opq`: hides every lower child of `path`."""

    path: str


Record = Dir | File | Link | Sym | Whiteout | Opaque


# --------------------------------------------------------------------------- contents

_corpus: bytes | None = None


def corpus() -> bytes:
    """CORPUS_BYTES deterministic bytes: 4 KiB blocks, 1 in 5 random, the rest drawn from 16
    or 4 symbols (≈ 2:1 overall under gzip -6 or zstd -3). Built once per process."""
    global _corpus
    if _corpus is None:
        raw = random.Random(_CORPUS_SEED).randbytes(CORPUS_BYTES)
        sixteen = bytes.maketrans(bytes(range(256)), bytes(b"etaoinshrdlucmfw"[i % 16]
                                                             for i in range(256)))
        four = bytes.maketrans(bytes(range(256)), bytes(b"\0\1 e"[i % 4] for i in range(256)))
        out = bytearray(raw)
        step = 4096
        for n, at in enumerate(range(0, CORPUS_BYTES, step)):
            kind = n % 5
            if kind in (1, 2):
                out[at:at + step] = raw[at:at + step].translate(sixteen)
            elif kind in (3, 4):
                out[at:at + step] = raw[at:at + step].translate(four)
        _corpus = bytes(out)
    return _corpus


def content_chunks(key: str, size: int) -> Iterator[memoryview]:
    """`size` bytes of the corpus starting at an offset derived from `key` (wrapping around)."""
    data = memoryview(corpus())
    at = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    at %= CORPUS_BYTES
    left = size
    while left:
        step = min(left, CHUNK, CORPUS_BYTES - at)
        yield data[at:at + step]
        left -= step
        at = (at + step) % CORPUS_BYTES


def walk_order(records: Iterable[Record]) -> list[Record]:
    """`records` in the order a layer writer walks a filesystem: depth first, names sorted
    (a directory before its contents), as docker and BuildKit write layer tars.

    A hard-link group is written the way such a walk meets it: the first name in walk order
    holds the content, every other name links to that one.
    """
    items = sorted(records, key=lambda r: r.path.split("/") + ([".wh..wh..opq"]
                                                               if isinstance(r, Opaque) else []))
    files = {r.path: r for r in items if isinstance(r, File)}
    holder: dict[str, str] = {}  # original target path → the name first met
    out: list[Record] = []
    for record in items:
        if isinstance(record, Link):
            target = files.get(record.target)
            if target is None:
                out.append(record)  # a link to a lower layer's file: kept as written
                continue
            first = holder.setdefault(record.target, record.path)
            if first == record.path:  # met before its target: this name takes the content
                out.append(File(record.path, target.size, target.key or target.path,
                                target.mode, target.uid, target.data))
            else:
                out.append(Link(record.path, first))
        elif isinstance(record, File) and record.path in holder:
            out.append(Link(record.path, holder[record.path]))
        else:
            if isinstance(record, File):
                holder[record.path] = record.path
            out.append(record)
    return out


# --------------------------------------------------------------------------- tar headers


def _header(name: str, kind: bytes, *, size: int = 0, mode: int = 0o644, uid: int = 0,
            linkname: str = "") -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.uid = info.gid = uid
    info.mtime = MTIME
    info.uname = info.gname = ""
    info.linkname = linkname
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _marker_name(record: Whiteout | Opaque) -> str:
    if isinstance(record, Opaque):
        return record.path.rstrip("/") + "/.wh..wh..opq"
    head, _, tail = record.path.rstrip("/").rpartition("/")
    return f"{head}/.wh.{tail}" if head else f".wh.{tail}"


@dataclass(slots=True)
class LayerStats:
    """What a written layer holds."""

    entries: int = 0
    files: int = 0
    file_bytes: int = 0
    dirs: int = 0
    hardlinks: int = 0
    symlinks: int = 0
    whiteouts: int = 0
    opaques: int = 0

    def add(self, other: LayerStats) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def tar_pieces(records: Iterable[Record], stats: LayerStats) -> Iterator[bytes | memoryview]:
    """The bytes of a layer tar of `records`, piece by piece, counting into `stats`."""
    for record in records:
        stats.entries += 1
        if isinstance(record, File):
            stats.files += 1
            if record.data is not None:
                yield _header(record.path, tarfile.REGTYPE, size=len(record.data),
                              mode=record.mode, uid=record.uid)
                yield record.data
                size = len(record.data)
            else:
                size = record.size
                yield _header(record.path, tarfile.REGTYPE, size=size, mode=record.mode,
                              uid=record.uid)
                yield from content_chunks(record.key or record.path, size)
            stats.file_bytes += size
            if size % BLOCK:
                yield bytes(BLOCK - size % BLOCK)
        elif isinstance(record, Dir):
            stats.dirs += 1
            yield _header(record.path.rstrip("/") + "/", tarfile.DIRTYPE, mode=record.mode,
                          uid=record.uid)
        elif isinstance(record, Link):
            stats.hardlinks += 1
            yield _header(record.path, tarfile.LNKTYPE, linkname=record.target)
        elif isinstance(record, Sym):
            stats.symlinks += 1
            yield _header(record.path, tarfile.SYMTYPE, mode=0o777, linkname=record.target)
        else:
            if isinstance(record, Opaque):
                stats.opaques += 1
            else:
                stats.whiteouts += 1
            yield _header(_marker_name(record), tarfile.REGTYPE, mode=0o600)
    yield bytes(2 * BLOCK)


# --------------------------------------------------------------------------- layer files


@dataclass(slots=True)
class Blob:
    """A file on disk and the sha256 digest and size of its bytes."""

    path: str
    digest: str
    size: int


@dataclass(slots=True)
class LayerFiles:
    """One layer written plain and, when asked, compressed: `blobs[compression]`."""

    diff_id: str
    blobs: dict[str, Blob]
    stats: LayerStats

    def to_json(self) -> dict[str, Any]:
        return {"diff_id": self.diff_id,
                "blobs": {k: [b.path, b.digest, b.size] for k, b in self.blobs.items()},
                "stats": {name: getattr(self.stats, name)
                          for name in LayerStats.__slots__}}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LayerFiles:
        return cls(doc["diff_id"], {k: Blob(*v) for k, v in doc["blobs"].items()},
                   LayerStats(**doc["stats"]))


class _Sink:
    """A file plus the sha256 and byte count of what was written to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "wb", buffering=CHUNK)  # noqa: SIM115 - closed in finish()
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        if data:
            self.file.write(data)
            self.hasher.update(data)
            self.size += len(data)

    def finish(self) -> Blob:
        self.file.close()
        return Blob(str(self.path), "sha256:" + self.hasher.hexdigest(), self.size)


def write_layer(records: Iterable[Record], base: Path, compressions: Iterable[str],
                *, gzip_level: int = 6, zstd_level: int = 3) -> LayerFiles:
    """Write a layer tar of `records` to `base`.tar and compressed next to it, in one pass.

    gzip: one member, mtime 0, no name (zlib's gzip wrapper); zstd: one frame without a
    content size (as a streaming writer produces). Files are written under temporary names and
    renamed once complete.
    """
    wanted = ["plain", *[c for c in compressions if c != "plain"]]
    temp = {c: base.with_name(base.name + SUFFIX[c] + ".part") for c in wanted}
    sinks = {c: _Sink(temp[c]) for c in wanted}
    gz = zlib.compressobj(gzip_level, zlib.DEFLATED, 31) if "gzip" in sinks else None
    zs = (zstandard.ZstdCompressor(level=zstd_level, write_content_size=False).compressobj()
          if "zstd" in sinks else None)
    stats = LayerStats()
    plain = sinks["plain"]
    pending: list[bytes | memoryview] = []
    pending_bytes = 0

    def flush() -> None:
        nonlocal pending, pending_bytes
        data = b"".join(pending)
        pending, pending_bytes = [], 0
        plain.write(data)
        if gz is not None:
            sinks["gzip"].write(gz.compress(data))
        if zs is not None:
            sinks["zstd"].write(zs.compress(data))

    for piece in tar_pieces(records, stats):
        pending.append(piece)
        pending_bytes += len(piece)
        if pending_bytes >= CHUNK:
            flush()
    flush()
    if gz is not None:
        sinks["gzip"].write(gz.flush())
    if zs is not None:
        sinks["zstd"].write(zs.flush())
    blobs = {}
    for c, sink in sinks.items():
        blob = sink.finish()
        final = base.with_name(base.name + SUFFIX[c])
        os.replace(temp[c], final)
        blob.path = str(final)
        blobs[c] = blob
    return LayerFiles(blobs["plain"].digest, blobs, stats)


# --------------------------------------------------------------------------- image archives


@dataclass(slots=True)
class ImageMeta:
    """What an image's config says besides its layers."""

    repo_tag: str
    history: list[tuple[str, bool]]  # (created_by, empty_layer), one non-empty per layer
    user: str = ""
    env: list[str] = field(default_factory=lambda: ["PATH=/usr/local/bin:/usr/bin:/bin"])
    cmd: list[str] | None = None


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def config_bytes(meta: ImageMeta, diff_ids: list[str]) -> bytes:
    """The image config document (canonical JSON)."""
    history = []
    for created_by, empty in meta.history:
        item: dict[str, Any] = {"created": EPOCH, "created_by": created_by}
        if empty:
            item["empty_layer"] = True
        history.append(item)
    if sum(1 for _, empty in meta.history if not empty) != len(diff_ids):
        raise ValueError("history must have one non-empty step per layer")
    config: dict[str, Any] = {"Env": meta.env, "User": meta.user}
    if meta.cmd is not None:
        config["Cmd"] = meta.cmd
    return _json({
        "architecture": "amd64",
        "config": config,
        "created": EPOCH,
        "history": history,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })


class _ArchiveWriter:
    """An outer tar written member by member; file members are copied from disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path.with_name(path.name + ".part")
        self.out: BinaryIO = open(self.temp, "wb")  # noqa: SIM115 - closed in close()
        self.dirs: set[str] = set()

    def _dirs(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            d = "/".join(parts[:depth])
            if d not in self.dirs:
                self.dirs.add(d)
                self.out.write(_header(d + "/", tarfile.DIRTYPE))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._dirs(name)
        self.out.write(_header(name, tarfile.REGTYPE, size=len(data)))
        self.out.write(data)
        self.out.write(bytes(-len(data) % BLOCK))

    def add_file(self, name: str, blob: Blob) -> None:
        self._dirs(name)
        self.out.write(_header(name, tarfile.REGTYPE, size=blob.size))
        self.out.flush()
        with open(blob.path, "rb") as src:
            left = blob.size
            while left:
                sent = os.sendfile(self.out.fileno(), src.fileno(), None, min(left, 1 << 30))
                if sent <= 0:
                    raise OSError(f"{blob.path} is shorter than {blob.size} bytes")
                left -= sent
        self.out.seek(0, os.SEEK_END)
        self.out.write(bytes(-blob.size % BLOCK))

    def close(self) -> None:
        self.out.write(bytes(2 * BLOCK))
        self.out.close()
        os.replace(self.temp, self.path)


def write_docker_legacy(path: Path, meta: ImageMeta, layers: list[LayerFiles]) -> None:
    """A `docker save` archive as Docker < 25 writes it: `<v1id>/layer.tar` per layer,
    `<config hex>.json`, `repositories`, `manifest.json` last."""
    diff_ids = [layer.diff_id for layer in layers]
    config = config_bytes(meta, diff_ids)
    config_hex = hashlib.sha256(config).hexdigest()
    out = _ArchiveWriter(path)
    parent = ""
    layer_paths = []
    for i, layer in enumerate(layers):
        v1_id = hashlib.sha256(f"{parent} {layer.diff_id}".encode()).hexdigest()
        v1: dict[str, Any] = {"created": EPOCH, "id": v1_id, "os": "linux",
                              "container_config": {"Env": None, "Cmd": None, "User": ""}}
        if parent:
            v1["parent"] = parent
        if i == len(layers) - 1:
            v1["architecture"] = "amd64"
            v1["config"] = {"Env": meta.env, "User": meta.user, "Cmd": meta.cmd}
        out.add_bytes(f"{v1_id}/VERSION", b"1.0")
        out.add_bytes(f"{v1_id}/json", _json(v1))
        out.add_file(f"{v1_id}/layer.tar", layer.blobs["plain"])
        layer_paths.append(f"{v1_id}/layer.tar")
        parent = v1_id
    out.add_bytes(f"{config_hex}.json", config)
    repo, _, tag = meta.repo_tag.rpartition(":")
    out.add_bytes("repositories", _json({repo: {tag: parent}}))
    out.add_bytes("manifest.json", _json([{"Config": f"{config_hex}.json",
                                           "RepoTags": [meta.repo_tag],
                                           "Layers": layer_paths}]))
    out.close()


def write_oci_archive(path: Path, meta: ImageMeta, layers: list[LayerFiles],
                      compression: str) -> None:
    """An OCI layout as one tar (`skopeo copy … oci-archive:`): blobs sorted, then `index.json`
    and `oci-layout`."""
    config = config_bytes(meta, [layer.diff_id for layer in layers])
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    descs = [{"mediaType": MT_LAYER[compression], "digest": layer.blobs[compression].digest,
              "size": layer.blobs[compression].size} for layer in layers]
    manifest = _json({
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": {"mediaType": MT_OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": descs,
    })
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    members: dict[str, Blob | bytes] = {}
    for layer in layers:
        blob = layer.blobs[compression]
        members.setdefault(_blob_path(blob.digest), blob)
    members[_blob_path(config_digest)] = config
    members[_blob_path(manifest_digest)] = manifest
    out = _ArchiveWriter(path)
    for name in sorted(members):
        item = members[name]
        if isinstance(item, bytes):
            out.add_bytes(name, item)
        else:
            out.add_file(name, item)
    tag = meta.repo_tag.rpartition(":")[2]
    out.add_bytes("index.json", _json({
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX,
        "manifests": [{"mediaType": MT_OCI_MANIFEST, "digest": manifest_digest,
                       "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }))
    out.add_bytes("oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
    out.close()


def _blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")
