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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lineage.anomalies import RULES
from lineage.present.plots_common import (
    ANOMALY_COLOR,
    RELATION_COLORS,
    message_panel,
    new_figure,
    save_figure,
)

__all__ = [
    "edge_width",
    "families_by_size",
    "family_tree_figure",
    "indented_layout",
    "layered_layout",
    "panel_size",
    "plot_family_tree",
]

ROW_INCH = 0.3  # one model per row
GEN_INCH = 0.6  # indentation per generation
LABEL_PT = 8
CHAR_INCH = 0.071  # width of an average 8 pt character
NOTE_CHAR_INCH = 0.058  # the same at the 7 pt of the anomaly notes
ROW_WIDTH = 22.0  # inches; the overview wraps families into rows this wide
MAX_LABEL = 44  # characters of an org/name label
_LABEL_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85}
ANOMALY_SHORT = {r.kind: r.label for r in RULES}  # the rules table's plot labels


def _parents(node: Mapping, ids: set[str]) -> list[str]:
    listed = node.get("parents")
    if listed is None:
        listed = [node["parent"]] if node.get("parent") else []
    return [p for p in dict.fromkeys(listed) if p in ids and p != node["id"]]


def _created(node: Mapping) -> tuple:
    return (str(node.get("created_at") or ""), node["id"])


def _primary_tree(
    nodes: Sequence[Mapping],
) -> tuple[dict[str, int], dict[str | None, list[str]], dict[str, Mapping]]:
    """(generation, primary children (None: the roots), node by id) of tree nodes; parents
    outside `nodes` are ignored, cycles are cut."""
    by_id = {n["id"]: n for n in nodes}
    ids = set(by_id)
    depth: dict[str, int] = {}

    def generation(node_id: str, visiting: frozenset[str] = frozenset()) -> int:
        if node_id not in depth:
            ps = [p for p in _parents(by_id[node_id], ids) if p not in visiting]
            inner = visiting | {node_id}
            depth[node_id] = 1 + max((generation(p, inner) for p in ps), default=-1)
        return depth[node_id]

    for node_id in sorted(ids):
        generation(node_id)

    children: dict[str | None, list[str]] = {}
    for node_id, node in by_id.items():
        above = [p for p in _parents(node, ids) if depth[p] < depth[node_id]]
        primary = node.get("parent") if node.get("parent") in above else None
        if primary is None and above:
            primary = max(above, key=lambda p: (depth[p], p))
        children.setdefault(primary, []).append(node_id)
    return depth, children, by_id


def layered_layout(nodes: Sequence[Mapping]) -> dict[str, tuple[float, int]]:
    """Positions of tree nodes: id -> (x, generation), generation 0 at the top.

    Args:
        nodes: tree JSON nodes (`id`, `parent`, `parents`, `created_at`, `downloads`); parents
            outside `nodes` are ignored, cycles are cut.

    Returns:
        x in leaf units (0, 1, ...; parents at the mean of their children) and the generation.
    """
    depth, children, by_id = _primary_tree(nodes)

    roots = sorted(children.get(None, []), key=lambda r: (-(by_id[r].get("downloads") or 0), r))
    x: dict[str, float] = {}
    next_leaf = 0

    def place(node_id: str) -> float:
        nonlocal next_leaf
        kids = sorted(children.get(node_id, []), key=lambda k: _created(by_id[k]))
        if not kids:
            x[node_id] = float(next_leaf)
            next_leaf += 1
        else:
            xs = [place(k) for k in kids]
            x[node_id] = (xs[0] + xs[-1]) / 2
        return x[node_id]

    for root in roots:
        place(root)
    return {node_id: (x[node_id], depth[node_id]) for node_id in by_id}


def indented_layout(nodes: Sequence[Mapping]) -> dict[str, tuple[int, int]]:
    """Positions of the indented tree: id -> (generation, row), row 0 at the top.

    Rows follow the primary-parent tree depth-first, roots by downloads (most first), children
    by creation date; every model has a row of its own. Generations are `layered_layout`'s.
    """
    depth, children, by_id = _primary_tree(nodes)
    rows: dict[str, int] = {}

    def visit(node_id: str) -> None:
        rows[node_id] = len(rows)
        for kid in sorted(children.get(node_id, []), key=lambda k: _created(by_id[k])):
            visit(kid)

    roots = sorted(children.get(None, []), key=lambda r: (-(by_id[r].get("downloads") or 0), r))
    for root in roots:
        visit(root)
    return {node_id: (depth[node_id], rows[node_id]) for node_id in by_id}


