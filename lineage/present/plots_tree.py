"""The family tree figure: generations top-down, laid out here (no graphviz).

Layout (`layered_layout`): a model's generation is the longest chain of recovered parents above it
(a merge sits one below its deeper parent). Each model hangs under one primary parent (its
`parent`); the leaves of that tree take consecutive x positions in depth-first order, children
sorted by creation date, and every parent is centred over its children. Two models of one
generation then never share a position, and primary edges never cross; only the second edge of a
merge can.
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
    short_ids,
)

__all__ = ["families_by_size", "layered_layout", "plot_family_tree"]

INCH_PER_LEAF = 1.05  # horizontal room per leaf position: a 22-character label at 7 pt, staggered
INCH_PER_GENERATION = 1.25
ROW_WIDTH = 26.0  # inches; the overview wraps families into rows this wide
MAX_WIDTH = 40.0  # inches; wider families keep labels only on roots and anomalies
CHAR_INCH = 0.062  # width of an average 7 pt character
_LABEL_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85}
ANOMALY_SHORT = {r.kind: r.label for r in RULES}  # the rules table's plot labels


def _parents(node: Mapping, ids: set[str]) -> list[str]:
    listed = node.get("parents")
    if listed is None:
        listed = [node["parent"]] if node.get("parent") else []
    return [p for p in dict.fromkeys(listed) if p in ids and p != node["id"]]


def layered_layout(nodes: Sequence[Mapping]) -> dict[str, tuple[float, int]]:
    """Positions of tree nodes: id -> (x, generation), generation 0 at the top.

    Args:
        nodes: tree JSON nodes (`id`, `parent`, `parents`, `created_at`, `downloads`); parents
            outside `nodes` are ignored, cycles are cut.

    Returns:
        x in leaf units (0, 1, ...; parents at the mean of their children) and the generation.
    """
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

    def order(node_id: str) -> tuple:
        n = by_id[node_id]
        return (str(n.get("created_at") or ""), node_id)

    roots = sorted(children.get(None, []), key=lambda r: (-(by_id[r].get("downloads") or 0), r))
    x: dict[str, float] = {}
    next_leaf = 0

    def place(node_id: str) -> float:
        nonlocal next_leaf
        kids = sorted(children.get(node_id, []), key=order)
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


def _draw_family(
    ax: Any, nodes: Sequence[Mapping], edges: Sequence[Mapping], labels: bool, generations: int
) -> set:
    """Draw one family on `ax` with rows for `generations` + 1 generations; return legend keys."""
    pos = layered_layout(nodes)
    by_id = {n["id"]: n for n in nodes}
    names = short_ids(by_id)
    used: set = set()
    drawn_links = set()
    for e in edges:
        p, c = e.get("parent"), e.get("child")
        if p in pos and c in pos:
            ov = e.get("overlap")
            ov = 0.0 if ov is None or (isinstance(ov, float) and math.isnan(ov)) else float(ov)
            (x0, d0), (x1, d1) = pos[p], pos[c]
            ax.plot([x0, x1], [-d0, -d1], color="#606060", lw=0.6 + 3.5 * ov, alpha=0.7, zorder=1)
            drawn_links.add((p, c))
    for node in nodes:  # parent links the edge list lacks: thin, no overlap known
        for p in _parents(node, set(pos)):
            if (p, node["id"]) not in drawn_links:
                (x0, d0), (x1, d1) = pos[p], pos[node["id"]]
                ax.plot([x0, x1], [-d0, -d1], color="#606060", lw=0.6, ls="--", zorder=1)
        for base in node.get("declared_base") or ():
            if base in pos and base not in _parents(node, set(pos)):
                (x0, d0), (x1, d1) = pos[base], pos[node["id"]]
                ax.annotate(
                    "",
                    xy=(x1, -d1),
                    xytext=(x0, -d0),
                    zorder=1,
                    arrowprops={
                        "arrowstyle": "->",
                        "ls": ":",
                        "color": "#303030",
                        "shrinkA": 8,
                        "shrinkB": 8,
                    },
                )
                used.add("declared")
    for node_id, (x, d) in pos.items():
        node = by_id[node_id]
        rel = _relation(node)
        used.add(rel)
        anomalous = bool(node.get("anomalies"))
        ax.scatter(
            [x],
            [-d],
            s=_node_size(node.get("downloads")),
            c=RELATION_COLORS[rel],
            edgecolors=ANOMALY_COLOR if anomalous else "white",
            linewidths=2.5 if anomalous else 0.8,
            zorder=3,
        )
        if anomalous:
            used.add("anomaly")
    # Labels below the nodes, on a white box so that edges do not run through them. Where two
    # neighbours' labels would touch, the second one drops to a lower row.
    for gen in {d for _, d in pos.values()}:
        row = sorted((x, i) for i, (x, d) in pos.items() if d == gen)
        stagger, last_x, last_w = 0, -math.inf, 0.0
        for x, node_id in row:
            node = by_id[node_id]
            if not labels and not node.get("anomalies") and _relation(node) != "root":
                continue
            text = names[node_id]
            notes = ", ".join(ANOMALY_SHORT.get(k, k) for k in node.get("anomalies") or ())
            w = max(len(text) * CHAR_INCH, len(notes) * CHAR_INCH * 0.9) / INCH_PER_LEAF
            stagger = 1 - stagger if (x - last_x) < (w + last_w) / 2 + 0.05 else 0
            last_x, last_w = x, w
            y = -gen - 0.17 - 0.26 * stagger
            ax.text(x, y, text, ha="center", va="top", fontsize=7, zorder=4, bbox=_LABEL_BOX)
            if notes:
                ax.text(
                    x,
                    y - 0.11,
                    notes,
                    ha="center",
                    va="top",
                    fontsize=6,
                    zorder=4,
                    color=ANOMALY_COLOR,
                    style="italic",
                    bbox=_LABEL_BOX,
                )
    xs = [x for x, _ in pos.values()]
    ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
    ax.set_ylim(-generations - 0.75, 0.35)
    ax.set_yticks([-d for d in range(generations + 1)])
    ax.set_yticklabels([f"gen {d}" for d in range(generations + 1)])
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return used


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
        handles.append(dot("white", "anomaly", edge=ANOMALY_COLOR, lw=2.5))
    if "declared" in used:
        handles.append(
            Line2D([], [], ls=":", color="#303030", label="declared base, not recovered")
        )
    for ov in (0.1, 0.5, 1.0):
        handles.append(Line2D([], [], color="#606060", lw=0.6 + 3.5 * ov, label=f"overlap {ov:g}"))
    for dl in (10, 1_000, 100_000):
        handles.append(dot("#bbbbbb", f"{dl:,} downloads", size=math.sqrt(_node_size(dl))))
    return handles


def plot_family_tree(
    tree: Mapping, out: str | Path, family: str | None = None, *, max_families: int = 6
) -> list[Path]:
    """Draw recovered family trees, top-down by generation.

    Node area grows with log downloads, colour is the relation to the parent, a red ring (and a
    red note) marks anomalies, edge width is the pair's overlap, and a dotted arrow shows a
    declared base the tree did not recover.

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
    # A panel is as wide as its leaves need, and at least as wide as its title.
    titles = [f"{name} ({len(ns)} model{'s' if len(ns) != 1 else ''})" for name, ns in shown]
    spans = [
        max(1.0, _leaf_count(ns), 1.3 * len(t) * CHAR_INCH / INCH_PER_LEAF)
        for t, (_, ns) in zip(titles, shown, strict=True)
    ]
    generations = [max((d for _, d in layered_layout(ns).values()), default=0) for _, ns in shown]
    rows = _pack_rows(spans)
    row_widths = [sum(_panel_width(spans[i]) for i in row) for row in rows]
    width = min(MAX_WIDTH, max(7.0, *row_widths))
    row_gens = [max((generations[i] for i in row), default=0) for row in rows]
    heights = [INCH_PER_GENERATION * (g + 1) + 0.7 for g in row_gens]
    fig = new_figure(width, sum(heights) + 1.5)
    used: set = set()
    compressed = False
    for sub, row, row_width, gens in zip(
        fig.subfigures(len(rows), 1, height_ratios=heights, squeeze=False)[:, 0],
        rows,
        row_widths,
        row_gens,
        strict=True,
    ):
        # Rows narrower than the figure keep their natural scale: an empty filler takes the rest.
        ratios = [spans[i] for i in row]
        filler = (width - row_width) / INCH_PER_LEAF
        if filler > 0.5:
            ratios.append(filler)
        axes = sub.subplots(1, len(ratios), gridspec_kw={"width_ratios": ratios}, squeeze=False)[0]
        labels = row_width <= width + 1e-9
        compressed |= not labels
        for ax, i in zip(axes, row, strict=False):
            used |= _draw_family(ax, shown[i][1], edges, labels, gens)
            ax.set_title(titles[i], fontsize=9)
        if filler > 0.5:
            axes[-1].set_axis_off()
        if not row:
            message_panel(axes[0], "no models in the tree")
            axes[0].set_axis_off()
    title = "Recovered family tree" if family else "Recovered family trees"
    if family is None and len(families) > len(shown):
        title += f" (the {len(shown)} largest of {len(families)} families)"
    if compressed:
        title += "; labels on roots and anomalies only where a family is too wide"
    fig.suptitle(title)
    if used:
        handles = _legend_handles(used)
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=max(1, min(len(handles), int(width / 1.5))),
            fontsize=8,
            frameon=False,
        )
    return save_figure(fig, out)


def _panel_width(span: float) -> float:
    """Inches a family panel needs: its leaf positions plus room for the generation labels."""
    return INCH_PER_LEAF * span + 0.8


def _pack_rows(spans: Sequence[float]) -> list[list[int]]:
    """Families (largest first) packed into rows at most ROW_WIDTH inches wide; [[]] if none."""
    rows: list[list[int]] = []
    for i, span in enumerate(spans):
        if rows and sum(_panel_width(spans[j]) for j in rows[-1]) + _panel_width(span) <= ROW_WIDTH:
            rows[-1].append(i)
        else:
            rows.append([i])
    return rows or [[]]


def _leaf_count(nodes: Sequence[Mapping]) -> int:
    xs = [x for x, _ in layered_layout(nodes).values()]
    return int(max(xs) - min(xs)) + 1 if xs else 0
