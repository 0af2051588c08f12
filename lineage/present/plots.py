"""Figures over pair results and the recovered tree, each written as PNG and SVG.

One function per figure; each takes an output path `out` and writes `<out>.png` and `<out>.svg`
(a .png or .svg suffix on `out` is dropped), returning both paths:

- `plot_family_tree(tree, out, family=None)`: generations top-down (plots_tree.py);
- `plot_heatmap(pairs_df, tree, out)`: the overlap matrix, models grouped by family;
- `plot_downloads_vs_overlap(pairs_df, out)`: the seed's figure, per family, same vs different;
- `plot_lineage_map(pairs_df, out)`: mean overlap vs its variability across slots, with regions
  (plots_map.py);
- `plot_layer_profile(per_slot, out, title)`: one pair's overlap and identity across depth.

`write_all_figures` draws them all into one folder. `pairs_df` is
`lineage.present.report_frame.pairs_frame`'s output; the tree is the tree JSON. matplotlib is imported inside the functions, never at import.
docs/report.md says how to read each figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lineage.present.plots_common import (
    DIFF_COLOR,
    SAME_COLOR,
    TREND_COLOR,
    message_panel,
    new_figure,
    save_figure,
    short_id,
    short_ids,
    short_tensor,
    slug,
)
from lineage.present.plots_map import plot_lineage_map
from lineage.present.plots_tree import families_by_size, layered_layout, plot_family_tree

__all__ = [
    "plot_downloads_vs_overlap",
    "plot_family_tree",
    "plot_heatmap",
    "plot_layer_profile",
    "plot_lineage_map",
    "write_all_figures",
]

OVERLAP_FLOOR = 1e-3  # the heatmap's log colour scale starts here; lower overlaps share its colour
MAX_HEATMAP_MODELS = 300
MAX_TICK_LABELS = 60


def _model_order(pairs_df: pd.DataFrame, tree: Mapping) -> list[tuple[str, list[str]]]:
    """(family, its models in tree order) for every model of the pairs, largest family first."""
    in_pairs = set(pairs_df["a"]) | set(pairs_df["b"])
    blocks, placed = [], set()
    for family, nodes in families_by_size(tree):
        pos = layered_layout(nodes)
        members = sorted((m for m in pos if m in in_pairs), key=lambda m: (pos[m][1], pos[m][0]))
        if members:
            blocks.append((family, members))
            placed.update(members)
    family_of = dict(zip(pairs_df["a"], pairs_df["family_a"], strict=True))
    family_of.update(zip(pairs_df["b"], pairs_df["family_b"], strict=True))
    rest: dict[str, list[str]] = {}
    for m in sorted(in_pairs - placed):
        rest.setdefault(str(family_of[m]), []).append(m)
    blocks += sorted(rest.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return sorted(blocks, key=lambda kv: -len(kv[1]))


def plot_heatmap(
    pairs_df: pd.DataFrame, tree: Mapping, out: str | Path, *, max_models: int = MAX_HEATMAP_MODELS
) -> list[Path]:
    """The overlap matrix, models grouped by recovered family, on a log colour scale.

    Same-family blocks show as bright squares on the diagonal; white lines separate families.
    Grey cells are pairs that were never compared. With more than `max_models` models only the
    largest families that fit are shown (the title says so).

    Args:
        pairs_df: from `lineage.present.report_frame.pairs_frame`.
        tree: the tree JSON; models are ordered by family, then generation.
        out: output path (see the module docstring).
        max_models: the most rows and columns drawn.
    """
    from matplotlib.colors import LogNorm

    blocks = _model_order(pairs_df, tree)
    total = sum(len(members) for _, members in blocks)
    shown: list[tuple[str, list[str]]] = []
    room = max_models
    for family, members in blocks:  # largest families first, while they fit
        if len(members) > room:
            if not shown:  # even the largest does not fit: its first models
                shown.append((family, members[:room]))
            break
        shown.append((family, members))
        room -= len(members)
    models = [m for _, members in shown for m in members]
    index = {m: i for i, m in enumerate(models)}
    n = len(models)
    matrix = np.full((n, n), np.nan)
    np.fill_diagonal(matrix, 1.0)
    for a, b, ov in zip(pairs_df["a"], pairs_df["b"], pairs_df["overlap"], strict=True):
        if a in index and b in index and not math.isnan(ov):
            matrix[index[a], index[b]] = matrix[index[b], index[a]] = max(ov, OVERLAP_FLOOR)
    side = min(16.0, max(7.0, 0.13 * n + 4.0))
    fig = new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    if n == 0:
        message_panel(ax, "no pairs to draw")
        ax.set_axis_off()
        return save_figure(fig, out)
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")
    image = ax.imshow(
        np.ma.masked_invalid(matrix),
        cmap=cmap,
        norm=LogNorm(OVERLAP_FLOOR, 1.0),
        interpolation="nearest",
    )
    bar = fig.colorbar(image, ax=ax, shrink=0.8, extend="min")
    bar.set_label(
        f"bottom-k overlap (log scale; below {OVERLAP_FLOOR:g} drawn as {OVERLAP_FLOOR:g})"
    )
    edge, mids, names = 0, [], []
    for family, members in shown:
        if edge:
            ax.axhline(edge - 0.5, color="white", lw=1.5)
            ax.axvline(edge - 0.5, color="white", lw=1.5)
        if len(members) >= max(2, n // 40):
            mids.append(edge + (len(members) - 1) / 2)
            names.append(short_id(family, 18))
        edge += len(members)
    if n <= MAX_TICK_LABELS:
        size = max(5.0, min(8.0, 300 / n))
        model_names = short_ids(models, 20)
        labels = [model_names[m] for m in models]
        ax.set_xticks(range(n), labels, rotation=90, fontsize=size)
        ax.set_yticks(range(n), labels, fontsize=size)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    top = ax.secondary_xaxis("top")
    top.set_xticks(mids, names, rotation=30, ha="left", fontsize=8)
    top.set_xlabel("recovered family")
    title = "Overlap between models, grouped by recovered family"
    if np.isnan(matrix).any():
        title += "\ngrey: never compared (different architectures)"
    if len(models) < total:
        title += f"\n{len(models)} of {total} models shown: the largest families"
    ax.set_title(title)
    return save_figure(fig, out)


def _trend(ax: Any, x: np.ndarray, y: np.ndarray) -> float | None:
    """Draw the least-squares line of y on log10(x) over the data's range; return its slope."""
    lx = np.log10(x)
    if len(np.unique(lx)) < 2:
        return None
    slope, intercept = np.polyfit(lx, y, 1)
    xs = np.linspace(lx.min(), lx.max(), 50)
    ax.plot(10**xs, intercept + slope * xs, ls="--", color=TREND_COLOR, lw=1.5)
    return float(slope)


