"""Waste split by who can reclaim it, and the diff gate that passes the fix imagescope recommends.

The stack is issue #15's before/after pair in miniature: a base image that already ships apt
lists and archives (its history ends with `CMD ["bash"]`, the FROM boundary), then
- before: `RUN apt-get update`, `RUN apt-get install`, `COPY app.sh`, `RUN chmod +x app.sh`;
- after: one `RUN apt-get update && apt-get install … && apt-get clean && rm -rf lists`, and
  `COPY --chmod=755 app.sh`.
Every expected figure is worked out by hand below.
"""

from __future__ import annotations

import dataclasses

from imagescope.analysis.diff import Diff, compare, final_files
from imagescope.analysis.gates import GateSettings, check_diff, check_report
from imagescope.analysis.report import Report, WasteClass, layer_name, waste_class
from imagescope.api import BaseRef, analyze_image
from imagescope.model import Entry, HistoryStep
from imagescope.sizes import Growth

from .stacks import file, image, whiteout

BASE_LAYER = [file("var/lib/apt/lists/main", 800, "base lists"),
              file("var/cache/apt/archives/libc.deb", 200, "base deb")]
BASE_HISTORY = [HistoryStep("/bin/sh -c #(nop) ADD file:ab12 in / "),
                HistoryStep('/bin/sh -c #(nop)  CMD ["bash"]', empty_layer=True)]

BEFORE = [
    ("RUN /bin/sh -c apt-get update # buildkit",
     [file("var/lib/apt/lists/main", 900, "new lists"),  # hides the base's 800
      file("var/cache/apt/pkgcache.bin", 400, "pkgcache 1")]),
    ("RUN /bin/sh -c apt-get install -y curl # buildkit",
     [file("var/cache/apt/pkgcache.bin", 400, "pkgcache 2"),  # hides the update's 400
      file("var/cache/apt/archives/curl.deb", 300, "curl deb"),
      file("usr/bin/curl", 1000, "curl")]),
    ("COPY app.sh /app/ # buildkit", [file("app/app.sh", 50, "app")]),
    ("RUN /bin/sh -c chmod +x /app/app.sh # buildkit",
     [dataclasses.replace(file("app/app.sh", 50, "app"), mode=0o755)]),  # hides the COPY's 50
]
AFTER = [
    (("RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends curl "
     "&& apt-get clean && rm -rf /var/lib/apt/lists/* # buildkit"),
     [file("usr/bin/curl", 1000, "curl"), whiteout("var/lib/apt/lists/main"),
      whiteout("var/cache/apt/archives/libc.deb")]),  # hides the base's 800 + 200
    ("COPY --chmod=755 app.sh /app/ # buildkit",
     [dataclasses.replace(file("app/app.sh", 50, "app"), mode=0o755)]),
]


def analyzed(steps: list[tuple[str, list[Entry]]], *, history: bool = True,
             base: BaseRef | None = None):  # type: ignore[no-untyped-def]
    img = image(BASE_LAYER, *[entries for _, entries in steps],
                history=[*BASE_HISTORY, *[HistoryStep(text) for text, _ in steps],
                         HistoryStep('CMD ["/app/app.sh"]', empty_layer=True)] if history else [])
    img.layers[0].diff_id = "sha256:base"
    for number, layer in enumerate(img.layers[1:], 1):
        layer.diff_id = f"sha256:{id(steps)}-{number}"
    return analyze_image(img, base)


def diffed() -> tuple[Diff, Report, Report]:
    old, new = analyzed(BEFORE), analyzed(AFTER)
    return (compare(old.report, final_files(old.view, old.report), new.report,
                    final_files(new.view, new.report)), old.report, new.report)


def test_the_history_shows_the_base() -> None:
    report = analyzed(BEFORE).report
    assert report.base is not None and report.base.reference is None
    assert (report.base.layer_count, report.base.base_bytes) == (1, 1000)
    assert layer_name(report, 0) == "base image"
    assert layer_name(report, 1) == "RUN apt-get update"


