"""The lineage map: per pair, mean overlap against the share of its slots left byte-identical.

Drawn like dataset cartography's data map (two per-pair numbers, regions, marginal histograms).
The x axis is the share of "untouched" slots: the one number of a single pair that tells a
partial fine-tune or a merged adapter (some tensors untouched, the rest trained) from a full
fine-tune, quantization or cast (every tensor changed) and from a copy (nothing changed). The
regions are those of `lineage.present.report_stats.lineage_map_regions`. A merge has no region:
each of its pairs looks like a fine-tune, and only the graph (a model between two lines) finds
it; recovered edges are coloured by their relation, so the reader sees where merges fall.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lineage.present.plots_common import (
    DIFF_COLOR,
    RELATION_COLORS,
    message_panel,
    new_figure,
    save_figure,
)
from lineage.present.report_stats import (
    IDENTICAL_FROM,
    PARTIAL_FROM,
    UNRELATED_BELOW,
    lineage_map_regions,
)

__all__ = ["lineage_map_figure", "plot_lineage_map"]

X_MAX = 1.02
Y_MAX = 1.03
REGION_STYLE = {  # face colour, label box edge colour
    "trained throughout": ("#e5f5e0", "#31a354"),
    "partly untouched": ("#fee6ce", "#e6550d"),
    "byte-identical": ("#efe3f7", "#756bb1"),
    "unrelated": ("#eeeeee", "#636363"),
}
RELATED_COLOR = "#9ecae1"  # same-family pairs that are no recovered edge


def _edge_relations(tree: Mapping | None) -> dict[tuple[str, str], str]:
    """(a, b) with a < b -> the relation of the recovered edge between them (merge edges keep
    "merge" for both parents)."""
    out: dict[tuple[str, str], str] = {}
    for e in (tree or {}).get("edges", []):
        a, b = sorted((str(e.get("parent")), str(e.get("child"))))
        out[(a, b)] = str(e.get("relation") or "other")
    return out


def lineage_map_figure(
    pairs_df: pd.DataFrame,
    tree: Mapping | None = None,
    *,
    unrelated_below: float = UNRELATED_BELOW,
    partial_from: float = PARTIAL_FROM,
    identical_from: float = IDENTICAL_FROM,
) -> Any:
    """The figure `plot_lineage_map` saves (a matplotlib Figure; see there)."""
    from matplotlib.patches import Rectangle

    df = lineage_map_regions(
        pairs_df,
        unrelated_below=unrelated_below,
        partial_from=partial_from,
        identical_from=identical_from,
    )
    drawn = df[df["region"].notna() & df["untouched"].notna()]
    fig = new_figure(10.5, 8.5)
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4))
    ax = fig.add_subplot(grid[1, 0])
    ax_top = fig.add_subplot(grid[0, 0], sharex=ax)
    ax_right = fig.add_subplot(grid[1, 1], sharey=ax)

    top = Y_MAX - unrelated_below
    boxes = {
        "unrelated": (0, 0, X_MAX, unrelated_below),
        "trained throughout": (0, unrelated_below, partial_from, top),
        "partly untouched": (partial_from, unrelated_below, identical_from - partial_from, top),
        "byte-identical": (identical_from, unrelated_below, X_MAX - identical_from, top),
    }
    counts = df["region"].value_counts()  # pairs without per-slot detail count in their region
    for region, (x, y, w, h) in boxes.items():
        face, edge = REGION_STYLE[region]
        ax.add_patch(
            Rectangle((x, y), w, h, facecolor=face, edgecolor="none", zorder=0, gid=region)
        )
        label = f"{region}\nn={int(counts.get(region, 0))}"
        if region == "partly untouched":
            label = f"partly untouched\n(partial fine-tune,\nmerged adapter)\nn={int(counts.get(region, 0))}"
        inside = region in ("unrelated", "byte-identical")
        ax.text(
            x + w / 2 if region != "byte-identical" else x - 0.01,
            y + h / 2 if region == "unrelated" else 0.58,
            label,
            ha="center" if region != "byte-identical" else "right",
            va="center",
            fontsize=9 if not inside else 8.5,
            zorder=1.5,
            bbox={"boxstyle": "round,pad=0.3", "ec": edge, "lw": 1.5, "fc": "white", "alpha": 0.9},
        )
    relation_of = _edge_relations(tree)
    relation = [relation_of.get((a, b)) for a, b in zip(drawn["a"], drawn["b"], strict=True)]
    drawn = drawn.assign(edge_relation=relation)
    rng = np.random.default_rng(0)  # a little horizontal jitter: most pairs sit at 0 exactly
    jitter = rng.uniform(-0.008, 0.008, len(drawn))
    drawn = drawn.assign(x=np.clip(drawn["untouched"] + jitter, 0, X_MAX))
    layers = [
        ("different family", drawn[~drawn["same_family"] & drawn["edge_relation"].isna()], DIFF_COLOR, 12),
        ("same family, no recovered edge", drawn[drawn["same_family"] & drawn["edge_relation"].isna()], RELATED_COLOR, 14),
    ]  # fmt: skip
    for rel in ("finetune", "quantized", "copy", "adapter", "partial", "merge", "other"):
        sub = drawn[drawn["edge_relation"] == rel]
        if len(sub):
            layers.append((f"recovered edge: {rel}", sub, RELATION_COLORS[rel], 34))
    for label, sub, color, size in layers:
        ax.scatter(
            sub["x"],
            sub["overlap"],
            s=size,
            color=color,
            alpha=0.85,
            edgecolors="white" if size > 20 else "none",
            linewidths=0.5,
            zorder=2 if size < 20 else 3,
            label=f"{label} (n={len(sub)})",
        )
    ax.set_xlim(-0.02, X_MAX)
    ax.set_ylim(0, Y_MAX)
    ax.set_xlabel("untouched: share of slots whose weights are byte-identical")
    ax.set_ylabel("mean overlap across slots")
    # below the region labels, where no related pair lies (related pairs sit above 0.4 here)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 0.12), fontsize=8, framealpha=0.92, ncol=2)

    if drawn.empty:
        message_panel(ax, "no pairs with per-slot detail")
        ax_top.set_axis_off()
        ax_right.set_axis_off()
    else:
        _marginals(ax_top, ax_right, drawn)
    missing = len(df) - len(drawn)
    title = "Lineage map: mean overlap vs the share of slots left untouched"
    title += (
        "\nmerges have no region (each of their pairs looks like a fine-tune): see the pink points"
    )
    if missing:
        title += f"\n{missing} pairs without per-slot detail not drawn (counted in their region)"
    fig.suptitle(title)
    return fig


def plot_lineage_map(
    pairs_df: pd.DataFrame,
    out: str | Path,
    *,
    tree: Mapping | None = None,
    unrelated_below: float = UNRELATED_BELOW,
    partial_from: float = PARTIAL_FROM,
    identical_from: float = IDENTICAL_FROM,
) -> list[Path]:
    """Mean overlap (y) vs the share of untouched slots (x), one point per pair, with regions.

    Regions (shaded, labelled with their pair counts): "unrelated" below `unrelated_below`;
    above it "trained throughout" left of `partial_from`, "partly untouched" (partial
    fine-tunes, merged adapters) up to `identical_from`, and "byte-identical" (copies) from
    there. With a `tree`, pairs that are a recovered edge are coloured by its relation. Marginal
    histograms (log counts) show each axis alone. Pairs without per-slot detail (the store keeps
    none for most unrelated pairs) are not drawn but count in their region's n; the title says
    how many.
    """
    fig = lineage_map_figure(
        pairs_df,
        tree,
        unrelated_below=unrelated_below,
        partial_from=partial_from,
        identical_from=identical_from,
    )
    return save_figure(fig, out)


def _marginals(ax_top: Any, ax_right: Any, drawn: pd.DataFrame) -> None:
    """Stacked histograms (log counts) of the untouched share (top) and the mean overlap
    (right), different-family pairs in grey, same-family in blue."""
    from matplotlib.ticker import NullFormatter

    same, diff = drawn[drawn["same_family"]], drawn[~drawn["same_family"]]
    for ax, column, bins, orientation in (
        (ax_top, "untouched", np.linspace(0, X_MAX, 35), "vertical"),
        (ax_right, "overlap", np.linspace(0, Y_MAX, 35), "horizontal"),
    ):
        ax.hist(
            [diff[column], same[column]],
            bins=bins,
            stacked=True,
            color=[DIFF_COLOR, "#1f77b4"],
            log=True,
            orientation=orientation,
        )
    ax_top.yaxis.set_minor_formatter(NullFormatter())
    ax_top.set_ylabel("pairs (log)")
    ax_top.tick_params(labelbottom=False)
    ax_right.xaxis.set_minor_formatter(NullFormatter())
    ax_right.set_xlabel("pairs (log)")
    ax_right.tick_params(labelleft=False)