def edge_width(overlap: float | None) -> float:
    """Line width (pt) of an edge: cubic in the overlap, so that the range that decides parents
    (about 0.5 to 1) spans most of the widths instead of all looking alike."""
    ov = 0.0 if overlap is None or math.isnan(overlap) else min(1.0, max(0.0, float(overlap)))
    return 0.5 + 6.0 * ov**3


def families_by_size(tree: Mapping) -> list[tuple[str, list[Mapping]]]:
    """(family, its nodes) for every family of the tree, largest first, ties by name."""
    families: dict[str, list[Mapping]] = {}
    for node in tree.get("nodes", []):
        families.setdefault(str(node.get("family") or node["id"]), []).append(node)
    return sorted(families.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def _node_size(downloads: Any) -> float:
    """Marker area (pt^2) growing with log10(downloads)."""
    return 40 + 50 * math.log10(1 + max(0.0, float(downloads or 0)))


def _relation(node: Mapping) -> str:
    if not node.get("parent") and not node.get("parents"):
        return "root"
    rel = node.get("relation")
    return rel if rel in RELATION_COLORS else "other"


def _label(model_id: str) -> str:
    text = str(model_id)
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "\u2026"


def _notes(node: Mapping) -> str:
    return ", ".join(ANOMALY_SHORT.get(k, k) for k in node.get("anomalies") or ())


def _overlap(edge: Mapping | None) -> float | None:
    ov = None if edge is None else edge.get("overlap")
    return None if ov is None or (isinstance(ov, float) and math.isnan(ov)) else float(ov)


def panel_size(nodes: Sequence[Mapping]) -> tuple[float, float]:
    """(width, height) in inches a family's panel needs: its rows, its indentation and its
    longest label (with anomaly notes) beside its node."""
    pos = indented_layout(nodes)
    by_id = {n["id"]: n for n in nodes}
    right = max(
        (
            gen * GEN_INCH
            + 0.25
            + len(_label(i)) * CHAR_INCH
            + (len(_notes(by_id[i])) + 2) * NOTE_CHAR_INCH * bool(_notes(by_id[i]))
            for i, (gen, _) in pos.items()
        ),
        default=1.0,
    )
    return right + 0.5, ROW_INCH * max(1, len(pos)) + 0.5


def _draw_family(ax: Any, nodes: Sequence[Mapping], edges: Sequence[Mapping]) -> set:
    """Draw one family on `ax` as an indented tree; return the legend keys it used."""
    from matplotlib.patches import FancyArrowPatch

    pos = {i: (float(g), -float(r)) for i, (g, r) in indented_layout(nodes).items()}
    by_id = {n["id"]: n for n in nodes}
    depth, children, _ = _primary_tree(nodes)
    primary = {kid: parent for parent, kids in children.items() for kid in kids}
    edge_of = {(e.get("parent"), e.get("child")): e for e in edges}
    used: set = set()
    for node_id, (xc, yc) in pos.items():
        parent = primary.get(node_id)
        if parent is None:
            continue
        xp, yp = pos[parent]
        edge = edge_of.get((parent, node_id))
        ov = _overlap(edge)
        # the trunk is shared by siblings, so it stays thin; the arm into the child carries the
        # width (and the number) of this edge's overlap
        ax.plot([xp, xp], [yp, yc], color="#9a9a9a", lw=0.8, zorder=1, solid_capstyle="butt")
        ax.plot(
            [xp, xc],
            [yc, yc],
            color="#707070",
            lw=edge_width(ov) if edge is not None else 0.8,
            ls="-" if edge is not None else "--",
            zorder=1,
            solid_capstyle="butt",
            gid=f"edge:{parent}->{node_id}",
        )
        if ov is not None:
            ax.text(
                (xp + xc) / 2,
                yc + 0.12,
                f"{ov:.2f}",
                ha="center",
                va="bottom",
                fontsize=6,
                color="#505050",
                zorder=2,
            )
    for node_id, (xc, yc) in pos.items():
        node = by_id[node_id]
        for other in _parents(node, set(pos)):
            if other == primary.get(node_id):
                continue
            # the second parent of a merge: an arc in the merge colour, never mistaken for the
            # elbows of the primary tree
            xo, yo = pos[other]
            ax.add_patch(
                FancyArrowPatch(
                    (xo, yo),
                    (xc, yc),
                    connectionstyle=_arc_left((xo, yo), (xc, yc)),
                    arrowstyle="-|>,head_length=4,head_width=2.5",
                    color=RELATION_COLORS["merge"],
                    lw=1.5,
                    ls="--",
                    shrinkA=5,
                    shrinkB=5,
                    zorder=1.5,
                    gid=f"merge:{other}->{node_id}",
                )
            )
            used.add("second parent")
        for base in node.get("declared_base") or ():
            if base in pos and base not in _parents(node, set(pos)):
                xb, yb = pos[base]
                ax.add_patch(
                    FancyArrowPatch(
                        (xb, yb),
                        (xc, yc),
                        connectionstyle=_arc_left((xb, yb), (xc, yc)),
                        arrowstyle="->",
                        color="#303030",
                        ls=":",
                        lw=1,
                        shrinkA=5,
                        shrinkB=5,
                        zorder=1.5,
                        gid=f"declared:{base}->{node_id}",
                    )
                )
                used.add("declared")
    for node_id, (x, y) in pos.items():
        node = by_id[node_id]
        rel = _relation(node)
        used.add(rel)
        anomalous = bool(node.get("anomalies"))
        ax.scatter(
            [x],
            [y],
            s=_node_size(node.get("downloads")),
            c=RELATION_COLORS[rel],
            edgecolors=ANOMALY_COLOR if anomalous else "white",
            linewidths=2.2 if anomalous else 0.8,
            zorder=3,
            gid=f"node:{node_id}",
        )
        label = ax.annotate(
            _label(node_id),
            xy=(x, y),
            xytext=(9, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            fontsize=LABEL_PT,
            zorder=4,
            bbox=_LABEL_BOX,
            gid=f"label:{node_id}",
        )
        if anomalous:
            used.add("anomaly")
            ax.annotate(
                _notes(node),
                xy=(1, 0.5),
                xycoords=label,
                xytext=(4, 0),
                textcoords="offset points",
                ha="left",
                va="center",
                fontsize=7,
                color=ANOMALY_COLOR,
                style="italic",
                zorder=4,
            )
    gens = max(depth.values(), default=0)
    width, _ = panel_size(nodes)
    ax.set_xlim(-0.4, -0.4 + width / GEN_INCH)
    ax.set_ylim(-len(pos) + 0.4, 0.6)
    ax.set_xticks(range(gens + 1), [f"gen {g}" for g in range(gens + 1)], fontsize=7)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    for side in ("right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["top"].set_color("#cccccc")
    return used


def _arc_left(start: tuple[float, float], end: tuple[float, float]) -> str:
    """An arc between two nodes that bows half a generation left of the leftmost of them: it
    crosses arms of the tree there, never a label (labels are right of their nodes)."""
    (x0, y0), (x1, y1) = start, end
    # arc3 puts its control point at mid + rad * (dy, -dx); a quadratic Bezier reaches half way
    dy = y1 - y0 or 1e-9
    rad = 2 * ((min(x0, x1) - 0.5) - (x0 + x1) / 2) / dy
    return f"arc3,rad={max(-1.5, min(1.5, rad)):.3f}"


def _legend_handles(used: set) -> list:
    from matplotlib.lines import Line2D

    def dot(color: str, label: str, size: float = 8, edge: str = "white", lw: float = 0.8):
        return Line2D(
            [],
            [],
            ls="",
            marker="o",
            ms=size,
            color=color,
            markeredgecolor=edge,
            markeredgewidth=lw,
            label=label,
        )

    handles = [dot(c, r) for r, c in RELATION_COLORS.items() if r in used]
    if "anomaly" in used:
        handles.append(dot("white", "anomaly", edge=ANOMALY_COLOR, lw=2.2))
    if "second parent" in used:
        handles.append(
            Line2D(
                [], [], ls="--", color=RELATION_COLORS["merge"], lw=1.5, label="merge: 2nd parent"
            )
        )
    if "declared" in used:
        handles.append(
            Line2D([], [], ls=":", color="#303030", label="declared base, not recovered")
        )
    for ov in (0.5, 0.8, 1.0):
        handles.append(Line2D([], [], color="#707070", lw=edge_width(ov), label=f"overlap {ov:g}"))
    for dl in (10, 1_000, 100_000):
        handles.append(dot("#bbbbbb", f"{dl:,} downloads", size=math.sqrt(_node_size(dl))))
    return handles


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
            used |= _draw_family(ax, shown[i][1], edges)
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
        handles = _legend_handles(used)
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
