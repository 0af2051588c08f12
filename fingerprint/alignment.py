"""Which layer of one model is which layer of the other, read from the weights.

Slots are matched by key, and a key holds the layer number (`encoder.layer.3.attention...`). That
is right while both models number their layers alike. Depth pruning (keep layers 0, 2, 4 of six
and renumber them 0, 1, 2) and depth up-scaling (repeat layers) break it: by key, a pruned
model's layer 1 meets its parent's layer 1, which it is not. Here each layer of the side with
fewer layers is matched to the layer of the other side whose slots share the most bottom-k
positions with it, when that match is significant after correction for the number of layer
pairs tried and beats the layer of the same number. Layers with no such match keep the match by
number, so between unrelated models (no significant layer pair) nothing changes and the null of
the pair's p-value is the one the verdict was calibrated on.
"""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass

from fingerprint import significance
from fingerprint.records import Signature, SlotSignature
from fingerprint.slot_counts import slot_counts

# The first numbered block in a slot key: `layers.3.` -> template `layers.*.`, layer 3.
_LAYER = re.compile(r"(^|\.)(\d+)\.")
# A layer pair is matched by content when its combined tail is at most this, divided by the
# number of layer pairs tried (Bonferroni): a wrong match would put chance slots in a related
# pair, or related slots in an unrelated one.
ALIGN_ALPHA = 1e-6


@dataclass(frozen=True, slots=True)
class LayerMatch:
    """Slots matched across two signatures.

    `pairs`: (slot of A, slot of B) to compare, in A's slot order. `layer_map`: (layer of A,
    layer of B) for every matched layer, when any differs from its number (else empty).
    """

    pairs: tuple[tuple[SlotSignature, SlotSignature], ...]
    layer_map: tuple[tuple[int, int], ...]


@functools.lru_cache(maxsize=1 << 16)
def split_key(key: str) -> tuple[str, int] | None:
    """(template, layer) of a slot key inside a numbered block, else None (cached: the same
    keys come back in every pair of an all-pairs run)."""
    m = _LAYER.search(key)
    if m is None:
        return None
    return f"{key[: m.start(2)]}*{key[m.end(2) :]}", int(m.group(2))


def _eligible(s: SlotSignature) -> bool:
    # a window no larger than k says nothing: every position is in bottom-k
    return s.positions.size < s.n


def _by_layer(sig: Signature) -> dict[int, dict[str, SlotSignature]]:
    layers: dict[int, dict[str, SlotSignature]] = defaultdict(dict)
    for s in sig.slots:
        split = split_key(s.key)
        if split is not None and _eligible(s):
            layers[split[1]][split[0]] = s
    return dict(layers)


def _layer_tail(la: dict[str, SlotSignature], lb: dict[str, SlotSignature]) -> float:
    """Combined tail of the templates two layers share (1.0 when they share none)."""
    common = sorted(set(la) & set(lb))
    if not common:
        return 1.0
    pairs = [(la[t], lb[t]) for t in common]
    shared, population = slot_counts(pairs)
    sizes = [
        (n, min(sa.positions.size, sb.positions.size))
        for n, (sa, sb) in zip(population, pairs, strict=True)
    ]
    return significance.combined_tail(sum(shared), sizes)


def _content_map(
    short: dict[int, dict[str, SlotSignature]], long: dict[int, dict[str, SlotSignature]]
) -> dict[int, int]:
    """Each layer of `short` -> its layer in `long`, where content says so (else by number)."""
    tried = max(1, len(short) * len(long))
    out = {}
    for i, li in sorted(short.items()):
        tails = {j: _layer_tail(li, lj) for j, lj in sorted(long.items())}
        best = min(tails, key=lambda j: (tails[j], j))
        by_number = tails.get(i, 1.0)
        if tails[best] <= ALIGN_ALPHA / tried and tails[best] < by_number:
            out[i] = best
        elif i in long:
            out[i] = i
    return out


