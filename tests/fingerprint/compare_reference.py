"""`compare` one slot at a time (`compare_slot`): the rule the batched and cached counts of
`fingerprint.comparison` are held to in the tests."""

from __future__ import annotations

from fingerprint.alignment import match_slots
from fingerprint.comparison import PairResult, compare_slot, shape_changes, summarize
from fingerprint.signature import Signature


def reference_compare(a: Signature, b: Signature) -> PairResult:
    """`compare(a, b)` as it was first written: every matched slot pair compared on its own."""
    matched = match_slots(a, b)
    per_slot = tuple(
        compare_slot(sa, sb, a.params.k, a.params.identity_k) for sa, sb in matched.pairs
    )
    return summarize(
        a.model_id, b.model_id, per_slot, len(a.slots), len(b.slots),
        shapes=shape_changes(a, b), layer_map=matched.layer_map,
    )  # fmt: skip
