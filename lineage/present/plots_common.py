"""What every figure shares: colours, short labels, and saving one figure as PNG and SVG.

Figures are `matplotlib.figure.Figure` objects made without pyplot, so no GUI backend is ever
chosen, nothing global is kept between calls, and drawing works without a display.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Node colour by the relation to the recovered parent (docs/contracts.md), roots apart.
RELATION_COLORS = {
    "root": "#4d4d4d",
    "finetune": "#1f77b4",
    "adapter": "#2ca02c",
    "partial": "#ff7f0e",
    "copy": "#9467bd",
    "quantized": "#17becf",
    "merge": "#e377c2",
    "other": "#bcbd22",
}
SAME_COLOR = "#1f77b4"  # same-family pairs
DIFF_COLOR = "#8c8c8c"  # different-family pairs
ANOMALY_COLOR = "#d62728"
DPI = 110


def new_figure(width: float, height: float) -> Any:
    """A constrained-layout Figure of `width` x `height` inches, detached from pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def output_base(out: str | Path) -> Path:
    """`out` without a trailing .png or .svg: the figure is written as `<base>.png` and `.svg`."""
    out = Path(out)
    if out.suffix.lower() in (".png", ".svg"):
        return out.with_name(out.name[: -len(out.suffix)])
    return out


def save_figure(fig: Any, out: str | Path) -> list[Path]:
    """Write `fig` as `<base>.png` and `<base>.svg` (see `output_base`); return both paths."""
    base = output_base(out)
    base.parent.mkdir(parents=True, exist_ok=True)
    png, svg = base.with_name(base.name + ".png"), base.with_name(base.name + ".svg")
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    # No date in the SVG, so the same inputs give the same file.
    fig.savefig(svg, format="svg", metadata={"Date": None})
    return [png, svg]


def short_id(model_id: str, width: int = 22) -> str:
    """The repo name without its owner, cut to `width` characters with an ellipsis."""
    name = str(model_id).rsplit("/", 1)[-1]
    return name if len(name) <= width else name[: width - 1] + "\u2026"


def short_ids(ids: Iterable[str], width: int = 22) -> dict[str, str]:
    """Labels for several models: `short_id`, but with the owner where two names collide."""
    ids = list(dict.fromkeys(ids))
    names = Counter(str(i).rsplit("/", 1)[-1] for i in ids)
    labels = {}
    for i in ids:
        if names[str(i).rsplit("/", 1)[-1]] > 1:
            text = str(i)
            labels[i] = text if len(text) <= width + 12 else text[: width + 11] + "\u2026"
        else:
            labels[i] = short_id(i, width)
    return labels


# Wrapper prefixes that say nothing about where a tensor sits (DESIGN.md, name normalization).
_WRAPPERS = re.compile(r"^(base_model\.model\.|model\.|transformer\.|module\.)+")


def short_tensor(name: str, width: int = 28) -> str:
    """A tensor name without wrapper prefixes and `.weight`, keeping its informative end."""
    name = re.sub(r"\.weight$", "", _WRAPPERS.sub("", str(name)))
    return name if len(name) <= width else "\u2026" + name[-(width - 1) :]


def slug(text: str) -> str:
    """A file-name-safe form of a model id (`org/name` -> `org_name`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "model"


def message_panel(ax: Any, text: str) -> None:
    """Say in the panel why it is empty, instead of leaving a blank box."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
