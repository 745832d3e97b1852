"""The Dockerfile the findings ask for: its final stage rewritten, each change with the exact
bytes it keeps out of the image (pure).

Only instructions of the final stage that the image's layers map to are changed. The changes:
- merge-run: RUN steps where one hides what another wrote are merged, with every RUN between
  (only RUN, LABEL and EXPOSE may stand between; all with the same flags): what is written and
  hidden inside one step never ships.
- cache-cleanup: the RUN that filled a package-manager cache does not keep it
  (`--no-cache-dir`, `apk add --no-cache`, or a clean command at its end). apt's lists are
  removed after the last RUN that installs with them, the RUNs between merged: installs read
  them.
- copy-chown: a RUN that only chowns or chmods files COPY wrote, rewriting nothing else, is
  dropped, its owner and mode given to the COPY as `--chown`/`--chmod`.
- dockerignore: the build-context files that leaked, kept out by `.dockerignore` lines.
- non-root-user: `USER 10001:10001` after the last step that writes files.
- multi-stage: when a toolchain was found and the results of the own steps lie in a few roots
  (`build_results`), the stage becomes `AS build` and a new final stage on the same base copies
  only the roots (`COPY --from=build ROOT ROOT`) and carries the configuration (WORKDIR, ENV,
  USER, CMD…): it ships the base's bytes and the roots' (less the leaked context files below
  them), whatever the build stage holds.
A change keeps out a set of file contents, each a (layer, path). The estimate is the image's
shipped bytes less their union, each content once: it holds when every step writes what it
wrote before, less what a change keeps out (a reproducible build).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from imagescope.analysis.dockerfile_map import DockerfileMap, Instruction, Stage, stages_of
from imagescope.analysis.findings import dockerignore_lines
from imagescope.analysis.findings.caches import cache_kind
from imagescope.analysis.findings.context import DOCKERIGNORE
from imagescope.analysis.findings.model import FileRef, Finding
from imagescope.analysis.report import Report, WastedFile
from imagescope.analysis.suggestion import Change, Suggestion, unique_bytes

NON_ROOT_USER = "10001:10001"
MAX_RESULT_ROOTS = 12  # more COPY --from lines than this: no two-stage build suggested
# What a runtime stage carries over from the build stage, in order.
CARRIED = frozenset({"WORKDIR", "ENV", "ARG", "LABEL", "EXPOSE", "USER", "VOLUME", "STOPSIGNAL",
                     "HEALTHCHECK", "ENTRYPOINT", "CMD", "SHELL"})
# May stand between two RUN steps merged into one (the order of these does not matter).
MOVABLE = frozenset({"LABEL", "EXPOSE"})
# Cache kind → what ends the RUN that filled it, when no flag keeps the cache out.
CLEAN_COMMANDS: dict[str, tuple[str, ...]] = {
    "apt-lists": ("rm -rf /var/lib/apt/lists/*",),
    "apt-archives": ("apt-get clean",),
    "apt-cache": ("apt-get clean",),
    "dnf": ("dnf clean all",),
    "yum": ("yum clean all", "rm -rf /var/cache/yum"),
    "npm": ("npm cache clean --force",),
    "yarn": ("yarn cache clean",),
    "conda": ("conda clean -afy",),
    "apk": ("rm -rf /var/cache/apk/*",),
}
# Cache kind → (the command that fills it, the flag that keeps it out).
NO_CACHE_FLAGS: dict[str, tuple[re.Pattern[str], str]] = {
    "pip": (re.compile(r"\b(?:pip[0-9.]*|python[0-9.]*\s+-m\s+pip)\s+install\b"),
            "--no-cache-dir"),
    "apk": (re.compile(r"\bapk\s+add\b"), "--no-cache"),
    "poetry": (re.compile(r"\bpoetry\s+install\b"), "--no-cache"),
}
_APT_INSTALL = re.compile(r"\bapt(?:-get)?\s+(?:\S+\s+)*?(?:install|upgrade|dist-upgrade|"
                          r"build-dep|source)\b")
_CHOWN = re.compile(r"chown\s+(?:-[a-zA-Z]+\s+)*([^\s-]\S*)\s+\S")
_CHMOD = re.compile(r"chmod\s+(?:-[a-zA-Z]+\s+)*([0-7]{3,4})\s+\S")


def suggest(report: Report, mapped: DockerfileMap, instructions: Sequence[Instruction],
            text: str, dockerignore: str | None, dockerignore_path: str) -> Suggestion:
    """The suggestion for `report`'s image built from the Dockerfile `text` (parsed:
    `instructions`; its layers mapped: `mapped`, no mismatch), beside `dockerignore` (its
    text; None when there is none)."""
    original = tuple(text[:-1].split("\n") if text.endswith("\n") else text.split("\n")) \
        if text else ()
    stage = stages_of(instructions)[-1]
    draft = _Draft(report, mapped, stage.instructions, instructions)
    if "\r" in text or _ESCAPE.match(text):  # (line ends and continuations it would not keep)
        return Suggestion(mapped.path, original, original, dockerignore_path, None, None, (),
                          report.summary.total_bytes, report.summary.total_bytes,
                          text.endswith("\n") or not text)
    changes = draft.copy_chown()
    draft.merge_hidden_waste()
    changes += draft.cache_cleanups()  # (may merge more: apt's lists)
    changes = [*draft.merges(), *changes]
    before = tuple(dockerignore.splitlines()) if dockerignore is not None else None
    ignore_change, after = _dockerignore(report, draft, before)
    if ignore_change is not None:
        changes.append(ignore_change)
    shipped = report.summary.total_bytes
    estimated = shipped - unique_bytes(ref for change in changes for ref in change.kept_out)
    runtime = draft.two_stage(stage, mapped, original, estimated,
                              ignore_change.kept_out if ignore_change else ())
    if runtime is not None:
        changes.append(runtime)
        estimated -= runtime.saved_bytes
    changes += draft.non_root_user()
    return Suggestion(mapped.path, original, draft.render(original), dockerignore_path, before,
                      after, tuple(changes), shipped, estimated, text.endswith("\n") or not text)


# --------------------------------------------------------------------------- the rewrite


@dataclass(slots=True, eq=False)
class _Step:
    """A final-stage instruction and what the suggestion does to it."""

    instruction: Instruction
    layer: int | None  # the layer it made (None: none, or not mapped)
    commands: list[str] = field(default_factory=list)  # a shell-form RUN's `&&` parts
    cleanups: list[str] = field(default_factory=list)  # commands to end its merged RUN with
    flags: dict[str, str] = field(default_factory=dict)  # COPY flags to set, name → value
    dropped: bool = False
    group: int = -1  # the position of the first RUN of the merged RUN it is part of
    after: list[str] = field(default_factory=list)  # lines to insert after it

    @property
    def keyword(self) -> str:
        return self.instruction.keyword

    @property
    def editable_run(self) -> bool:
        """A shell-form RUN without a heredoc: its command can be rewritten."""
        i = self.instruction
        return i.keyword == "RUN" and not i.json and "<<" not in i.original and bool(self.commands)


class _Draft:
    """The final stage being rewritten, step by step."""

    def __init__(self, report: Report, mapped: DockerfileMap,
                 instructions: Sequence[Instruction],
                 all_instructions: Sequence[Instruction] = ()) -> None:
        self.report = report
        self._all = all_instructions
        self.replaced: dict[int, tuple[int, list[str]]] = {}  # start line → (end line, lines)
        self.appended: list[str] = []  # a runtime stage after the last line
        layer_of = {source.instruction: index for index, source in enumerate(mapped.sources)
                    if source is not None and not source.base and source.from_stage is None}
        self.steps = [_Step(i, layer_of.get(i)) for i in instructions]
        self.position = {step.layer: n for n, step in enumerate(self.steps)
                         if step.layer is not None}
        for n, step in enumerate(self.steps):
            step.group = n
            if step.keyword == "RUN" and not step.instruction.json and \
                    step.instruction.arguments and plain_shell(step.instruction.arguments[0]):
                step.commands = split_commands(step.instruction.arguments[0])

    # ----------------------------------------------------------------- the changes

    def copy_chown(self) -> list[Change]:
        rewrites: dict[int, list[Finding]] = {}
        for finding in self.report.findings:
            if finding.rule == "identical-rewrite" and len(finding.layers) == 2:
                rewrites.setdefault(finding.layers[1], []).append(finding)
        changes = []
        for hider, found in sorted(rewrites.items()):
            run = self._step(hider)
            if run is None or not run.editable_run or run.instruction.flags or not all(
                    re.match(r"(chown|chmod)\s", c) for c in run.commands):
                continue
            writers = [self._step(f.layers[0]) for f in found]
            rewritten = sum(f.bytes for f in found)
            if any(w is None or w.keyword not in ("COPY", "ADD") for w in writers) or \
                    rewritten != self.report.layers[hider].added_bytes:
                continue  # the RUN also rewrote what no COPY wrote: it stays
            flags = _owner_flags(run.commands)
            destinations = {w.instruction.arguments[-1].rstrip("/") or "/" for w in writers if w}
            if not flags or any(_targets(c) != destinations for c in run.commands):
                continue  # only a recursive chown/chmod of exactly what the COPYs wrote
            for writer in writers:
                assert writer is not None
                writer.flags.update(flags)
            run.dropped = True
            kept = tuple(FileRef(ref.path, ref.bytes, hider) for f in found for ref in f.files)
            shown = " ".join(f"--{k}={v}" for k, v in flags.items())
            lines = [_lines(w.instruction) for w in dict.fromkeys(w for w in writers if w)]
            changes.append(Change("copy-chown", f"COPY {shown} instead of `{_clip(run)}`",
                                  (*lines, _lines(run.instruction)), kept))
        return changes

    def merge_hidden_waste(self) -> None:
        for finding in self.report.findings:
            if finding.rule == "hidden-waste" and len(finding.layers) == 2:
                self._merge(*finding.layers)

    def merges(self) -> list[Change]:
        """One change per merged RUN, keeping out what its parts wrote and hid."""
        changes = []
        for members in self._groups().values():
            if len(members) < 2:
                continue
            layers = {m.layer for m in members}
            kept = tuple(_ref(w) for w in self.report.wasted_files
                         if w.layer_index in layers and w.hidden_by_layer in layers)
            if not kept:
                continue
            where = ", ".join(str(m.instruction.start_line) for m in members)
            changes.append(Change("merge-run", f"merge the RUNs at lines {where} (what one "
                                  "writes and another deletes or replaces never ships)",
                                  (_span_of(members),), kept))
        return changes

    def cache_cleanups(self) -> list[Change]:
        changes = []
        for finding in self.report.findings:
            if finding.rule != "package-cache":
                continue
            kind = finding.subject
            for layer in sorted({ref.layer_index for ref in finding.files}):
                change = self._cleanup(kind, layer, finding)
                if change is not None:
                    changes.append(change)
        return changes

    def _cleanup(self, kind: str, layer: int, finding: Finding) -> Change | None:
        run = self._step(layer)
        if run is None or not run.editable_run or run.dropped:
            return None
        if kind in NO_CACHE_FLAGS:
            command, flag = NO_CACHE_FLAGS[kind]
            manager = kind.split("-")[0]
            users = [n for n, part in enumerate(run.commands) if manager in part]
            if users and all(command.search(run.commands[n]) for n in users):
                for n in users:  # every command of the manager: none fills the cache then
                    if flag not in run.commands[n]:
                        run.commands[n] = command.sub(lambda m: f"{m.group(0)} {flag}",
                                                      run.commands[n], count=1)
                return Change("cache-cleanup", f"`{flag}` keeps the {kind} cache out",
                              (_lines(run.instruction),),
                              self._cache_files(kind, {layer}, finding))
        if kind not in CLEAN_COMMANDS:
            return None  # (a build cache later steps read: go-mod, maven, cargo…: left alone)
        position = self.position[layer]
        if kind == "apt-lists":  # read by the installs after: removed after the last of them
            later = self.steps[position + 1:]
            if any(s.keyword == "RUN" and not s.editable_run and "apt" in s.instruction.original
                   for s in later):
                return None  # an install it cannot see may read them
            users = [n for n in range(position + 1, len(self.steps))
                     if self.steps[n].editable_run
                     and any(_APT_INSTALL.search(c) for c in self.steps[n].commands)]
            if users and not self._merge(layer, self.steps[users[-1]].layer):
                return None
        members = self._groups()[self.steps[position].group]
        commands = CLEAN_COMMANDS[kind]
        last = members[0]
        if all(c in last.cleanups for c in commands):
            return None  # another layer of the merged RUN asked for it already
        last.cleanups += [c for c in commands if c not in last.cleanups]
        layers = {m.layer for m in members if m.layer is not None}
        return Change("cache-cleanup", f"`{' && '.join(commands)}` where the {kind} cache is "
                      "made", (_span_of(members),), self._cache_files(kind, layers, finding))

    def _cache_files(self, kind: str, layers: set[int], finding: Finding) -> tuple[FileRef, ...]:
        """The cache's contents the layers wrote: those alive and those hidden since."""
        alive = [ref for ref in finding.files if ref.layer_index in layers]
        hidden = [_ref(w) for w in self.report.wasted_files
                  if w.layer_index in layers and cache_kind(w.path) == kind]
        return (*alive, *hidden)

    def two_stage(self, stage: Stage, mapped: DockerfileMap, original: tuple[str, ...],
                  estimated: int, leaks: Sequence[FileRef]) -> Change | None:
        """The runtime stage copying the results' roots from the stage, renamed `build`; its
        saving against `estimated`, what the image would ship without it."""
        roots = self.report.build_results
        if not roots or len(roots) > MAX_RESULT_ROOTS or not stage.start.arguments:
            return None
        base = sum(layer.added_bytes for layer, source in zip(self.report.layers, mapped.sources,
                                                               strict=False)
                   if source is not None and source.base)
        left_behind = unique_bytes(ref for ref in leaks if ref.hidden_by is None and any(
            _below(ref.path, root.path) for root in roots))
        runtime = base + sum(root.bytes for root in roots) - left_behind
        if runtime >= estimated:
            return None
        start = stage.start
        taken = {i.arguments[2].lower() for i in self._all if i.keyword == "FROM"
                 and len(i.arguments) >= 3 and i.arguments[1].upper() == "AS"}
        name = stage.name or next(n for n in ("build", *(f"build{k}" for k in range(2, 99)))
                                  if n not in taken)
        if stage.name is None:
            self.replaced[start.start_line] = (start.end_line, [f"{start.original} AS {name}"])
        self.appended += ["", " ".join(("FROM", *start.flags, start.arguments[0]))]
        self.appended += [f"COPY --from={name} {root.path} {root.path}" for root in roots]
        for step in self.steps:
            if step.keyword in CARRIED:
                i = step.instruction
                self.appended += original[i.start_line - 1:i.end_line]
        end = len(original)
        shown = ", ".join(root.path for root in roots[:3]) + (" …" if len(roots) > 3 else "")
        return Change("multi-stage", f"build in a stage and copy only its results ({shown}) "
                      "onto the base: the toolchain stays behind", ((end, end),
                      (start.start_line, start.end_line)), (), estimated - runtime)

    def non_root_user(self) -> list[Change]:
        if not any(f.rule == "root-user" for f in self.report.findings) or \
                any(s.keyword == "USER" for s in self.steps):
            return []
        if self.appended:  # in the runtime stage, before what starts the program
            at = next((n for n, line in enumerate(self.appended)
                       if line.split(" ", 1)[0].upper() in ("CMD", "ENTRYPOINT")),
                      len(self.appended))
            self.appended.insert(at, f"USER {NON_ROOT_USER}")
            end = max(s.instruction.end_line for s in self.steps)
            return [Change("non-root-user", f"USER {NON_ROOT_USER}: not root (what the program "
                           "writes at run time must be writable by it)", ((end, end),), ())]
        writers = [s for s in self.steps if s.keyword in ("RUN", "COPY", "ADD")]
        if not writers:
            return []
        last = writers[-1]
        last.after.append(f"USER {NON_ROOT_USER}")
        end = last.instruction.end_line
        return [Change("non-root-user", f"USER {NON_ROOT_USER}: not root (what the program "
                       "writes at run time must be writable by it)",
                       ((end, end),), ())]

    # ----------------------------------------------------------------- merging

    def _step(self, layer: int) -> _Step | None:
        position = self.position.get(layer)
        return self.steps[position] if position is not None else None

    def _merge(self, first_layer: int | None, last_layer: int | None) -> bool:
        """Merge the RUN steps that made the two layers and every one between (see the module
        docstring); whether they are (or were already) one RUN."""
        first = self.position.get(first_layer) if first_layer is not None else None
        last = self.position.get(last_layer) if last_layer is not None else None
        if first is None or last is None or first >= last:
            return False
        span = self.steps[first:last + 1]
        runs = [s for s in span if s.keyword == "RUN" and not s.dropped]
        flags = span[0].instruction.flags
        if not all(s.editable_run and s.instruction.flags == flags for s in runs) or \
                any(s.keyword not in MOVABLE | {"RUN"} for s in span) or span[-1].dropped:
            return False
        joined = {s.group for s in runs}
        for step in self.steps:
            if step.group in joined:
                step.group = min(joined)
        return True

    def _groups(self) -> dict[int, list[_Step]]:
        groups: dict[int, list[_Step]] = {}
        for step in self.steps:
            if step.keyword == "RUN" and not step.dropped:
                groups.setdefault(step.group, []).append(step)
        return groups

    # ----------------------------------------------------------------- the text

    def render(self, original: tuple[str, ...]) -> tuple[str, ...]:
        """The Dockerfile's lines with every change made (unchanged steps keep their text)."""
        groups = self._groups()
        replaced = dict(self.replaced)
        for position, step in enumerate(self.steps):
            instruction = step.instruction
            new: list[str] | None = None
            if step.dropped or (step.keyword == "RUN" and step.group != position):
                new = []
            elif step.keyword == "RUN" and step.commands and (
                    len(members := groups.get(step.group, [step])) > 1 or step.cleanups
                    or step.commands != split_commands(instruction.arguments[0])):
                commands = [c for m in members for c in m.commands]
                commands += [c for m in members for c in m.cleanups]
                new = _run_lines(instruction.flags, commands)
            elif step.flags:
                new = [_with_flags(instruction, step.flags)]
            if new is not None or step.after:
                lines = list(original[instruction.start_line - 1:instruction.end_line]) \
                    if new is None else new
                replaced[instruction.start_line] = (instruction.end_line, lines + step.after)
        out: list[str] = []
        number = 1
        while number <= len(original):
            if number in replaced:
                end, lines = replaced[number]
                out += lines
                number = end + 1
            else:
                out.append(original[number - 1])
                number += 1
        return (*out, *self.appended)


