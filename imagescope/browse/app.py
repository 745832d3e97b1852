"""`imagescope browse`: the Textual app over an opened image (`api.Opened`).

Left, the layers (step, size, waste written / hidden); right, tabs: the file tree of the
selected layer (its own entries, or the image as of it: `a`), the waste ranking, the findings
and the recommendations. A row of the waste or findings tab jumps to its file. The tree is
Textual's line-rendered `Tree`, filled a directory at a time as it is expanded (a filtered view
lists at most `model.MAX_MATCHES` names), so an image of a million entries costs widgets for
what is on screen only.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
from collections.abc import Callable
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane, Tree
from textual.widgets.tree import TreeNode

from imagescope.analysis.findings.model import Category
from imagescope.api import Opened
from imagescope.browse.content import preview
from imagescope.browse.model import (
    MARK_SIGNS,
    Filter,
    ImageTree,
    Item,
    LayerTree,
    Mark,
    Waste,
    ancestors,
    written_by,
)
from imagescope.errors import ImagescopeError
from imagescope.render.text import one_line, printable, size

HELP = """\
[b]imagescope browse[/b] — keys

  ↑ ↓, PgUp PgDn       move; Enter or Space opens or closes a directory
  Tab / Shift+Tab       next / previous pane
  1 2 3 4               Files, Waste, Findings, Advice tabs
  a                     the layer's own entries ⇄ the image as of the layer
  w                     only waste (files a later layer hides)
  c                     only changes (what the layer wrote)
  s                     sort: size ⇄ name
  /                     filter by path glob (`*.pyc`, `/usr/lib/*`); Esc clears
  Enter                 on a file: its details and content; on a waste or finding row:
                        jump to the file
  ?                     this help          q   quit

Marks: + added  ~ modified  = identical rewrite  - removed (whiteout)
Sizes are exact bytes from the layer tars; "waste" is what a later layer hides.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help")


