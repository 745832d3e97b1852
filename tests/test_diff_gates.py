"""Comparing two versions of an image, and the CI gates on a report or a diff (hand-made stacks)."""

from __future__ import annotations

from imagescope.analysis.diff import Diff, FileState, align_steps, compare, final_files
from imagescope.analysis.findings.view import ImageView
from imagescope.analysis.gates import GateSettings, check_diff, check_report
from imagescope.analysis.overlay import replay
from imagescope.analysis.report import Report
from imagescope.api import BaseRef, analyze
from imagescope.model import Entry, HistoryStep
from imagescope.sizes import Growth
from tests.stacks import file, image, whiteout

BASE = "/bin/sh -c #(nop) ADD file:0123abcd in / "


def build(layers: list[tuple[str, str, list[Entry]]],
          base: BaseRef | None = None) -> tuple[Report, dict[str, FileState]]:
    """(layer id, created_by, entries) bottom-up → report and final files."""
    img = image(*[entries for _, _, entries in layers],
                history=[HistoryStep(created_by) for _, created_by, _ in layers])
    for layer, (layer_id, _, _) in zip(img.layers, layers, strict=True):
        layer.diff_id = f"sha256:{layer_id}"
    report = analyze(img, base)
    return report, final_files(ImageView(img, replay(img.layers)), report)


BASE_LAYER = ("base", BASE, [file("bin/sh", 1000, "sh"), file("etc/os-release", 100, "os")])
OLD = [BASE_LAYER,
       ("deps1", "/bin/sh -c pip install flask", [file("app/lib/flask.py", 5000, "f1")]),
       ("code1", "/bin/sh -c #(nop) COPY dir:aa in /app ", [file("app/main.py", 300, "m1"),
                                                            file("app/old.py", 40, "o")])]
NEW = [BASE_LAYER,
       ("deps2", "/bin/sh -c pip install flask requests",
        [file("app/lib/flask.py", 5000, "f1"), file("app/lib/requests.py", 2000, "r"),
         file("root/.cache/pip/wheel", 700, "w")]),
       ("code2", "/bin/sh -c #(nop) COPY dir:bb in /app ", [file("app/main.py", 300, "m2")]),
       ("clean", "/bin/sh -c rm -rf /root/.cache/pip", [whiteout("root/.cache/pip")])]


def diffed() -> tuple[Diff, Report, Report]:
    old, old_files = build(OLD)
    new, new_files = build(NEW)
    return compare(old, old_files, new, new_files), old, new


def test_sizes_and_shared_layers() -> None:
    diff, _, _ = diffed()
    # old: 1100 base + 5000 + 340 = 6440; new: 1100 + 7700 + 300 = 9100, 700 wasted
    assert (diff.total_bytes.old, diff.total_bytes.new, diff.total_bytes.delta) == (6440, 9100, 2660)
    assert (diff.final_bytes.old, diff.final_bytes.new) == (6440, 8400)
    assert (diff.wasted_bytes.old, diff.wasted_bytes.new) == (0, 700)
    assert (diff.layer_count.old, diff.layer_count.new) == (3, 4)
    assert (diff.shared_layers, diff.shared_bytes, diff.new_layer_bytes) == (1, 1100, 8000)
    assert diff.new_waste_bytes == 700


def test_steps_align_by_instruction() -> None:
    diff, _, _ = diffed()
    assert [(s.status, s.old_index, s.new_index) for s in diff.steps] == [
        ("unchanged", 0, 0), ("changed", 1, 1), ("changed", 2, 2), ("added", None, 3)]
    assert diff.steps[1].added_bytes.delta == 7700 - 5000


def test_same_instruction_with_new_content_is_rebuilt() -> None:
    old, _ = build([BASE_LAYER, ("a", "/bin/sh -c make", [file("x", 1)])])
    new, _ = build([BASE_LAYER, ("b", "/bin/sh -c make", [file("x", 2)])])
    assert [s.status for s in align_steps(old.layers, new.layers)] == ["unchanged", "rebuilt"]


