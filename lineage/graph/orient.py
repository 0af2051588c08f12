"""Direction of a related pair from evidence other than the weights' closeness.

Each kind of evidence is one row of `EVIDENCE`: a function of the pair that says +1 (u came
first), -1 (v came first) or something in between, and the weight it carries. Zero evidence
keeps both directions open for the branching. A row marked `guess` (kurtosis) only breaks ties:
an edge whose direction the other rows do not support is reported as direction "unknown".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from fingerprint.signature import Signature
from hub.records import ModelRecord
from lineage.graph.params import GraphParams
from lineage.graph.traits import (
    coarser,
    float_bits,
    is_coarse,
    is_quantized_meta,
    mean_kurtosis,
)


@dataclass(frozen=True, slots=True)
class Sides:
    """The two models of a pair, u first: ids, records, signatures, and the params."""

    u: str
    v: str
    ru: ModelRecord
    rv: ModelRecord
    su: Signature
    sv: Signature
    params: GraphParams


@dataclass(frozen=True, slots=True)
class Evidence:
    """One kind of evidence: `says(sides)` in [-1, 1] (positive: u came first) times `weight`.

    A `guess` row tips the balance but is no evidence for the reader: a direction it alone
    decides is "unknown".
    """

    name: str
    weight: float
    says: Callable[[Sides], float]
    guess: bool = False


def _upload_time(s: Sides) -> float:
    a, b = s.ru.created_at, s.rv.created_at
    if not a or not b or a == b:
        return 0.0
    return 1.0 if a < b else -1.0


def _declaration(s: Sides) -> float:
    if any(b.id == s.u for b in s.rv.declared_bases):
        return 1.0
    return -1.0 if any(b.id == s.v for b in s.ru.declared_bases) else 0.0


def _leaf(
    child: Signature, other: Signature, rc: ModelRecord, ro: ModelRecord, p: GraphParams
) -> bool:
    # quantized models are leaves: the child is on a grid the other lacks, or its metadata says
    # quantized while the other's does not and the other is on no grid either (metadata never
    # contradicts the weights: of two models on a grid, either may come first)
    meta = is_quantized_meta(rc) and not is_quantized_meta(ro) and not is_coarse(other, p)
    return coarser(child, other, p) or meta


def _v_quantized(s: Sides) -> float:
    return 1.0 if _leaf(s.sv, s.su, s.rv, s.ru, s.params) else 0.0


def _u_quantized(s: Sides) -> float:
    return -1.0 if _leaf(s.su, s.sv, s.ru, s.rv, s.params) else 0.0


def _down_cast(s: Sides) -> float:
    bits_u, bits_v = float_bits(s.su), float_bits(s.sv)
    if bits_u == bits_v:
        return 0.0
    return 1.0 if bits_u > bits_v else -1.0


def _download_gap(s: Sides) -> float:
    ratio = math.log10((1 + (s.ru.downloads or 0)) / (1 + (s.rv.downloads or 0)))
    if abs(ratio) < 1:
        return 0.0
    cap = s.params.downloads_orientation_cap
    return math.copysign(min(cap, s.params.downloads_orientation * abs(ratio)), ratio)


def _kurtosis(s: Sides) -> float:
    return math.tanh(mean_kurtosis(s.su) - mean_kurtosis(s.sv))


# Summed in this order (float addition is not associative, and orientations are compared with
# 0); a row that says 0 adds exactly nothing.
EVIDENCE: tuple[Evidence, ...] = (
    # true for 99.7% of Hub edges
    Evidence("upload time", 2.0, _upload_time),
    # a declaration may name the wrong relative, but rarely points the wrong way
    Evidence("declared base", 2.5, _declaration),
    # quantized models are leaves (99.4%): a grid on one side only, or quantization metadata on
    # one side only when the other side is on no grid
    Evidence("v quantized", 3.0, _v_quantized),
    Evidence("u quantized", 3.0, _u_quantized),
    # down-casting is common, up-casting rare
    Evidence("down-cast", 0.75, _down_cast),
    # a model used 1,000x less than another is rarely its parent, whatever the dates say;
    # the per-decade weight and cap are params, so the row's function gives the amount
    Evidence("download gap", 1.0, _download_gap),
    # last resort: the more kurtotic (less trained) model first, by a hair
    Evidence("kurtosis", 1e-3, _kurtosis, guess=True),
)


def orientation(
    u: str,
    v: str,
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    params: GraphParams,
) -> float:
    """Evidence that u came before v (positive) or after it (negative).

    Args:
        u: one model id.
        v: the other.
        records: model id -> metadata.
        sigs: model id -> signature.
        params: weights that the evidence rows read.

    Returns:
        The weighted sum of `EVIDENCE`; 0.0 when nothing tells.
    """
    score = 0.0
    for _, amount in _amounts(u, v, records, sigs, params):
        score += amount
    return score


def _amounts(
    u: str,
    v: str,
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    params: GraphParams,
) -> list[tuple[Evidence, float]]:
    """Each row of `EVIDENCE` with its weighted say on u before v, in table order."""
    sides = Sides(u, v, records[u], records[v], sigs[u], sigs[v], params)
    return [(row, row.weight * row.says(sides)) for row in EVIDENCE]


def direction_of(
    parent: str,
    child: str,
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    params: GraphParams,
) -> tuple[str, tuple[str, ...]]:
    """How a recovered edge's direction was decided, for readers of the graph.

    Args:
        parent: the recovered parent.
        child: the recovered child.
        records: model id -> metadata.
        sigs: model id -> signature.
        params: weights that the evidence rows read.

    Returns:
        ("evidence", names of the rows that put the parent first) when the rows other than
        guesses sum to a positive say on parent before child; ("unknown", ()) otherwise: no
        evidence, evidence that cancels out or points the other way, so the direction was a
        guess (kurtosis, closeness asymmetries, the copies' tie-break).
    """
    said = [(row, a) for row, a in _amounts(parent, child, records, sigs, params) if not row.guess]
    total = 0.0
    for _, amount in said:
        total += amount
    if total <= 0:
        return "unknown", ()
    return "evidence", tuple(row.name for row, amount in said if amount > 0)


def edge_directions(
    edges: Iterable[tuple[str, str]],
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    params: GraphParams,
) -> dict[tuple[str, str], tuple[str, tuple[str, ...]]]:
    """(parent, child) -> `direction_of` for every recovered edge."""
    return {(u, v): direction_of(u, v, records, sigs, params) for u, v in edges}
