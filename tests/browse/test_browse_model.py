"""The browser's tree views on hand-made stacks (pure: no terminal): marks, sizes, filters."""

from __future__ import annotations

from imagescope.analysis.overlay import replay
from imagescope.analysis.report import build_report
from imagescope.browse.model import Filter, ImageTree, LayerTree, Mark, Waste
from imagescope.model import Entry, EntryKind, Image, Layer
from tests.stacks import file, hardlink


def image_of(*layers: list[Entry]) -> Image:
    return Image("stack", "test", [Layer(index=n, entries=list(e)) for n, e in enumerate(layers)])


def image_tree(image: Image, layer: int) -> ImageTree:
    waste = Waste(build_report(image, replay(image.layers)))
    below = replay(image.layers[:layer]) if layer else None
    return ImageTree(replay(image.layers[:layer + 1]), below, layer, waste)


def test_a_hardlink_counts_once_while_its_file_is_visible_then_at_its_own_name() -> None:
    # layer 0: a/data (1,000 B) and b/link → a/data; layer 1 deletes a/data
    image = image_of([file("a/data", 1000), hardlink("b/link", "a/data")],
                     [Entry("a/data", EntryKind.WHITEOUT)])
    as_of_0 = image_tree(image, 0)
    sizes = {item.path: item.size for item in as_of_0.children("", Filter())}
    assert sizes == {"a": 1000, "b": 0}  # the content once, under its file's own name
    link = as_of_0.children("b", Filter())[0]
    assert (link.size, link.waste) == (1000, 0)  # shown with what it reaches; not waste
    as_of_1 = image_tree(image, 1)
    sizes = {item.path: item.size for item in as_of_1.children("", Filter())}
    assert sizes == {"a": 0, "b": 1000}  # the file gone: the link holds the bytes


def test_marks_of_a_layer_against_the_image_below() -> None:
    image = image_of([file("x", 10, "old"), file("same", 5, "s"), file("gone", 7)],
                     [file("x", 12, "new"), file("same", 5, "s"), file("fresh", 3),
                      Entry("gone", EntryKind.WHITEOUT)])
    waste = Waste(build_report(image, replay(image.layers)))
    tree = LayerTree(image, 1, replay(image.layers[:1]), waste)
    marks = {item.path: item.mark for item in tree.children("", Filter(by_name=True))}
    assert marks == {"x": Mark.MODIFIED, "same": Mark.IDENTICAL, "fresh": Mark.ADDED,
                     "gone": Mark.REMOVED}
    # layer 0's files hidden by layer 1: x (10 B), same (5 B), gone (7 B)
    lower = LayerTree(image, 0, None, waste)
    assert {i.path: i.waste for i in lower.children("", Filter())} == {"x": 10, "same": 5,
                                                                       "gone": 7}


def test_filters_glob_only_waste_only_changes() -> None:
    image = image_of([file("app/a.py", 4), file("app/b.txt", 6), file("lib/c.py", 8)],
                     [file("app/b.txt", 9), file("lib/d.py", 1)])
    tree = image_tree(image, 1)

    def paths(view: Filter) -> list[str]:
        items, count = tree.matches(view)
        assert count == len(items)
        return sorted(item.path for item in items)

    assert paths(Filter(glob="*.py")) == ["app/a.py", "lib/c.py", "lib/d.py"]
    assert paths(Filter(glob="/lib/*")) == ["lib/c.py", "lib/d.py"]
    assert paths(Filter(only_changes=True)) == ["app/b.txt", "lib/d.py"]
    as_of_0 = image_tree(image, 0)
    items, _ = as_of_0.matches(Filter(only_waste=True))
    assert [(i.path, i.waste) for i in items] == [("app/b.txt", 6)]  # overwritten by layer 1


def test_two_hardlinks_left_when_the_file_is_gone_count_its_content_once() -> None:
    # layer 0: d/a (100 B), d/b and d/c → d/a; layer 1 deletes d/a
    image = image_of([file("d/a", 100), hardlink("d/b", "d/a"), hardlink("d/c", "d/a")],
                     [Entry("d/a", EntryKind.WHITEOUT)])
    tree = image_tree(image, 1)
    assert [(item.path, item.size) for item in tree.children("", Filter())] == [("d", 100)]


def test_a_jump_filters_on_the_path_alone_whatever_its_characters() -> None:
    from imagescope.browse.app import _literal
    from imagescope.browse.model import _glob_matches

    path = "/srv/a*b?[c].txt"
    assert _glob_matches(_literal(path), path)
    assert not _glob_matches(_literal(path), "/srv/aXXbY[c].txt")
    assert not _glob_matches(_literal(path), "/srv/axbyc.txt")
