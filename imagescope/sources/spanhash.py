"""Digests of byte spans of files, computed in this process or in a child of its own.

Run as a script (`python -I -S spanhash.py [NICENESS]`) it reads a JSON list of `Span` fields on
stdin and
writes one JSON line per span, in order: its hex digests by algorithm, or the one-line reason
they could not be computed. A child hashes on a core of its own without waiting for its
parent's GIL, which a thread hashing beside Python work waits for after every step.
Standard library only: the child imports nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from typing import NamedTuple

# bytes per read, into one buffer refilled (memory stays flat); a thread hashing beside Python
# work waits for the GIL after each read and update: large steps keep it hashing
CHUNK = 8 << 20


class Span(NamedTuple):
    """`size` bytes of the file at `path` from `offset`; `identity` is the file's
    (st_dev, st_ino, st_mtime_ns) when it was read, so a file replaced since is told."""

    path: str
    identity: tuple[int, int, int]
    offset: int
    size: int
    algorithms: tuple[str, ...]


def identity_of(fd: int) -> tuple[int, int, int]:
    """What `Span.identity` records of an open file."""
    status = os.fstat(fd)
    return status.st_dev, status.st_ino, status.st_mtime_ns


def hash_fd(fd: int, offset: int, size: int, algorithms: tuple[str, ...],
            stop: threading.Event | None = None, chunk: int = CHUNK) -> dict[str, str] | str:
    """Hex digests of `size` bytes of `fd` from `offset` (positioned reads: the file offset is
    not moved), or why not: `truncated`, or the read error. Stops early, with "stopped",
    once `stop` is set."""
    hashers = [hashlib.new(name) for name in algorithms]
    buffer = bytearray(max(1, min(chunk, size)))
    view = memoryview(buffer)
    end = offset + size
    try:
        while offset < end:
            if stop is not None and stop.is_set():
                return "stopped"
            count = os.preadv(fd, [view[:min(len(buffer), end - offset)]], offset)
            if not count:
                return "truncated"
            for hasher in hashers:
                hasher.update(view[:count])
            offset += count
    except OSError as exc:
        return f"cannot read the blob: {exc.strerror}"
    return {name: hasher.hexdigest() for name, hasher in zip(algorithms, hashers, strict=True)}


def hash_span(span: Span, stop: threading.Event | None = None,
              chunk: int = CHUNK) -> dict[str, str] | str:
    """`hash_fd` over the span's file, opened again: "changed" when it is not the file that was
    read (another file at the path, or the same one written since)."""
    try:
        fd = os.open(span.path, os.O_RDONLY)
    except OSError as exc:
        return f"cannot open the blob again: {exc.strerror}"
    try:
        if identity_of(fd) != tuple(span.identity):
            return "changed"
        return hash_fd(fd, span.offset, span.size, tuple(span.algorithms), stop, chunk)
    finally:
        os.close(fd)


def main() -> None:
    if len(sys.argv) > 1:  # a niceness: hash on what the other processes leave idle
        try:
            os.nice(int(sys.argv[1]))
        except (OSError, ValueError):
            pass
    for fields in json.load(sys.stdin):
        print(json.dumps(hash_span(Span(*fields))), flush=True)


if __name__ == "__main__":
    main()
