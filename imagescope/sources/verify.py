"""Checking layer blobs against their digests: while they are decoded, or afterwards.

A read checks what `plan_checks` asks: the digests of the blob's stored bytes and, on request,
of its decompressed tar. Stored bytes are hashed in the pass that decodes them
(`HashingReader`), by a thread reading beside a seeking parser (`SpanHasher`), or after the
decoding, while the analysis runs (`DeferredChecks`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from imagescope.errors import CorruptArchive, DigestMismatch
from imagescope.limits import ReadLimits
from imagescope.sources import spanhash
from imagescope.sources.manifests import LayerRef
from imagescope.sources.spanhash import Span, hash_fd, hash_span

if TYPE_CHECKING:  # (imported where a child is started)
    import subprocess

HASH_ALGORITHMS = frozenset({"sha256", "sha384", "sha512"})  # OCI digests imagescope checks
_HASH_CHUNK = 1 << 20  # also the step of `settle` hashing here: the only Python work by then,
# it does not wait on the GIL, and 8 MiB steps would add to the peak RSS


@dataclass(frozen=True, slots=True)
class BlobChecks:
    """The digests one read of a layer blob checks, each with where it is given: digests of
    its stored bytes, and of its decompressed tar (a compressed blob's diff_id)."""

    stored: tuple[tuple[str, str], ...] = ()
    tar: tuple[tuple[str, str], ...] = ()
    vouched: str | None = None  # the digest its source checked as it sent it (not checked again)

    def cache_key(self, ref: LayerRef) -> str | None:
        """The digest the analysis is stored under: the diff_id when the tar was checked
        against it (then it serves every compression of the layer), else the blob's checked
        digest, else none: an unverified analysis is not cached, so a wrong digest in a
        hostile image cannot poison the cache."""
        checked = {digest for digest, _ in self.stored + self.tar} | {self.vouched}
        checked.discard(None)
        if ref.diff_id is not None and ref.diff_id in checked:
            return ref.diff_id
        return ref.digest if ref.digest is not None and ref.digest in checked else None

    def algorithms(self) -> tuple[set[str], set[str]]:
        """The hash algorithms the stored bytes and the tar need (unsupported ones left out:
        `check_digests` refuses them)."""
        def needed(pairs: tuple[tuple[str, str], ...]) -> set[str]:
            return {digest.partition(":")[0] for digest, _ in pairs} & HASH_ALGORITHMS

        return needed(self.stored), needed(self.tar)


def plan_checks(ref: LayerRef, plain: bool, limits: ReadLimits, *,
                tar_too: bool = False, vouched: bool = False) -> BlobChecks:
    """What a read of `ref`'s blob verifies (nothing without `limits.verify`).

    The stored bytes must hash to the digest that names the blob (a descriptor's, or a
    content-addressed path's) and, for a plain blob, to its diff_id. A compressed blob's
    diff_id is the hash of its decompressed tar: checked only with `tar_too`, as hashing every
    uncompressed byte costs about as much as decompressing them. A compressed blob known only
    by its diff_id (a docker-archive of gzip layers) is checked only with `tar_too`. A blob
    its source `vouched` for (checked against its diff_id as it sent it) is not hashed again.
    """
    if not limits.verify:
        return BlobChecks()
    if vouched:
        return BlobChecks(vouched=ref.diff_id)
    stored: list[tuple[str, str]] = []
    if ref.digest and ref.digest != ref.diff_id:
        stored.append((ref.digest, "the manifest"))
    if plain and ref.diff_id:
        stored.append((ref.diff_id, "the image config"))
    tar = ((ref.diff_id, "the image config"),) if tar_too and not plain and ref.diff_id else ()
    return BlobChecks(tuple(stored), tar)


def check_digests(label: str, expected: Iterable[tuple[str, str]],
                  computed: Mapping[str, str], what: str = "blob") -> None:
    """Raise DigestMismatch unless `computed` (algorithm → hex of the blob or of its `what`)
    matches every digest expected of it; a digest of an algorithm imagescope does not hash
    cannot be checked and is refused the same way."""
    for digest, named in expected:
        algorithm, _, hex_digest = digest.partition(":")
        if algorithm not in computed:
            raise DigestMismatch(f"{label}: cannot verify {digest[:80]!r} given by {named}: "
                                 "imagescope checks sha256, sha384 and sha512 digests "
                                 "(--no-verify reads the image unchecked)")
        if computed[algorithm] != hex_digest:
            raise DigestMismatch(
                f"{label}: the {what} does not match its digest: its {algorithm} is "
                f"{algorithm}:{computed[algorithm][:16]}… but {named} gives "
                f"{digest[:len(algorithm) + 17]}…; the image is corrupt or was altered "
                "(--no-verify skips this check)")


class SpanHasher:
    """Hashes `size` bytes of a file from `offset` on a thread of its own (pread and hashlib
    release the GIL), so a plain layer is verified while the parser seeks through it."""

    def __init__(self, fd: int, offset: int, size: int, algorithms: Iterable[str]) -> None:
        self._stop = threading.Event()
        self._result: dict[str, str] | str = "stopped"
        self._thread = threading.Thread(
            target=self._run, args=(fd, offset, size, tuple(sorted(algorithms))),
            name="imagescope-verify", daemon=True)
        self._thread.start()

    def _run(self, fd: int, offset: int, size: int, algorithms: tuple[str, ...]) -> None:
        self._result = hash_fd(fd, offset, size, algorithms, self._stop)

    def cancel(self) -> None:
        self._stop.set()
        self._thread.join()

    def result(self, label: str) -> dict[str, str]:
        self._thread.join()
        return hashed(label, self._result)


def hashed(label: str, result: dict[str, str] | str) -> dict[str, str]:
    """The digests `spanhash` computed for a blob, or the error telling why there are none."""
    if isinstance(result, dict):
        return result
    if result == "truncated":
        raise CorruptArchive(f"{label}: blob is truncated")
    if result == "changed":
        raise CorruptArchive(f"{label}: the blob changed while it was read")
    raise CorruptArchive(f"{label}: {result}")


@dataclass(slots=True)
class DeferredBlob:
    """A blob `DeferredChecks` took: layer `index`, `label` in errors, the digests expected of
    its stored bytes; `position` in the order the child hashes them, and what the child has
    `reported` so far."""

    index: int
    label: str
    span: Span
    expected: tuple[tuple[str, str], ...]
    position: int
    reported: list[dict[str, str] | str | None]
    store: Callable[[], object] | None = None  # set once the blob was read: stores what it gave

    def read(self, store: Callable[[], object]) -> None:
        """The blob was read; `store` stores what it gave once it matched: now, when the
        child has already hashed it to its digests (the analysis then does not hold the
        encoded entries), else when the checks settle."""
        result = self.reported[self.position] if len(self.reported) > self.position else None
        if isinstance(result, dict) and _matches(self.expected, result):
            store()
            store = _stored
        self.store = store


def _matches(expected: Iterable[tuple[str, str]], computed: Mapping[str, str]) -> bool:
    return all(computed.get(digest.partition(":")[0]) == digest.partition(":")[2]
               for digest, _ in expected)


def _stored() -> None:
    """The store of a blob whose entries were stored already."""


class DeferredChecks:
    """Digests of stored blob bytes checked beside the decoding, by a child process
    (`spanhash`) of low priority, and settled after the analysis.

    Hashing a compressed blob in the pass that decodes it takes a fifth of the decoders' time;
    the child hashes on what the decoders leave idle (the CPU the analysis after them does not
    use; with decoding threads, a decoder waiting for the GIL too). Rules:
    - Blobs are checked this way up to `budget` bytes in all (`take`); the rest while they are
      decoded. A budget within memory means the child and the decoders read the blobs from
      the page cache, not twice from disk.
    - Nothing read from a blob is stored (its `store`) before its digests matched; it is
      stored as soon as they did (the child ahead of the read: when the read ends).
    - The error raised is the one checking in the decoding pass would have raised first, in
      layer order: `settle` after a load failed, before its error, or after the analysis.
    - Blobs of fewer than `child_from` bytes in all are hashed in this process by `settle`:
      starting an interpreter costs more than hashing a few MiB.
    - `settle` hashes too, from the last blob back, while the child goes on from the first,
      until they meet: a child starved of CPU by a busy machine (its priority is low), slow,
      dead or never started costs no more than hashing here would.
    """

    def __init__(self, budget: int, *, child_from: int = 32 << 20, niceness: int = 10,
                 command: Sequence[str] | None = None) -> None:
        self._budget = budget
        self._child_from = child_from
        self._command = list(command) if command is not None else [
            sys.executable, "-I", "-S", spanhash.__file__, str(niceness)]
        self._blobs: list[DeferredBlob] = []  # in `take` order: the order the child hashes them
        self._child: subprocess.Popen[bytes] | None = None
        self._progress = _ChildProgress()
        self._reader: threading.Thread | None = None
        self._started = False

    @classmethod
    def within_memory(cls) -> DeferredChecks:
        """Checks with a budget of a quarter of this machine's memory (none when unknown)."""
        try:
            memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            memory = 0
        return cls(max(0, memory) // 4)

    def take(self, index: int, label: str, span: Span,
             expected: tuple[tuple[str, str], ...]) -> DeferredBlob | None:
        """The blob of layer `index` (`label` in errors) as these checks took it: while the
        budget lasts, before `start`; None when they do not."""
        if self._started or span.size > self._budget:
            return None
        self._budget -= span.size
        blob = DeferredBlob(index, label, span, expected, len(self._blobs),
                            self._progress.reported)
        self._blobs.append(blob)
        return blob

    def start(self) -> None:
        """Start hashing every blob taken, in a child process."""
        if self._started:
            return
        self._started = True
        if sum(blob.span.size for blob in self._blobs) < max(1, self._child_from):
            return
        import subprocess  # (7 ms: not for an image answered from the cache)

        try:
            child = subprocess.Popen(self._command, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except (OSError, ValueError):
            return  # no interpreter to start: `settle` hashes here
        self._child = child
        assert child.stdin is not None and child.stdout is not None
        try:
            with child.stdin:
                child.stdin.write(json.dumps([blob.span for blob in self._blobs]).encode())
        except OSError:
            pass  # it died: `settle` hashes here what it did not report
        self._reader = threading.Thread(target=self._progress.collect,
                                        args=(child.stdout, len(self._blobs)),
                                        name="imagescope-checks", daemon=True)
        self._reader.start()

    def settle(self) -> None:
        """Wait for the checks of the blobs read; store what each matching one gave, and
        raise the DigestMismatch (or CorruptArchive) of the first, in layer order, that does
        not match. Blobs taken but not read (the load failed) are let go."""
        blobs, self._blobs = self._blobs, []
        last = max((n for n, blob in enumerate(blobs) if blob.store is not None), default=-1)
        results = self._results(blobs[:last + 1])
        first: CorruptArchive | DigestMismatch | None = None
        for blob, result in sorted(zip(blobs, results, strict=False), key=lambda p: p[0].index):
            if blob.store is None:
                continue
            try:
                check_digests(blob.label, blob.expected, hashed(blob.label, result))
            except (CorruptArchive, DigestMismatch) as mismatch:
                first = first or mismatch
                continue
            blob.store()
        if first is not None:
            raise first

    def abandon(self) -> None:
        """Stop the checks, storing nothing."""
        self._blobs = []
        self._stop_child()

    def _results(self, blobs: list[DeferredBlob]) -> list[dict[str, str] | str]:
        """The hash of each of `blobs` (the first ones taken, in order): the child's from the
        first on, this process's from the last back, until they meet. The child is stopped
        then."""
        progress = self._progress
        reported = progress.reported
        child, self._child = self._child, None
        reader, self._reader = self._reader, None
        here: dict[int, dict[str, str] | str] = {}
        try:
            for position in range(len(blobs) - 1, -1, -1):
                if progress.reached(position):
                    break  # the child has come this far
                hashed_here = hash_span(blobs[position].span, progress.overtaken, _HASH_CHUNK)
                if hashed_here == "stopped":
                    break  # the child got there while this process hashed it
                here[position] = hashed_here
        finally:
            if child is not None:
                _stop(child, reader)
        results: list[dict[str, str] | str] = []
        for position, blob in enumerate(blobs):
            result = reported[position] if position < len(reported) else None
            if result is None:
                result = here.get(position)
            results.append(result if result is not None
                           else hash_span(blob.span, chunk=_HASH_CHUNK))
        return results

    def _stop_child(self) -> None:
        child, self._child = self._child, None
        reader, self._reader = self._reader, None
        if child is not None:
            _stop(child, reader)


class _ChildProgress:
    """What the child reported so far (a line a blob, in order), and an event set once it
    reported the blob this process is hashing (`reached`)."""

    def __init__(self) -> None:
        self.reported: list[dict[str, str] | str | None] = []
        self.overtaken = threading.Event()
        self._watched = -1

    def reached(self, position: int) -> bool:
        """Whether the child reported the blob at `position`; if not, watch it."""
        self._watched = position
        self.overtaken.clear()
        return len(self.reported) > position

    def collect(self, lines: IO[bytes], count: int) -> None:
        """Read the child's lines, up to `count` of them."""
        try:
            for line in lines:
                self.reported.append(_reported(line))
                if len(self.reported) > self._watched >= 0:
                    self.overtaken.set()
                if len(self.reported) >= count:
                    return
        except (OSError, ValueError):  # stopped under us
            return


def _stop(child: subprocess.Popen[bytes], reader: threading.Thread | None) -> None:
    """Kill the child if it runs, let `reader` see the end of its output, and reap it."""
    if child.poll() is None:
        child.kill()
    if reader is not None:
        reader.join()
    if child.stdout is not None:
        child.stdout.close()
    child.wait()


def _reported(line: bytes) -> dict[str, str] | str | None:
    """A result line of the child, or None when it is not one."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                       for k, v in value.items()):
        return value
    return None
