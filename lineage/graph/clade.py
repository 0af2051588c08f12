"""A child that is no closer to its parent than to that parent's siblings branched off higher.

Fine-tunes of one base often move partly the same way (the same kind of data, the same
optimizer), so a heavy fine-tune of the base can sit closer to a gentle sibling (the base's own
Instruct) than to the base itself, and branching hangs it under the sibling. A real child of S
is closer to S than to S's siblings: they differ from S by their own drift. When the branching
put M under S, but some sibling T of S (another child of S's parent P) is at least as close to M
as S is, nothing singles S out: M is hung under P instead. A card that declares S keeps S.

Quantizations of one source are siblings: a GGUF repo's Q8_0 and another's Q4_K_M sit as close
to each other as to the source, and branching may chain them. A quantized model hung under
another quantized model it does not declare, and related to that one's float parent P too, is
hung under P. (A model only on a grid, such as a QLoRA fine-tune saved on its 4-bit base's
grid, keeps its quantized parent.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from fingerprint.comparison import DERIVED, PairResult
from hub.records import ModelRecord
from lineage.graph.traits import drift, is_quantized_meta


def lift(
    parent: Mapping[str, str],
    index: Mapping[frozenset[str], PairResult],
    records: Mapping[str, ModelRecord],
) -> dict[str, str]:
    """`parent` (child -> parent) with such children hung one level higher.

    Args:
        parent: the branching's main parents.
        index: comparisons by unordered pair.
        records: model id -> metadata (declared bases).
    """
    children: dict[str, set[str]] = defaultdict(set)
    for child, up in parent.items():
        children[up].add(child)
    out = dict(parent)
    for m, s in sorted(parent.items()):
        p = parent.get(s)
        if p is None:
            continue
        to_s, to_p = index.get(frozenset((m, s))), index.get(frozenset((m, p)))
        if (
            to_s is None
            or to_p is None
            or to_p.verdict not in DERIVED
            or any(b.id == s for b in records[m].declared_bases)
        ):
            continue
        quantized = is_quantized_meta(records[m]) and is_quantized_meta(records[s])
        if quantized and not is_quantized_meta(records[p]):
            out[m] = p
            continue
        near = drift(to_s)
        for t in sorted(children[p] - {s, m}):
            to_t = index.get(frozenset((m, t)))
            if to_t is not None and to_t.verdict in DERIVED and drift(to_t) <= near:
                out[m] = p
                break
    return out
