"""Two analyzed images → what changed: sizes, shared layers, steps, final files, findings (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from imagescope.analysis.findings.model import Finding
from imagescope.analysis.findings.view import ImageView
from imagescope.analysis.report import (
    ImageRef,
    LayerReport,
    Report,
    WasteClass,
    WastedFile,
    base_layers,
    layer_name,
    waste_class,
    waste_key,
)
from imagescope.model import Entry

# File changes are rolled up into directories at most this deep (/usr/lib/python3.11).
ROLLUP_DEPTH = 3


@dataclass(frozen=True, slots=True)
class FileState:
    """A file of a final filesystem; `diff_id` is the layer its content came from."""

    entry: Entry
    diff_id: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """A figure before and after."""

    old: int
    new: int

    @property
    def delta(self) -> int:
        return self.new - self.old

    @property
    def percent(self) -> float | None:
        """Relative change in percent; None when the old figure is 0."""
        return 100.0 * self.delta / self.old if self.old else None


@dataclass(frozen=True, slots=True)
class StepChange:
    """One Dockerfile step across the two histories.

    `unchanged`: same layer (diff_id); `rebuilt`: same instruction, other content; `changed`: the
    instruction text changed in place; `added` / `removed`: only in NEW / only in OLD.
    """

    status: str
    old_index: int | None
    new_index: int | None
    old_instruction: str | None
    new_instruction: str | None
    added_bytes: Change
    wasted_bytes: Change


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str  # absolute
    status: str  # added | removed | changed
    size: Change
    changes: tuple[str, ...]  # for `changed`: any of size, mode, owner, content


@dataclass(frozen=True, slots=True)
class DirectoryRollup:
    path: str
    added_bytes: int  # bytes of files added under it
    removed_bytes: int  # bytes of files removed under it
    changed_delta: int  # net size change of files changed under it
    file_count: int

    @property
    def net_bytes(self) -> int:
        return self.added_bytes - self.removed_bytes + self.changed_delta


@dataclass(frozen=True, slots=True)
class FindingChange:
    rule: str
    subject: str
    title: str  # the NEW title for new findings, the OLD one for resolved
    bytes: Change


@dataclass(frozen=True, slots=True)
class Diff:
    old: ImageRef
    new: ImageRef
    total_bytes: Change
    final_bytes: Change
    wasted_bytes: Change
    layer_count: Change
    old_efficiency: float
    new_efficiency: float
    shared_layers: int  # layers of NEW whose diff_id OLD has too
    shared_bytes: int  # file bytes NEW's shared layers add
    new_layer_bytes: int  # file bytes NEW's own (not shared) layers add
    new_waste_bytes: int  # waste own steps of NEW wrote that OLD did not have (path, content)
    new_waste_steps: list[tuple[str, int]]  # that new waste by the step that wrote it, largest first
    own_wasted_bytes: Change  # waste own steps wrote (WasteClass.OWN)
    base_hidden_bytes: Change  # the base's files own steps hid (WasteClass.BASE_HIDDEN)
    newly_hidden_base_bytes: int  # base files NEW hides that OLD did not: no bytes shipped
    steps: list[StepChange]
    files: list[FileChange]  # largest size change first, then by path
    directories: list[DirectoryRollup]  # largest net change first, then by path
    new_findings: list[FindingChange]
    resolved_findings: list[FindingChange]


def final_files(view: ImageView, report: Report) -> dict[str, FileState]:
    """The final filesystem's files with the diff_id of the layer each content came from."""
    return {f.path: FileState(f.entry, report.layers[f.layer_index].diff_id)
            for f in view.live_files}


def content_candidates(old: Mapping[str, FileState], new: Mapping[str, FileState]) -> list[Entry]:
    """Entries whose digest decides whether a same-size file from another layer changed."""
    needed: list[Entry] = []
    for path, after in new.items():
        before = old.get(path)
        if before is None or before.entry.size != after.entry.size or not after.entry.size:
            continue
        if before.diff_id is not None and before.diff_id == after.diff_id:
            continue
        needed += [s.entry for s in (before, after) if s.entry.digest is None]
    return needed