_ESCAPE = re.compile(r"(?:\s*#[^\n]*\n)*?\s*#\s*escape\s*=\s*`", re.IGNORECASE)
_STATEFUL = re.compile(r"(?:^|&&)\s*(?:cd|export|set|source|unset|alias|\.)(?:\s|$)")


def plain_shell(command: str) -> bool:
    """Whether a RUN's command is `&&`-joined simple commands that leave no shell state behind:
    only those are merged or extended (a `;`, `|`, `&`, comment, subshell or command
    substitution, `cd` or `export` would change meaning once joined to other commands; quotes
    are not looked into, so a quoted one refuses too)."""
    unjoined = command.replace("&&", " ")
    return not any(c in unjoined for c in ";|&#`()\n") and "$(" not in command \
        and _STATEFUL.search(command) is None


def split_commands(command: str) -> list[str]:
    """A shell command's `&&`-joined parts (quotes respected), each with its whitespace runs
    outside quotes made one space."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(command):
        char = command[i]
        if quote:
            current.append(char)
            if char == "\\" and quote == '"' and i + 1 < len(command):
                current.append(command[i + 1])
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == "\\" and i + 1 < len(command):
            current += [char, command[i + 1]]
            i += 1
        elif command.startswith("&&", i):
            parts.append("".join(current))
            current = []
            i += 1
        elif char.isspace():
            if current and current[-1] != " ":
                current.append(" ")
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _run_lines(flags: tuple[str, ...], commands: list[str]) -> list[str]:
    head = " ".join(("RUN", *flags, commands[0]))
    lines = [head] + [f"    && {c}" for c in commands[1:]]
    return [line + " \\" for line in lines[:-1]] + [lines[-1]]


def _with_flags(instruction: Instruction, flags: dict[str, str]) -> str:
    kept = [f for f in instruction.flags if f.partition("=")[0].lstrip("-") not in flags]
    new = [f"--{name}={value}" for name, value in flags.items()]
    rest = _after_flags(instruction)
    return " ".join((instruction.keyword, *new, *kept, rest))


def _after_flags(instruction: Instruction) -> str:
    """The instruction's text after its keyword and flags."""
    words = instruction.original.split(None, 1)
    rest = words[1] if len(words) > 1 else ""
    for flag in instruction.flags:
        rest = rest.strip()
        rest = rest.removeprefix(flag)
    return rest.strip()


