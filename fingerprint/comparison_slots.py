"""Per-slot comparison: how much of bottom-k two slots share, the exact tail of that, and
how much of their weights is identical (the MinHash of `identity_k` hashes).

`compare_slots` counts every matched slot of a pair at once (`fingerprint.slot_counts`,
`identity_jaccards`); `compare_slot` is the same record one slot at a time, the reference the
batched path is tested against.
"""

from __future__ import annotations

import numpy as np

from fingerprint import significance
from fingerprint.comparison_records import SlotComparison
from fingerprint.records import SlotSignature
from fingerprint.slot_counts import slot_counts
from fingerprint.structure import shared_and_population

# `significance.slot_tail` by (shared, population, k), as `compare_slots` meets them: a graph
# asks for millions of slot tails and few distinct ones (a dictionary look-up is a thirtieth of
# the call). Cleared past this many entries.
TAILS_KEPT = 1 << 16
_TAILS: dict[tuple[int, int, int], float] = {}


def identity_jaccard(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Bottom-k MinHash estimate of Jaccard similarity from two sorted sketches."""
    if x.size == 0 or y.size == 0:
        return 0.0
    union = np.union1d(x, y)[: min(k, x.size, y.size)]
    both = np.intersect1d(np.intersect1d(union, x, assume_unique=True), y, assume_unique=True)
    return float(both.size / union.size)


def identity_jaccards(
    pairs: tuple[tuple[SlotSignature, SlotSignature], ...], k: int
) -> list[float]:
    """`identity_jaccard` of every pair of slots, the same floats: pairs whose sketches have
    equal sizes (the rule: `identity_k` hashes each) are merged row-wise in one sort, where the
    common hashes stand next to each other; the bottom-k union is the distinct ranks below k."""
    out = [0.0] * len(pairs)
    groups: dict[tuple[int, int], list[int]] = {}
    for j, (sa, sb) in enumerate(pairs):
        if sa.identity.size and sb.identity.size:
            groups.setdefault((sa.identity.size, sb.identity.size), []).append(j)
    for (nx, ny), js in groups.items():
        x = np.stack([pairs[j][0].identity for j in js])
        y = np.stack([pairs[j][1].identity for j in js])
        m = min(k, nx, ny)
        if m < 1 or np.any(x[:, 1:] <= x[:, :-1]) or np.any(y[:, 1:] <= y[:, :-1]):
            for j in js:  # not sorted unique sketches: the plain sets answer (or raise)
                out[j] = identity_jaccard(pairs[j][0].identity, pairs[j][1].identity, k)
            continue
        z = np.sort(np.concatenate([x, y], axis=1), axis=1)
        twice = z[:, 1:] == z[:, :-1]  # the second copy of a hash both sketches hold
        rank = np.cumsum(~twice, axis=1)  # distinct ranks of z[:, 1:] (z[:, 0] has rank 0)
        both = np.count_nonzero(twice & (rank < m), axis=1)
        for j, c in zip(js, both.tolist(), strict=True):
            out[j] = c / m
    return out


def compare_slots(
    pairs: tuple[tuple[SlotSignature, SlotSignature], ...],
    identity_k: int,
    layouts: tuple[tuple[SlotSignature, ...], tuple[SlotSignature, ...]] | None = None,
) -> tuple[SlotComparison, ...]:
    """`compare_slot` of every matched pair of slots, counted for all slots at once
    (`fingerprint.slot_counts`, `identity_jaccards`): the same records, a fraction of the cost.
    `layouts`: both signatures' slots (`slot_counts.slot_counts`)."""
    shared, population = slot_counts(pairs, layouts=layouts)
    identity = identity_jaccards(pairs, identity_k)
    tails = _TAILS
    if len(tails) > TAILS_KEPT:
        tails.clear()
    out = []
    for (sa, sb), both, pop, ident in zip(pairs, shared, population, identity, strict=True):
        kk = min(sa.positions.size, sb.positions.size)
        p_value = tails.get((both, pop, kk))
        if p_value is None:
            p_value = tails[both, pop, kk] = significance.slot_tail(both, pop, kk)
        # `_slot_comparison`'s record, its fields in order (thousands of pairs, dozens of slots)
        out.append(
            SlotComparison(
                sa.key,
                sa.tensor,
                both,
                kk,
                sa.n,
                both / kk if kk else 0.0,
                ident,
                p_value,
                sa.digest == sb.digest and sa.shape == sb.shape,
                pop,
            )
        )
    return tuple(out)


def compare_slot(sa: SlotSignature, sb: SlotSignature, k: int, identity_k: int) -> SlotComparison:
    shared, population = shared_and_population(sa, sb)
    identity = identity_jaccard(sa.identity, sb.identity, identity_k)
    return _slot_comparison(sa, sb, shared, population, identity)


def _slot_comparison(
    sa: SlotSignature, sb: SlotSignature, shared: int, population: int, identity: float
) -> SlotComparison:
    kk = min(sa.positions.size, sb.positions.size)
    return SlotComparison(
        key=sa.key,
        tensor=sa.tensor,
        shared=shared,
        k=kk,
        n=sa.n,
        overlap=shared / kk if kk else 0.0,
        identity=identity,
        p_value=significance.slot_tail(shared, population, kk),
        # appended rows leave the window as it was: equal bytes need equal shapes as well
        same_bytes=sa.digest == sb.digest and sa.shape == sb.shape,
        n_eff=population,
    )
