"""One family of the tree figure drawn on one matplotlib axes (`draw_family`): node markers,
elbows as wide as the overlap, merge and declared-base arcs, labels with anomaly notes, and
the legend those marks need. Positions come from `plots_tree_layout`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lineage.anomalies import RULES
from lineage.present.plots_common import ANOMALY_COLOR, RELATION_COLORS
from lineage.present.plots_tree_layout import indented_layout, parents_of, primary_tree

ROW_INCH = 0.3  # one model per row
GEN_INCH = 0.6  # indentation per generation
LABEL_PT = 8
CHAR_INCH = 0.071  # width of an average 8 pt character
NOTE_CHAR_INCH = 0.058  # the same at the 7 pt of the anomaly notes
ROW_WIDTH = 22.0  # inches; the overview wraps families into rows this wide
MAX_LABEL = 44  # characters of an org/name label
_LABEL_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85}
ANOMALY_SHORT = {r.kind: r.label for r in RULES}  # the rules table's plot labels


def edge_width(overlap: float | None) -> float:
    """Line width (pt) of an edge: cubic in the overlap, so that the range that decides parents
    (about 0.5 to 1) spans most of the widths instead of all looking alike."""
    ov = 0.0 if overlap is None or math.isnan(overlap) else min(1.0, max(0.0, float(overlap)))
    return 0.5 + 6.0 * ov**3


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


def draw_family(ax: Any, nodes: Sequence[Mapping], edges: Sequence[Mapping]) -> set:
    """Draw one family on `ax` as an indented tree; return the legend keys it used."""
    from matplotlib.patches import FancyArrowPatch

    pos = {i: (float(g), -float(r)) for i, (g, r) in indented_layout(nodes).items()}
    by_id = {n["id"]: n for n in nodes}
    depth, children, _ = primary_tree(nodes)
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
        for other in parents_of(node, set(pos)):
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
            if base in pos and base not in parents_of(node, set(pos)):
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


def legend_handles(used: set) -> list:
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
