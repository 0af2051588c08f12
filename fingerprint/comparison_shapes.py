"""What differs in shape between two signatures: resized tensors, slots on one side only,
layers matched by content. These lines are a pair's warnings and an edge's notes; a shape change
also rules out "identical" (`fingerprint.verdict`).
"""

from __future__ import annotations

import re

from fingerprint.comparison_records import PairResult
from fingerprint.records import Signature

# What rows appended to a tensor extend, by its name (first match); other tensors "reshaped".
# `shared.weight` as in the plan's roles (T5's embedding), not MoE `shared_experts`.
_POSITIONS = re.compile(r"position|wpe")
_ROWS_OF = (
    (_POSITIONS, "positions"),
    (re.compile(r"embed|wte|lm_head|shared\.weight|(?:^|\.)output\.weight$"), "vocabulary"),
)


def is_position_table(tensor: str) -> bool:
    """Whether a tensor is a position embedding (a GPT-2 `wpe`, BERT `position_embeddings`)."""
    return bool(_POSITIONS.search(tensor))


def shape_changes(a: Signature, b: Signature) -> tuple[str, ...]:
    """What differs in shape between two signatures, one line each (empty: nothing).

    A tensor resized from A to B (rows appended to an embedding or head: "vocabulary
    extended"), and slots that only one side has (a head added or removed, layers dropped).
    """
    by_key = {s.key: s for s in b.slots}
    out = []
    for sa in a.slots:
        sb = by_key.get(sa.key)
        if sb is None or sa.shape == sb.shape:
            continue
        # matched slot keys carry the trailing dimensions, so only the row count can differ
        rows = next((what for pat, what in _ROWS_OF if pat.search(sa.tensor)), None)
        if rows:
            grown = "extended" if sb.shape[0] > sa.shape[0] else "shrunk"
            out.append(f"{sa.tensor}: {rows} {grown}, {sa.shape[0]} -> {sb.shape[0]} rows")
        else:
            out.append(f"{sa.tensor}: reshaped, {list(sa.shape)} -> {list(sb.shape)}")
    only_a = {s.key for s in a.slots} - set(by_key)
    only_b = set(by_key) - {s.key for s in a.slots}
    for side, keys in (("A", only_a), ("B", only_b)):
        if keys:
            out.append(
                f"{len(keys)} slots only in {side} (a head added or removed, layers dropped)"
            )
    return tuple(out)


def layer_lines(layer_map: tuple[tuple[int, int], ...]) -> tuple[str, ...]:
    """The warning line of layers matched by content (none when they were matched by number)."""
    if not layer_map:
        return ()
    return ("layers matched by content (A -> B): " + ", ".join(f"{i}->{j}" for i, j in layer_map),)


def structure_changes(a: Signature, b: Signature, pair: PairResult) -> tuple[str, ...]:
    """What differs in structure from A to B, whichever way round `pair` was compared: the
    notes of an edge A -> B ("vocabulary extended", slots on one side only, layers matched by
    content), one line each."""
    layer_map = pair.layer_map
    if pair.a != a.model_id:
        layer_map = tuple(sorted((j, i) for i, j in layer_map))
    return (*shape_changes(a, b), *layer_lines(layer_map))
