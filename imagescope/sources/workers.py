"""Tasks run in forked worker processes, one per CPU: layers decoded and parsed with no GIL
between them.

Rules:
- Workers are forked only from a process running a single thread (`can_fork`): a fork copies
  the calling thread alone, so no lock another thread held is left locked in the child.
- Workers take tasks in the order given from a shared pipe (the next free worker takes the next
  task), report progress as they go, and send each result (bytes) or failure (the exception,
  pickled) back through a pipe of their own. They write nothing else, and leave with
  `os._exit`: no buffer, atexit handler or temp file of the parent is touched twice.
- A worker that dies (a signal, the OOM killer) fails the task it was on with `WorkerDied`;
  the other workers take the tasks left.
- However the caller stops reading (done, an error, an interrupt), every worker is killed and
  reaped; if the parent itself is killed, the kernel kills its workers (`PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import os
import pickle
import selectors
import signal
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Self

from imagescope.errors import ExitCode, ImagescopeError, UsageError
from imagescope.progress import Progress

Work = Callable[[int, Progress], bytes]  # a task number and where to report progress → result

_TASK = struct.Struct("<I")
_MESSAGE = struct.Struct("<BIQ")  # kind, task, payload length (progress: 0, bytes read)
_STARTED, _PROGRESS, _DONE, _FAILED = range(4)
_PROGRESS_STEP = 1 << 20  # bytes read before a worker reports them
_READ_SIZE = 1 << 20
_PR_SET_PDEATHSIG = 1  # (linux/prctl.h)


class WorkerDied(ImagescopeError):
    """A worker process ended without a result for its task (killed, out of memory)."""

    exit_code = ExitCode.INTERNAL_ERROR


def _cpus() -> int:
    return min(4, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class Readers:
    """How many compressed layers are decoded side by side (fewer than 2: one after another),
    and whether in forked workers where `can_fork` allows (else on threads)."""

    count: int = field(default_factory=_cpus)
    processes: bool = True

    @classmethod
    def from_environment(cls) -> Readers:
        """As IMAGESCOPE_READERS says: `N` readers, `N,threads` on threads (unset: the
        default); a value of another form is a UsageError."""
        value = os.environ.get("IMAGESCOPE_READERS", "").strip()
        if not value:
            return cls()
        count, _, mode = value.partition(",")
        if not count.isdigit() or mode not in ("", "threads", "processes"):
            raise UsageError(f"IMAGESCOPE_READERS={value!r}: expected N, N,threads or "
                             "N,processes")
        return cls(int(count), mode != "threads")

    def may_fork(self) -> bool:
        return self.processes and can_fork()


def can_fork() -> bool:
    """Whether tasks may run in forked workers here: Linux (fork is the platform's own way to
    start a process) and no thread but this one."""
    return sys.platform == "linux" and threading.active_count() == 1


def start_workers(work: Work, tasks: Sequence[int], count: int) -> WorkerPool:
    """Fork up to `count` workers (no more than there are tasks) to run `work` on each of
    `tasks`, taken in that order. OSError when not even one could be forked."""
    pool = WorkerPool(tasks)
    try:
        for _ in range(max(1, min(count, len(tasks)))):
            try:
                pool.fork(work)
            except OSError:
                if not pool.children:
                    raise
                break  # (fewer workers: the machine is short of processes or memory)
    except BaseException:
        pool.close()
        raise
    pool.close_task_reader()
    return pool


class WorkerPool:
    """The parent's side: the task pipe, the workers and their pipes (by read end). Use as a
    context manager: leaving it kills and reaps whatever still runs."""

    def __init__(self, tasks: Sequence[int]) -> None:
        self.pending = [_TASK.pack(task) for task in reversed(tasks)]  # popped from the end
        self.unresolved = dict.fromkeys(tasks)  # (ordered)
        self.task_read, self.task_write = os.pipe()
        os.set_blocking(self.task_write, False)
        self.children: dict[int, _Child] = {}
        self.parent = os.getpid()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fork(self, work: Work) -> None:
        result_read, result_write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(result_read)
            os.close(result_write)
            raise
        if pid == 0:  # the worker
            _die_with_parent(self.parent)
            os.close(self.task_write)
            os.close(result_read)
            for other in self.children:
                os.close(other)
            _serve(work, self.task_read, result_write)
        os.close(result_write)
        self.children[result_read] = _Child(pid)

    def close_task_reader(self) -> None:
        os.close(self.task_read)
        self.task_read = -1

    def outcomes(self, progress: Progress) -> Iterator[tuple[int, bytes | BaseException]]:
        """Each task's result, or the exception it failed with, as it arrives; bytes the
        workers read go to `progress.read_advanced`. Tasks are handed out as the pipe takes
        them."""
        with selectors.DefaultSelector() as selector:
            for fd in self.children:
                selector.register(fd, selectors.EVENT_READ)
            self._feed(selector)
            while self.children:
                for key, _ in selector.select():
                    if key.fd == self.task_write:
                        self._feed(selector)
                        continue
                    child = self.children[key.fd]
                    data = os.read(key.fd, _READ_SIZE)
                    if data:
                        child.buffer += data
                        yield from self._outcomes(child, progress)
                        continue
                    selector.unregister(key.fd)
                    yield from self._ended(key.fd)

    def _feed(self, selector: selectors.BaseSelector) -> None:
        """Write what the task pipe takes; close it once all is written, else watch it for
        room."""
        watched = self.task_write in selector.get_map()
        while self.pending:
            try:
                os.write(self.task_write, self.pending[-1])
            except BlockingIOError:
                if not watched:
                    selector.register(self.task_write, selectors.EVENT_WRITE)
                return
            self.pending.pop()
        if watched:
            selector.unregister(self.task_write)
        os.close(self.task_write)
        self.task_write = -1

    def _ended(self, fd: int) -> Iterator[tuple[int, bytes | BaseException]]:
        """A worker's pipe closed: it has ended. The task it was on, and when it was the last
        worker the tasks nobody took, fail."""
        os.close(fd)
        child = self.children.pop(fd)
        status = child.wait()
        lost = [child.task] if child.task is not None else []
        if not self.children:
            lost += self.unresolved
        for task in dict.fromkeys(lost):
            self.unresolved.pop(task, None)
            yield task, WorkerDied(_death(status))

    def _outcomes(self, child: _Child, progress: Progress
                  ) -> Iterator[tuple[int, bytes | BaseException]]:
        for kind, task, payload in child.messages():
            if kind == _PROGRESS:
                assert isinstance(payload, int)
                progress.read_advanced(payload)
            elif kind == _STARTED:
                child.task = task
            else:
                assert isinstance(payload, bytes)
                child.task = None
                self.unresolved.pop(task, None)
                yield task, payload if kind == _DONE else _unpickled(payload)

    def close(self) -> None:
        """Close every pipe end still open; kill and reap every worker still there."""
        for fd in (self.task_read, self.task_write):
            if fd >= 0:
                os.close(fd)
        self.task_read = self.task_write = -1
        for fd, child in self.children.items():
            os.close(fd)
            child.stop()
        self.children = {}


class _Child:
    """A worker as the parent sees it: its pid, the bytes it sent not yet read as messages,
    and the task it took last."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.buffer = bytearray()
        self.task: int | None = None
        self.reaped = False

    def messages(self) -> Iterator[tuple[int, int, bytes | int]]:
        """The whole messages in the buffer, taken out of it."""
        at = 0
        buffer = self.buffer
        while len(buffer) - at >= _MESSAGE.size:
            kind, task, size = _MESSAGE.unpack_from(buffer, at)
            if kind == _PROGRESS:
                at += _MESSAGE.size
                yield kind, task, size
                continue
            end = at + _MESSAGE.size + size
            if len(buffer) < end:
                break
            payload = bytes(buffer[at + _MESSAGE.size:end])
            at = end
            yield kind, task, payload
        del buffer[:at]

    def stop(self) -> None:
        """Kill the worker if it still runs, and reap it."""
        if self.reaped:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait()

    def wait(self) -> int:
        """Reap the worker; its wait status."""
        self.reaped = True
        while True:
            try:
                return os.waitpid(self.pid, 0)[1]
            except InterruptedError:
                continue
            except ChildProcessError:
                return 0


