"""The exact pre-check of the sketch scan: which candidates `compare` could call a match.

Most candidates of a query are not related to it. `compare` calls a pair related ("derived" or
"cousin") only when its p-value over the compared slots is at or below alpha, where each slot's
null draws from a population `n_eff` no larger than the window n (`fingerprint.structure`): a
smaller population only makes chance sharing likelier, so the tail with n is a lower bound of
`compare`'s. When the two models number their layers alike, `compare` meets slots by key
(`fingerprint.alignment.match_slots`): those outside numbered blocks that the query may use,
those inside where both may. Over that same set of slots, a total shared count below the
critical total at n (`fingerprint.significance.critical_total`) therefore proves "unrelated",
unless the pair could be "identical" (every compared slot fully shared: that verdict needs no
p-value). Pairs whose layers are numbered differently (`compare` may match layers by content)
or that could be identical always go to `compare`; so does every pair that passes. Nothing is
accepted here: a `Screen` only says whether `compare` must run, and in which order.

Only the stored positions are needed, read straight from the signature blob where its layout
is known (`fingerprint.blob_layouts`; any other blob, or another version, is read by
`Signature.from_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fingerprint import blob_layouts, significance
from fingerprint.alignment import split_key
from fingerprint.records import FORMAT_VERSION, MAGIC, Signature
from lineage.sketch_codes import distinct
from lineage.sketch_segments import jit_enabled

__all__ = ["QueryMask", "Screen", "StoredPositions", "read_positions"]


@dataclass(frozen=True, slots=True)
class StoredPositions:
    """The bottom-k positions of a stored signature, slot by slot (no identity, no stats).

    Attributes:
        keys: slot keys, in the signature's order.
        ns: window size of each slot.
        sizes: positions kept in each slot (k, or fewer for a small window).
        positions: every slot's sorted positions, one slot after another (uint32).
    """

    keys: tuple[str, ...]
    ns: np.ndarray
    sizes: np.ndarray
    positions: np.ndarray

    def slots(self) -> list[np.ndarray]:
        """Each slot's positions (views of `positions`)."""
        return np.split(self.positions, np.cumsum(self.sizes)[:-1]) if self.keys else []

    @staticmethod
    def of(sig: Signature) -> StoredPositions:
        """The positions of a signature in hand."""
        pos = [s.positions for s in sig.slots]
        return StoredPositions(
            keys=tuple(s.key for s in sig.slots),
            ns=np.array([s.n for s in sig.slots], np.int64),
            sizes=np.array([p.size for p in pos], np.int64),
            positions=np.concatenate(pos).astype(np.uint32) if pos else np.zeros(0, np.uint32),
        )


def read_positions(blob: bytes) -> StoredPositions:
    """The positions of a stored signature blob, skipping what the pre-check does not read.

    A blob laid out like one read before (the same architecture: `fingerprint.blob_layouts`)
    is read by one struct unpack; any other is read whole by `Signature.from_bytes`, which
    keeps its layout for the next blob like it.

    Raises:
        SignatureFormatError: the blob is not a readable signature (from `Signature.from_bytes`).
    """
    found = blob_layouts.positions(blob)
    if found is None or found[0][:2] != (MAGIC, FORMAT_VERSION):
        return StoredPositions.of(Signature.from_bytes(bytes(blob)))  # raises its own error
    _, keys, ns, sizes, positions = found
    return StoredPositions(
        keys=keys,
        ns=np.array(ns, np.int64),
        sizes=np.array(sizes, np.int64),
        positions=positions,
    )


@dataclass(frozen=True, slots=True)
class Screen:
    """A candidate against the query, over the slots `compare` meets by key.

    Attributes:
        shared: positions shared over those slots.
        common: (window n, k) of each of them.
        p_value: exact tail of `shared` with populations n (a lower bound of `compare`'s), or
            1.0 when it is shown to be above alpha without computing it.
        overlap: mean overlap over them, in the query's slot order (as `compare` averages).
        must_compare: `compare` may see other slots (layers numbered differently) or may call
            the pair identical: the bound above does not decide it.
        significant: p_value <= alpha.
    """

    shared: int
    common: tuple[tuple[int, int], ...]
    p_value: float
    overlap: float
    must_compare: bool
    significant: bool

    @property
    def passes(self) -> bool:
        """Whether `compare` could call the pair related."""
        return bool(self.common) and (self.significant or self.must_compare)


