"""Every overlay and accounting rule on a hand-made layer stack; expected bytes worked out here."""

from __future__ import annotations

from imagescope.analysis.overlay import HiddenHow, replay
from imagescope.analysis.report import Report
from imagescope.api import analyze
from tests.stacks import directory, file, hardlink, image, opaque, symlink, whiteout


def account(*layers: list) -> Report:  # type: ignore[type-arg]
    img = image(*layers)
    report = analyze(img)
    # the invariant behind every figure: final bytes are those reachable by walking the final tree
    assert report.summary.final_bytes == replay(img.layers).final_bytes()
    return report


def wasted(report: Report) -> set[tuple[str, int, int, int, str]]:
    return {(w.path, w.bytes, w.layer_index, w.hidden_by_layer, str(w.how))
            for w in report.wasted_files}


def test_no_waste_when_nothing_is_hidden() -> None:
    report = account([directory("etc"), file("etc/a", 100)], [file("b", 50)])
    s = report.summary
    assert (s.total_bytes, s.final_bytes, s.wasted_bytes) == (150, 150, 0)
    assert s.efficiency == 1.0
    assert report.wasted_files == []


def test_whiteout_hides_a_lower_file() -> None:
    # 100 + 50 written, the 100-byte /a removed by layer 1
    report = account([file("a", 100), file("b", 50)], [whiteout("a")])
    s = report.summary
    assert (s.total_bytes, s.final_bytes, s.wasted_bytes, s.removed_bytes) == (150, 50, 100, 100)
    assert s.overwritten_bytes == 0
    assert s.efficiency == 50 / 150
    assert wasted(report) == {("/a", 100, 0, 1, "removed")}
    assert report.layers[0].wasted_bytes == 100
    assert report.layers[0].hidden_by == {1: 100}
    assert report.layers[1].wasted_bytes == 0


def test_whiteout_of_a_directory_hides_everything_below() -> None:
    # dive reports 0 here; the 10 + 20 bytes under /d are unreachable
    report = account([directory("d"), file("d/x", 10), directory("d/y"), file("d/y/z", 20),
                      file("e", 5)],
                     [whiteout("d")])
    assert report.summary.removed_bytes == 30
    assert report.summary.final_bytes == 5
    assert wasted(report) == {("/d/x", 10, 0, 1, "removed"), ("/d/y/z", 20, 0, 1, "removed")}


def test_whiteout_applies_to_lower_layers_only() -> None:
    # layer 1 whites out /a and writes a new 7-byte /a: the new one is visible, the old removed
    report = account([file("a", 100)], [file("a", 7), whiteout("a")])
    s = report.summary
    assert (s.total_bytes, s.final_bytes, s.removed_bytes, s.overwritten_bytes) == (107, 7, 100, 0)


def test_whiteout_of_a_missing_path_is_a_no_op() -> None:
    report = account([file("a", 10)], [whiteout("nothing"), whiteout("a/below-a-file")])
    assert report.summary.wasted_bytes == 0


def test_opaque_whiteout_hides_lower_children_not_the_layers_own() -> None:
    # the marker comes after the layer's own child: order inside a layer must not matter
    report = account([directory("d"), file("d/x", 10), directory("d/sub"), file("d/sub/y", 20),
                      file("keep", 1)],
                     [directory("d"), file("d/new", 5), opaque("d")])
    s = report.summary
    assert (s.total_bytes, s.final_bytes, s.removed_bytes) == (36, 6, 30)
    assert wasted(report) == {("/d/x", 10, 0, 1, "removed"), ("/d/sub/y", 20, 0, 1, "removed")}


def test_opaque_whiteout_of_the_root_directory() -> None:
    report = account([file("a", 10), file("b/c", 20)], [opaque(""), file("z", 1)])
    assert report.summary.removed_bytes == 30
    assert report.summary.final_bytes == 1


def test_file_over_directory_hides_the_directory_and_everything_below() -> None:
    report = account([directory("d"), file("d/x", 10), file("d/y", 20)], [file("d", 3)])
    s = report.summary
    assert (s.total_bytes, s.final_bytes, s.removed_bytes, s.overwritten_bytes) == (33, 3, 30, 0)


def test_directory_over_file_replaces_it() -> None:
    report = account([file("d", 40)], [directory("d"), file("d/x", 5)])
    s = report.summary
    assert (s.final_bytes, s.overwritten_bytes, s.removed_bytes) == (5, 40, 0)
    assert wasted(report) == {("/d", 40, 0, 1, "overwritten")}


def test_directory_replaced_by_file_and_back() -> None:
    # /d/x (10) lost when /d became a file; that file (3) lost when /d became a directory again
    report = account([directory("d"), file("d/x", 10)],
                     [file("d", 3)],
                     [directory("d"), file("d/y", 4)])
    s = report.summary
    assert (s.total_bytes, s.final_bytes, s.wasted_bytes) == (17, 4, 13)
    assert wasted(report) == {("/d/x", 10, 0, 1, "removed"), ("/d", 3, 1, 2, "overwritten")}


