"""From signatures, metadata and pair comparisons to a directed lineage forest with typed edges.

Each step is a pure function in its own module, data in and data out:

1. `orient`: direction of each related pair from upload time, declared base,
   quantized-is-a-leaf, down-casting, downloads, and weight kurtosis as the last tie-breaker;
   an edge that only the tie-breaker (or the branching) oriented has direction "unknown".
2. `branch`: parent scores (closeness and priors) and Edmonds' maximum branching; among
   byte-identical copies (`copies`) the earliest upload is the parent.
3. `merges`: a second parent when a model sits between two others.
4. `relations`: each edge's relation from the per-slot comparison and the shapes (a table of
   rules, `RELATION_RULES`).
5. `families`: connected components, named by their earliest root.
6. `assemble`: nodes, edges and the `LineageGraph`; anomalies flagged on the nodes.

`recover` runs steps 1-6 on given pairs; `lineage.build.build_lineage` orchestrates them for a
store, `build_graph` for callers without one. `traits` holds what the steps read off a model
or a pair; `params` the weights.
"""

from lineage.graph.assemble import assemble, with_anomalies
from lineage.graph.branch import branching, candidates, parent_score
from lineage.graph.copies import Copies, copy_classes
from lineage.graph.families import families
from lineage.graph.merges import second_parents
from lineage.graph.orient import EVIDENCE, Evidence, direction_of, edge_directions, orientation
from lineage.graph.params import Confidence, GraphParams, detail_top
from lineage.graph.recover import build_graph, recover, recover_with_anomalies
from lineage.graph.relations import RELATION_RULES, edge_relations, relation_of
from lineage.graph.traits import coarser, drift, is_coarse, upload_order

__all__ = [
    "EVIDENCE",
    "RELATION_RULES",
    "Confidence",
    "Copies",
    "Evidence",
    "GraphParams",
    "assemble",
    "branching",
    "build_graph",
    "candidates",
    "coarser",
    "copy_classes",
    "detail_top",
    "direction_of",
    "drift",
    "edge_directions",
    "edge_relations",
    "families",
    "is_coarse",
    "orientation",
    "parent_score",
    "recover",
    "recover_with_anomalies",
    "relation_of",
    "second_parents",
    "upload_order",
    "with_anomalies",
]