def test_final_files_added_removed_changed_with_content_digest() -> None:
    diff, _, _ = diffed()
    by_path = {c.path: c for c in diff.files}
    # flask.py was written again by a new layer with the same content: not a change
    assert set(by_path) == {"/app/lib/requests.py", "/app/old.py", "/app/main.py"}
    assert by_path["/app/lib/requests.py"].status == "added"
    assert by_path["/app/old.py"].status == "removed"
    # same size and mode, other content: only the digest tells
    assert (by_path["/app/main.py"].status, by_path["/app/main.py"].changes) == \
        ("changed", ("content",))
    assert diff.files[0].path == "/app/lib/requests.py"  # largest change first


def test_directory_rollup() -> None:
    diff, _, _ = diffed()
    rollup = {r.path: r for r in diff.directories}
    assert (rollup["/app/lib"].added_bytes, rollup["/app/lib"].net_bytes) == (2000, 2000)
    assert (rollup["/app"].removed_bytes, rollup["/app"].net_bytes) == (40, -40)


def test_new_and_resolved_findings() -> None:
    diff, _, _ = diffed()
    assert [(f.rule, f.bytes.new) for f in diff.new_findings] == [("hidden-waste", 700)]
    assert diff.resolved_findings == []


def test_inspect_gates_pass_and_fail_with_reasons() -> None:
    _, _, new = diffed()
    results = check_report(new, GateSettings(max_wasted=699, min_efficiency=0.95, max_size=9100))
    verdicts = {r.gate: (r.passed, r.message) for r in results}
    assert verdicts["max-wasted"] == (False, "wasted 700 bytes, limit 699 bytes: 1 bytes over")
    assert verdicts["min-efficiency"][0] is False  # 8400 / 9100 = 92.3 %
    assert verdicts["max-size"] == (True, "size 9,100 bytes (8.9 KiB), limit 9,100 bytes (8.9 KiB)")


def test_ignore_globs_leave_accepted_waste_out() -> None:
    _, _, new = diffed()
    results = check_report(new, GateSettings(max_wasted=0, min_efficiency=1.0,
                                             ignore=("/root/.cache/pip",)))
    assert all(r.passed for r in results), results


def test_own_only_leaves_inherited_waste_out() -> None:
    report, _ = build([("b0", BASE, [file("tmp/x", 50)]), ("b1", "/bin/sh -c rm /tmp/x",
                                                           [whiteout("tmp/x")]),
                       ("own", "/bin/sh -c echo", [file("y", 5)]),
                       ("own2", "/bin/sh -c rm y", [whiteout("y")])],
                      BaseRef("base:1", ("sha256:b0", "sha256:b1")))
    assert report.base is not None
    assert (report.base.inherited_wasted_bytes, report.base.own_wasted_bytes) == (50, 5)
    settings = GateSettings(max_wasted=5, own_only=True)
    assert check_report(report, settings)[0].passed
    assert check_report(report, settings)[0].message == "own wasted 5 bytes, limit 5 bytes"
    assert not check_report(report, GateSettings(max_wasted=5))[0].passed
    assert not check_report(report, GateSettings(max_wasted=4, own_only=True))[0].passed


def test_diff_gates_growth_and_new_waste() -> None:
    diff, old, new = diffed()
    results = {r.gate: r for r in check_diff(diff, old, new, GateSettings(
        max_growth=Growth(percent=40.0), max_new_waste=700))}
    assert results["max-growth"].passed is False  # +2660 of 6440 = +41.3 %
    assert "+41.3%" in results["max-growth"].message
    assert results["max-new-waste"].passed is True
    results = {r.gate: r for r in check_diff(diff, old, new, GateSettings(
        max_growth=Growth(bytes=2660), max_new_waste=699))}
    assert results["max-growth"].passed is True
    assert results["max-new-waste"].passed is False


def test_new_waste_is_attributed_to_the_step_that_wrote_it() -> None:
    diff, _, _ = diffed()
    assert diff.new_waste_steps == [("RUN pip install flask requests", 700)]