def compare(old: Report, old_files: Mapping[str, FileState], new: Report,
            new_files: Mapping[str, FileState]) -> Diff:
    """The difference OLD → NEW."""
    old_ids = {layer.diff_id for layer in old.layers if layer.diff_id}
    shared = [layer for layer in new.layers if layer.diff_id and layer.diff_id in old_ids]
    files = _file_changes(old_files, new_files)
    new_findings, resolved = _finding_changes(old, new)
    return Diff(
        old=old.image,
        new=new.image,
        total_bytes=Change(old.summary.total_bytes, new.summary.total_bytes),
        final_bytes=Change(old.summary.final_bytes, new.summary.final_bytes),
        wasted_bytes=Change(old.summary.wasted_bytes, new.summary.wasted_bytes),
        layer_count=Change(old.summary.layer_count, new.summary.layer_count),
        old_efficiency=old.summary.efficiency,
        new_efficiency=new.summary.efficiency,
        shared_layers=len(shared),
        shared_bytes=sum(layer.added_bytes for layer in shared),
        new_layer_bytes=new.summary.total_bytes - sum(layer.added_bytes for layer in shared),
        new_waste_bytes=new_waste_bytes(old, new, _of_class(new, WasteClass.OWN),
                                        _of_class(old, WasteClass.OWN)),
        new_waste_steps=_new_waste_steps(old, new),
        own_wasted_bytes=Change(*(_class_bytes(r, WasteClass.OWN) for r in (old, new))),
        base_hidden_bytes=Change(*(_class_bytes(r, WasteClass.BASE_HIDDEN) for r in (old, new))),
        newly_hidden_base_bytes=_newly_hidden_base_bytes(old, new),
        steps=align_steps(old.layers, new.layers),
        files=files,
        directories=_rollup(files),
        new_findings=new_findings,
        resolved_findings=resolved,
    )


def align_steps(old: list[LayerReport], new: list[LayerReport]) -> list[StepChange]:
    """Align two histories by instruction, so a changed RUN pairs up instead of -1/+1.

    Equal instructions align first (longest common subsequence); inside a replaced stretch, steps
    pair up in order while their instruction keyword (RUN, COPY…) agrees.
    """
    old_text = [_instruction(layer) for layer in old]
    new_text = [_instruction(layer) for layer in new]
    matcher = difflib.SequenceMatcher(a=old_text, b=new_text, autojunk=False)
    steps: list[StepChange] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                same = old[i].diff_id is not None and old[i].diff_id == new[j].diff_id
                steps.append(_step("unchanged" if same else "rebuilt", old[i], new[j]))
            continue
        olds, news = list(range(i1, i2)), list(range(j1, j2))
        while olds and news and _keyword(old_text[olds[0]]) == _keyword(new_text[news[0]]):
            steps.append(_step("changed", old[olds.pop(0)], new[news.pop(0)]))
        steps += [_step("removed", old[i], None) for i in olds]
        steps += [_step("added", None, new[j]) for j in news]
    return steps


def _instruction(layer: LayerReport) -> str:
    return layer.instruction or f"layer {layer.index}"


def _keyword(instruction: str) -> str:
    return instruction.split(" ", 1)[0].upper()


def _step(status: str, old: LayerReport | None, new: LayerReport | None) -> StepChange:
    return StepChange(
        status=status,
        old_index=old.index if old else None,
        new_index=new.index if new else None,
        old_instruction=_instruction(old) if old else None,
        new_instruction=_instruction(new) if new else None,
        added_bytes=Change(old.added_bytes if old else 0, new.added_bytes if new else 0),
        wasted_bytes=Change(old.wasted_bytes if old else 0, new.wasted_bytes if new else 0),
    )


def _file_changes(old: Mapping[str, FileState], new: Mapping[str, FileState]) -> list[FileChange]:
    changes: list[FileChange] = []
    for path, after in new.items():
        before = old.get(path)
        if before is None:
            changes.append(FileChange("/" + path, "added", Change(0, after.entry.size), ()))
            continue
        what = _what_changed(before, after)
        if what:
            changes.append(FileChange("/" + path, "changed",
                                      Change(before.entry.size, after.entry.size), what))
    for path, before in old.items():
        if path not in new:
            changes.append(FileChange("/" + path, "removed", Change(before.entry.size, 0), ()))
    changes.sort(key=lambda c: (-abs(c.size.delta), c.path))
    return changes


