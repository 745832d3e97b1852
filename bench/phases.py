"""Where one `inspect` spends its time, phase by phase, in one process (for profiling work).

`python -m bench.phases REF [--cache DIR | --no-cache] [--repeat N]` loads REF, then times the
analysis phases the way `api.analyze_image` runs them and the JSON rendering. Wall and CPU time
per phase, peak RSS at the end. Not a benchmark (see bench.run): a tool to find hot spots.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def timed(name: str, fn: Callable[..., T], *args: Any) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn(*args)
    print(f"  {name:24} {time.perf_counter() - wall:7.3f} s wall "
          f"{time.process_time() - cpu:7.3f} s cpu")
    return value


def analyze_once(image: Any, timed: Callable[..., Any]) -> None:
    """The phases of `api.analyze_image`, then the JSON rendering, each timed."""
    from imagescope.analysis import findings
    from imagescope.analysis.findings.view import ImageView
    from imagescope.analysis.overlay import replay, rewrite_candidates
    from imagescope.analysis.recommend import optimized_bytes, recommend
    from imagescope.analysis.report import build_report
    from imagescope.api import ensure_digests
    from imagescope.render import json as json_render

    result = timed("replay", replay, image.layers)
    timed("rewrite digests", lambda: ensure_digests(image, rewrite_candidates(result)))
    report = timed("build_report", build_report, image, result)
    view = ImageView(image, result)
    timed("live_files", lambda: view.live_files)
    found = timed("findings", findings.run, view)
    for rule in findings.rules():
        timed(f"  {rule.__module__.rsplit('.', 1)[-1]}", rule, view)
    recs = timed("recommend", recommend, found, view, findings.dockerignore_lines(found))
    full = dataclasses.replace(report, findings=found, recommendations=recs,
                               optimized_bytes=optimized_bytes(report.summary.total_bytes, found,
                                                               recs))
    text = timed("render json", json_render.render, full)
    print(f"  ({len(text):,} bytes of JSON)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phases", description=__doc__)
    parser.add_argument("reference")
    parser.add_argument("--cache", type=Path, help="layer cache directory (default: none)")
    parser.add_argument("--repeat", type=int, default=1, help="time the analysis N times")
    args = parser.parse_args(argv)
    gc.disable()  # as the CLI runs

    from imagescope.sources import load
    from imagescope.store.cache import LayerCache

    cache = LayerCache(args.cache) if args.cache else None
    image = timed("load", lambda: load(args.reference, cache=cache))
    print(f"  ({sum(len(layer.entries) for layer in image.layers):,} entries)")
    for _ in range(args.repeat):
        analyze_once(image, timed)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"  peak RSS {peak / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
