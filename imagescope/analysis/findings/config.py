"""Image configuration: the user the image runs as, and how many layers it has (pure).

`root-user`: the config's User is unset, empty, or names uid 0 / root, with or without a group
(`0`, `root`, `0:0`, `root:staff`, …). `layer-count`: the image has more filesystem layers than
what they hold calls for — more than MAX_LAYERS, or more than SMALL_CHECK_FROM of which at
least SMALL_SHARE add under SMALL_LAYER_BYTES each. History steps that make no layer (ENV, CMD…)
are not layers. Both findings concern configuration, not files: they carry no bytes.
"""

from __future__ import annotations

from imagescope.analysis.findings.model import Category, Finding, Severity, make_finding
from imagescope.analysis.findings.view import ImageView
from imagescope.model import EntryKind, Layer

ROOT_RULE = "root-user"
LAYERS_RULE = "layer-count"

ROOT_NAMES = frozenset({"", "0", "root"})  # the user part, before any `:group`

MAX_LAYERS = 15  # more layers than this is a finding whatever they hold
SMALL_CHECK_FROM = 5  # with more layers than this, many small ones are a finding
SMALL_LAYER_BYTES = 1 << 20  # a layer adding less than this is small
SMALL_SHARE = 0.5  # "many": at least this share of the layers is small


def find(view: ImageView) -> list[Finding]:
    return find_root_user(view) + find_layer_count(view)


def runs_as_root(user: str | None) -> bool:
    """True when the config's User leaves the process running as uid 0."""
    return (user or "").strip().partition(":")[0] in ROOT_NAMES


def find_root_user(view: ImageView) -> list[Finding]:
    user = view.image.user
    if not runs_as_root(user):
        return []
    configured = (user or "").strip()
    how = f"USER {configured}" if configured else "no USER"
    return [make_finding(
        rule=ROOT_RULE, category=Category.CONFIG, severity=Severity.MEDIUM,
        title=f"the image runs as root ({how})", subject="root", files=[],
        detail="every process in the container runs with uid 0, so a compromise or a container "
               "escape starts as root; add an unprivileged user and switch to it with USER",
    )]


def adds_under(layer: Layer, limit: int) -> bool:
    """True when the FILE entries of `layer` add fewer than `limit` bytes (`Layer.added_bytes`
    below `limit`); counting stops at `limit`, so a big layer costs a few of its entries."""
    total = 0
    file = EntryKind.FILE
    for entry in layer.entries:
        if entry.kind is file:
            total += entry.size
            if total >= limit:
                return False
    return True


def find_layer_count(view: ImageView) -> list[Finding]:
    layers = view.image.layers
    count = len(layers)
    small = tuple(i for i, layer in enumerate(layers) if adds_under(layer, SMALL_LAYER_BYTES))
    too_many = count > MAX_LAYERS
    many_small = count > SMALL_CHECK_FROM and len(small) >= SMALL_SHARE * count
    if not (too_many or many_small):
        return []
    return [make_finding(
        rule=LAYERS_RULE, category=Category.CONFIG, severity=Severity.LOW,
        title=f"{count} layers, {len(small)} of them adding under "
              f"{SMALL_LAYER_BYTES >> 20} MiB each",
        subject="layers", files=[], layers=small,
        detail=f"every layer is a separate download and unpack; merge consecutive RUN steps "
               f"with `&&` and COPY related files in one step (small layers: "
               f"{', '.join(map(str, small)) or 'none'})",
    )]
