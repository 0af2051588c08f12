"""Figures over pair results and the recovered tree, each written as PNG and SVG.

One function per figure; each takes an output path `out` and writes `<out>.png` and `<out>.svg`
(a .png or .svg suffix on `out` is dropped), returning both paths:

- `plot_family_tree(tree, out, family=None)`: indented trees, one model per row (plots_tree.py);
- `plot_heatmap(pairs_df, tree, out)`: the overlap matrix, models grouped by family, linear from
  the chance level to 1;
- `plot_downloads_vs_overlap(pairs_df, out)`: the seed's question as box and strip plots per
  download bucket, same vs different family, on one y axis;
- `plot_lineage_map(pairs_df, out, tree=...)`: mean overlap vs the share of untouched slots, with
  regions (plots_map.py);
- `plot_layer_profile(per_slot, out, title)`: one pair's overlap and identity across depth.

`write_all_figures` draws them all into one folder. `pairs_df` is `lineage.frames.pairs_frame`'s
output; the tree is the tree JSON. matplotlib is imported inside the functions, never at import;
the `*_figure` functions return the Figure unsaved (tests read what was drawn).
docs/report.md says how to read each figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lineage.frames import BUCKETS
from lineage.present.plots_common import (
    DIFF_COLOR,
    SAME_COLOR,
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
    "chance_level",
    "downloads_figure",
    "heatmap_figure",
    "plot_downloads_vs_overlap",
    "plot_family_tree",
    "plot_heatmap",
    "plot_layer_profile",
    "plot_lineage_map",
    "write_all_figures",
]

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


def chance_level(pairs_df: pd.DataFrame) -> float:
    """The overlap two unrelated models share by chance: the median overlap of the pairs the
    comparison called unrelated (else of the different-family pairs; 0 without either).

    Measured rather than computed (k / window) because the null draws from the population each
    window's row and column pattern leaves, which is smaller than the window.
    """
    unrelated = pairs_df.loc[pairs_df["verdict"] == "unrelated", "overlap"].dropna()
    if unrelated.empty:
        unrelated = pairs_df.loc[~pairs_df["same_family"].astype(bool), "overlap"].dropna()
    return float(unrelated.median()) if len(unrelated) else 0.0


def heatmap_figure(
    pairs_df: pd.DataFrame, tree: Mapping, *, max_models: int = MAX_HEATMAP_MODELS
) -> Any:
    """The figure `plot_heatmap` saves (a matplotlib Figure; see there)."""
    from matplotlib.colors import Normalize

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
            matrix[index[a], index[b]] = matrix[index[b], index[a]] = ov
    side = min(16.0, max(7.0, 0.13 * n + 4.0))
    fig = new_figure(side + 1.6, side)
    ax = fig.add_subplot()
    if n == 0:
        message_panel(ax, "no pairs to draw")
        ax.set_axis_off()
        return fig
    import matplotlib

    chance = min(chance_level(pairs_df), 0.99)
    # Linear from chance to 1: the differences that decide parents (0.45 against 0.95) get most
    # of the colours, where a log scale gave them one; below chance is the floor colour.
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9", under="#2a0a3a")
    image = ax.imshow(
        np.ma.masked_invalid(matrix),
        cmap=cmap,
        norm=Normalize(vmin=chance, vmax=1.0),
        interpolation="nearest",
    )
    bar = fig.colorbar(image, ax=ax, shrink=0.8, extend="min")
    bar.set_label("bottom-k overlap (linear; below chance drawn as chance)")
    bar.ax.axhline(chance, color="white", lw=3)
    bar.ax.axhline(chance, color="#d62728", lw=1.5)
    ticks = [t for t in (0.2, 0.4, 0.6, 0.8, 1.0) if t > chance + 0.08]
    bar.set_ticks([chance, *ticks], labels=[f"chance {chance:.3f}", *(f"{t:g}" for t in ticks)])
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
    title += f"\ncolour linear from chance ({chance:.3f}, median of unrelated pairs) to 1"
    if np.isnan(matrix).any():
        title += "; grey: never compared (different architectures)"
    if len(models) < total:
        title += f"\n{len(models)} of {total} models shown: the largest families"
    ax.set_title(title)
    return fig


def plot_heatmap(
    pairs_df: pd.DataFrame, tree: Mapping, out: str | Path, *, max_models: int = MAX_HEATMAP_MODELS
) -> list[Path]:
    """The overlap matrix, models grouped by recovered family, on a linear colour scale.

    The scale runs from the chance level (`chance_level`: what unrelated models share, marked
    on the colour bar) to 1, so that the overlaps that decide parents (about 0.45 to 1) spread
    over the colours; overlaps below chance take the floor colour. Same-family blocks show as
    bright squares on the diagonal; white lines separate families. Grey cells are pairs that
    were never compared. With more than `max_models` models only the largest families that fit
    are shown (the title says so).

    Args:
        pairs_df: from `lineage.frames.pairs_frame`.
        tree: the tree JSON; models are ordered by family, then generation.
        out: output path (see the module docstring).
        max_models: the most rows and columns drawn.
    """
    return save_figure(heatmap_figure(pairs_df, tree, max_models=max_models), out)


def downloads_figure(pairs_df: pd.DataFrame, *, max_families: int = 4) -> Any:
    """The figure `plot_downloads_vs_overlap` saves (a matplotlib Figure; see there)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    df = pairs_df[pairs_df["overlap"].notna() & pairs_df["bucket"].notna()]
    counts = df["derived_family"].value_counts()
    families = sorted(counts.index, key=lambda f: (-counts[f], f))[:max_families]
    panels: list[tuple[str, pd.DataFrame]] = [("all families", df)]
    panels += [(short_id(f, 26), df[df["derived_family"] == f]) for f in families]
    fig = new_figure(max(7.0, 3.1 * len(panels) + 1.0), 5.4)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    chance = chance_level(pairs_df) if len(pairs_df) else 0.0
    rng = np.random.default_rng(0)  # the strip's jitter, fixed so the figure is reproducible
    for ax, (title, sub) in zip(axes, panels, strict=True):
        ticks = []
        for i, bucket in enumerate(BUCKETS):
            ns = []
            for offset, same, color in ((-0.2, False, DIFF_COLOR), (0.2, True, SAME_COLOR)):
                y = sub.loc[(sub["bucket"] == bucket) & (sub["same_family"] == same), "overlap"]
                ns.append(len(y))
                if y.empty:
                    continue
                x = i + offset
                ax.boxplot(
                    [y.to_numpy()],
                    positions=[x],
                    widths=0.34,
                    showfliers=False,
                    patch_artist=True,
                    boxprops={"facecolor": "none", "edgecolor": color, "lw": 1.3},
                    medianprops={"color": color, "lw": 2},
                    whiskerprops={"color": color},
                    capprops={"color": color},
                )
                ax.scatter(
                    x + rng.uniform(-0.13, 0.13, len(y)),
                    y,
                    s=9,
                    color=color,
                    alpha=0.45,
                    edgecolors="none",
                    zorder=0.5,
                )
            ticks.append(f"{bucket}\n{ns[0]} | {ns[1]}")
        ax.axhline(chance, color="#d62728", ls=":", lw=1)
        ax.set_xticks(range(len(BUCKETS)), ticks, fontsize=8)
        ax.set_xlim(-0.6, len(BUCKETS) - 0.4)
        ax.set_title(f"{title} ({len(sub)} pairs)", fontsize=10)
        ax.set_xlabel("derived model downloads\n(n different | same)", fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        if sub.empty:
            message_panel(ax, "no pairs")
    axes[0].set_ylim(0, 1.03)
    axes[0].set_ylabel("overlap (mean over slots)")
    handles = [
        Patch(facecolor="none", edgecolor=DIFF_COLOR, label="different family"),
        Patch(facecolor="none", edgecolor=SAME_COLOR, label="same family"),
        Line2D([], [], color="#d62728", ls=":", label=f"chance ({chance:.3f})"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=9, frameon=False)
    title = "Overlap by download bucket of the derived model, same vs different family"
    if len(df) and not df["derived_downloads"].any():
        title += "\nevery model has 0 downloads: no download counts in these records"
    fig.suptitle(title)
    return fig


def plot_downloads_vs_overlap(
    pairs_df: pd.DataFrame, out: str | Path, *, max_families: int = 4
) -> list[Path]:
    """The seed's question, per download bucket: do popular derivatives keep more of their base?

    One panel for all families and one for each of the `max_families` families with the most
    pairs (by the derived model's family); in each, the four download buckets of the derived
    model (see `lineage.frames.download_bucket`) with a box and the points of the
    different-family (grey) and same-family (blue) pairs. Every panel shares one y axis (0 to 1)
    so families compare at a glance; the dotted red line is the chance level (`chance_level`).
    No trend line: a few clusters of derivatives make one meaningless. The tick labels give the
    pair counts.
    """
    return save_figure(downloads_figure(pairs_df, max_families=max_families), out)


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
    paths += plot_lineage_map(pairs_df, out / "lineage_map", tree=tree)
    related = pairs_df[pairs_df["same_family"] & pairs_df["per_slot"].map(len).gt(0)]
    if not related.empty:
        pair = related.loc[related["overlap_std"].fillna(-1).idxmax()]
        title = f"{pair['a']} vs {pair['b']}: overlap per slot"
        paths += plot_layer_profile(pair["per_slot"], out / "layer_profile", title)
    return paths
