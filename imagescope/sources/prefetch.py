"""Chunks of a stream read ahead on a thread of their own, so that the producer never waits on
the consumer: the engine writes `docker save` only as fast as it is read, and a parser that
pauses (a GIL switch, a large layer's bookkeeping) would pause the engine with it."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator

_END = object()


class Prefetched:
    """Iterates the chunks of `source`, read by a thread up to `ahead` bytes in front of
    the consumer (its memory bound). The source's error is raised where its chunk would have
    come; `close` stops the thread and closes the source (from that thread)."""

    def __init__(self, source: Iterator[bytes], ahead: int = 8 << 20) -> None:
        self._source = source
        self._ahead = ahead
        self._queue: collections.deque[object] = collections.deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="imagescope-prefetch",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        item: object = _END
        try:
            self._pump()
        except Exception as exc:  # noqa: BLE001 (the source's failure: the consumer's to raise)
            item = exc
        close = getattr(self._source, "close", None)
        try:
            if close is not None:
                close()
        except Exception as exc:  # noqa: BLE001 (a failing close counts when nothing else did)
            item = exc if item is _END else item
        with self._cond:
            self._queue.append(item)
            self._cond.notify_all()

    def _pump(self) -> None:
        for chunk in self._source:
            with self._cond:
                while self._queued >= self._ahead and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                self._queue.append(chunk)
                self._queued += len(chunk)
                self._cond.notify_all()

    def __iter__(self) -> Prefetched:
        return self

    def __next__(self) -> bytes:
        with self._cond:
            while not self._queue:
                self._cond.wait()
            item = self._queue.popleft()
            if isinstance(item, bytes | bytearray | memoryview):
                self._queued -= len(item)
                self._cond.notify_all()
                return bytes(item) if not isinstance(item, bytes) else item
        if item is _END:
            self._queue.appendleft(_END)  # (it stays ended)
            raise StopIteration
        assert isinstance(item, BaseException)
        raise item

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        # a thread waiting on the source sees `_stopped` at its next chunk; it is a daemon,
        # so one stalled on a silent source holds nothing up
        self._thread.join(timeout=1.0)
