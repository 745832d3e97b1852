"""Chunks of a stream read ahead on a thread of their own, so that the producer never waits on
the consumer: the engine writes `docker save` only as fast as it is read, and a parser that
pauses (a GIL switch, a large layer's bookkeeping) would pause the engine with it."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator


class Prefetched:
    """Iterates the chunks of `source`, read by a thread up to `ahead` bytes in front of
    the consumer (its memory bound). The source's error is raised where its chunk would have
    come; `close` stops the thread, which closes the source."""

    def __init__(self, source: Iterator[bytes], ahead: int = 8 << 20) -> None:
        self._source = source
        self._ahead = ahead
        self._chunks: collections.deque[bytes] = collections.deque()
        self._queued = 0  # bytes in `_chunks`
        self._ended = False
        self._error: Exception | None = None
        self._stopped = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="imagescope-prefetch",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        error: Exception | None = None
        try:
            self._pump()
        except Exception as exc:  # noqa: BLE001 (the source's failure: the consumer's to raise)
            error = exc
        close = getattr(self._source, "close", None)
        try:
            if close is not None:
                close()
        except Exception as exc:  # noqa: BLE001 (a failing close counts when nothing else did)
            error = error or exc
        with self._cond:
            self._ended, self._error = True, error
            self._cond.notify_all()

    def _pump(self) -> None:
        for chunk in self._source:
            with self._cond:
                while self._queued >= self._ahead and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                self._chunks.append(chunk)
                self._queued += len(chunk)
                self._cond.notify_all()

    def __iter__(self) -> Prefetched:
        return self

    def __next__(self) -> bytes:
        with self._cond:
            while not self._chunks and not self._ended:
                self._cond.wait()
            if self._chunks:
                chunk = self._chunks.popleft()
                self._queued -= len(chunk)
                self._cond.notify_all()
                return chunk
            if self._error is not None:
                raise self._error
            raise StopIteration

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        # a thread waiting on the source sees `_stopped` at its next chunk; it is a daemon,
        # so one stalled on a silent source holds nothing up
        self._thread.join(timeout=1.0)