def _layers(keys: tuple[str, ...], eligible: np.ndarray) -> frozenset[int]:
    return frozenset(
        split[1] for key, ok in zip(keys, eligible, strict=True) if ok and (split := split_key(key))
    )


def _critical(common: tuple[tuple[int, int], ...], alpha: float) -> int:
    """The critical total of the bound of `_screen`: every slot's k lowered to the smallest k
    among them (a stochastically smaller null, so a critical total no larger). Real signatures
    keep exactly k positions in every slot they compare, so the lowered null is the one null of
    their architecture, convolved once; the exact tail of a candidate with other ks would be a
    convolution of its own."""
    if not common:
        return 0
    low = min(k for _, k in common)
    return significance.critical_total(tuple((n, low) for n, _ in common), alpha)


def _screen(shape: _Shape, shared: np.ndarray, alpha: float) -> Screen:
    """The screen of a candidate of `shape` sharing `shared` positions in each met slot."""
    total = int(shared.sum())
    # the exact tail, or 1.0 when the bound shows it is above alpha (one is taken off the
    # critical total for float sums in another order)
    if not shape.common or total < shape.critical - 1:
        p = 1.0
    else:
        p = significance.combined_tail(total, shape.common)
    kept = shape.kept
    ratios = np.divide(shared, kept, out=np.zeros(kept.size), where=kept > 0)
    maybe_identical = shape.same_keys and bool(np.all(shared == kept))
    return Screen(
        shared=total,
        common=shape.common,
        p_value=p,
        overlap=float(ratios.mean()) if ratios.size else 0.0,
        must_compare=not shape.numbered_alike or maybe_identical,
        # a hair above alpha: float sums in another order must not reject what compare keeps
        significant=bool(shape.common) and p <= alpha * (1 + 1e-9),
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a candidate's screen needs of its slot keys, window sizes and sizes alone (most
    candidates of a query share one: the same architecture, k positions a slot), made once."""

    slot_of: np.ndarray  # slot of each stored position
    bounds: np.ndarray  # where each slot's positions begin (slots + 1)
    slot_base: np.ndarray  # bit offset in the query's table of each slot (usable: >= 0)
    slot_limit: np.ndarray  # window n of each slot in the query (0: not met)
    order: np.ndarray  # the met slots, in the query's slot order
    common: tuple[tuple[int, int], ...]
    kept: np.ndarray  # k of each met slot (in `order`)
    critical: int  # the bound's critical total (`_critical`) at `alpha`
    alpha: float
    numbered_alike: bool
    same_keys: bool


class QueryMask:
    """A query signature's positions as one boolean table over all its eligible windows.

    Looking a candidate's positions up in it counts what the two share in every slot at once.
    What a candidate's slot layout alone decides (which slots `compare` meets, their nulls'
    critical total, whether layers are numbered alike) is worked out once per layout and kept
    (`_Shape`): a query's candidates are mostly of its own architecture, and that Python-level
    work cost more than counting the positions.
    """

    def __init__(self, sig: Signature):
        self.keys = tuple(s.key for s in sig.slots)
        self.eligible = np.array([s.positions.size < s.n for s in sig.slots], bool)
        self.ns = np.array([s.n for s in sig.slots], np.int64)
        self.ks = np.array([s.positions.size for s in sig.slots], np.int64)
        self.offsets = np.r_[0, np.cumsum(np.where(self.eligible, self.ns, 0))][:-1]
        self.slot = {key: t for t, key in enumerate(self.keys)}
        self.inside = np.array([split_key(k) is not None for k in self.keys], bool)
        self.layers = _layers(self.keys, self.eligible)
        self._shapes: dict[tuple[tuple[str, ...], bytes, bytes], _Shape] = {}
        # one bit a window element (2 MiB for 64 windows of 2^18): a candidate's lookups stay
        # in cache, where a byte a element (16 MiB) made them cost more than the rest together
        cells = int(np.where(self.eligible, self.ns, 0).sum())
        self.table = np.zeros((cells + 7) // 8, np.uint8)
        if jit_enabled() and sig.slots and self._fill_compiled(sig):
            return
        at = [
            self.offsets[t] + s.positions.astype(np.int64)
            for t, s in enumerate(sig.slots)
            if self.eligible[t]
        ]
        if at:
            # each byte's bits OR-ed over its distinct cells in one `reduceat` (distinct cells
            # ascending: a byte's cells are adjacent), not `bitwise_or.at` (7 ms a query)
            every = distinct(np.concatenate(at))
            byte = every >> 3
            first = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]])
            bits = np.left_shift(1, every & 7).astype(np.uint8)
            self.table[byte[first]] = np.bitwise_or.reduceat(bits, first)

    def _fill_compiled(self, sig: Signature) -> bool:
        """Fill the table by the compiled loop (`lineage.screen_jit.fill_table`); False (the
        table left empty) when a position falls past it, for numpy's path to say so."""
        from lineage import screen_jit

        pos = [s.positions for s in sig.slots]
        past = screen_jit.fill_table(
            self.table,
            np.concatenate(pos).astype(np.int64),
            np.r_[0, np.cumsum([p.size for p in pos])].astype(np.int64),
            self.offsets.astype(np.int64),
            self.eligible,
        )
        if past:
            self.table[:] = 0
        return not past

    def _shape(self, cand: StoredPositions, alpha: float) -> _Shape:
        key = (cand.keys, cand.ns.tobytes(), cand.sizes.tobytes())
        shape = self._shapes.get(key)
        if shape is not None and shape.alpha == alpha:
            return shape
        t = np.array([self.slot.get(k, -1) for k in cand.keys], np.int64)
        known = t >= 0
        tt = np.where(known, t, 0)
        own_ok = cand.sizes < cand.ns
        # compare's slots met by key: the query's eligible ones, and the candidate's too inside
        # numbered blocks (`match_slots`)
        met = known & self.eligible[tt] & (own_ok | ~self.inside[tt])
        n_q = self.ns[tt]
        slot_of = np.repeat(np.arange(len(cand.keys)), cand.sizes)
        ks = np.minimum(self.ks[tt], cand.sizes)
        order = np.argsort(np.where(met, tt, len(self.keys)), kind="stable")[: int(met.sum())]
        common = tuple((int(n_q[j]), int(ks[j])) for j in order)
        slot_base = np.where(met, self.offsets[tt], -1)
        slot_limit = np.where(met, n_q, 0)
        shape = _Shape(
            slot_of=slot_of,
            bounds=np.r_[0, np.cumsum(cand.sizes)].astype(np.int64),
            slot_base=slot_base.astype(np.int64),
            slot_limit=slot_limit.astype(np.int64),
            order=order,
            common=common,
            kept=ks[order],
            critical=_critical(common, alpha),
            alpha=alpha,
            numbered_alike=_layers(cand.keys, own_ok) == self.layers,
            same_keys=set(cand.keys) == set(self.keys),
        )
        if len(self._shapes) < 64:  # a few architectures a query; more are made each time
            self._shapes[key] = shape
        return shape

    def screen(self, cand: StoredPositions, alpha: float) -> Screen:
        """The pre-check of one candidate at significance level `alpha`."""
        shape = self._shape(cand, alpha)
        if jit_enabled():
            from lineage import screen_jit

            counts = screen_jit.shared_per_slot(
                cand.positions,
                shape.bounds,
                shape.slot_limit,
                shape.slot_base,
                self.table,
            )
            return _screen(shape, counts[shape.order], alpha)
        pos = cand.positions.astype(np.int64)
        usable = pos < shape.slot_limit[shape.slot_of]
        cell = shape.slot_base[shape.slot_of][usable] + pos[usable]
        hit = np.zeros(pos.size, bool)
        hit[usable] = (self.table[cell >> 3] >> (cell & 7).astype(np.uint8)) & 1 == 1
        shared = np.bincount(shape.slot_of[hit], minlength=len(cand.keys))[shape.order]
        return _screen(shape, shared, alpha)