def _what_changed(before: FileState, after: FileState) -> tuple[str, ...]:
    a, b = before.entry, after.entry
    if a is b:
        return ()
    what = []
    if a.size != b.size:
        what.append("size")
    if a.mode != b.mode:
        what.append("mode")
    if (a.uid, a.gid) != (b.uid, b.gid):
        what.append("owner")
    same_layer = before.diff_id is not None and before.diff_id == after.diff_id
    if a.size == b.size and not same_layer and a.size and a.digest != b.digest:
        what.append("content")
    return tuple(what)


def _rollup(files: Iterable[FileChange]) -> list[DirectoryRollup]:
    sums: dict[str, list[int]] = {}
    for change in files:
        parts = change.path.strip("/").split("/")[:-1][:ROLLUP_DEPTH]
        directory = "/" + "/".join(parts)
        added, removed, delta, count = sums.setdefault(directory, [0, 0, 0, 0])
        if change.status == "added":
            added += change.size.new
        elif change.status == "removed":
            removed += change.size.old
        else:
            delta += change.size.delta
        sums[directory] = [added, removed, delta, count + 1]
    rollups = [DirectoryRollup(path, *values) for path, values in sums.items()]
    rollups.sort(key=lambda r: (-abs(r.net_bytes), -(r.added_bytes + r.removed_bytes), r.path))
    return rollups


def new_waste_bytes(old: Report, new: Report, new_files: Iterable[WastedFile] | None = None,
                    old_files: Iterable[WastedFile] | None = None) -> int:
    """Bytes of NEW's wasted files (all, or `new_files`) that OLD's (`old_files`) do not have."""
    before = {waste_key(old, w) for w in (old.wasted_files if old_files is None else old_files)}
    return sum(w.bytes for w in (new.wasted_files if new_files is None else new_files)
               if waste_key(new, w) not in before)


def _of_class(report: Report, kind: WasteClass) -> list[WastedFile]:
    base = base_layers(report)
    return [w for w in report.wasted_files if waste_class(w, base) is kind]


def _class_bytes(report: Report, kind: WasteClass) -> int:
    return sum(w.bytes for w in _of_class(report, kind))


def _newly_hidden_base_bytes(old: Report, new: Report) -> int:
    """Bytes of base files NEW's own steps hide that OLD's did not (however hidden)."""
    def key(report: Report, wasted: WastedFile) -> tuple[str, str | None]:
        return wasted.path, report.layers[wasted.layer_index].diff_id

    before = {key(old, w) for w in _of_class(old, WasteClass.BASE_HIDDEN)}
    return sum(w.bytes for w in _of_class(new, WasteClass.BASE_HIDDEN)
               if key(new, w) not in before)


def _new_waste_steps(old: Report, new: Report) -> list[tuple[str, int]]:
    """NEW's new own-step waste by the step that wrote it."""
    before = {waste_key(old, w) for w in _of_class(old, WasteClass.OWN)}
    by_step: dict[str, int] = {}
    for wasted in _of_class(new, WasteClass.OWN):
        if waste_key(new, wasted) not in before:
            step = layer_name(new, wasted.layer_index)
            by_step[step] = by_step.get(step, 0) + wasted.bytes
    return sorted(by_step.items(), key=lambda item: (-item[1], item[0]))


def _finding_key(finding: Finding, report: Report) -> tuple[str, str]:
    """Findings match across versions by rule and subject; step pairs by their instructions."""
    if finding.rule in ("hidden-waste", "identical-rewrite"):
        texts = [_instruction(report.layers[i]) for i in finding.layers]
        return finding.rule, " -> ".join(texts)
    return finding.rule, finding.subject


def _finding_changes(old: Report, new: Report) -> tuple[list[FindingChange], list[FindingChange]]:
    before = {_finding_key(f, old): f for f in old.findings}
    after = {_finding_key(f, new): f for f in new.findings}
    appeared = [FindingChange(f.rule, f.subject, f.title, Change(0, f.bytes))
                for key, f in after.items() if key not in before]
    resolved = [FindingChange(f.rule, f.subject, f.title, Change(f.bytes, 0))
                for key, f in before.items() if key not in after]
    appeared.sort(key=lambda c: (-c.bytes.new, c.rule, c.subject))
    resolved.sort(key=lambda c: (-c.bytes.old, c.rule, c.subject))
    return appeared, resolved
