"""Where the family tree figure puts each model, without drawing anything: generations (the
longest chain of recovered parents above a model), the primary-parent tree, the layered layout
(which orders the heatmap's models) and the indented one (the figure's rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def parents_of(node: Mapping, ids: set[str]) -> list[str]:
    """The recovered parents of a tree JSON node that are among `ids`, once each, never itself."""
    listed = node.get("parents")
    if listed is None:
        listed = [node["parent"]] if node.get("parent") else []
    return [p for p in dict.fromkeys(listed) if p in ids and p != node["id"]]


def by_created(node: Mapping) -> tuple:
    """Sort key of siblings: creation date, then id."""
    return (str(node.get("created_at") or ""), node["id"])


def primary_tree(
    nodes: Sequence[Mapping],
) -> tuple[dict[str, int], dict[str | None, list[str]], dict[str, Mapping]]:
    """(generation, primary children (None: the roots), node by id) of tree nodes; parents
    outside `nodes` are ignored, cycles are cut."""
    by_id = {n["id"]: n for n in nodes}
    ids = set(by_id)
    depth: dict[str, int] = {}

    def generation(node_id: str, visiting: frozenset[str] = frozenset()) -> int:
        if node_id not in depth:
            ps = [p for p in parents_of(by_id[node_id], ids) if p not in visiting]
            inner = visiting | {node_id}
            depth[node_id] = 1 + max((generation(p, inner) for p in ps), default=-1)
        return depth[node_id]

    for node_id in sorted(ids):
        generation(node_id)

    children: dict[str | None, list[str]] = {}
    for node_id, node in by_id.items():
        above = [p for p in parents_of(node, ids) if depth[p] < depth[node_id]]
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
    depth, children, by_id = primary_tree(nodes)

    roots = sorted(children.get(None, []), key=lambda r: (-(by_id[r].get("downloads") or 0), r))
    x: dict[str, float] = {}
    next_leaf = 0

    def place(node_id: str) -> float:
        nonlocal next_leaf
        kids = sorted(children.get(node_id, []), key=lambda k: by_created(by_id[k]))
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
    depth, children, by_id = primary_tree(nodes)
    rows: dict[str, int] = {}

    def visit(node_id: str) -> None:
        rows[node_id] = len(rows)
        for kid in sorted(children.get(node_id, []), key=lambda k: by_created(by_id[k])):
            visit(kid)

    roots = sorted(children.get(None, []), key=lambda r: (-(by_id[r].get("downloads") or 0), r))
    for root in roots:
        visit(root)
    return {node_id: (depth[node_id], rows[node_id]) for node_id in by_id}


def families_by_size(tree: Mapping) -> list[tuple[str, list[Mapping]]]:
    """(family, its nodes) for every family of the tree, largest first, ties by name."""
    families: dict[str, list[Mapping]] = {}
    for node in tree.get("nodes", []):
        families.setdefault(str(node.get("family") or node["id"]), []).append(node)
    return sorted(families.items(), key=lambda kv: (-len(kv[1]), kv[0]))
