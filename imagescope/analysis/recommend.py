"""Findings → Dockerfile changes ranked by the bytes they save, measured from the layers (pure).

A recommendation's `saved_bytes` is the exact size of the files it makes disappear, each content
counted once, and only files the change it names can make disappear: bytes the base image wrote
ship whatever the Dockerfile does, so only a recommendation that changes the base (another base,
a build stage: `CHANGES_BASE`) or drops a step's rewrite of them (`DROPS_REWRITE`) counts them.
The optimized size is what the image would ship with every recommendation applied: every byte
it ships today minus the files the recommendations address, a file two findings share counted
once. Without a recommendation that changes the base, it never goes below the base's own size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

from imagescope.analysis.findings.model import FileRef, Finding, unique_refs
from imagescope.analysis.findings.view import ImageView


@dataclass(frozen=True, slots=True)
class Recommendation:
    rule: str  # stable id: merge-run, multi-stage, cache-cleanup, dockerignore, …
    title: str
    saved_bytes: int
    steps: tuple[int, ...]  # layer indices of the steps to change
    change: str  # the concrete Dockerfile change; may span lines
    addresses: tuple[str, ...]  # "rule:subject" of the findings it resolves


# How to stop shipping each package-manager cache (finding subject → change).
CACHE_FIXES: dict[str, str] = {
    "apt-lists": "end the RUN that runs `apt-get update` with `&& rm -rf /var/lib/apt/lists/*`",
    "apt-archives": "end the RUN that runs `apt-get install` with `&& apt-get clean`",
    "apt-cache": "end the RUN that runs `apt-get install` with `&& apt-get clean`",
    "apk": "use `apk add --no-cache …`",
    "dnf": "end the RUN with `&& dnf clean all`",
    "yum": "end the RUN with `&& yum clean all && rm -rf /var/cache/yum`",
    "pip": "use `pip install --no-cache-dir …` (or `RUN --mount=type=cache,target=/root/.cache/pip`)",
    "npm": "use `npm ci && npm cache clean --force` in the same RUN",
    "yarn": "use `yarn install --frozen-lockfile && yarn cache clean` in the same RUN",
    "pnpm": "use `RUN --mount=type=cache,target=/root/.local/share/pnpm/store pnpm install`",
    "go-build": "use `RUN --mount=type=cache,target=/root/.cache/go-build go build …`",
    "go-mod": "use `RUN --mount=type=cache,target=/go/pkg/mod go mod download` in a build stage",
    "cargo": "use `RUN --mount=type=cache,target=/usr/local/cargo/registry cargo build …`",
    "maven": "use `RUN --mount=type=cache,target=/root/.m2 mvn …` in a build stage",
    "gradle": "use `RUN --mount=type=cache,target=/root/.gradle gradle …` in a build stage",
    "conda": "end the RUN with `&& conda clean -afy`",
    "poetry": "use `poetry install --no-cache` (or `POETRY_CACHE_DIR` on a cache mount)",
}
# Waste a step causes in the base image's files is only worth a different base above this.
INHERITED_WASTE_WORTH_A_NEW_BASE = 1 << 20
CHANGES_BASE = frozenset({"slim-base", "multi-stage"})  # may count the base's bytes as saved
DROPS_REWRITE = frozenset({"copy-chown", "avoid-rewrite"})  # saves the rewritten copies

GENERIC_CACHE_FIX = "remove the cache in the RUN that fills it, or put it on a BuildKit cache mount"


def recommend(findings: list[Finding], view: ImageView,
              dockerignore: Iterable[str] = ()) -> list[Recommendation]:
    """One recommendation per fix, ranked by bytes saved (then by rule and steps)."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    base = view.base_layers
    recommendations: list[Recommendation] = []
    recommendations += _hidden_waste(by_rule.get("hidden-waste", []), view)
    recommendations += _identical_rewrites(by_rule.get("identical-rewrite", []), view)
    toolchain = by_rule.get("toolchain-files", []) + by_rule.get("toolchain-packages", [])
    if toolchain:
        recommendations.append(_multi_stage(toolchain))
    fixes: dict[str, list[Finding]] = {}  # one recommendation per change (apt-get clean…)
    for finding in by_rule.get("package-cache", []):
        fixes.setdefault(CACHE_FIXES.get(finding.subject, GENERIC_CACHE_FIX), []).append(finding)
    for change, caches in fixes.items():
        names = " and ".join(f.subject for f in caches)
        recommendations.append(_from(caches, "cache-cleanup",
                                     f"Stop shipping the {names} cache"
                                     + ("s" if len(caches) > 1 else ""), change, base))
    context = by_rule.get("build-context", [])
    if context:
        lines = "\n".join(dockerignore)
        recommendations.append(_from(context, "dockerignore",
                                     "Keep build-context files out with a .dockerignore",
                                     f"add a .dockerignore next to the Dockerfile:\n{lines}",
                                     base))
    docs = by_rule.get("docs", [])
    if docs:
        recommendations.append(_from(docs, "slim-docs",
                                     "Drop documentation, man pages and locales",
                                     _docs_fix(docs, view), base))
    secrets = by_rule.get("secret", []) + by_rule.get("secret-in-lower-layer", [])
    if secrets:
        recommendations.append(_from(
            secrets, "build-secrets", "Never copy secrets into a layer",
            "pass them with `RUN --mount=type=secret,id=…` (BuildKit) and rotate every secret "
            "found: deleting it in a later step leaves it extractable from the lower layer",
            base))
    for finding in by_rule.get("root-user", []):
        recommendations.append(Recommendation(
            "non-root-user", "Run as a non-root user", 0, finding.layers,
            "add `RUN useradd --system --uid 10001 app` (or `adduser -S app` on Alpine) and "
            "`USER 10001` before CMD", (f"{finding.rule}:{finding.subject}",)))
    for finding in by_rule.get("layer-count", []):
        recommendations.append(Recommendation(
            "merge-layers", "Merge small steps into fewer layers", 0, finding.layers,
            "join consecutive RUN steps with `&&`, and COPY related files in one step",
            (f"{finding.rule}:{finding.subject}",)))
    kept = [r for r in recommendations if r.saved_bytes or r.rule in _BYTELESS]
    kept.sort(key=lambda r: (_rank(r, findings), -r.saved_bytes, r.rule, r.steps, r.title))
    return kept


