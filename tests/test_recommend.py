"""Step-pair findings and recommendations with measured savings, on hand-made stacks."""

from __future__ import annotations

import dataclasses

from imagescope.analysis.findings.model import Category, FileRef, Severity, make_finding
from imagescope.analysis.findings.view import ImageView
from imagescope.analysis.overlay import replay
from imagescope.analysis.recommend import optimized_bytes, recommend
from imagescope.analysis.report import Report
from imagescope.api import analyze
from imagescope.model import Entry, HistoryStep
from tests.stacks import captured, directory, file, image, whiteout

KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"

BASE = "/bin/sh -c #(nop) ADD file:0123abcd in / "
INSTALL = "/bin/sh -c apt-get update && apt-get install -y build-essential"
REMOVE = "/bin/sh -c apt-get remove -y build-essential"
COPY = "/bin/sh -c #(nop) COPY dir:feed in /app "
CHOWN = "/bin/sh -c chown -R app /app"


def analyzed(*layers: list, history: list[str]) -> Report:  # type: ignore[type-arg]
    return analyze(image(*layers, history=[HistoryStep(h) for h in history]))


def test_step_pair_finding_and_merge_run() -> None:
    # step 1 writes 4000 + 1000 bytes, step 2 removes both: one pair, 5000 bytes
    report = analyzed([file("bin/sh", 100)],
                      [file("usr/bin/gcc-12", 4000), file("var/lib/apt/lists/x", 1000)],
                      [whiteout("usr/bin/gcc-12"), whiteout("var/lib/apt/lists/x")],
                      history=[BASE, INSTALL, REMOVE])
    pairs = [f for f in report.findings if f.rule == "hidden-waste"]
    assert len(pairs) == 1
    pair = pairs[0]
    assert (pair.bytes, pair.layers, pair.category) == (5000, (1, 2), Category.HIDDEN_WASTE)
    assert [(r.path, r.bytes, r.layer_index, r.hidden_by) for r in pair.files] == [
        ("/usr/bin/gcc-12", 4000, 1, 2), ("/var/lib/apt/lists/x", 1000, 1, 2)]
    merge = [r for r in report.recommendations if r.rule == "merge-run"]
    assert len(merge) == 1
    assert merge[0].saved_bytes == 5000
    assert merge[0].steps == (1, 2)
    assert "apt-get install -y build-essential" in merge[0].change
    assert "&& apt-get remove -y build-essential" in merge[0].change


def test_identical_rewrite_is_its_own_finding_and_suggests_copy_chown() -> None:
    # COPY writes 300 + 200 bytes; chown -R rewrites both unchanged; 50 more overwritten with change
    report = analyzed([file("bin/sh", 10)],
                      [directory("app"), file("app/a", 300, "A"), file("app/b", 200, "B"),
                       file("app/c", 50, "C")],
                      [owned(file("app/a", 300, "A")), owned(file("app/b", 200, "B")),
                       owned(file("app/c", 50, "C2"))],
                      history=[BASE, COPY, CHOWN])
    rewrite = [f for f in report.findings if f.rule == "identical-rewrite"]
    changed = [f for f in report.findings if f.rule == "hidden-waste"]
    assert [f.bytes for f in rewrite] == [500]
    assert [f.bytes for f in changed] == [50]
    chown = [r for r in report.recommendations if r.rule == "copy-chown"]
    assert [r.saved_bytes for r in chown] == [500]
    assert chown[0].change.startswith("`COPY --chown=app dir:feed in /app`")
    assert "--chmod" not in chown[0].change  # the modes did not change


def owned(entry: Entry, uid: int = 1000, mode: int | None = None) -> Entry:
    return dataclasses.replace(entry, uid=uid, gid=uid, mode=entry.mode if mode is None else mode)


def test_copy_flags_follow_what_the_rewrite_changed() -> None:
    """`chmod -R 755` over copied files: `COPY --chmod=755`, no owner the image does not have."""
    report = analyzed([file("bin/sh", 10)], [file("app/run.sh", 300, "R")],
                      [owned(file("app/run.sh", 300, "R"), uid=0, mode=0o755)],
                      history=[BASE, COPY, "/bin/sh -c chmod -R 755 /app"])
    (rec,) = [r for r in report.recommendations if r.rule == "copy-chown"]
    assert rec.change.startswith("`COPY --chmod=755 dir:feed in /app`")
    assert "--chown" not in rec.change and rec.saved_bytes == 300


