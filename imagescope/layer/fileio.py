"""The file-like adapters the readers share: protocols for what they read, a bounded view of
a blob, head bytes put back, positioned reads of a shared file, a chunk iterator as a stream,
and a reader that hashes what passes through it."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, Protocol

_STREAM_CHUNK = 1 << 20


def uncounted(nbytes: int) -> None:
    """A progress callback for bytes no one is shown (content reads, counted streams)."""


class Readable(Protocol):
    """What a blob is read through: `read` returns b"" at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


class Hasher(Protocol):
    """A hashlib object, as far as reading needs it."""

    def update(self, data: bytes, /) -> None: ...


class BlobReader(Readable, Protocol):
    """A blob stream; seeking is used only when `seekable()` says so."""

    def seekable(self) -> bool: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


class LimitedReader(io.RawIOBase):
    """A read-only view of `size` bytes of `raw` from its current position.

    Seekable (relative and absolute within the window) when `raw` is.
    """

    def __init__(self, raw: BlobReader, size: int) -> None:
        super().__init__()
        self._raw = raw
        self._remaining = size
        self._size = size
        self._seekable = bool(getattr(raw, "seekable", lambda: False)())
        self._start = raw.tell() if self._seekable else 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self._remaining:
            n = self._remaining
        if n == 0:
            return b""
        data = self._raw.read(n)
        self._remaining -= len(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self._size - self._remaining

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self.tell() + offset}.get(whence)
        if target is None:
            target = self._size + offset
        target = max(0, min(target, self._size))
        self._raw.seek(self._start + target)
        self._remaining = self._size - target
        return target

    def drain(self) -> None:
        """Consume what is left of the window (needed on a non-seekable outer stream)."""
        if self._seekable:
            self.seek(0, io.SEEK_END)
            return
        while self._remaining:
            if not self.read(min(self._remaining, _STREAM_CHUNK)):
                break


class Joined(io.RawIOBase):
    """The already-sniffed head bytes followed by the rest of the raw stream."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._head:  # with the rest's first bytes: the first chunk holds whole headers
            data, self._head = self._head, b""
            return data if 0 <= n <= len(data) else data + self._rest.read(
                n - len(data) if n > 0 else -1)
        return self._rest.read(n)


class HashingReader(io.RawIOBase):
    """`raw`, read once front to back, hashing every byte that passes with each algorithm.

    Not seekable, so `read_layer` reads it in one pass; `finish` reads what the reader left
    (the padding after a tar's end marker) and returns the hex digests.
    """

    def __init__(self, raw: Readable, algorithms: Iterable[str]) -> None:
        super().__init__()
        self._raw = raw
        self._hashers = [(name, hashlib.new(name)) for name in sorted(algorithms)]

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        data = self._raw.read(size)
        for _, hasher in self._hashers:
            hasher.update(data)
        return data

    def readinto(self, buffer: Any) -> int:
        fill = getattr(self._raw, "readinto", None)
        if fill is None:
            data = self.read(len(buffer))
            buffer[:len(data)] = data
            return len(data)
        count: int = fill(buffer)  # (straight into the caller's buffer: no copy)
        if count:
            view = memoryview(buffer)[:count]
            for _, hasher in self._hashers:
                hasher.update(view)
        return count

    def finish(self) -> dict[str, str]:
        while self.read(_STREAM_CHUNK):
            pass
        return {name: hasher.hexdigest() for name, hasher in self._hashers}


class ChunkReader(io.RawIOBase):
    """Chunks as a non-seekable file; `on_chunk` is told each chunk's size."""

    def __init__(self, chunks: Iterator[bytes], on_chunk: Callable[[int], None]) -> None:
        super().__init__()
        self._chunks = chunks
        self._on_chunk = on_chunk
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._view:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._on_chunk(len(chunk))
            self._view = memoryview(chunk)
        count = min(len(buffer), len(self._view))
        buffer[:count] = self._view[:count]
        self._view = self._view[count:]
        return count

    def drain(self) -> None:
        """Consume the rest of the stream."""
        self._view = memoryview(b"")
        for chunk in self._chunks:
            self._on_chunk(len(chunk))


class PositionedFile(io.RawIOBase):
    """A file read through its own position with `os.pread`, so threads can share the file."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__()
        self._fd = file.fileno()
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        else:
            position = os.fstat(self._fd).st_size + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            size = max(0, os.fstat(self._fd).st_size - self._position)
        data = os.pread(self._fd, size, self._position)
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


__all__ = ["BlobReader", "ChunkReader", "Hasher", "HashingReader", "Joined", "LimitedReader",
           "PositionedFile", "Readable"]