# rules whose worth is not in bytes (a secret, a root user, a layer count)
_BYTELESS = frozenset({"build-secrets", "non-root-user", "merge-layers"})
_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}


def _rank(recommendation: Recommendation, findings: list[Finding]) -> int:
    """The severity of the most severe finding a recommendation resolves (high first)."""
    addressed = set(recommendation.addresses)
    return min((_SEVERITY_ORDER[str(f.severity)] for f in findings
                if f"{f.rule}:{f.subject}" in addressed), default=len(_SEVERITY_ORDER))


def changes_base(recommendations: Iterable[Recommendation]) -> bool:
    """Whether applying `recommendations` means another base image or a build stage."""
    return any(r.rule in CHANGES_BASE and r.saved_bytes for r in recommendations)


def _docs_fix(docs: list[Finding], view: ImageView) -> str:
    """How to drop docs; `--no-install-recommends` only where a step installs without it."""
    steps = [view.instruction(i) for f in docs for i in f.layers if not view.in_base(i)]
    installs = [s for s in steps if "apt-get install" in s]
    parts = []
    if any("--no-install-recommends" not in s for s in installs):
        parts.append("install with `apt-get install --no-install-recommends`")
    parts.append("exclude docs with `path-exclude /usr/share/doc/*` (and man, locale) in "
                 "/etc/dpkg/dpkg.cfg.d/ before installing")
    return ", ".join(parts) + ", or start from a slimmer base"


def optimized_bytes(total_bytes: int, findings: Iterable[Finding],
                    recommendations: Iterable[Recommendation], base_layers: int = 0) -> int:
    """Shipped bytes minus the files the recommendations address, each content once, each
    counted only where the recommendation addressing it can reclaim it (`reclaimable`).

    Live files count only when their finding is removable (a secret in a lower layer is hidden
    waste already; a root user costs no bytes).
    """
    rule_of: dict[str, str] = {}
    for rec in recommendations:
        for key in rec.addresses:
            if key not in rule_of or rec.rule in CHANGES_BASE | DROPS_REWRITE:
                rule_of[key] = rec.rule
    return total_bytes - _unique_bytes(
        ref for f in findings if (rule := rule_of.get(f"{f.rule}:{f.subject}")) is not None
        for ref in reclaimable(rule, f.files, base_layers)
        if ref.hidden_by is not None or f.removable)


