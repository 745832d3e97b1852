"""Layers read in forked worker processes (`sources.workers`): every task's outcome, failures
carried back whole, dead workers told, and no process left behind however the reading ends;
through `blobs.read_layers`, the same entries and the same first error as the threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fixtures import imagegen as g
from imagescope.cli import main
from imagescope.errors import CorruptArchive, ExitCode
from imagescope.limits import ReadLimits
from imagescope.model import Layer
from imagescope.progress import Progress
from imagescope.sources import blobs, load
from imagescope.sources.workers import Readers, WorkerDied, can_fork, start_workers
from imagescope.store.cache import LayerCache
from tests.cli import run_cli
from tests.test_hostile import END, fails, header, oci, pad, pax

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not can_fork(), reason="workers are forked on Linux only")


class Counted(Progress):
    def __init__(self) -> None:
        self.read = 0

    def read_advanced(self, nbytes: int) -> None:
        self.read += nbytes


def children() -> list[int]:
    """This process's child processes, zombies included (a child not reaped is one)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.append(int(entry))
    return found


def square(task: int, progress: Progress) -> bytes:
    progress.read_advanced(task)
    return str(task * task).encode()


# ---------------------------------------------------------------------- the pool

def test_every_task_gives_its_result_and_its_bytes_read() -> None:
    progress = Counted()
    with start_workers(square, range(50), 2) as pool:
        outcomes = dict(pool.outcomes(progress))
    assert outcomes == {task: str(task * task).encode() for task in range(50)}
    assert progress.read == sum(range(50))  # 1225: each task reported its number
    assert children() == []


def test_one_worker_takes_the_tasks_in_the_order_given() -> None:
    order = [7, 3, 9, 0, 5]
    with start_workers(square, order, 1) as pool:
        assert [task for task, _ in pool.outcomes(Progress())] == order


def test_more_tasks_than_the_pipe_holds() -> None:
    """40,000 task numbers are 160,000 bytes: more than a pipe buffers (64 KiB); they are fed
    as the workers take them."""
    with start_workers(lambda task, progress: b"", range(40_000), 2) as pool:
        done = [task for task, _ in pool.outcomes(Progress())]
    assert sorted(done) == list(range(40_000))


def test_a_failure_comes_back_as_the_exception_raised() -> None:
    def work(task: int, progress: Progress) -> bytes:
        if task == 3:
            raise CorruptArchive("layer 3 (sha256:abc): corrupt gzip data")
        return b"ok"

    with start_workers(work, range(6), 2) as pool:
        outcomes = dict(pool.outcomes(Progress()))
    error = outcomes.pop(3)
    assert type(error) is CorruptArchive
    assert str(error) == "layer 3 (sha256:abc): corrupt gzip data"
    assert error.exit_code == ExitCode.CORRUPT_ARCHIVE
    assert outcomes == dict.fromkeys([0, 1, 2, 4, 5], b"ok")


def test_an_exception_that_does_not_pickle_is_told_by_name() -> None:
    class Local(Exception):  # (a class defined in a function: pickle cannot name it)
        pass

    def work(task: int, progress: Progress) -> bytes:
        raise Local("the message")

    with start_workers(work, [0], 1) as pool:
        [(_, error)] = list(pool.outcomes(Progress()))
    assert isinstance(error, RuntimeError)
    assert str(error) == "Local: the message"


def test_a_worker_killed_fails_its_task_and_the_other_takes_the_rest() -> None:
    def work(task: int, progress: Progress) -> bytes:
        if task == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return str(os.getpid()).encode()

    with start_workers(work, range(10), 2) as pool:
        outcomes = dict(pool.outcomes(Progress()))
    died = outcomes.pop(0)
    assert isinstance(died, WorkerDied)
    assert str(died) == "a worker process decoding layers was killed (SIGKILL)"
    assert died.exit_code == ExitCode.INTERNAL_ERROR
    assert sorted(outcomes) == list(range(1, 10))
    assert len(set(outcomes.values())) == 1  # all by the worker left
    assert children() == []