def test_waste_is_split_by_who_can_reclaim_it() -> None:
    before, after = analyzed(BEFORE).report, analyzed(AFTER).report
    # before: 800 base lists hidden by the update (base-hidden); the update's 400 pkgcache hidden
    # by the install and the COPY's 50 by the chmod (own: 450); nothing inside the base
    assert before.summary.wasted_bytes == 1250
    assert before.base is not None
    assert (before.base.own_wasted_bytes, before.base.base_hidden_bytes,
            before.base.inherited_wasted_bytes) == (450, 800, 0)
    # after: the base's 800 + 200 hidden by the one RUN; no own waste
    assert after.base is not None
    assert (after.base.own_wasted_bytes, after.base.base_hidden_bytes) == (0, 1000)
    classes = {w.path: waste_class(w, 1) for w in before.wasted_files}
    assert classes == {"/var/lib/apt/lists/main": WasteClass.BASE_HIDDEN,
                       "/var/cache/apt/pkgcache.bin": WasteClass.OWN,
                       "/app/app.sh": WasteClass.OWN}


def test_the_recommended_fix_passes_the_readme_gates() -> None:
    """The README's CI example: --max-new-waste and --max-growth 5%; here at their strictest."""
    diff, old, new = diffed()
    # shipped 1000 + 1300 + 1700 + 50 + 50 = 4100 → 1000 + 1000 + 50 = 2050
    assert (diff.total_bytes.old, diff.total_bytes.new) == (4100, 2050)
    assert (diff.own_wasted_bytes.old, diff.own_wasted_bytes.new) == (450, 0)
    assert (diff.base_hidden_bytes.old, diff.base_hidden_bytes.new) == (800, 1000)
    assert diff.new_waste_bytes == 0
    assert diff.newly_hidden_base_bytes == 200  # the base's archives; its lists were hidden before
    results = check_diff(diff, old, new, GateSettings(max_new_waste=0,
                                                      max_growth=Growth(percent=0.0)))
    assert all(r.passed for r in results), results
    growth = next(r for r in results if r.gate == "max-growth")
    assert growth.message.startswith("shrank 2,050 bytes (2.0 KiB) (-50.0%)")
    hidden = next(r for r in results if r.gate == "max-new-waste")
    assert "base files newly hidden 200 bytes (not counted" in hidden.message


def test_new_own_waste_still_fails_the_gate() -> None:
    """The reverse change adds 450 bytes of own-step waste: that is new waste."""
    _diff, old, new = diffed()
    back = compare(new, {}, old, {})
    assert back.new_waste_bytes == 450
    results = check_diff(back, new, old, GateSettings(max_new_waste=449))
    assert not results[0].passed


def test_own_only_counts_only_what_own_steps_wrote() -> None:
    after = analyzed(AFTER).report
    assert not check_report(after, GateSettings(max_wasted=0))[0].passed  # 1000 in all
    result = check_report(after, GateSettings(max_wasted=0, own_only=True))[0]
    assert result.passed and result.message == "own wasted 0 bytes, limit 0 bytes"


def test_savings_claim_only_what_a_dockerfile_change_reclaims() -> None:
    before = analyzed(BEFORE).report
    by_rule = {r.rule: r for r in before.recommendations}
    # the apt caches own steps left live: 900 lists (update) + 300 archives (install); the base's
    # 200 archives ship whatever the Dockerfile does
    apt = [r for r in before.recommendations if r.rule == "cache-cleanup"]
    assert sum(r.saved_bytes for r in apt) == 900 + 300 + 400
    assert "slim-base" not in by_rule  # 800 base bytes hidden: under the 1 MiB worth a new base
    assert before.optimized_bytes is not None
    assert before.optimized_bytes >= before.base.base_bytes if before.base else False


def test_without_a_boundary_every_layer_is_own() -> None:
    report = analyzed(BEFORE, history=False).report
    assert report.base is None
    assert layer_name(report, 0) == "layer 0"


def test_a_named_base_decides_over_the_history() -> None:
    report = analyzed(BEFORE, history=False, base=BaseRef("debian:bookworm", ("sha256:base",))
                      ).report
    assert report.base is not None and report.base.reference == "debian:bookworm"
    assert (report.base.own_wasted_bytes, report.base.base_hidden_bytes) == (450, 800)
