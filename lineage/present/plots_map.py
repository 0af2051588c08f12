"""The lineage map: per pair, mean overlap across slots vs how much it varies across slots.

Drawn like dataset cartography's data map (mean vs variability, regions, marginal histograms).
The regions are those of `lineage.present.report_stats.lineage_map_regions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lineage.present.plots_common import (
    DIFF_COLOR,
    SAME_COLOR,
    message_panel,
    new_figure,
    save_figure,
)
from lineage.present.report_stats import UNRELATED_BELOW, VARIABLE_FROM, lineage_map_regions

__all__ = ["plot_lineage_map"]

STD_MAX = 0.52  # the std of values in [0, 1] is at most 0.5
REGION_STYLE = {  # face colour, label position (axes fraction), box edge colour
    "clear derivative": ("#e5f5e0", "#31a354"),
    "partial or merged": ("#fee6ce", "#e6550d"),
    "unrelated": ("#eeeeee", "#636363"),
}


def plot_lineage_map(
    pairs_df: pd.DataFrame,
    out: str | Path,
    *,
    unrelated_below: float = UNRELATED_BELOW,
    variable_from: float = VARIABLE_FROM,
) -> list[Path]:
    """Mean overlap (y) vs overlap std across slots (x), one point per pair, with regions.

    Regions (shaded, labelled with their pair counts): "unrelated" below `unrelated_below`;
    above it, "clear derivative" left of `variable_from` and "partial or merged" right of it. The
    dashed curve is the largest std a mean allows (sqrt(m(1 - m))): no point lies right of it.
    Marginal histograms (log counts) show each axis alone. Pairs without per-slot detail
    (the store keeps none for most unrelated pairs) are not drawn but count in their region's n;
    the title says how many.
    """
    from matplotlib.patches import Rectangle

    df = lineage_map_regions(pairs_df, unrelated_below=unrelated_below, variable_from=variable_from)
    drawn = df[df["region"].notna() & df["overlap_std"].notna()]
    fig = new_figure(10.0, 8.5)
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4))
    ax = fig.add_subplot(grid[1, 0])
    ax_top = fig.add_subplot(grid[0, 0], sharex=ax)
    ax_right = fig.add_subplot(grid[1, 1], sharey=ax)

    boxes = {
        "unrelated": (0, 0, STD_MAX, unrelated_below),
        "clear derivative": (0, unrelated_below, variable_from, 1.02 - unrelated_below),
        "partial or merged": (
            variable_from,
            unrelated_below,
            STD_MAX - variable_from,
            1.02 - unrelated_below,
        ),
    }
    counts = df["region"].value_counts()  # pairs without per-slot detail count in their region
    for region, (x, y, w, h) in boxes.items():
        face, edge = REGION_STYLE[region]
        ax.add_patch(Rectangle((x, y), w, h, facecolor=face, edgecolor="none", zorder=0))
        ax.text(
            x + w / 2,
            y + h - 0.03 if region != "unrelated" else y + h / 2,
            f"{region}\nn={int(counts.get(region, 0))}",
            ha="center",
            va="top" if region != "unrelated" else "center",
            fontsize=10,
            zorder=1.5,
            bbox={"boxstyle": "round,pad=0.3", "ec": edge, "lw": 1.5, "fc": "white", "alpha": 0.85},
        )
    m = np.linspace(0, 1, 200)
    ax.plot(
        np.sqrt(m * (1 - m)),
        m,
        ls="--",
        color="#999999",
        lw=1,
        zorder=1,
        label="largest possible std",
    )
    groups = (("different family", DIFF_COLOR, False, 14), ("same family", SAME_COLOR, True, 22))
    for label, color, same, size in groups:
        sub = drawn[drawn["same_family"] == same]
        ax.scatter(
            sub["overlap_std"],
            sub["overlap"],
            s=size,
            color=color,
            alpha=0.7,
            edgecolors="none",
            zorder=2,
            label=f"{label} (n={len(sub)})",
        )
    ax.set_xlim(0, STD_MAX)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("variability: std of overlap across slots")
    ax.set_ylabel("mean overlap across slots")
    ax.legend(loc="lower right", fontsize=9, framealpha=0.9)

    if drawn.empty:
        message_panel(ax, "no pairs with per-slot detail")
        ax_top.set_axis_off()
        ax_right.set_axis_off()
    else:
        _marginals(ax_top, ax_right, drawn)
    missing = len(df) - len(drawn)
    title = "Lineage map: mean overlap vs its variability across slots"
    if missing:
        title += f"\n{missing} pairs without per-slot detail not drawn (counted in their region)"
    fig.suptitle(title)
    return save_figure(fig, out)


def _marginals(ax_top: Any, ax_right: Any, drawn: pd.DataFrame) -> None:
    """Stacked histograms (log counts) of the std (top) and the mean overlap (right)."""
    from matplotlib.ticker import NullFormatter

    same, diff = drawn[drawn["same_family"]], drawn[~drawn["same_family"]]
    for ax, column, bins, orientation in (
        (ax_top, "overlap_std", np.linspace(0, STD_MAX, 27), "vertical"),
        (ax_right, "overlap", np.linspace(0, 1.02, 35), "horizontal"),
    ):
        ax.hist(
            [diff[column], same[column]],
            bins=bins,
            stacked=True,
            color=[DIFF_COLOR, SAME_COLOR],
            log=True,
            orientation=orientation,
        )
    ax_top.yaxis.set_minor_formatter(NullFormatter())
    ax_top.set_ylabel("pairs (log)")
    ax_top.tick_params(labelbottom=False)
    ax_right.xaxis.set_minor_formatter(NullFormatter())
    ax_right.set_xlabel("pairs (log)")
    ax_right.tick_params(labelleft=False)