def reclaimable(rule: str, refs: Iterable[FileRef], base_layers: int) -> Iterable[FileRef]:
    """The files a change of kind `rule` can make disappear: those own steps wrote, or, for a
    change of base or a dropped rewrite, any (see the module docstring)."""
    if not base_layers or rule in CHANGES_BASE or rule in DROPS_REWRITE:
        return refs
    return (ref for ref in refs if ref.layer_index >= base_layers)


_BYTES = attrgetter("bytes")


def _unique_bytes(refs: Iterable[FileRef]) -> int:
    return sum(map(_BYTES, unique_refs(refs)))


def _from(findings: list[Finding], rule: str, title: str, change: str,
          base_layers: int = 0) -> Recommendation:
    steps = tuple(sorted({i for f in findings for i in f.layers if i >= base_layers}))
    addresses = tuple(dict.fromkeys(f"{f.rule}:{f.subject}" for f in findings))
    saved = _unique_bytes(reclaimable(rule, (r for f in findings for r in f.files), base_layers))
    return Recommendation(rule, title, saved, steps, change, addresses)


def _run_command(instruction: str) -> str | None:
    return instruction[4:].strip() if instruction.startswith("RUN ") else None


def _hidden_waste(findings: list[Finding], view: ImageView) -> list[Recommendation]:
    """Step A wrote what step B hid: merge them when both are RUN steps, else avoid the write."""
    out = []
    for finding in findings:
        writer, hider = finding.layers[0], finding.layers[-1]
        if writer == hider:
            out.append(_from([finding], "dedupe-writes",
                             f"{_step(view, writer)} writes the same paths twice",
                             "write each file once in the step"))
            continue
        first = view.instruction(writer)
        second = view.instruction(hider)
        first_cmd, second_cmd = _run_command(first), _run_command(second)
        if first_cmd is not None and second_cmd is not None:
            out.append(_from([finding], "merge-run",
                             f"Merge {_step(view, writer, capital=False)} and {_step(view, hider, capital=False)} "
                             "into one RUN",
                             f"RUN {first_cmd} \\\n    && {second_cmd}"))
        elif view.is_context_step(writer):
            out.append(_from([finding], "copy-less",
                             f"Do not COPY what {_step(view, hider, capital=False)} deletes",
                             f"narrow `{first}` (or add the paths to .dockerignore) instead of "
                             f"removing them in `{second}`"))
        elif view.in_base(writer) and finding.bytes < INHERITED_WASTE_WORTH_A_NEW_BASE:
            continue  # e.g. ld.so.cache rewritten by a package install: not worth a new base
        elif view.in_base(hider):  # written and hidden inside the base
            out.append(_from([finding], "slim-base",
                             "Start from a base image that does not ship its own waste",
                             f"the base image hides {_mib(finding.bytes)} it wrote itself; a "
                             "slimmer base (or a build stage) leaves it behind"))
        elif view.in_base(writer):
            out.append(_from([finding], "slim-base",
                             f"{_step(view, hider)} hides files of the base image",
                             f"deleting the base image's files in `{second}` saves nothing: "
                             "they ship with the base whatever later steps do. Leave them "
                             "alone, or start from a base without them (or build in a stage "
                             "and COPY only the result onto a slim one)"))
        else:
            out.append(_from([finding], "multi-stage",
                             f"{_step(view, hider)} hides what {_step(view, writer, capital=False)} wrote",
                             f"the bytes of `{first}` removed by `{second}` still ship: do that "
                             "work in a build stage and COPY only the result, or start from a "
                             "base that does not carry them"))
    return out


def _step(view: ImageView, layer_index: int, *, capital: bool = True) -> str:
    """A step as recommendations name it: `Step N` (the layer's index, as findings and the
    layer table number it), or the base image."""
    if view.in_base(layer_index) and view.base_layers:
        return "The base image" if capital else "the base image"
    return ("Step" if capital else "step") + f" {layer_index}"


def _mib(nbytes: int) -> str:
    return f"{nbytes / (1 << 20):.1f} MiB" if nbytes >= 1 << 20 else f"{nbytes:,} bytes"


@dataclass(frozen=True, slots=True)
class _Rewrite:
    """What a step that rewrote files unchanged did change: owner and mode, as COPY flags."""

    chown: str | None  # `--chown=` value: as the step wrote it, else uid:gid
    chmod: str | None  # `--chmod=` value (octal), when every file got the same mode

    @property
    def flags(self) -> str:
        return " ".join(f for f in (f"--chown={self.chown}" if self.chown else "",
                                    f"--chmod={self.chmod}" if self.chmod else "") if f)


