"""The browser driven by keys (Textual's Pilot) on a hand-made image: what its widgets hold.

The image (conftest): layer 0 writes /etc/motd (8 B) and /bin/sh (3,000 B); layer 1
/usr/bin/gcc (9,000 B), /root/.cache/pip/wheel.whl (4,000 B) and a private key (95 B);
layer 2 whites all three out; layer 3 writes /app/main.py (15 B) and /etc/motd again,
unchanged.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input, Static, Tree

from imagescope.browse.app import BrowseApp, ContentScreen, HelpScreen
from tests.browse.conftest import APP, KEY


def labels(app: BrowseApp, node: Any = None) -> list[str]:
    tree = app.query_one("#tree", Tree)
    return [str(child.label) for child in (node or tree.root).children]


def cell_column(table: DataTable, column: int) -> list[str]:
    return [str(table.get_row_at(row)[column]) for row in range(table.row_count)]


async def settle(app: BrowseApp, pilot: Any) -> None:
    """Wait for the trees built on threads and what they post back."""
    await app.workers.wait_for_complete()
    await pilot.pause()


async def press(app: BrowseApp, pilot: Any, *keys: str) -> None:
    await pilot.press(*keys)
    await settle(app, pilot)


def run(opened: Any, steps: Any, size: tuple[int, int] = (160, 48)) -> None:
    """Run the app headless and call the coroutine `steps(app, pilot)` in it."""
    import asyncio

    async def main() -> None:
        app = BrowseApp(opened)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            await steps(app, pilot)

    asyncio.run(main())


def test_the_waste_ranking_lists_hidden_files_most_bytes_first(opened: Any) -> None:
    async def steps(app: BrowseApp, pilot: Any) -> None:
        await press(app, pilot, "2")
        table = app.query_one("#waste-table", DataTable)
        assert cell_column(table, 3) == ["/usr/bin/gcc", "/root/.cache/pip/wheel.whl",
                                         "/root/.ssh/id_rsa", "/etc/motd"]
        assert cell_column(table, 2) == ["#1 → #2", "#1 → #2", "#1 → #2", "#0 → #3"]
        assert cell_column(table, 1) == ["removed", "removed", "removed", "identical rewrite"]
        assert cell_column(table, 0)[0] == "8.8 KiB"  # 9,000 bytes

    run(opened, steps)


def test_a_layer_shows_its_own_entries_marked(opened: Any) -> None:
    async def steps(app: BrowseApp, pilot: Any) -> None:
        # the top layer first: its two entries, the rewrite of /etc/motd marked
        assert app.layer == 3
        assert labels(app) == ["+ app/  15 B", "  etc/  8 B"]
        etc = app.query_one("#tree", Tree).root.children[1]
        etc.expand()
        await settle(app, pilot)
        assert labels(app, etc) == ["= motd  8 B  "[:-2]]
        # up to layer 2: three whiteouts, marked removed
        await press(app, pilot, "up")
        await pilot.pause()
        assert app.layer == 2
        assert labels(app) == ["  root/  0 B", "  usr/  0 B"]
        root = app.query_one("#tree", Tree).root.children[0]
        root.expand()
        await settle(app, pilot)
        # a whiteout is a name (whatever it hid); .ssh/ was there below: unchanged
        assert labels(app, root) == ["- .cache  0 B", "  .ssh/  0 B"]

    run(opened, steps)


def test_the_image_as_of_a_layer_and_the_only_waste_filter(opened: Any) -> None:
    async def steps(app: BrowseApp, pilot: Any) -> None:
        await press(app, pilot, "up", "up")  # layer 1
        assert app.layer == 1
        await press(app, pilot, "a")  # the image as of layer 1: usr/ and root/ new in it
        assert labels(app) == ["+ usr/  8.8 KiB  waste 8.8 KiB",
                               "+ root/  4.0 KiB  waste 4.0 KiB",
                               "  bin/  2.9 KiB", "  etc/  8 B  waste 8 B"]
        await press(app, pilot, "w")  # only waste: the four hidden files
        status = str(app.query_one("#status", Static).render())
        assert "4 matches" in status and "only waste" in status
        tree = app.query_one("#tree", Tree)
        leaves = []
        stack = list(tree.root.children)
        while stack:
            node = stack.pop()
            if node.data is not None and not node.data.is_dir:
                leaves.append(node.data.path)
            stack.extend(node.children)
        assert sorted(leaves) == ["etc/motd", "root/.cache/pip/wheel.whl", "root/.ssh/id_rsa",
                                  "usr/bin/gcc"]

    run(opened, steps)


def test_a_glob_filter_typed_after_slash(opened: Any) -> None:
    async def steps(app: BrowseApp, pilot: Any) -> None:
        await press(app, pilot, "a", "slash")
        assert app.focused is app.query_one("#filter", Input)
        await press(app, pilot, *"*.py", "enter")
        assert app.view.glob == "*.py"
        assert labels(app) == ["app/"]
        app_dir = app.query_one("#tree", Tree).root.children[0]
        assert [child.data.path for child in app_dir.children] == ["app/main.py"]
        await press(app, pilot, "escape")  # cleared: the whole tree again
        assert app.view.glob == ""
        # as of layer 3, by size; root/ and usr/ stay, emptied by the whiteouts
        assert labels(app) == ["  bin/  2.9 KiB", "+ app/  15 B", "  etc/  8 B", "  root/  0 B",
                               "  usr/  0 B"]

    run(opened, steps)


def test_a_waste_row_jumps_to_the_file_and_the_step_that_wrote_it(opened: Any) -> None:
    async def steps(app: BrowseApp, pilot: Any) -> None:
        await press(app, pilot, "2", "down", "enter")  # /root/.cache/pip/wheel.whl
        await pilot.pause()
        assert app.layer == 1
        tree = app.query_one("#tree", Tree)
        assert tree.cursor_node is not None
        assert tree.cursor_node.data.path == "root/.cache/pip/wheel.whl"
        details = str(app.query_one("#details", Static).render())
        assert "4,000 bytes" in details and "#1 wrote" in details
        assert "waste: 4,000 bytes" in details

    run(opened, steps)


def test_a_files_content_is_read_from_its_layer_on_demand(opened: Any) -> None:
    async def steps(app: BrowseApp, pilot: Any) -> None:
        app.jump("app/main.py", 3)
        await settle(app, pilot)
        await press(app, pilot, "enter")
        await pilot.pause()
        assert isinstance(app.screen, ContentScreen)
        assert str(app.screen.query_one("#file-content", Static).render()) == APP.decode()

    run(opened, steps)


def test_a_secret_is_shown_only_on_request(opened: Any) -> None:
    async def steps(app: BrowseApp, pilot: Any) -> None:
        await press(app, pilot, "3")  # findings: the key first (high)
        findings = app.query_one("#findings-table", DataTable)
        assert "private key" in str(findings.get_row_at(0)[3])
        await press(app, pilot, "enter")  # jump to it, in layer 1
        await pilot.pause()
        assert app.query_one("#tree", Tree).cursor_node.data.path == "root/.ssh/id_rsa"
        await press(app, pilot, "enter")
        await pilot.pause()
        content = app.screen.query_one("#file-content", Static)
        assert "press S" in str(content.render())
        assert b"PRIVATE" not in str(content.render()).encode()
        await press(app, pilot, "S")
        await pilot.pause()
        assert str(content.render()) == KEY.decode()

    run(opened, steps)


def test_help_and_quit(opened: Any) -> None:
    async def steps(app: BrowseApp, pilot: Any) -> None:
        await press(app, pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await press(app, pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)
        await press(app, pilot, "q")
        assert app.return_code == 0 or app._exit_renderables is not None

    run(opened, steps)