def test_when_every_worker_dies_every_task_left_fails() -> None:
    def work(task: int, progress: Progress) -> bytes:
        if task in (0, 1):  # the first task of each worker
            os._exit(3)
        return b"never"

    with start_workers(work, range(5), 2) as pool:
        outcomes = dict(pool.outcomes(Progress()))
    assert sorted(outcomes) == list(range(5))
    assert {str(error) for error in outcomes.values()} == {
        "a worker process decoding layers exited early (status 3)"}


def test_leaving_early_kills_and_reaps_every_worker() -> None:
    def work(task: int, progress: Progress) -> bytes:
        if task:
            threading.Event().wait()  # never returns
        return b"first"

    with start_workers(work, range(3), 2) as pool:
        for _ in pool.outcomes(Progress()):
            assert len(children()) == 2
            break
    assert children() == []


def test_an_interrupt_in_the_parent_kills_and_reaps_every_worker() -> None:
    class Interrupting(Progress):
        def read_advanced(self, nbytes: int) -> None:
            raise KeyboardInterrupt

    def work(task: int, progress: Progress) -> bytes:
        progress.read_advanced(2 << 20)  # (a progress message is sent from 1 MiB on)
        threading.Event().wait()
        return b""

    with pytest.raises(KeyboardInterrupt), start_workers(work, range(2), 2) as pool:
        list(pool.outcomes(Interrupting()))
    assert children() == []


def test_no_fork_while_another_thread_runs() -> None:
    assert can_fork()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not can_fork()
    finally:
        stop.set()
        other.join()
    assert can_fork()


# ---------------------------------------------------------------------- through read_layers

LAYERS = [g.layer_tar([g.file(f"l{i}/f{j}", size=300 + 97 * j + i) for j in range(40)]
                      + [g.whiteout(f"l{i - 1}/f0")] * bool(i)) for i in range(4)]


