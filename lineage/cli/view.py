"""Handler of `lineage view`: the interactive atlas, one self-contained HTML page."""

from __future__ import annotations

import argparse

from lineage.records import LineageGraph
from lineage.store import Store

__all__ = ["cmd_view", "family_of", "hub_ids"]


def hub_ids(store: Store) -> set[str]:
    """The models that have a Hub page: crawled ones and HF-cache snapshots (local folders
    have none)."""
    return {m.id for m in store.models() if m.source in ("hub", "cache")}


def family_of(graph: LineageGraph, model_id: str | None) -> str | None:
    """The family of `model_id` in the graph (None for no id: every family).

    Raises:
        UnknownModelError: the model has no signature in the database.
    """
    if model_id is None:
        return None
    node = next((n for n in graph.nodes if n.id == model_id), None)
    if node is None:
        from lineage.errors import UnknownModelError

        raise UnknownModelError(
            model_id,
            f"{model_id!r} has no signature in the database; `lineage add` or `lineage crawl` it "
            "first",
        )
    return node.family


def cmd_view(args: argparse.Namespace, store: Store) -> int:
    """`lineage view`: write the atlas of the recovered graph (optionally one family) and print
    its path; --open shows it in the default browser."""
    from lineage.build import build_lineage
    from lineage.present.atlas import write_atlas

    graph = build_lineage(store, device=args.device)
    family = family_of(graph, args.family)
    path = write_atlas(graph, args.out, family, endpoint=args.endpoint, hub_ids=hub_ids(store))
    print(path)
    if args.open:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())
    return 0
