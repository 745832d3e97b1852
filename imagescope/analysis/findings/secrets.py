"""Secrets shipped in the image, alive or "deleted" but still in a lower layer (pure).

A file is a secret by its path (the table below) and, for kinds that are often harmless, by its
captured content: an `.npmrc` only with an auth token or password set, a `.pypirc` only with a
password, a Docker `config.json` only with registry auths. Any captured file holding a
`-----BEGIN … PRIVATE KEY-----` block is a private key whatever its name (`*.pem`, `*.key`);
public certificates are not secrets. Empty files, templates (`.env.example`, …),
installed-package trees (`site-packages`, `node_modules`, …) and, for keys found by content,
test fixtures (`test/`, `tests/`, `testdata/`) are not reported.

Rule `secret`: alive in the final image — removable, but must be rotated. Rule
`secret-in-lower-layer`: removed or overwritten by a later step, yet every pull still ships the
layer that holds it; deleting it again changes nothing, so it is not removable. Titles and
details name the path, the kind and the layers only, never the contents (nor a step's
arguments: `step_label`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import compress, repeat
from operator import attrgetter, is_not, or_
from typing import TypeVar

from imagescope.analysis.findings.model import Category, FileRef, Finding, Severity, make_finding
from imagescope.analysis.findings.tables import PathTable, alive_refs, step_label
from imagescope.analysis.findings.view import ImageView, LiveFile
from imagescope.analysis.overlay import Hidden
from imagescope.model import Entry

ALIVE_RULE = "secret"
LOWER_RULE = "secret-in-lower-layer"

# (kind, glob), matched on the whole path; `**/` any directory.
SECRET_FILES: tuple[tuple[str, str], ...] = (
    ("private-key", "**/id_rsa"),
    ("private-key", "**/id_dsa"),
    ("private-key", "**/id_ecdsa"),
    ("private-key", "**/id_ed25519"),
    ("dotenv", "**/.env"),
    ("dotenv", "**/.env.*"),
    ("dotenv", "**/*.env"),
    ("npmrc", "**/.npmrc"),
    ("pypirc", "**/.pypirc"),
    ("cloud-credentials", "**/.aws/credentials"),
    ("cloud-credentials", "**/.config/gcloud/credentials.db"),
    ("cloud-credentials", "**/.config/gcloud/application_default_credentials.json"),
    ("cloud-credentials", "**/.config/gcloud/access_tokens.db"),
    ("cloud-credentials", "**/.config/gcloud/legacy_credentials/**"),
    ("cloud-credentials", "**/.azure/accessTokens.json"),
    ("cloud-credentials", "**/.azure/msal_token_cache.json"),
    ("docker-config", "**/.docker/config.json"),
    ("git-credentials", "**/.git-credentials"),
    ("netrc", "**/.netrc"),
    ("kubeconfig", "**/.kube/config"),
)
# Templates that hold placeholders by convention, and other people's published files.
NOT_SECRETS: tuple[str, ...] = (
    "**/.env.example", "**/.env.sample", "**/.env.template", "**/.env.dist",
    "**/site-packages/**", "**/dist-packages/**", "**/node_modules/**", "usr/share/doc/**",
)
# Keys found only by content are skipped here too: published test fixtures.
NOT_KEYS_BY_CONTENT: tuple[str, ...] = (*NOT_SECRETS, "**/test/**", "**/tests/**",
                                        "**/testdata/**")

# Kinds that are secrets only when the captured content says so (bytes regexes).
CONTENT_REQUIRED: dict[str, re.Pattern[bytes]] = {
    # `//registry/:_authToken=${NPM_TOKEN}` reads the token from the environment: not a secret
    "npmrc": re.compile(rb"(?m)^[ \t]*+(?![#;])[^\n]*?(?:_auth|_authToken|_password|password)"
                        rb"[ \t]*=[ \t]*(?!\$\{)\S"),
    "pypirc": re.compile(rb"(?m)^[ \t]*password[ \t]*[=:][ \t]*\S"),
    "docker-config": re.compile(rb'"(?:auth|identitytoken|registrytoken)"[ \t\r\n]*:'),
}
PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")

LABELS: dict[str, str] = {
    "private-key": "private key",
    "dotenv": ".env file",
    "npmrc": ".npmrc with a registry token",
    "pypirc": ".pypirc with a password",
    "cloud-credentials": "cloud credentials",
    "docker-config": "Docker registry credentials",
    "git-credentials": ".git-credentials",
    "netrc": ".netrc",
    "kubeconfig": "kubeconfig",
}

_TABLE = PathTable(SECRET_FILES, exclude=NOT_SECRETS)
_KEY_EXCLUDED = PathTable([("excluded", g) for g in NOT_KEYS_BY_CONTENT])


def secret_kind(entry: Entry, path: str) -> str | None:
    """The kind of secret a FILE entry at `path` (relative) holds, or None."""
    content = entry.content
    if entry.size == 0 or (content is None and not _TABLE.may_match(path)):
        return None  # (without content, only a path the table matches is a secret)
    kind = _TABLE.subject(path)
    if kind is not None:
        required = CONTENT_REQUIRED.get(kind)
        if required is None or (content is not None and required.search(content)):
            return kind
    if (content is not None and PRIVATE_KEY.search(content)
            and _KEY_EXCLUDED.subject(path) is None):
        return "private-key"
    return None


def find(view: ImageView) -> list[Finding]:
    return find_alive(view) + find_in_lower_layers(view)


_ENTRY_CONTENT = attrgetter("entry.content")
_PATH = attrgetter("path")
_ENTRY_PATH = attrgetter("entry.path")
_T = TypeVar("_T", LiveFile, Hidden)


def _suspects(files: list[_T], paths: Iterable[str]) -> Iterator[_T]:
    """`files` (live or hidden, at `paths`) less most of those `secret_kind` finds nothing in:
    those with no content captured at a path no row may match (in C-level loops)."""
    captured = map(is_not, map(_ENTRY_CONTENT, files), repeat(None))
    return compress(files, map(or_, captured, _TABLE.may_match_each(paths)))


def find_alive(view: ImageView) -> list[Finding]:
    """One finding per kind and layer for secrets alive in the final image."""
    groups: dict[tuple[str, int], list[LiveFile]] = {}
    files = view.live_files
    for live in _suspects(files, map(_PATH, files)):
        kind = secret_kind(live.entry, live.path)
        if kind is not None:
            groups.setdefault((kind, live.layer_index), []).append(live)
    findings = []
    for (kind, layer), files in sorted(groups.items()):
        refs = alive_refs(view, files)
        findings.append(make_finding(
            rule=ALIVE_RULE, category=Category.SECRET, severity=Severity.HIGH,
            title=f"{_count(LABELS.get(kind, kind), len(refs))} in the final image, written by "
                  f"{step_label(view, layer)}",
            subject=kind, files=refs, removable=True,
            detail=f"{_paths(refs)}: anyone who pulls the image can read it; remove it, rotate "
                   "it, and pass it to the build with `RUN --mount=type=secret`",
        ))
    return findings


def find_in_lower_layers(view: ImageView) -> list[Finding]:
    """One finding per kind and (holding layer, hiding layer) for secrets hidden by a later step."""
    groups: dict[tuple[str, int, int], list[Hidden]] = {}
    for hidden in _suspects(view.hidden, map(_ENTRY_PATH, view.hidden)):
        entry = hidden.entry
        kind = secret_kind(entry, entry.path)
        if kind is not None:
            groups.setdefault((kind, hidden.layer_index, hidden.hidden_by), []).append(hidden)
    findings = []
    for (kind, layer, hider), hidden_files in sorted(groups.items()):
        refs = [FileRef("/" + h.entry.path, h.entry.size, h.layer_index, h.hidden_by)
                for h in hidden_files]
        overwritten = {h.overwritten for h in hidden_files}
        verb = "hid" if len(overwritten) > 1 else "overwrote" if True in overwritten else "deleted"
        findings.append(make_finding(
            rule=LOWER_RULE, category=Category.SECRET, severity=Severity.HIGH,
            title=f"{_count(LABELS.get(kind, kind), len(refs))} still in "
                  f"{step_label(view, layer)}, though {step_label(view, hider)} {verb} it",
            subject=kind, files=refs, removable=False,
            detail=f"{_paths(refs)}: deleting or overwriting a file in a later step does not "
                   f"remove it from layer {layer}, which every pull ships and anyone can "
                   "extract; rebuild without it (`RUN --mount=type=secret`, a build stage) and "
                   "rotate it",
        ))
    return findings


def _count(label: str, n: int) -> str:
    return label if n == 1 else f"{label} ({n} files)"


def _paths(refs: Iterable[FileRef]) -> str:
    return ", ".join(sorted({r.path for r in refs}))