def _death(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"a worker process decoding layers was killed ({name})"
    return f"a worker process decoding layers exited early (status {os.waitstatus_to_exitcode(status)})"


def _unpickled(payload: bytes) -> BaseException:
    try:
        error = pickle.loads(payload)
    except (pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError,
            EOFError) as exc:  # (a class that cannot be rebuilt here)
        return RuntimeError(f"a worker's error could not be read back: {exc}")
    return error if isinstance(error, BaseException) else RuntimeError(repr(error))


# ---------------------------------------------------------------------- the worker's side

def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this worker when its parent dies, killed before it could stop its
    workers (Linux's prctl PR_SET_PDEATHSIG); leave at once if that happened already."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # (no prctl: the worker ends when its pipe breaks)
        pass
    if os.getppid() != parent:
        os._exit(1)


def _serve(work: Work, task_read: int, result_write: int) -> None:
    """Take tasks until the pipe is empty and closed, then leave the process."""
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: go, quietly (the parent reports)
        out = _Sender(result_write)
        sink = _PipeProgress(out)
        while True:
            record = _read_exactly(task_read, _TASK.size)
            if record is None:
                break
            (task,) = _TASK.unpack(record)
            out.send(_STARTED, task, b"")
            try:
                result = work(task, sink)
                kind = _DONE
            except Exception as exc:  # noqa: BLE001 (any failure is the parent's to raise)
                result, kind = _pickled(exc), _FAILED
            sink.flush()
            out.send(kind, task, result)
        status = 0
    finally:
        os._exit(status)


def _read_exactly(fd: int, size: int) -> bytes | None:
    """`size` bytes, or None at the end of the pipe."""
    data = b""
    while len(data) < size:
        more = os.read(fd, size - len(data))
        if not more:
            return None
        data += more
    return data


def _pickled(error: Exception) -> bytes:
    try:
        return pickle.dumps(error)
    except (pickle.PicklingError, TypeError, AttributeError):  # (it holds what cannot pickle)
        return pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))


class _Sender:
    """Framed messages onto the worker's pipe."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def send(self, kind: int, task: int, payload: bytes | int) -> None:
        if isinstance(payload, int):
            self._write(_MESSAGE.pack(kind, task, payload))
            return
        self._write(_MESSAGE.pack(kind, task, len(payload)))
        self._write(payload)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]


class _PipeProgress(Progress):
    """Bytes read by the worker, sent to the parent a MiB at a time."""

    def __init__(self, out: _Sender) -> None:
        self._out = out
        self._unsent = 0

    def read_advanced(self, nbytes: int) -> None:
        self._unsent += nbytes
        if self._unsent >= _PROGRESS_STEP:
            self.flush()

    def flush(self) -> None:
        if self._unsent:
            self._out.send(_PROGRESS, 0, self._unsent)  # (bytes read count for the whole bar)
            self._unsent = 0


__all__ = ["Readers", "WorkerDied", "WorkerPool", "can_fork", "start_workers"]
