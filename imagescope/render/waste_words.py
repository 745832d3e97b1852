"""How every renderer names the waste classes and the base image (one vocabulary)."""

from __future__ import annotations

from imagescope.analysis.recommend import changes_base
from imagescope.analysis.report import BaseImage, Report

OWN = "waste written by own steps (a Dockerfile change reclaims it)"
BASE_HIDDEN = ("base files hidden by own steps (ship either way: only another base or a build "
               "stage reclaims them)")
INHERITED = "waste inside the base image (not yours)"


def base_layers_text(base: BaseImage) -> str:
    """`layer 0` or `layers 0-2`."""
    last = base.layer_count - 1
    return f"layers 0-{last}" if last else "layer 0"


def base_origin(base: BaseImage) -> str:
    """Where the FROM boundary came from."""
    return f"--base {base.reference}" if base.reference else "the image history's FROM boundary"


def waste_split(base: BaseImage) -> list[tuple[str, int]]:
    """The waste by class, as (label, bytes), own first."""
    return [(OWN, base.own_wasted_bytes), (BASE_HIDDEN, base.base_hidden_bytes),
            (INHERITED, base.inherited_wasted_bytes)]


def optimized_label(report: Report) -> str:
    """What the optimized estimate assumes."""
    if changes_base(report.recommendations):
        return "Optimized (all recommendations applied, including another base or a build stage)"
    return "Optimized (all recommendations applied, same base image)"