class ContentScreen(ModalScreen[None]):
    """A file's details and the head of its content, read on a worker thread (a layer may
    have to be decompressed up to the file); a secret's content only on request (`S`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("S", "reveal", "Show secret", show=False)]

    def __init__(self, details: str, read: Callable[[], str] | None, secret: bool,
                 note: str = "") -> None:
        super().__init__()
        self._details = details
        self._read = read
        self._secret = secret
        self._note = note

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="content-box"):
            yield Static(Text(self._details), id="file-details")
            yield Static(Text(self._note or "reading…"), id="file-content")

    def on_mount(self) -> None:
        if not self._secret and self._read is not None:
            self._start()

    def _start(self) -> None:
        read = self._read
        assert read is not None
        self.query_one("#file-content", Static).update(Text("reading…"))

        def work() -> None:
            text = read()
            self.app.call_from_thread(self._shown, text)

        self.run_worker(work, thread=True, group="content")

    def _shown(self, text: str) -> None:
        if self.is_attached:
            self.query_one("#file-content", Static).update(Text(text))

    def action_reveal(self) -> None:
        if self._secret and self._read is not None:
            self._start()


class BrowseApp(App[None]):
    """The browser over `opened`."""

    TITLE = "imagescope"
    CSS = """
    #layers { width: 45%; }
    #layers-table { height: 1fr; }
    #summary { height: auto; padding: 0 1; }
    #filter { dock: bottom; display: none; }
    #filter.shown { display: block; }
    #status { height: 1; padding: 0 1; background: $panel; }
    #details { height: auto; max-height: 8; padding: 0 1; border-top: solid $panel; }
    HelpScreen, ContentScreen { align: center middle; }
    #help { width: 84; height: auto; padding: 1 2; border: round $accent; background: $surface; }
    #content-box { width: 90%; height: 90%; border: round $accent; background: $surface;
                   padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "filter", "Filter"),
        Binding("a", "toggle_view", "Layer/Image"),
        Binding("w", "only_waste", "Only waste"),
        Binding("c", "only_changes", "Only changes"),
        Binding("s", "sort", "Sort"),
        Binding("1", "tab('files')", "Files", show=False),
        Binding("2", "tab('waste')", "Waste", show=False),
        Binding("3", "tab('findings')", "Findings", show=False),
        Binding("4", "tab('advice')", "Advice", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, opened: Opened) -> None:
        super().__init__()
        self.opened = opened
        self.report = opened.analysis.report
        self.image = opened.files.image
        self.waste = Waste(self.report)
        self.layer = len(self.image.layers) - 1
        self.image_view = False
        self.view = Filter()
        self.focus_path: str | None = None
        self.secrets = {ref.path.lstrip("/") for finding in self.report.findings
                        if finding.category is Category.SECRET for ref in finding.files}
        # (a hardlink to a secret holds it too: `is_secret` looks at the file it reaches)
        self._trees: dict[tuple[bool, int], ImageTree | LayerTree] = {}  # the last few
        self._generation = 0  # of the tree shown: a refresh supersedes the ones before
        self._models_lock = threading.RLock()
        self.entry_count = sum(len(layer.entries) for layer in self.image.layers)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        summary = self.report.summary
        with Horizontal():
            with Vertical(id="layers"):
                yield Static(Text(
                    f"{printable(self.report.image.reference)}\n"
                    f"{size(summary.total_bytes)} in {summary.layer_count} layers · wasted "
                    f"{size(summary.wasted_bytes)} · efficiency {summary.efficiency:.1%}"),
                    id="summary")
                yield DataTable(id="layers-table", cursor_type="row", zebra_stripes=True)
            with Vertical():
                with TabbedContent(initial="files", id="tabs"):
                    with TabPane("Files", id="files"):
                        yield Tree("/", id="tree")
                        yield Static(id="details")
                    with TabPane("Waste", id="waste"):
                        yield DataTable(id="waste-table", cursor_type="row")
                    with TabPane("Findings", id="findings"):
                        yield DataTable(id="findings-table", cursor_type="row")
                    with TabPane("Advice", id="advice"), VerticalScroll():
                        yield Static(id="advice-text")
                yield Static(id="status")
        yield Input(placeholder="glob on the path, e.g. *.pyc or /usr/lib/*  (Esc clears)",
                    id="filter")
        yield Footer()

    def on_mount(self) -> None:
        layers = self.query_one("#layers-table", DataTable)
        layers.add_columns("#", "Size", "Wasted", "Hid", "Instruction")
        for layer in self.report.layers:
            hid = sum(bytes_ for other in self.report.layers
                      for by, bytes_ in other.hidden_by.items() if by == layer.index)
            layers.add_row(str(layer.index), size(layer.added_bytes), size(layer.wasted_bytes),
                           size(hid), one_line(layer.instruction or layer.created_by or ""),
                           key=str(layer.index))
        layers.move_cursor(row=self.layer)
        waste = self.query_one("#waste-table", DataTable)
        waste.add_columns("Bytes", "How", "Steps", "Path")
        ranked = self.report.wasted_files
        for number, wasted in enumerate(ranked[:WASTE_ROWS]):
            waste.add_row(size(wasted.bytes), wasted.how.value.replace("_", " "),
                          f"#{wasted.layer_index} → #{wasted.hidden_by_layer}",
                          printable(wasted.path), key=str(number))
        if len(ranked) > WASTE_ROWS:
            rest = ranked[WASTE_ROWS:]
            waste.add_row(size(sum(w.bytes for w in rest)), "", "",
                          f"… {len(rest):,} smaller files: `w` in the Files tab lists them all",
                          key="more")
        findings = self.query_one("#findings-table", DataTable)
        findings.add_columns("Severity", "Bytes", "Steps", "Finding")
        for number, finding in enumerate(self.report.findings):
            findings.add_row(finding.severity.value, size(finding.bytes) if finding.bytes else "-",
                             ", ".join(map(str, finding.layers)) or "-",
                             one_line(finding.title), key=str(number))
        advice = []
        for number, recommendation in enumerate(self.report.recommendations, 1):
            steps = ", ".join(map(str, recommendation.steps))
            advice.append(f"{number}. {recommendation.title}\n   saves "
                          f"{size(recommendation.saved_bytes)} "
                          f"({recommendation.saved_bytes:,} bytes)"
                          + (f" · step {steps}" if steps else "")
                          + "\n   " + recommendation.change.replace("\n", "\n   "))
        self.query_one("#advice-text", Static).update(
            Text("\n\n".join(advice) or "No recommendations: nothing measured to save."))
        self.query_one("#tree", Tree).show_root = False
        self.refresh_tree()
        layers.focus()

    # ------------------------------------------------------------------ the tree

    def current_tree(self) -> ImageTree | LayerTree:
        """The model of the tree shown (built on first use: a replay of the layers up to the
        one selected, seconds on an image of a million entries)."""
        return self._model(self.image_view, self.layer)

    def _model(self, image_view: bool, layer: int) -> ImageTree | LayerTree:
        with self._models_lock:  # (workers and the UI thread both ask)
            return self._model_locked(image_view, layer)

    def _model_locked(self, image_view: bool, layer: int) -> ImageTree | LayerTree:
        key = (image_view, layer)
        found = self._trees.pop(key, None)
        if found is None:
            files = self.opened.files
            below = files.tree(layer - 1) if layer > 0 else None
            if image_view:
                found = ImageTree(files.tree(layer), below, layer, self.waste)
            else:
                found = LayerTree(self.image, layer, below, self.waste)
        self._trees[key] = found  # (the most recent last)
        while len(self._trees) > KEPT_MODELS:
            del self._trees[next(iter(self._trees))]
        return found

    def refresh_tree(self) -> None:
        """Show the tree for the layer, view and filter selected: built on a thread (the
        keys keep working meanwhile; a newer refresh supersedes it)."""
        self._generation += 1
        generation, image_view, layer, view = (self._generation, self.image_view, self.layer,
                                               self.view)
        shown = "the image as of layer" if image_view else "entries of layer"
        self.query_one("#status", Static).update(Text(f"{shown} {layer} · reading…"))
        self.run_worker(partial(self._build, generation, image_view, layer, view),
                        thread=True, group="tree")

    def _build(self, generation: int, image_view: bool, layer: int, view: Filter) -> None:
        # A replay makes millions of objects without cycles: collections while it grows
        # would walk it again and again, holding the interpreter lock the keys wait on; once
        # made, it is frozen out of every later collection.
        gc.disable()
        try:
            model = self._model(image_view, layer)
            if view.narrows:
                items, count = model.matches(view)
            else:
                items = model.children("", view)
                count = None
        finally:
            gc.freeze()
            gc.enable()
        self.call_from_thread(self._show, generation, image_view, layer, view, items, count)

    def _show(self, generation: int, image_view: bool, layer: int, view: Filter,
              items: list[Item], count: int | None) -> None:
        if generation != self._generation:
            return  # superseded
        tree = self.query_one("#tree", Tree)
        tree.clear()
        shown = "the image as of layer" if image_view else "entries of layer"
        status = f"{shown} {layer}"
        if count is not None:
            self._add_matches(tree.root, items)
            status += f" · {count:,} match" + ("es" if count != 1 else "")
            if count > len(items):
                status += f" (first {len(items):,} shown)"
        else:
            self._fill(tree.root, items)
        words = [w for w, on in (("only waste", view.only_waste),
                                 ("only changes", view.only_changes),
                                 (f"filter {view.glob}", bool(view.glob)),
                                 ("by name", view.by_name)) if on]
        self.query_one("#status", Static).update(Text(" · ".join([status, *words])))
        if self.focus_path is not None:
            self._select_path(self.focus_path)
            self.focus_path = None
        else:
            tree.call_after_refresh(setattr, tree, "cursor_line", 0)

    def _label(self, item: Item) -> Text:
        label = Text(f"{MARK_SIGNS[item.mark]} ", style=_MARK_STYLES[item.mark])
        label.append(printable(item.name) + ("/" if item.is_dir else ""),
                     style="bold" if item.is_dir else "")
        if item.entry is not None and item.entry.kind.name == "SYMLINK":
            label.append(f" → {printable(item.entry.link_target or '')}", style="dim")
        label.append(f"  {size(item.size)}", style="dim")
        if item.waste:
            label.append(f"  waste {size(item.waste)}", style="red")
        return label

    def _fill(self, node: TreeNode[Item], items: list[Item]) -> None:
        for item in items:
            if item.is_dir:
                node.add(self._label(item), data=item, allow_expand=True)
            else:
                node.add_leaf(self._label(item), data=item)

    def _add_matches(self, root: TreeNode[Item], items: list[Item]) -> None:
        """The matching names under their directories, every directory open."""
        directories: dict[str, TreeNode[Item]] = {"": root}
        for item in sorted(items, key=lambda item: item.path):
            for directory in ancestors(item.path):
                if directory not in directories:
                    parent = directories[directory.rpartition("/")[0]]
                    folder = Item(directory, directory.rpartition("/")[2], True, 0,
                                  Mark.UNCHANGED, 0, None, -1)
                    directories[directory] = parent.add(
                        Text(printable(folder.name) + "/", style="bold"), data=folder,
                        expand=True)
            directories[item.path.rpartition("/")[0]].add_leaf(self._label(item), data=item)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Item]) -> None:
        node = event.node
        item = node.data
        if item is None or not item.is_dir or node.children:
            return
        self._fill(node, self.current_tree().children(item.path, self.view))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Item]) -> None:
        item = event.node.data
        self.query_one("#details", Static).update(Text(self.details(item) if item else ""))

    def on_tree_node_selected(self, event: Tree.NodeSelected[Item]) -> None:
        item = event.node.data
        if item is not None and not item.is_dir:
            self.show_content(item)

    def _select_path(self, path: str) -> None:
        """Open the directories down to `path` and put the cursor on it."""
        tree = self.query_one("#tree", Tree)
        node: TreeNode[Item] = tree.root
        for part in [*ancestors(path), path]:
            child = next((c for c in node.children if c.data is not None
                          and c.data.path == part), None)
            if child is None:
                return
            if child.allow_expand and not child.is_expanded:
                child.expand()
                if not child.children and child.data is not None:
                    self._fill(child, self.current_tree().children(child.data.path,
                                                                   self.view))
            node = child
        tree.call_after_refresh(tree.move_cursor, node)  # (lines are laid out on refresh)

    # ------------------------------------------------------------------ details

    def details(self, item: Item, *, every_layer: bool = False) -> str:
        """A name's details: kind, size, mode, owner, link target, digest, and the layers that
        wrote it (a walk over every entry of the image: on the cursor's moves only for images
        of up to LAYERS_LINE_ENTRIES entries; always with `every_layer`)."""
        entry = item.entry
        lines = [f"/{printable(item.path)}" + ("/" if item.is_dir else "")]
        if item.is_dir:
            lines.append(f"directory · {item.size:,} bytes in the files below"
                         + (f" · mode {entry.mode & 0o7777:04o} · owner {entry.uid}:{entry.gid}"
                            if entry is not None else ""))
        elif entry is not None:
            lines.append(f"{entry.kind.name.lower()} · {item.size:,} bytes · mode "
                         f"{entry.mode & 0o7777:04o} · owner {entry.uid}:{entry.gid}"
                         + (f" · → {printable(entry.link_target)}" if entry.link_target
                            else "")
                         + (f" · xxh3 {entry.digest.hex()}" if entry.digest else ""))
        if item.waste:
            lines.append(f"waste: {item.waste:,} bytes hidden by a later layer")
        if item.mark is not Mark.UNCHANGED:
            lines.append(f"layer {self.layer}: {item.mark.value}")
        if not item.is_dir and (every_layer or self.entry_count <= LAYERS_LINE_ENTRIES):
            steps = [f"#{index} {'removed' if e.kind.name in ('WHITEOUT', 'OPAQUE') else 'wrote'}"
                     for index, e in written_by(self.image, item.path)]
            lines.append("layers: " + ", ".join(steps))
        if self.is_secret(item):
            lines.append("secret: a finding says this file holds one (content on request)")
        return "\n".join(lines)

    def is_secret(self, item: Item) -> bool:
        entry = item.entry
        return item.path in self.secrets or (
            entry is not None and entry.kind.name == "HARDLINK"
            and (entry.link_target or "").lstrip("/") in self.secrets)

    def show_content(self, item: Item) -> None:
        entry = item.entry
        secret = self.is_secret(item)
        details = self.details(item, every_layer=True)
        if entry is not None and entry.kind.name in ("WHITEOUT", "OPAQUE"):
            self.push_screen(ContentScreen(details, None, False, "(a whiteout: no content)"))
            return
        note = "(holds a secret: press S to show its content)" if secret else ""
        self.push_screen(ContentScreen(details, partial(self._content, item, self.layer),
                                       secret, note))

    def _content(self, item: Item, layer: int) -> str:
        files = self.opened.files
        try:
            found = files.locate(item.path, layer, follow_last=True)
            head = bytearray()

            def keep(data: bytes) -> None:
                if len(head) < _PREVIEW_BYTES:
                    head.extend(data[:_PREVIEW_BYTES - len(head)])

            files.read(found.found, keep)
        except ImagescopeError as exc:
            return f"(cannot read it: {exc})"
        content = found.found.content
        return preview(bytes(head), content.size if content is not None else len(head))

    # ------------------------------------------------------------------ events, actions

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "layers-table" and event.row_key.value is not None:
            layer = int(event.row_key.value)
            if layer != self.layer:
                self.layer = layer
                self.refresh_tree()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        table = event.data_table.id
        key = event.row_key.value
        if key is None or not key.isdigit():
            return
        if table == "waste-table":
            wasted = self.report.wasted_files[int(key)]
            self.jump(wasted.path.lstrip("/"), wasted.layer_index)
        elif table == "findings-table":
            finding = self.report.findings[int(key)]
            if finding.files:
                ref = finding.files[0]
                self.jump(ref.path.lstrip("/"), ref.layer_index)
        elif table == "layers-table":
            self.query_one("#tree", Tree).focus()

    def jump(self, path: str, layer: int) -> None:
        """Show `path` as the layer that wrote it has it, selected in the file tree."""
        self.layer = layer
        self.image_view = False
        self.view = Filter(glob="/" + _literal(path), by_name=self.view.by_name)
        self.query_one("#filter", Input).value = self.view.glob
        self.focus_path = path
        self.query_one("#layers-table", DataTable).move_cursor(row=layer)
        self.query_one("#tabs", TabbedContent).active = "files"
        self.refresh_tree()
        self.query_one("#tree", Tree).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.view = dataclasses.replace(self.view, glob=event.value.strip())
        event.input.remove_class("shown")
        self.refresh_tree()
        self.query_one("#tree", Tree).focus()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("shown")
        box.value = ""
        if self.view.glob:
            self.view = dataclasses.replace(self.view, glob="")
            self.refresh_tree()

    def action_toggle_view(self) -> None:
        self.image_view = not self.image_view
        self.refresh_tree()

    def action_only_waste(self) -> None:
        self.view = dataclasses.replace(self.view, only_waste=not self.view.only_waste)
        self.refresh_tree()

    def action_only_changes(self) -> None:
        self.view = dataclasses.replace(self.view, only_changes=not self.view.only_changes)
        self.refresh_tree()

    def action_sort(self) -> None:
        self.view = dataclasses.replace(self.view, by_name=not self.view.by_name)
        self.refresh_tree()

    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab
        focused = {"files": "#tree", "waste": "#waste-table", "findings": "#findings-table",
                   "advice": None}[tab]
        if focused is not None:
            self.query_one(focused).focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


def _literal(path: str) -> str:
    """`path` as a glob that matches it alone."""
    return "".join(f"[{c}]" if c in "[*?" else c for c in path)


_PREVIEW_BYTES = 64 << 10
LAYERS_LINE_ENTRIES = 200_000  # images up to this size list a file's layers as the cursor moves
KEPT_MODELS = 4  # tree models kept (each may hold a replay)
WASTE_ROWS = 1000  # rows of the waste tab (every hidden file: `w` in the Files tab)
_MARK_STYLES = {Mark.ADDED: "green", Mark.MODIFIED: "yellow", Mark.IDENTICAL: "magenta",
                Mark.REMOVED: "red", Mark.UNCHANGED: ""}