def test_directory_over_directory_merges() -> None:
    report = account([directory("d"), file("d/x", 10)], [directory("d"), file("d/y", 5)])
    assert report.summary.wasted_bytes == 0
    assert report.summary.final_bytes == 15


def test_missing_parent_directories_are_implied() -> None:
    report = account([file("x/y/z", 8)], [whiteout("x")])
    assert report.summary.removed_bytes == 8


def test_overwrite_with_other_content() -> None:
    report = account([file("a", 100, "A")], [file("a", 120, "B")])
    s = report.summary
    assert (s.total_bytes, s.final_bytes, s.overwritten_bytes, s.identical_rewrite_bytes) == \
        (220, 120, 100, 0)
    assert wasted(report) == {("/a", 100, 0, 1, "overwritten")}


def test_overwrite_with_same_size_but_other_content_is_not_identical() -> None:
    report = account([file("a", 100, "A")], [file("a", 100, "B")])
    assert report.summary.overwritten_bytes == 100
    assert report.summary.identical_rewrite_bytes == 0


def test_identical_rewrite_as_chmod_leaves_it() -> None:
    # RUN chmod -R copies every file up unchanged: the lower copy is pure waste
    report = account([file("app/a", 100, "A"), file("app/b", 30, "B")],
                     [directory("app"), file("app/a", 100, "A"), file("app/b", 30, "B")])
    s = report.summary
    assert (s.total_bytes, s.final_bytes, s.overwritten_bytes, s.identical_rewrite_bytes) == \
        (260, 130, 130, 130)
    assert {w.how for w in report.wasted_files} == {HiddenHow.IDENTICAL_REWRITE}


def test_each_overwrite_in_a_chain_is_charged_to_its_writer() -> None:
    report = account([file("a", 10)], [file("a", 20)], [file("a", 30)], [whiteout("a")])
    s = report.summary
    assert (s.total_bytes, s.final_bytes, s.overwritten_bytes, s.removed_bytes) == (60, 0, 30, 30)
    assert wasted(report) == {("/a", 10, 0, 1, "overwritten"), ("/a", 20, 1, 2, "overwritten"),
                              ("/a", 30, 2, 3, "removed")}


def test_duplicate_entry_in_one_layer_later_wins() -> None:
    report = account([file("a", 10), file("a", 20)])
    assert report.summary.final_bytes == 20
    assert wasted(report) == {("/a", 10, 0, 0, "overwritten")}


def test_hardlinked_content_counts_once_in_final() -> None:
    report = account([file("a", 100), hardlink("h", "a"), hardlink("h2", "a")])
    assert (report.summary.total_bytes, report.summary.final_bytes) == (100, 100)


def test_hardlink_keeps_bytes_visible_until_its_last_name_goes() -> None:
    stack = ([file("a", 100), hardlink("h", "a")], [whiteout("a")])
    assert account(*stack).summary.wasted_bytes == 0
    report = account(*stack, [whiteout("h")])
    assert wasted(report) == {("/a", 100, 0, 2, "removed")}


def test_overwriting_one_name_of_a_hardlinked_file_wastes_nothing() -> None:
    report = account([file("a", 100), hardlink("h", "a")], [file("a", 30)])
    assert (report.summary.total_bytes, report.summary.final_bytes) == (130, 130)


def test_hardlink_to_a_lower_layer_file_keeps_it_visible() -> None:
    report = account([file("a", 100)], [hardlink("h", "a")], [whiteout("a")])
    assert report.summary.wasted_bytes == 0


def test_symlink_over_file_overwrites_it() -> None:
    report = account([file("a", 10)], [symlink("a", "/b")])
    assert wasted(report) == {("/a", 10, 0, 1, "overwritten")}


def test_whiteout_of_a_symlink_hides_nothing_behind_it() -> None:
    report = account([file("real/x", 9), symlink("link", "real")], [whiteout("link")])
    assert report.summary.wasted_bytes == 0


def test_per_layer_attribution_of_who_hid_what() -> None:
    report = account([file("a", 1), file("b", 2), file("c", 4)],
                     [whiteout("a"), file("b", 8)],
                     [whiteout("c"), whiteout("b")])
    assert report.layers[0].hidden_by == {1: 3, 2: 4}
    assert report.layers[0].wasted_bytes == 7
    assert report.layers[1].hidden_by == {2: 8}
    assert report.summary.removed_bytes == 1 + 4 + 8
    assert report.summary.overwritten_bytes == 2
    assert [layer.added_bytes for layer in report.layers] == [7, 8, 0]


def test_wasted_files_sorted_largest_first_then_by_path() -> None:
    report = account([file("b", 5), file("a", 5), file("c", 9)],
                     [whiteout("a"), whiteout("b"), whiteout("c")])
    assert [(w.path, w.bytes) for w in report.wasted_files] == [("/c", 9), ("/a", 5), ("/b", 5)]


def test_empty_image() -> None:
    report = account()
    assert report.summary.total_bytes == 0
    assert report.summary.efficiency == 1.0
