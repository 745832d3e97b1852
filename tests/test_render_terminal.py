"""The terminal report's findings and recommendations: limited by --top, safe to print, stable."""

from __future__ import annotations

import re
from dataclasses import replace

from imagescope.analysis.findings.model import FileRef, Severity
from imagescope.analysis.overlay import HiddenHow
from imagescope.analysis.recommend import Recommendation
from imagescope.analysis.report import WastedFile
from imagescope.render import terminal
from tests.test_render_markdown import finding, hand_report, layer


def test_findings_table_recommendations_and_optimized_line() -> None:
    report = hand_report(findings=[
        finding(f"finding number {n}", (FileRef(f"/f{n}", 1000 * (10 - n), 1),),
                severity=Severity.HIGH if n == 0 else Severity.LOW)
        for n in range(5)])
    text = terminal.render(report, top=3, width=120)
    assert "Findings (3 of 5)" in text
    listed = [n for n in range(5) if f"finding number {n}" in text]
    assert listed == [0, 1, 2]
    assert "Recommendations (1 of 1)" in text
    assert "1. Stop shipping the apt-lists cache" in text
    assert "saves 1.0 MiB (1,048,576 bytes) · step 1" in text
    assert "end the RUN that runs `apt-get update` with `&& rm -rf /var/lib/apt/lists/*`" in text
    # shipped 10,000,000 − optimized 5,951,424 = 4,048,576 saved
    assert text.rstrip().endswith(
        "Optimized (all recommendations applied, same base image): 5.7 MiB (saves 3.9 MiB)")
    assert max(len(line) for line in text.splitlines()) <= 120


def test_multi_line_changes_keep_their_lines() -> None:
    change = "RUN apt-get update \\\n    && apt-get install -y curl \\\n    && rm -rf /var/lib/apt/lists/*"
    report = hand_report(recommendations=[
        Recommendation("merge-run", "Merge step 1 and step 2 into one RUN", 10, (1, 2), change, ())])
    lines = terminal.render(report, top=10, width=120).splitlines()
    start = lines.index("   RUN apt-get update \\")
    assert lines[start:start + 3] == ["   RUN apt-get update \\",
                                      "       && apt-get install -y curl \\",
                                      "       && rm -rf /var/lib/apt/lists/*"]


def test_nothing_found_and_top_zero() -> None:
    clean = hand_report(findings=[], recommendations=[])
    text = terminal.render(clean, top=10, width=120)
    assert "No findings." in text
    assert "Recommendations" not in text and "Optimized" not in text
    assert "Findings (" not in terminal.render(hand_report(), top=0, width=120)


def test_control_characters_and_undecodable_names_are_escaped() -> None:
    hostile = b"/x/\x1b]0;pwned\x07\xff\nname".decode("utf-8", "surrogateescape")
    report = hand_report(
        wasted_files=[WastedFile(hostile, 10, 0, 1, HiddenHow.REMOVED)],
        findings=[finding(f"cache at {hostile}", (FileRef(hostile, 10, 1),))],
        recommendations=[replace(hand_report().recommendations[0], change=f"rm {hostile}")])
    text = terminal.render(report, top=10, width=200)
    assert "\x1b" not in text and "\x07" not in text
    text.encode("utf-8")  # no lone surrogate
    # a path is shown whole on one line; prose (titles) turns line breaks into spaces and a
    # change keeps its lines
    escaped = "/x/\\x1b]0;pwned\\x07\\xff"
    assert f"{escaped}\\x0aname" in text.split("Top wasted files")[1].split("Findings")[0]
    assert f"cache at {escaped} name" in text
    assert f"rm {escaped}\n   name\n" in text


def test_image_text_cannot_drive_the_terminal_even_in_colour() -> None:
    """History, platform, ID and references are escaped like names, and their rich markup is
    printed as written: in colour, the only escape sequences are rich's own SGR colours."""
    history = "RUN \x1b[2J\x1b]8;;https://evil.example/\x1b\\x\x1b]8;;\x1b\\ \x07\x9b1m\r [bold]b[/]"
    report = hand_report(
        image=replace(hand_report().image, reference="app:[red]1\x1b[2J", image_id="[i]x\x07",
                      platform="linux/[blink]amd64\x1b[1A"),
        layers=[layer(0, history, 10, 0)])
    for color in (False, True):
        text = terminal.render(report, top=10, width=200, color=color)
        plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
        assert re.findall(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", plain) == []
        assert "app:[red]1\\x1b[2J  (engine)" in plain
        assert "ID          [i]x\\x07" in plain
        assert "Platform    linux/[blink]amd64\\x1b[1A" in plain
        assert ("RUN \\x1b[2J\\x1b]8;;https://evil.example/\\x1b\\x\\x1b]8;;\\x1b\\ \\x07\\x9b1m "
                "[bold]b[/]") in plain