def test_a_chown_after_an_install_means_running_the_install_as_that_user() -> None:
    report = analyzed([file("bin/sh", 10)], [file("app/node_modules/x.js", 700, "X")],
                      [owned(file("app/node_modules/x.js", 700, "X"))],
                      history=[BASE, "/bin/sh -c npm install", "/bin/sh -c chown -R node:node /app"])
    (rec,) = [r for r in report.recommendations if r.rule == "avoid-rewrite"]
    assert rec.title == "Run step 1 as node instead of chown-ing its files after it"
    assert "`USER node`" in rec.change and "COPY --chown=node:node" in rec.change
    assert rec.saved_bytes == 700


def test_a_rewrite_that_changed_nothing_is_dropped_not_moved_into_copy() -> None:
    report = analyzed([file("bin/sh", 10)], [file("app/a", 300, "A")], [file("app/a", 300, "A")],
                      history=[BASE, COPY, CHOWN])
    assert [r.rule for r in report.recommendations if r.saved_bytes] == ["avoid-rewrite"]


def test_recommendations_rank_by_severity_then_bytes_saved() -> None:
    report = analyzed([file("bin/sh", 10)],
                      [file("a", 10), file("b", 9000), captured("root/.ssh/id_rsa", KEY)],
                      [whiteout("a")],
                      [whiteout("b")],
                      history=[BASE, INSTALL, REMOVE, REMOVE])
    ranked = [(r.rule, r.saved_bytes) for r in report.recommendations]
    # the secret (high) first, the root user (medium), then the two low merges by bytes
    assert ranked == [("build-secrets", len(KEY)), ("non-root-user", 0), ("merge-run", 9000),
                      ("merge-run", 10)]


def test_small_waste_in_base_files_is_a_finding_but_no_new_base() -> None:
    report = analyzed([file("etc/ld.so.cache", 1200)], [file("etc/ld.so.cache", 1300)],
                      history=[BASE, INSTALL])
    assert [f.bytes for f in report.findings if f.rule == "hidden-waste"] == [1200]
    assert not [r for r in report.recommendations if r.rule == "slim-base"]


def test_optimized_size_counts_a_file_two_findings_share_once() -> None:
    shared = FileRef("/usr/bin/gcc-12", 700, 1)
    only_one = FileRef("/usr/include/stdio.h", 300, 1)
    hidden = FileRef("/old", 5000, 1, hidden_by=2)  # hidden waste: saved once addressed
    findings = [
        make_finding(rule="toolchain-files", category=Category.TOOLCHAIN, severity=Severity.LOW,
                     title="t", subject="compilers", files=[shared, only_one], removable=True),
        make_finding(rule="toolchain-packages", category=Category.TOOLCHAIN,
                     severity=Severity.LOW, title="p", subject="dpkg", files=[shared],
                     removable=True),
        make_finding(rule="secret-in-lower-layer", category=Category.SECRET,
                     severity=Severity.HIGH, title="s", subject="private-key", files=[hidden]),
    ]
    recommendations = recommend(findings, ImageView(image(), replay([])))
    assert {r.rule for r in recommendations} == {"multi-stage", "build-secrets"}
    assert optimized_bytes(10_000, findings, recommendations) == 10_000 - 700 - 300 - 5000
    only_toolchain = [r for r in recommendations if r.rule == "multi-stage"]
    assert optimized_bytes(10_000, findings, only_toolchain) == 10_000 - 700 - 300
    # dpkg is where the packages were read, not a part of the toolchain
    assert only_toolchain[0].title == ("Move the build toolchain (compilers, build packages) to "
                                       "a builder stage")


def test_unaddressed_waste_stays_in_the_optimized_size() -> None:
    # 1200 bytes of base-image waste get no recommendation (below the new-base threshold)
    report = analyzed([file("etc/ld.so.cache", 1200)], [file("etc/ld.so.cache", 1300)],
                      history=[BASE, INSTALL])
    assert report.optimized_bytes == report.summary.total_bytes


def test_make_finding_counts_each_content_once() -> None:
    ref = FileRef("/a", 10, 0)
    finding = make_finding(rule="r", category=Category.DOCS, severity=Severity.LOW, title="t",
                           subject="doc", files=[ref, ref, FileRef("/b", 5, 1)])
    assert finding.bytes == 15
    assert finding.layers == (0, 1)
