"""The figures `lineage plot` can draw, as a table: name, one help line, and how to draw it.

Light on purpose (the plotting modules load inside `draw`), so the command line can offer
`FIGURES` as its choices without importing matplotlib or pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FIGURES", "Figure", "draw_figure"]


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure: `draw(pairs_df, tree, out_dir, family)` writes it and returns the paths."""

    name: str
    help: str
    draw: Callable[[Any, Mapping, str, str | None], list[Path]]


def _all(pairs_df: Any, tree: Mapping, out: str, family: str | None) -> list[Path]:
    from lineage.present.plots import write_all_figures

    return write_all_figures(pairs_df, tree, out)


def _tree(pairs_df: Any, tree: Mapping, out: str, family: str | None) -> list[Path]:
    from lineage.present.plots_tree import plot_family_tree

    return plot_family_tree(tree, f"{out}/family_tree", family=family)


def _heatmap(pairs_df: Any, tree: Mapping, out: str, family: str | None) -> list[Path]:
    from lineage.present.plots import plot_heatmap

    return plot_heatmap(pairs_df, tree, f"{out}/overlap_heatmap")


def _downloads(pairs_df: Any, tree: Mapping, out: str, family: str | None) -> list[Path]:
    from lineage.present.plots import plot_downloads_vs_overlap

    return plot_downloads_vs_overlap(pairs_df, f"{out}/downloads_vs_overlap")


def _map(pairs_df: Any, tree: Mapping, out: str, family: str | None) -> list[Path]:
    from lineage.present.plots_map import plot_lineage_map

    return plot_lineage_map(pairs_df, f"{out}/lineage_map", tree=tree)


FIGURES: dict[str, Figure] = {
    f.name: f
    for f in (
        Figure("all", "every figure below, into one folder", _all),
        Figure(
            "tree",
            "family trees, one model per row (size: downloads, colour: relation, "
            "width: overlap, red: anomalies)",
            _tree,
        ),
        Figure("heatmap", "overlap ordered by family, linear from chance to 1", _heatmap),
        Figure("downloads", "overlap per download bucket, same vs different family", _downloads),
        Figure("map", "mean overlap vs the share of untouched slots, with regions", _map),
    )
}


def draw_figure(
    name: str, pairs_df: Any, tree: Mapping, out: str, *, family: str | None = None
) -> list[Path]:
    """Draw the figure `name` (a key of FIGURES) into the folder `out`.

    Args:
        name: which figure; "all" draws every one.
        pairs_df: `lineage.frames.pairs_frame`'s output.
        tree: the tree JSON (`LineageGraph.to_json()`).
        out: the folder; each figure is written as PNG and SVG.
        family: for "tree", only this family.

    Returns:
        The paths written.

    Raises:
        KeyError: an unknown figure name.
    """
    return FIGURES[name].draw(pairs_df, tree, out, family)
