"""The family tree figure: an indented tree, one model per row, laid out here (no graphviz).

A model's generation is the longest chain of recovered parents above it (a merge sits one below
its deeper parent). Each model hangs under one primary parent (its `parent`). The figure
(`indented_layout`) gives every model its own row, in depth-first order of that tree (children
by creation date), indented by generation, with its full `org/name` label to the right of its
node: a label can never sit by another model's node, and re-uploads under other orgs show as
such. Primary edges are elbows from the parent; their width and the number on them are the
pair's overlap. The second parent of a merge is joined by a dashed arc in the merge colour.

`layered_layout` (generations top-down, parents centred over their children) orders the
heatmap's models.

The layout is `plots_tree_layout`, one family's panel `plots_tree_panel`; this module packs the
panels into one figure and saves it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lineage.present.plots_common import message_panel, new_figure, save_figure
from lineage.present.plots_tree_layout import families_by_size, indented_layout, layered_layout
from lineage.present.plots_tree_panel import (
    ANOMALY_SHORT,
    ROW_INCH,
    ROW_WIDTH,
    draw_family,
    edge_width,
    legend_handles,
    panel_size,
)

__all__ = [
    "ANOMALY_SHORT",
    "edge_width",
    "families_by_size",
    "family_tree_figure",
    "indented_layout",
    "layered_layout",
    "panel_size",
    "plot_family_tree",
]


def family_tree_figure(tree: Mapping, family: str | None = None, *, max_families: int = 6) -> Any:
    """The figure `plot_family_tree` saves (a matplotlib Figure; see there)."""
    families = families_by_size(tree)
    if family is not None:
        member_of = {n["id"]: fam for fam, ns in families for n in ns}
        name = family if family in dict(families) else member_of.get(family)
        if name is None:
            from lineage.errors import UnknownModelError

            raise UnknownModelError(
                family,
                f"{family!r} is not a family or a model of the tree; `lineage tree` lists them",
            )
        shown = [(name, dict(families)[name])]
    else:
        shown = families[:max_families]
    edges = tree.get("edges", [])
    titles = [f"{name} ({len(ns)} model{'s' if len(ns) != 1 else ''})" for name, ns in shown]
    sizes = [
        (max(w, 0.11 * len(t) + 0.3), h)
        for t, (w, h) in zip(titles, (panel_size(ns) for _, ns in shown), strict=True)
    ]
    rows = _pack_rows([w for w, _ in sizes])
    row_widths = [sum(sizes[i][0] for i in row) for row in rows]
    width = max(7.0, *row_widths)
    heights = [max((sizes[i][1] for i in row), default=1.0) + 0.6 for row in rows]
    fig = new_figure(width, sum(heights) + 1.4)
    used: set = set()
    for sub, row, row_width in zip(
        fig.subfigures(len(rows), 1, height_ratios=heights, squeeze=False)[:, 0],
        rows,
        row_widths,
        strict=True,
    ):
        # Rows narrower than the figure keep their natural scale: an empty filler takes the rest.
        ratios = [sizes[i][0] for i in row]
        filler = width - row_width
        if filler > 0.5:
            ratios.append(filler)
        axes = sub.subplots(1, len(ratios), gridspec_kw={"width_ratios": ratios}, squeeze=False)[0]
        row_height = max((sizes[i][1] for i in row), default=1.0)
        for ax, i in zip(axes, row, strict=False):
            used |= draw_family(ax, shown[i][1], edges)
            ax.set_title(titles[i], fontsize=9, loc="left")
            # shorter families keep the row height of the tallest: align them at the top
            ax.set_ylim(-row_height / ROW_INCH + 0.4 + 0.5 / ROW_INCH, 0.6)
        if filler > 0.5:
            axes[-1].set_axis_off()
        if not row:
            message_panel(axes[0], "no models in the tree")
            axes[0].set_axis_off()
    title = "Recovered family tree" if family else "Recovered family trees"
    if family is None and len(families) > len(shown):
        title += f" (the {len(shown)} largest of {len(families)} families)"
    fig.suptitle(title)
    if used:
        handles = legend_handles(used)
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=max(1, min(len(handles), int(width / 1.6))),
            fontsize=8,
            frameon=False,
        )
    return fig


def plot_family_tree(
    tree: Mapping, out: str | Path, family: str | None = None, *, max_families: int = 6
) -> list[Path]:
    """Draw recovered family trees as indented trees, one model per row.

    Each model has its own row, indented by generation, with its full `org/name` beside its
    node (and its anomalies in red after it). Node area grows with log downloads, colour is the
    relation to the parent, a red ring marks anomalies; the arm into each child is as wide as
    the pair's overlap (cubic, see `edge_width`) and carries its value; the second parent of a
    merge is a dashed arc in the merge colour, a declared base the tree did not recover a dotted
    arrow.

    Args:
        tree: the tree JSON (`lineage tree --format json`).
        out: output path; `<out>.png` and `<out>.svg` are written (a .png/.svg suffix is dropped).
        family: one family (its id, or the id of any member); None draws the `max_families`
            largest families side by side.
        max_families: how many families the overview shows.

    Returns:
        The PNG and SVG paths.

    Raises:
        UnknownModelError: `family` is neither a family nor a model of the tree.
    """
    return save_figure(family_tree_figure(tree, family, max_families=max_families), out)


def _pack_rows(widths: Sequence[float]) -> list[list[int]]:
    """Families (largest first) packed into rows at most ROW_WIDTH inches wide; [[]] if none."""
    rows: list[list[int]] = []
    for i, w in enumerate(widths):
        if rows and sum(widths[j] for j in rows[-1]) + w <= ROW_WIDTH:
            rows[-1].append(i)
        else:
            rows.append([i])
    return rows or [[]]
