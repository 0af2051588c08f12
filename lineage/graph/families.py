"""Families: connected components of the recovered forest, each named by its earliest root."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import networkx as nx

from hub.records import ModelRecord
from lineage.graph.traits import upload_order


def families(
    ids: Iterable[str],
    parent: Mapping[str, str],
    second: Mapping[str, str],
    records: Mapping[str, ModelRecord],
) -> dict[str, str]:
    """Model id -> family id.

    Args:
        ids: every model in the graph.
        parent: child -> main parent.
        second: child -> second parent (merges).
        records: model id -> metadata (upload time and downloads order the roots).

    Returns:
        The family of each model: the root uploaded first (then the most downloaded, then the
        smallest id); a component without a root (cannot happen in a forest) takes its
        smallest id.
    """
    forest = nx.Graph()
    forest.add_nodes_from(ids)
    forest.add_edges_from(parent.items())
    forest.add_edges_from(second.items())
    family_of: dict[str, str] = {}
    for comp in nx.connected_components(forest):
        roots = sorted((m for m in comp if m not in parent), key=lambda m: upload_order(records[m]))
        fam = roots[0] if roots else min(comp)
        for m in comp:
            family_of[m] = fam
    return family_of