_CHOWN = re.compile(r"\bchown\s+(?:-\S+\s+)*([^\s-][^\s]*)")
_CHMOD = re.compile(r"\bchmod\s+(?:-\S+\s+)*([0-7]{3,4})\b")


def _rewrite_of(finding: Finding, view: ImageView, instruction: str) -> _Rewrite:
    """Owner and mode changes between the copies a finding's files were rewritten from and to."""
    keys = {ref.key for ref in finding.files}
    owners: set[tuple[int, int]] = set()
    modes: set[int] = set()
    changed_owner = changed_mode = False
    for hidden in view.hidden:
        after = hidden.replacement
        if after is None or (hidden.layer_index, "/" + hidden.entry.path) not in keys:
            continue
        before = hidden.entry
        owners.add((after.uid, after.gid))
        modes.add(after.mode)
        changed_owner |= (before.uid, before.gid) != (after.uid, after.gid)
        changed_mode |= before.mode != after.mode
    chown = chmod = None
    if changed_owner:
        named = _CHOWN.search(instruction)
        uid, gid = next(iter(owners))
        chown = named.group(1) if named else (f"{uid}:{gid}" if len(owners) == 1 else None)
    if changed_mode:
        octal = _CHMOD.search(instruction)
        chmod = octal.group(1) if octal else (f"{next(iter(modes)):o}" if len(modes) == 1
                                              else None)
    return _Rewrite(chown, chmod)


def _identical_rewrites(findings: list[Finding], view: ImageView) -> list[Recommendation]:
    """chmod/chown -R over COPYed files → COPY with the flags the step's changes amount to;
    over files a RUN wrote → run that step as the owner; otherwise rewrite in place."""
    out = []
    for finding in findings:
        writer, hider = finding.layers[0], finding.layers[-1]
        text = view.instruction(hider)
        written_by = view.instruction(writer)
        rewrite = _rewrite_of(finding, view, text)
        if ("chown" in text or "chmod" in text) and view.is_context_step(writer) \
                and not rewrite.flags:
            out.append(_from([finding], "avoid-rewrite",
                             f"{_step(view, hider)} rewrites files without changing them",
                             f"drop `{text}`: it rewrote the files `{written_by}` copied with "
                             "the same content, owner and mode"))
        elif ("chown" in text or "chmod" in text) and view.is_context_step(writer):
            flags = rewrite.flags
            keyword, _, rest = written_by.partition(" ")
            out.append(_from([finding], "copy-chown",
                             "Set owner and mode while copying, instead of "
                             + _step(view, hider, capital=False),
                             f"`{keyword} {flags} {rest}`, and drop `{text}`: same content, "
                             "new owner or mode, copied into a new layer"))
        elif view.in_base(writer) and view.base_layers:
            out.append(_from([finding], "avoid-rewrite",
                             f"{_step(view, hider)} rewrites base image files without "
                             "changing their content",
                             f"drop `{text}`, or narrow it to the files your own steps write: "
                             "rewriting the base image's files copies them into a new layer"))
        elif rewrite.chown and written_by.startswith("RUN "):
            user = rewrite.chown.split(":", 1)[0]
            out.append(_from([finding], "avoid-rewrite",
                             f"Run {_step(view, writer, capital=False)} as {user} instead of "
                             f"chown-ing its files after it",
                             f"put `USER {user}` (and `COPY --chown={rewrite.chown}` for what "
                             f"it reads) before `{written_by}`, and drop `{text}`: the chown "
                             "copies every file the step wrote into a new layer"))
        else:
            out.append(_from([finding], "avoid-rewrite",
                             f"{_step(view, hider)} rewrites files without changing their "
                             "content",
                             f"drop `{text}`, or do it in the step that writes the files "
                             f"(`{written_by}`): a later step copies every touched file into "
                             "a new layer"))
    return out


def _multi_stage(findings: list[Finding]) -> Recommendation:
    # a packages finding's subject is where it was read (dpkg, apk), not a toolchain part
    subjects = sorted({f.subject for f in findings if f.rule != "toolchain-packages"})
    if any(f.rule == "toolchain-packages" for f in findings):
        subjects.append("build packages")
    change = ("build in a separate stage and copy only the result:\n"
              "FROM <base> AS build\n"
              "RUN <install the toolchain> && <build>\n"
              "FROM <base>\n"
              "COPY --from=build /app /app")
    return _from(findings, "multi-stage",
                 f"Move the build toolchain ({', '.join(subjects)}) to a builder stage", change)
