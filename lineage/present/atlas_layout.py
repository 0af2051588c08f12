"""Positions for the atlas: a layered tree per family, and a global map of radial families.

Both are computed here, in Python, once, when the page is written: a tidy layout of a forest
is linear in the number of models (10,000 models in well under a second), deterministic (the
same store gives the same picture, so screenshots and tests are stable) and costs the browser
nothing at open time, where a force-directed layout of 10,000 nodes takes seconds of CPU and
never settles the same way twice.

- `tree_layout`: each family is a layered tree (generation = depth, downward; leaves spread
  left to right in id order, a parent centred over its children), and the families are packed
  on shelves, largest first.
- `global_layout`: each family is the same tree drawn radially (roots at the centre, each
  generation a ring), and the discs are packed on shelves, largest first: every family at
  once, compact, with cousins' dotted links running between discs.

Only the main parent (`parent`) shapes the trees; a merge's second parent is an extra edge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["as_columns", "global_layout", "pack_shelves", "tree_layout"]

Point = tuple[float, float]
# vertical distance between generations, in leaf widths: trees read better a little stretched
LAYER_GAP = 1.6
# empty space between packed families, in leaf widths
FAMILY_GAP = 1.5
# width / height the packed map aims at: a landscape window
ASPECT = 1.7


class _Walk:
    """Places one family's trees: leaves at x = 0, 1, 2, ... and each parent midway between
    its first and last child. Iterative, so a chain of thousands of fine-tunes cannot hit the
    recursion limit."""

    def __init__(self, children: Mapping[str, list[str]]):
        self.children = children
        self.pos: dict[str, Point] = {}
        self.seen: set[str] = set()
        self.next_leaf = 0.0
        self.max_depth = 0

    def place(self, root: str) -> None:
        # (node, depth, children already pushed?): a post-order walk with an explicit stack
        stack: list[tuple[str, int, bool]] = [(root, 0, False)]
        while stack:
            node, depth, expanded = stack.pop()
            if expanded:
                placed = [self.pos[k][0] for k in self.children[node] if k in self.pos]
                self.pos[node] = ((min(placed) + max(placed)) / 2, float(depth))
                continue
            kids = [k for k in self.children[node] if k not in self.seen]
            self.seen.add(node)
            self.seen.update(kids)  # claimed now: a node reached twice is placed once
            self.max_depth = max(self.max_depth, depth)
            if not kids:
                self.pos[node] = (self.next_leaf, float(depth))
                self.next_leaf += 1.0
                continue
            stack.append((node, depth, True))
            stack.extend((k, depth + 1, False) for k in reversed(kids))


def _family_trees(nodes: Sequence[Mapping]) -> dict[str, tuple[dict[str, Point], float, float]]:
    """Per family: local (x, depth) of each model, the family's width and its depth count
    (leaves in id order)."""
    families: dict[str, list[str]] = {}
    parent_of: dict[str, str | None] = {}
    for n in nodes:
        families.setdefault(n["family"], []).append(n["id"])
        parent_of[n["id"]] = n.get("parent")
    out: dict[str, tuple[dict[str, Point], float, float]] = {}
    for family, ids in families.items():
        members = set(ids)
        children: dict[str, list[str]] = {i: [] for i in ids}
        roots = []
        for i in sorted(ids):
            p = parent_of[i]
            if p is not None and p in members and p != i:
                children[p].append(i)
            else:
                roots.append(i)
        walk = _Walk(children)
        for root in roots:
            walk.place(root)
        for i in sorted(ids):  # a cycle (never built, but never trusted): its members as roots
            if i not in walk.seen:
                walk.place(i)
        pos, next_leaf, max_depth = walk.pos, walk.next_leaf, walk.max_depth
        out[family] = (pos, max(next_leaf, 1.0), float(max_depth + 1))
    return out


def pack_shelves(sizes: Mapping[str, tuple[float, float]]) -> dict[str, Point]:
    """Top-left corners for boxes (width, height), packed on shelves, tallest first.

    The shelf width makes the whole map come out about as wide as a screen (aspect `ASPECT`;
    sigma fits it to the window); y grows downward here and is negated by the callers, since
    the renderer's y axis points up.
    """
    order = sorted(sizes, key=lambda k: (-sizes[k][1], -sizes[k][0], k))
    area = sum((w + FAMILY_GAP) * (h + FAMILY_GAP) for w, h in sizes.values())
    widest = max((w for w, _ in sizes.values()), default=0.0)
    shelf_width = max(widest, math.sqrt(area * ASPECT))
    corners: dict[str, Point] = {}
    x = y = shelf_height = 0.0
    for key in order:
        w, h = sizes[key]
        if x > 0 and x + w > shelf_width:
            x, y, shelf_height = 0.0, y + shelf_height + FAMILY_GAP, 0.0
        corners[key] = (x, y)
        x += w + FAMILY_GAP
        shelf_height = max(shelf_height, h)
    return corners


def tree_layout(nodes: Sequence[Mapping]) -> dict[str, Point]:
    """Layered trees, one per family, packed on shelves: id -> (x, y), y up (roots on top).

    Args:
        nodes: the `nodes` of `LineageGraph.to_json` (id, family and parent are read).
    """
    trees = _family_trees(nodes)
    corners = pack_shelves({f: (w, d * LAYER_GAP) for f, (_, w, d) in trees.items()})
    out: dict[str, Point] = {}
    for family, (pos, _, _) in trees.items():
        cx, cy = corners[family]
        for i, (x, depth) in pos.items():
            out[i] = (cx + x, -(cy + depth * LAYER_GAP))
    return out


def global_layout(nodes: Sequence[Mapping]) -> dict[str, Point]:
    """Every family as a radial tree (a disc), discs packed on shelves: id -> (x, y).

    Leaves share the outer ring evenly; rings are spaced so that the outermost gives each
    leaf at least one unit of arc, so a root with hundreds of children does not pile them up.
    A family with several roots (a merge joining two lines) gets them on the first ring.
    """
    trees = _family_trees(nodes)
    discs: dict[str, tuple[dict[str, Point], float]] = {}
    for family, (pos, width, depth_count) in trees.items():
        roots = sum(1 for _, d in pos.values() if d == 0)
        shift = 1.0 if roots > 1 else 0.0
        outer = depth_count - 1 + shift
        if outer == 0:  # one model
            discs[family] = ({i: (0.0, 0.0) for i in pos}, 0.5)
            continue
        ring = max(1.0, width / (2 * math.pi * outer))
        local = {}
        for i, (x, depth) in pos.items():
            angle = 2 * math.pi * (x + 0.5) / width
            r = (depth + shift) * ring
            local[i] = (r * math.cos(angle), r * math.sin(angle))
        discs[family] = (local, outer * ring + 0.5)
    corners = pack_shelves({f: (2 * r, 2 * r) for f, (_, r) in discs.items()})
    out: dict[str, Point] = {}
    for family, (local, r) in discs.items():
        cx, cy = corners[family]
        for i, (x, y) in local.items():
            out[i] = (cx + r + x, -(cy + r) + y)
    return out


def as_columns(order: Iterable[str], layout: Mapping[str, Point]) -> list[list[float]]:
    """[x, y] per id in `order`, rounded to what a screen can show (keeps the page small)."""
    return [[round(layout[i][0], 3), round(layout[i][1], 3)] for i in order]