def as_tuples(layers: list[Layer]) -> list[list[tuple[object, ...]]]:
    return [[(e.path, e.kind, e.size, e.mode, e.uid, e.gid, e.link_target, e.digest, e.offset,
              e.content) for e in layer.entries] for layer in layers]


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_workers_and_threads_read_the_same_entries(tmp_path: Path, compression: g.Compression,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "oci"
    g.write_oci_layout(path, g.ImageSpec(layers=LAYERS), compression=compression)
    forked: list[int] = []
    start = start_workers

    def spied(*args: object, **kwargs: object) -> object:
        forked.append(1)
        return start(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(blobs, "start_workers", spied)
    by_workers = as_tuples(load(str(path), readers=Readers(2)).layers)
    assert forked == [1]
    by_threads = as_tuples(load(str(path), readers=Readers(2, processes=False)).layers)
    assert forked == [1]
    assert by_workers == by_threads
    assert [len(layer) for layer in by_workers] == [40, 41, 41, 41]
    assert all(entry[7] is not None for layer in by_workers for entry in layer if entry[1] == 0)


def test_the_first_failure_in_layer_order_is_the_error(tmp_path: Path, readers: str) -> None:
    """Layers 1 and 3 are cut short; 3 is the largest, read first: layer 1 is reported."""
    layers = [*LAYERS[:3], g.layer_tar([g.file("big", size=300_000)])]

    def cut(index: int, blob: bytes) -> bytes:
        return blob[:len(blob) // 2] if index in (1, 3) else blob

    path = tmp_path / "oci"
    g.write_oci_layout(path, g.ImageSpec(layers=layers), compression="gzip", blob_hook=cut)
    with pytest.raises(CorruptArchive, match=r"^layer 1 \(.*truncated"):
        load(str(path), limits=ReadLimits(verify=False))
    assert children() == []


def test_a_number_beyond_the_cache_encoding_is_read_and_not_cached(tmp_path: Path,
                                                                    readers: str) -> None:
    """A PAX uid of 2**70 does not fit the cache's 64-bit columns: the worker sends the layer
    another way; it is read all the same, and not cached (the other layer is)."""
    huge = pax({"uid": str(1 << 70)}) + header(b"f", size=b"%011o\0" % 4) + pad(b"data") + END
    image = oci(tmp_path, huge, LAYERS[0], compression="zstd")
    cache = LayerCache(tmp_path / "cache")
    layers = load(str(image), cache=cache).layers
    assert [(e.path, e.uid) for e in layers[0].entries] == [("f", 1 << 70)]
    assert len(layers[1].entries) == 40
    assert len(list((tmp_path / "cache").glob("*.layer"))) == 1


def test_a_corrupt_layer_read_by_a_worker_is_a_one_line_error(tmp_path: Path,
                                                              readers: str) -> None:
    def flip(index: int, blob: bytes) -> bytes:
        return blob[:40] + bytes([blob[40] ^ 0xFF]) + blob[41:] if index == 2 else blob

    path = tmp_path / "oci"
    g.write_oci_layout(path, g.ImageSpec(layers=LAYERS), compression="zstd", blob_hook=flip)
    line = fails(path, ExitCode.CORRUPT_ARCHIVE)
    assert line.startswith("imagescope: error: layer 2 (")
    assert children() == []


def test_a_progress_bar_on_a_terminal_leaves_the_workers_in_use(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """rich redraws the bars on the reader's events, not from a thread of its own: the
    process still runs one thread when the layers are read, and may fork."""
    monkeypatch.setenv("IMAGESCOPE_READERS", "2")
    monkeypatch.setenv("FORCE_TERMINAL", "1")
    forked: list[int] = []

    def spied(*args: object, **kwargs: object) -> object:
        forked.append(threading.active_count())
        return start_workers(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(blobs, "start_workers", spied)
    path = tmp_path / "oci"
    g.write_oci_layout(path, g.ImageSpec(layers=LAYERS), compression="zstd")
    with pytest.raises(SystemExit) as exited:
        main(["inspect", str(path), "--progress", "--format", "json", "-o",
              str(tmp_path / "report.json")])
    assert exited.value.code == ExitCode.OK
    assert "reading 4 layers" in capsys.readouterr().err  # (the bar went by)
    assert forked == [1]


def test_workers_die_with_a_parent_killed_before_it_could_stop_them(tmp_path: Path) -> None:
    """A parent killed outright (SIGKILL) cannot stop its workers: the kernel does."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, threading\n"
        "from imagescope.progress import Progress\n"
        "from imagescope.sources.workers import start_workers\n"
        "def work(task, progress):\n"
        "    os.write(1, b'%d\\n' % os.getpid())  # (one write: the two lines never mix)\n"
        "    threading.Event().wait()\n"
        "pool = start_workers(work, range(2), 2)\n"
        "list(pool.outcomes(Progress()))\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert parent.stdout is not None
        workers = [int(parent.stdout.readline()) for _ in range(2)]
        assert all(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:  # (killed whatever happened: a failure above leaves no process waiting forever)
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped has ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize(("value", "expected"), [
    ("1", Readers(1, True)), ("3,threads", Readers(3, False)), ("2,processes", Readers(2, True)),
])
def test_imagescope_readers_sets_the_readers(monkeypatch: pytest.MonkeyPatch, value: str,
                                             expected: Readers) -> None:
    monkeypatch.setenv("IMAGESCOPE_READERS", value)
    assert Readers.from_environment() == expected


def test_one_reader_forks_no_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forked: list[int] = []
    monkeypatch.setattr(blobs, "start_workers", lambda *a, **k: forked.append(1))
    path = tmp_path / "oci"
    g.write_oci_layout(path, g.ImageSpec(layers=LAYERS), compression="zstd")
    assert [len(layer.entries) for layer in load(str(path), readers=Readers(1)).layers] == [
        40, 41, 41, 41]
    assert forked == []


def test_a_malformed_imagescope_readers_is_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESCOPE_READERS", "many")
    result = run_cli("inspect", oci(tmp_path, LAYERS[0], compression="zstd"))
    assert result.returncode == ExitCode.USAGE
    assert result.stderr.strip().splitlines() == [
        "imagescope: error: IMAGESCOPE_READERS='many': expected N, N,threads or N,processes"]