def plot_downloads_vs_overlap(
    pairs_df: pd.DataFrame, out: str | Path, *, max_families: int = 4
) -> list[Path]:
    """The seed's figure: derived-model downloads (log x) vs overlap, one row per family.

    Rows are the `max_families` families with the most pairs (by the derived model's family);
    columns are different-family and same-family pairs. Each panel has its points, a dashed trend
    line fitted on log10(downloads) (its slope per 10x downloads in the title) and dotted lines at
    the download bucket edges (10, 100, 1000). Zero downloads are drawn at 1. All panels share
    the x range; each column shares its y range.
    """
    from matplotlib.ticker import NullFormatter

    df = pairs_df[pairs_df["overlap"].notna() & pairs_df["derived_downloads"].notna()]
    counts = df["derived_family"].value_counts()
    families = sorted(counts.index, key=lambda f: (-counts[f], f))[:max_families] or [None]
    fig = new_figure(11.0, 2.9 * len(families) + 0.9)
    axes = fig.subplots(len(families), 2, squeeze=False)
    different = df.loc[~df["same_family"], "overlap"]
    y_top = {True: 1.05, False: max(different.max() * 1.15, 0.01) if len(different) else 0.02}
    most = df["derived_downloads"].max() if len(df) else 0.0
    x_max = 10.0 ** max(3, math.ceil(math.log10(most + 1) + 0.1))
    for row, family in zip(axes, families, strict=True):
        for ax, same in zip(row, (False, True), strict=True):
            sub = df[(df["derived_family"] == family) & (df["same_family"] == same)]
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # unlabelled minor ticks: faster layout
            ax.set_xlim(0.7, x_max)
            ax.set_ylim(0, y_top[same])
            ax.set_xlabel("derived model downloads (log; 0 drawn at 1)")
            ax.set_ylabel("overlap (mean over slots)")
            ax.grid(True, alpha=0.3)
            for edge in (10, 100, 1000):
                ax.axvline(edge, color="#bbbbbb", ls=":", lw=1, zorder=0)
            title = f"{short_id(family, 30) if family else 'no pairs'}: "
            title += f"{'same' if same else 'different'} family (n={len(sub)})"
            if sub.empty:
                message_panel(ax, "no pairs")
            else:
                x = np.maximum(sub["derived_downloads"].to_numpy(), 1.0)
                y = sub["overlap"].to_numpy()
                color = SAME_COLOR if same else DIFF_COLOR
                ax.scatter(x, y, s=22, alpha=0.7, color=color, edgecolors="none")
                slope = _trend(ax, x, y)
                if slope is not None:
                    title += f"\ntrend {slope:+.2g} overlap per 10x downloads"
            ax.set_title(title, fontsize=10)
    title = "Downloads vs overlap, same vs different family (dashed: trend)"
    if len(df) and not df["derived_downloads"].any():
        title += "\nevery model has 0 downloads: no download counts in these records"
    fig.suptitle(title)
    return save_figure(fig, out)