def _targets(command: str) -> set[str] | None:
    """The paths a recursive `chown -R OWNER PATH…`/`chmod -R MODE PATH…` names (None: not
    recursive)."""
    words = command.split()
    flags = [w for w in words[1:] if w.startswith("-")]
    if not any("R" in f for f in flags if not f.startswith("--")) and "--recursive" not in flags:
        return None
    operands = [w for w in words[1:] if not w.startswith("-")]
    return {w.rstrip("/") or "/" for w in operands[1:]}


def _owner_flags(commands: list[str]) -> dict[str, str]:
    """`--chown`/`--chmod` values saying what the chown/chmod commands did (an octal mode only,
    as COPY takes)."""
    flags: dict[str, str] = {}
    for command in commands:
        chown, chmod = _CHOWN.match(command), _CHMOD.match(command)
        if chown:
            flags["chown"] = chown.group(1)
        elif chmod:
            flags["chmod"] = chmod.group(1)
        else:
            return {}  # a symbolic mode (u+x): COPY cannot say it
    return flags


def _dockerignore(report: Report, draft: _Draft, before: tuple[str, ...] | None
                  ) -> tuple[Change | None, tuple[str, ...] | None]:
    """The .dockerignore lines keeping the leaked context out, and the contents they keep out:
    the leaked files, and the copies COPY wrote of them that later steps rewrote."""
    leaks = [f for f in report.findings if f.rule == "build-context"]
    present = {line.strip() for line in before or ()}
    lines = [line for line in dockerignore_lines(leaks) if line not in present]
    copies = {s.layer for s in draft.steps if s.keyword in ("COPY", "ADD") and s.layer is not None
              and not any(f.startswith("--from=") for f in s.instruction.flags)}
    if not lines or not copies:
        return None, None
    # only the leaks the added lines keep out (the Dockerfile patterns match at the context's
    # root only, and where that is in the image is not known: not counted)
    leaks = [f for f in leaks if f.subject != "dockerfile"
             and not any(line in present for line in DOCKERIGNORE.get(f.subject, ()))]
    paths = {ref.path for f in leaks for ref in f.files}
    kept = [ref for f in leaks for ref in f.files]
    kept += [_ref(w) for w in report.wasted_files if w.path in paths and w.layer_index in copies]
    after = (*(before or ()), *lines)
    return Change("dockerignore", f"a .dockerignore keeping out {', '.join(lines)}", ((0, 0),),
                  tuple(kept)), after


# --------------------------------------------------------------------------- helpers


def _below(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _ref(wasted: WastedFile) -> FileRef:
    return FileRef(wasted.path, wasted.bytes, wasted.layer_index, wasted.hidden_by_layer)


def _lines(instruction: Instruction) -> tuple[int, int]:
    return (instruction.start_line, instruction.end_line)


def _span_of(steps: Sequence[_Step]) -> tuple[int, int]:
    return (steps[0].instruction.start_line, steps[-1].instruction.end_line)


def _clip(step: _Step, limit: int = 60) -> str:
    text = " ".join(step.instruction.original.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
