"""Digests: the `Digest` value (`algorithm:hex`, checked once where it is read), the blob
paths it names, and content digests of files filled in after a seeking pass."""

from __future__ import annotations

import re
from dataclasses import dataclass

import xxhash

from imagescope.errors import CorruptArchive
from imagescope.model import Entry

_STREAM_CHUNK = 1 << 20
_ALGORITHM = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*"
_DIGEST = re.compile(rf"(?P<algorithm>{_ALGORITHM}):(?P<encoded>[a-zA-Z0-9=_-]+)")
_BLOB_PATH = re.compile(rf"blobs/(?P<algorithm>{_ALGORITHM})/(?P<encoded>[a-zA-Z0-9=_-]+)")
# the algorithms imagescope hashes, and the length of their lowercase hex
HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True, slots=True)
class Digest:
    """`algorithm:encoded`, in the OCI image spec's grammar: it cannot hold a path separator,
    so its `path` never escapes `blobs/`."""

    algorithm: str
    encoded: str

    @classmethod
    def parse(cls, text: object) -> Digest | None:
        """The digest `text` is; None for anything else."""
        match = _DIGEST.fullmatch(text) if isinstance(text, str) else None
        return cls(match["algorithm"], match["encoded"]) if match else None

    @classmethod
    def of_path(cls, path: str) -> Digest | None:
        """The digest a content-addressed path (`blobs/<alg>/<encoded>`) names, or None."""
        match = _BLOB_PATH.fullmatch(path)
        return cls(match["algorithm"], match["encoded"]) if match else None

    @property
    def path(self) -> str:
        """Where an OCI layout keeps the blob: `blobs/<alg>/<encoded>`."""
        return f"blobs/{self.algorithm}/{self.encoded}"

    @property
    def verifiable(self) -> bool:
        """Whether imagescope can hash it: sha256, sha384 or sha512."""
        return self.algorithm in HEX_LENGTHS

    @property
    def canonical(self) -> bool:
        """A verifiable algorithm with its lowercase hex of the right length (an image ID,
        a cache key)."""
        return (len(self.encoded) == HEX_LENGTHS.get(self.algorithm, -1)
                and self.encoded == self.encoded.lower()
                and all(c in "0123456789abcdef" for c in self.encoded))

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


def blob_path(digest: object) -> str:
    """`sha256:abc…` → `blobs/sha256/abc…`; a malformed digest (a path escape) is CorruptArchive."""
    parsed = Digest.parse(digest)
    if parsed is None:
        raise CorruptArchive(f"invalid digest {digest!r}")
    return parsed.path


def digest_of_path(path: str) -> str | None:
    """`blobs/sha256/abc…` → `sha256:abc…`; None for paths that are not content-addressed."""
    parsed = Digest.of_path(path)
    return str(parsed) if parsed else None

def fill_digests(path: str, entries: list[Entry]) -> None:
    """Hash the content of FILE entries that have an `offset` in `path` and no digest yet."""
    todo = sorted((e for e in entries if e.digest is None and e.offset is not None),
                  key=lambda e: e.offset or 0)
    if not todo:
        return
    with open(path, "rb", buffering=0) as handle:
        for entry in todo:
            handle.seek(entry.offset or 0)
            hasher = xxhash.xxh3_128()
            left = entry.size
            while left:
                data = handle.read(min(left, _STREAM_CHUNK))
                if not data:
                    raise CorruptArchive(f"{path}: file content is truncated")
                hasher.update(data)
                left -= len(data)
            entry.digest = hasher.digest()


__all__ = ["HEX_LENGTHS", "Digest", "blob_path", "digest_of_path", "fill_digests"]