def _slot_value(slot: Any, key: str) -> Any:
    return slot.get(key) if isinstance(slot, Mapping) else getattr(slot, key, None)


def plot_layer_profile(per_slot: Sequence[Any], out: str | Path, title: str) -> list[Path]:
    """One pair's overlap and identity per slot, in depth order (for `lineage audit`).

    Args:
        per_slot: mappings (or objects) with `tensor`, `overlap` and `identity`, in depth order.
        out: output path (see the module docstring).
        title: the figure title, e.g. "org/child vs org/base".
    """
    n = len(per_slot)
    fig = new_figure(min(30.0, max(8.0, 0.22 * n + 2.5)), 5.2)
    ax = fig.add_subplot()
    ax.set_title(title)
    if n == 0:
        message_panel(ax, "no comparable slots")
        return save_figure(fig, out)
    x = np.arange(n)
    overlap = np.array([_float(_slot_value(s, "overlap")) for s in per_slot])
    identity = np.array([_float(_slot_value(s, "identity")) for s in per_slot])
    ax.plot(
        x,
        overlap,
        "o-",
        color=SAME_COLOR,
        ms=4,
        lw=1.2,
        zorder=3,
        label="overlap (bottom-k positions)",
    )
    if not np.isnan(identity).all():
        ax.plot(
            x,
            identity,
            "s--",
            color="#2ca02c",
            ms=3,
            lw=1,
            label="identity (exactly equal weights)",
        )
    mean = np.nanmean(overlap)
    ax.axhline(mean, ls=":", color="#444444", label=f"mean overlap {mean:.3f}")
    step = max(1, math.ceil(n / 60))
    names = [short_tensor(_slot_value(s, "tensor") or f"slot {i}") for i, s in enumerate(per_slot)]
    ax.set_xticks(x[::step], names[::step], rotation=90, fontsize=7)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel("slot (tensor), in depth order")
    ax.set_ylabel("fraction")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, out)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def write_all_figures(
    pairs_df: pd.DataFrame, tree: Mapping, out_dir: str | Path, *, max_families: int = 6
) -> list[Path]:
    """Draw every figure into `out_dir` (created if missing).

    Writes family_trees (the `max_families` largest families), tree_<family> for each of those
    with at least two models, heatmap, downloads_vs_overlap, lineage_map, and layer_profile for
    the same-family pair whose overlap varies most across slots (the clearest partial or merge),
    each as PNG and SVG. Figures without data are skipped.

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    paths: list[Path] = []
    if tree.get("nodes"):
        paths += plot_family_tree(tree, out / "family_trees", max_families=max_families)
        for family, nodes in families_by_size(tree)[:max_families]:
            if len(nodes) >= 2:
                paths += plot_family_tree(tree, out / f"tree_{slug(family)}", family=family)
    if pairs_df.empty:
        return paths
    paths += plot_heatmap(pairs_df, tree, out / "heatmap")
    paths += plot_downloads_vs_overlap(pairs_df, out / "downloads_vs_overlap")
    paths += plot_lineage_map(pairs_df, out / "lineage_map")
    related = pairs_df[pairs_df["same_family"] & pairs_df["per_slot"].map(len).gt(0)]
    if not related.empty:
        pair = related.loc[related["overlap_std"].fillna(-1).idxmax()]
        title = f"{pair['a']} vs {pair['b']}: overlap per slot"
        paths += plot_layer_profile(pair["per_slot"], out / "layer_profile", title)
    return paths