def match_slots(a: Signature, b: Signature) -> LayerMatch:
    """The slots of A and B to compare: outside numbered blocks by key, inside by layer map.

    The layer map is read by content only when the two sides number their layers differently
    (other layer numbers among their slots); otherwise layers meet by number, as keys do.
    """
    same_keys = _same_layout(a, b)
    if same_keys is not None:
        return LayerMatch(same_keys, ())
    by_key = {s.key: s for s in b.slots}
    outside = [
        (sa, by_key[sa.key])
        for sa in a.slots
        if split_key(sa.key) is None and sa.key in by_key and _eligible(sa)
    ]
    la, lb = _by_layer(a), _by_layer(b)
    if set(la) == set(lb):
        layer_of = {i: i for i in la}
    elif len(la) <= len(lb):
        layer_of = _content_map(la, lb)
    else:
        layer_of = {i: j for j, i in _content_map(lb, la).items()}
    inside = [
        (la[i][t], lb[j][t]) for i, j in sorted(layer_of.items()) for t in la[i] if t in lb[j]
    ]
    order = {s.key: n for n, s in enumerate(a.slots)}
    pairs = sorted(outside + inside, key=lambda p: order[p[0].key])
    moved = any(i != j for i, j in layer_of.items())
    return LayerMatch(tuple(pairs), tuple(sorted(layer_of.items())) if moved else ())


def _same_layout(
    a: Signature, b: Signature
) -> tuple[tuple[SlotSignature, SlotSignature], ...] | None:
    """`match_slots`'s pairs when both signatures hold the same keys in the same order and the
    same layers have eligible slots (models of one architecture: nearly every pair a graph
    compares), found without its dictionaries; None otherwise.

    As there, a slot outside the blocks is compared when A's is eligible, one inside when both
    are, and the layers meet by number. What each side contributes is read once a signature
    (`_key_layout`): a model meets dozens of others in a graph.
    """
    la, lb = _key_layout(a.slots), _key_layout(b.slots)
    if la.keys != lb.keys or not la.unique or la.layers != lb.layers:
        return None
    if la.all_eligible and lb.all_eligible:
        return tuple(zip(a.slots, b.slots, strict=True))
    return tuple(
        (sa, sb)
        for sa, sb, block, ok_a, ok_b in zip(
            a.slots, b.slots, la.in_block, la.eligible, lb.eligible, strict=True
        )
        if ok_a and (ok_b or not block)
    )


@dataclass(frozen=True, slots=True)
class _KeyLayout:
    """What `_same_layout` reads of one signature's slots. `slots` is held so the cache key
    (their tuple's id) stays theirs."""

    slots: tuple[SlotSignature, ...]
    keys: tuple[str, ...]
    unique: bool
    in_block: tuple[bool, ...]
    eligible: tuple[bool, ...]
    all_eligible: bool
    layers: frozenset[int]  # the blocks' layers with an eligible slot


# `_KeyLayout`s by the id of a signature's slot tuple, least recently used dropped first.
_KEY_LAYOUTS: OrderedDict[int, _KeyLayout] = OrderedDict()
_KEY_LAYOUTS_KEPT = 8192
_KEY_LAYOUTS_LOCK = threading.Lock()


def _key_layout(slots: tuple[SlotSignature, ...]) -> _KeyLayout:
    with _KEY_LAYOUTS_LOCK:
        hit = _KEY_LAYOUTS.get(id(slots))
        if hit is not None and hit.slots is slots:
            _KEY_LAYOUTS.move_to_end(id(slots))
            return hit
    keys = tuple(s.key for s in slots)
    splits = [split_key(k) for k in keys]
    eligible = tuple(_eligible(s) for s in slots)
    layout = _KeyLayout(
        slots,
        keys,
        len(set(keys)) == len(keys),
        tuple(split is not None for split in splits),
        eligible,
        all(eligible),
        frozenset(split[1] for split, ok in zip(splits, eligible, strict=True) if split and ok),
    )
    with _KEY_LAYOUTS_LOCK:
        _KEY_LAYOUTS[id(slots)] = layout
        _KEY_LAYOUTS.move_to_end(id(slots))
        while len(_KEY_LAYOUTS) > _KEY_LAYOUTS_KEPT:
            _KEY_LAYOUTS.popitem(last=False)
    return layout
