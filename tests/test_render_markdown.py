"""The Markdown report as GitHub shows it: structure, exact figures, escaping, size cap, stability.

The text is rendered to HTML with markdown-it (CommonMark + GFM tables, as rich already installs
it) and read back, so the tests check what a reader sees rather than what the code wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from imagescope.analysis.findings.model import Category, FileRef, Finding, Severity
from imagescope.analysis.overlay import HiddenHow
from imagescope.analysis.recommend import Recommendation
from imagescope.analysis.report import ImageRef, LayerReport, Report, Summary, WastedFile
from imagescope.api import inspect
from imagescope.render import markdown

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example-image.tar"
GITHUB_LIMIT = 65_536

# --- reading the rendered comment back ------------------------------------------------------


@dataclass
class Page:
    """What a reader of the rendered HTML sees: tables as cell text, code blocks, tags used."""

    tables: list[list[list[str]]] = field(default_factory=list)
    code_blocks: list[str] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    details_depth_min: int = 0
    details_depth_end: int = 0


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._cell: list[str] | None = None
        self._pre: list[str] | None = None
        self._summary: list[str] | None = None
        self._heading: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.page.tags.append(tag)
        if tag == "table":
            self.page.tables.append([])
        elif tag == "tr":
            self.page.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "pre":
            self._pre = []
        elif tag == "summary":
            self._summary = []
        elif tag in ("h2", "h3"):
            self._heading = []
        elif tag == "details":
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.page.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "pre" and self._pre is not None:
            self.page.code_blocks.append("".join(self._pre))
            self._pre = None
        elif tag == "summary" and self._summary is not None:
            self.page.summaries.append("".join(self._summary))
            self._summary = None
        elif tag in ("h2", "h3") and self._heading is not None:
            self.page.headings.append("".join(self._heading))
            self._heading = None
        elif tag == "details":
            self._depth -= 1
            self.page.details_depth_min = min(self.page.details_depth_min, self._depth)
        self.page.details_depth_end = self._depth

    def handle_data(self, data: str) -> None:
        for sink in (self._cell, self._pre, self._summary, self._heading):
            if sink is not None:
                sink.append(data)


def read(text: str) -> Page:
    reader = _Reader()
    reader.feed(MarkdownIt("commonmark").enable("table").render(text))
    reader.close()
    return reader.page


SUMMARY = ["Summary", "Size"]
FINDINGS = ["#", "Severity", "Size", "Steps", "Finding"]
LAYERS = ["Step", "Stored", "Added", "Wasted", "Instruction"]
WASTED = ["Size", "How", "Steps", "Path"]
FINDING_FILES = ["Size", "Steps", "Path"]


def table(page: Page, header: list[str]) -> list[list[str]]:
    """The one table with this header row."""
    matches = [t for t in page.tables if t and t[0] == header]
    assert len(matches) == 1, [t[0] for t in page.tables]
    return matches[0]


def as_mapping(table: list[list[str]]) -> dict[str, str]:
    return {row[0]: row[1] for row in table[1:]}


# --- hand-made reports -----------------------------------------------------------------------

def layer(index: int, instruction: str | None, added: int, wasted: int) -> LayerReport:
    return LayerReport(index=index, digest=None, diff_id=None, media_type=None,
                       stored_bytes=added // 2, entry_count=1, added_bytes=added,
                       wasted_bytes=wasted, hidden_by={}, created_by=instruction,
                       instruction=instruction)


def finding(title: str, files: tuple[FileRef, ...], *, severity: Severity = Severity.MEDIUM,
            rule: str = "package-cache") -> Finding:
    return Finding(rule=rule, category=Category.PACKAGE_CACHE, severity=severity, title=title,
                   subject=title, bytes=sum(f.bytes for f in files), files=files,
                   layers=tuple(sorted({f.layer_index for f in files})), removable=True)


def hand_report(**changes: object) -> Report:
    """3 layers: 10,000,000 bytes shipped, 2,500,000 removed and 500,000 overwritten
    (200,000 of them identical rewrites), so 7,000,000 final; 1,048,576 removable."""
    base = Report(
        image=ImageRef(reference="registry.example/app:1.2", source="engine",
                       image_id="sha256:" + "ab" * 32, repo_digest=None, platform="linux/amd64"),
        summary=Summary(total_bytes=10_000_000, final_bytes=7_000_000, wasted_bytes=3_000_000,
                        removed_bytes=2_500_000, overwritten_bytes=500_000,
                        identical_rewrite_bytes=200_000, layer_count=3),
        layers=[layer(0, "ADD rootfs.tar /", 6_000_000, 500_000),
                layer(1, "RUN apt-get update", 3_500_000, 2_500_000),
                layer(2, "COPY . /app", 500_000, 0)],
        wasted_files=[WastedFile("/var/lib/apt/lists/big", 2_500_000, 1, 2, HiddenHow.REMOVED),
                      WastedFile("/etc/ld.so.cache", 500_000, 0, 1, HiddenHow.OVERWRITTEN)],
        findings=[finding("apt lists alive in the final image",
                          (FileRef("/var/lib/apt/lists/Packages", 1_048_576, 1),))],
        recommendations=[Recommendation(
            "cache-cleanup", "Stop shipping the apt-lists cache", 1_048_576, (1,),
            "end the RUN that runs `apt-get update` with `&& rm -rf /var/lib/apt/lists/*`",
            ("package-cache:apt-lists",))],
        optimized_bytes=7_000_000 - 1_048_576,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def big_report(*, wasted: int = 50_000, findings: int = 200, files_per_finding: int = 250
               ) -> Report:
    layers = [layer(i, f"RUN step {i} && make -j8 | tee build.log", 1_000_000, 1000)
              for i in range(100)]
    wasted_files = [WastedFile(f"/usr/lib/python3/dist-packages/pkg{i:05d}/module_{i}.py",
                               100_000 - i, i % 50, 50 + i % 50, HiddenHow.REMOVED)
                    for i in range(wasted)]
    found = [finding(f"cache number {n} alive in `/root/.cache/{n}`",
                     tuple(FileRef(f"/root/.cache/{n}/entry-{j:04d}.bin", 10_000 - j, 3)
                           for j in range(files_per_finding)),
                     severity=Severity.HIGH if n < 5 else Severity.LOW)
             for n in range(findings)]
    recommendations = [Recommendation("merge-run", f"Merge step {i} and step {i + 1}", 5000 - i,
                                      (i, i + 1), f"RUN step {i} \\\n    && step {i + 1}", ())
                       for i in range(40)]
    return hand_report(layers=layers, wasted_files=wasted_files, findings=found,
                       recommendations=recommendations)


@pytest.fixture(scope="module")
def example() -> Report:
    return inspect(str(EXAMPLE))


# --- structure and figures -------------------------------------------------------------------

def test_marker_heading_and_exact_summary_of_a_hand_made_report() -> None:
    text = markdown.render(hand_report())
    assert text.startswith("<!-- imagescope-report -->\n")
    page = read(text)
    assert page.headings[0] == "imagescope: registry.example/app:1.2"
    summary = as_mapping(table(page, SUMMARY))
    assert summary["Shipped (all layers)"] == "9.5 MiB (10,000,000 bytes)"
    assert summary["Final filesystem"] == "6.7 MiB (7,000,000 bytes)"
    assert summary["Wasted"] == "2.9 MiB (3,000,000 bytes)"
    assert summary["↳ removed by a later step"] == "2.4 MiB (2,500,000 bytes)"
    assert summary["↳ overwritten by a later step"] == "488.3 KiB (500,000 bytes)"
    assert summary["↳ of which identical rewrites"] == "195.3 KiB (200,000 bytes)"
    assert summary["Efficiency"] == "70.00%"
    assert summary["Layers"] == "3"
    # 10,000,000 − (7,000,000 − 1,048,576) = 4,048,576 saved
    assert summary["Optimized (all recommendations applied, same base image)"] == (
        "5.7 MiB (5,951,424 bytes), saves 3.9 MiB (4,048,576 bytes)")


def test_example_image_summary_findings_and_recommendations(example: Report) -> None:
    page = read(markdown.render(example, top=20))
    # figures worked out by hand in tests/test_example_image.py
    summary = as_mapping(table(page, SUMMARY))
    assert summary["Shipped (all layers)"] == "80.8 KiB (82,731 bytes)"
    assert summary["Final filesystem"] == "27.6 KiB (28,231 bytes)"
    assert summary["Wasted"] == "53.2 KiB (54,500 bytes)"
    assert summary["↳ removed by a later step"] == "44.9 KiB (46,000 bytes)"
    assert summary["↳ overwritten by a later step"] == "8.3 KiB (8,500 bytes)"
    assert summary["↳ of which identical rewrites"] == "5.9 KiB (6,000 bytes)"
    assert summary["Efficiency"] == "34.12%"
    assert summary["Layers"] == "5"

    assert [h for h in page.headings if h.startswith(("Findings", "Recommendations"))] == [
        f"Findings ({len(example.findings)})", f"Recommendations ({len(example.recommendations)})"]
    findings = table(page, FINDINGS)
    assert findings[0] == ["#", "Severity", "Size", "Steps", "Finding"]
    # titles quote instructions as inline code: a reader sees them without the backticks
    assert [row[4] for row in findings[1:]] == [f.title.replace("`", "") for f in example.findings]
    layers = table(page, LAYERS)
    assert example.base is not None and example.base.layer_count == 1  # the history's CMD
    assert [row[4] for row in layers[1:]] == ["base image"] + [la.instruction
                                                               for la in example.layers[1:]]
    wasted = table(page, WASTED)
    assert [row[3] for row in wasted[1:]] == [w.path for w in example.wasted_files]
    # the merge of the install and removal steps is shown whole, in a code block
    merge = next(r for r in example.recommendations if r.rule == "merge-run")
    assert "\n" in merge.change
    assert merge.change + "\n" in page.code_blocks


def test_details_blocks_are_balanced_and_hold_the_lists(example: Report) -> None:
    text = markdown.render(example, top=20)
    lines = text.splitlines()
    assert lines.count("<details>") == lines.count("</details>") >= 3
    page = read(text)
    assert page.details_depth_min == 0 and page.details_depth_end == 0
    assert page.summaries[0] == f"Layers ({len(example.layers)})"
    assert page.summaries[1].startswith(f"Wasted files: {len(example.wasted_files)}")
    assert sum(s.startswith("Finding ") for s in page.summaries) == sum(
        1 for f in example.findings if f.files)


def test_top_bounds_every_list_and_says_how_many_more() -> None:
    report = big_report(wasted=30, findings=12, files_per_finding=7)
    page = read(text := markdown.render(report, top=3))
    assert len(table(page, FINDINGS)) == 1 + 3
    assert "… 9 more findings (beyond `--top`" in text
    assert "… 37 more recommendations (beyond `--top`" in text
    wasted = table(page, WASTED)
    assert len(wasted) == 1 + 3
    assert "Wasted files: largest 3 of 30" in page.summaries[1]
    assert "Truncated" not in text  # --top is not truncation


def test_no_findings_no_recommendations_no_waste() -> None:
    clean = hand_report(
        summary=Summary(1000, 1000, 0, 0, 0, 0, 1), layers=[layer(0, "COPY app /", 1000, 0)],
        wasted_files=[], findings=[], recommendations=[], optimized_bytes=1000,
        warnings=["history has 2 steps | but <1> layer: layers shown by number"])
    text = markdown.render(clean)
    page = read(text)
    assert "blockquote" in page.tags
    assert "&lt;1&gt; layer" in text and "2 steps \\| but" in text
    assert "No findings." in text and "No recommendations." in text
    assert as_mapping(table(page, SUMMARY))["Wasted"] == "none"
    assert "Optimized (all recommendations applied, same base image)" not in text
    assert page.summaries == ["Layers (1)"]


# --- escaping --------------------------------------------------------------------------------

NASTY_INSTRUCTION = "RUN echo 'a|b' | tr '`' x && printf '%s\\|' <in >out &amp; *x* _y_"
NASTY_PATH = "/srv/we|ird`name\\|x<b>&amp;</details>[l](u) $x$.txt"


def test_instructions_and_paths_survive_tables_verbatim() -> None:
    report = hand_report(
        layers=[layer(0, NASTY_INSTRUCTION, 10, 5), layer(1, "RUN ``` fence", 10, 0)],
        wasted_files=[WastedFile(NASTY_PATH, 5, 0, 1, HiddenHow.REMOVED),
                      WastedFile("/plain|pipe", 4, 0, 1, HiddenHow.REMOVED)],
        findings=[finding("cache", (FileRef(NASTY_PATH, 5, 0, 1),))])
    text = markdown.render(report)
    page = read(text)
    layers = table(page, LAYERS)
    assert all(len(row) == 5 for row in layers)  # no pipe split a row
    assert [row[4] for row in layers[1:]] == [NASTY_INSTRUCTION, "RUN ``` fence"]
    wasted = table(page, WASTED)
    assert all(len(row) == 4 for row in wasted)
    assert [row[3] for row in wasted[1:]] == [NASTY_PATH, "/plain|pipe"]
    files = table(page, FINDING_FILES)
    assert files[1][2] == NASTY_PATH
    # nothing taken from the image became markup
    assert page.details_depth_min == 0 and page.details_depth_end == 0
    assert {"b", "a", "em", "del"}.isdisjoint(page.tags)
    assert page.tags.count("details") == 3  # layers, wasted files, the finding's files


def test_titles_and_changes_are_prose_with_code_kept() -> None:
    title = "*not em* <script>x</script> & `RUN a | b` | [link](http://x) $HOME$ ~~s~~"
    report = hand_report(
        findings=[finding(title, (FileRef("/x", 1, 0),))],
        recommendations=[Recommendation("r", "Use `--no-cache` | <now>", 10, (0,),
                                        "run `pip install --no-cache-dir` <not a tag>", ())])
    text = markdown.render(report)
    page = read(text)
    findings = table(page, FINDINGS)
    assert findings[1][4] == title.replace("`RUN a | b`", "RUN a | b")
    assert len(findings[1]) == 5
    assert {"script", "em", "a", "del", "s"}.isdisjoint(page.tags)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "**1. Use `--no-cache` \\| &lt;now&gt;**" in text
    assert "Change: run `pip install --no-cache-dir` &lt;not a tag&gt;" in text


def test_non_utf8_and_control_characters_in_paths_are_escaped() -> None:
    undecodable = b"/data/caf\xe9/\x1b[2Jx\nnext".decode("utf-8", "surrogateescape")
    report = hand_report(wasted_files=[WastedFile(undecodable, 7, 0, 1, HiddenHow.REMOVED)])
    text = markdown.render(report)
    text.encode("utf-8")  # no lone surrogate reaches the output
    assert "\x1b" not in text
    wasted = table(read(text), WASTED)
    assert wasted[1][3] == "/data/caf\\xe9/\\x1b[2Jx\\x0anext"


def test_code_spans_and_blocks_outgrow_any_backtick_run() -> None:
    assert markdown.code("a`b") == "``a`b``"
    assert markdown.code("`x`") == "`` `x` ``"
    assert markdown.code("a|b", cell=True) == "`a\\|b`"
    block = markdown.code_block("x\n```\ny ````` z")
    assert block.startswith("``````\n") and block.endswith("\n``````")
    page = read(block)
    assert page.code_blocks == ["x\n```\ny ````` z\n"]


# --- the size cap ----------------------------------------------------------------------------

@pytest.mark.parametrize("top", [10, 100, 1_000_000])
def test_a_huge_report_stays_under_the_github_limit(top: int) -> None:
    report = big_report()
    text = markdown.render(report, top=top)
    assert len(text.encode("utf-8")) <= GITHUB_LIMIT
    page = read(text)
    assert page.details_depth_min == 0 and page.details_depth_end == 0
    assert text.count("```") % 2 == 0
    # what matters most is always there, whole
    assert as_mapping(table(page, SUMMARY))["Wasted"] == "2.9 MiB (3,000,000 bytes)"
    assert len(table(page, FINDINGS)) == 1 + min(top, 200)
    if top > 10:
        note = text.rstrip("\n").splitlines()[-1]
        assert note.startswith("**Truncated** to fit a GitHub comment")
        assert "--format json" in note and "files listed per finding" in note


def test_file_lists_are_cut_first_and_the_note_says_so() -> None:
    report = big_report(wasted=40, findings=60, files_per_finding=400)
    full = markdown.render(report, top=1000, limit=10**9)
    assert len(full.encode()) > GITHUB_LIMIT and "Truncated" not in full
    text = markdown.render(report, top=1000)
    assert len(text.encode()) <= GITHUB_LIMIT
    page = read(text)
    # the wasted files and layers are intact: only the findings' file lists were shortened
    wasted = table(page, WASTED)
    assert len(wasted) == 1 + 40
    assert len(table(page, LAYERS)) == 1 + 100
    note = text.rstrip("\n").splitlines()[-1]
    assert "files listed per finding" in note
    assert "wasted files listed" not in note and "layers listed" not in note
    assert "left out for length" in text


def test_a_tighter_limit_cuts_deeper_in_priority_order() -> None:
    report = big_report(wasted=5000, findings=50, files_per_finding=50)
    text = markdown.render(report, top=5000, limit=20_000)
    assert len(text.encode()) <= 20_000
    note = text.rstrip("\n").splitlines()[-1]
    assert "findings with their files listed 0 of 50" in note
    assert "wasted files listed" in note
    # findings and recommendations come last in the cut order: still listed
    page = read(text)
    assert len(table(page, FINDINGS)) > 1
    assert "**1. Merge step 0 and step 1**" in text


def test_limit_below_the_uncuttable_part_is_refused() -> None:
    with pytest.raises(ValueError):
        markdown.render(hand_report(), limit=1000)


# --- stability -------------------------------------------------------------------------------

def test_byte_for_byte_stable(example: Report) -> None:
    first = markdown.render(example)
    assert markdown.render(example) == first
    assert markdown.render(inspect(str(EXAMPLE))) == first
    big = big_report()
    assert markdown.render(big, top=100) == markdown.render(big_report(), top=100)
