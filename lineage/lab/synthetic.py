"""Synthetic signatures with known families, for all-pairs benchmarks and tests.

Real signatures take real weights; at 10,000 models that is a lot of disk for a benchmark of
the counting stage alone. Here a root's bottom-k positions are random, and a child keeps each
of its parent's positions with probability `keep` and draws the rest anew, which is how
fine-tuning acts on the extremes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from fingerprint.signature import Signature, SignatureParams, SlotSignature


def synthetic_signatures(
    n_models: int,
    n_families: int,
    *,
    params: SignatureParams | None = None,
    slots: int = 64,
    keep: tuple[float, float] = (0.2, 0.95),
    seed: int = 0,
) -> tuple[dict[str, Signature], dict[str, str]]:
    """`n_models` signatures in `n_families` trees; returns (signatures, model -> family)."""
    params = params or SignatureParams()
    rng = np.random.default_rng(seed)
    n, k = params.window, params.k
    keys = tuple(f"layers.{i}.mlp.up_proj.weight|512|{n}" for i in range(slots))
    positions: list[np.ndarray] = []  # per model: (slots, k) int64
    parents: list[int] = []
    family: dict[str, str] = {}
    for m in range(n_models):
        if m < n_families:
            pos = _distinct_rows(rng, n, slots, k, None)
            parents.append(-1)
        else:
            parent = int(rng.integers(0, m))
            parents.append(parent)
            keep_mask = rng.random((slots, k)) < rng.uniform(*keep)
            pos = _distinct_rows(rng, n, slots, k, np.where(keep_mask, positions[parent], -1))
        positions.append(pos)
        root = m
        while parents[root] >= 0:
            root = parents[root]
        family[f"m{m:05d}"] = f"m{root:05d}"
    sigs = {
        f"m{m:05d}": _signature(
            params, keys, f"m{m:05d}", [np.sort(p) for p in pos], own_digests=False
        )
        for m, pos in enumerate(positions)
    }
    return sigs, family


def _distinct_rows(
    rng: np.random.Generator, n: int, rows: int, k: int, kept: np.ndarray | None
) -> np.ndarray:
    """`rows` sets of k distinct positions in [0, n): the kept ones (>= 0) plus fresh draws."""
    out = np.empty((rows, k), dtype=np.int64)
    fresh = rng.integers(0, n, size=(rows, 2 * k))
    for r in range(rows):
        have = kept[r][kept[r] >= 0] if kept is not None else np.zeros(0, dtype=np.int64)
        extra = np.setdiff1d(fresh[r], have)
        rng.shuffle(extra)
        row = np.concatenate([have, extra])[:k]
        while row.size < k:  # practically never: 2k draws from a large window
            row = np.unique(np.concatenate([row, rng.integers(0, n, size=k)]))[:k]
        out[r] = row
    return out


class SyntheticHub:
    """A synthetic Hub of `n_models` in families, each model's signature made on demand.

    `synthetic_signatures` holds every signature at once (128 KiB a model: 13 GB at 100,000);
    here a model's positions are a function of the seed, its parent's positions and its own
    number, so any model can be rebuilt alone (from its root down, a few ms) and a whole Hub can
    be streamed in order holding only the current family. Families are contiguous runs of model
    numbers: model m starts a new family with probability 1 / `family_mean` (so sizes are
    geometric with that mean), otherwise its parent is a uniformly drawn earlier member of the
    current family, and it keeps each of its parent's positions with a probability drawn per
    model from `keep` (as in `synthetic_signatures`). Every draw is made per model from its own
    stream, so the first N models of a larger Hub are the Hub of N models (same seed).

    Args:
        n_models: models in the Hub.
        params: signature parameters (window n and k).
        slots: slots per model (all models share the same slot keys: one architecture).
        family_mean: mean family size.
        keep: range of the per-model keep probability.
        seed: the Hub's seed.
    """

    def __init__(
        self,
        n_models: int,
        *,
        params: SignatureParams | None = None,
        slots: int = 64,
        family_mean: float = 33.0,
        keep: tuple[float, float] = (0.2, 0.95),
        seed: int = 0,
    ):
        self.params = params or SignatureParams()
        self.n_models, self.slots, self.seed = n_models, slots, seed
        n = self.params.window
        self.keys = tuple(f"layers.{i}.mlp.up_proj.weight|512|{n}" for i in range(slots))
        starts = np.random.default_rng([seed, 1]).random(n_models) < 1.0 / family_mean
        if n_models:
            starts[0] = True
        # the root of each model: the last family start at or before it
        self.root = np.maximum.accumulate(np.where(starts, np.arange(n_models), 0))
        offset = np.arange(n_models) - self.root
        draw = np.random.default_rng([seed, 2]).random(n_models)
        self.parent = np.where(starts, -1, self.root + (draw * offset).astype(np.int64))
        lo, hi = keep
        self.keep = lo + (hi - lo) * np.random.default_rng([seed, 3]).random(n_models)
        self._cache: dict[int, np.ndarray] = {}

    def model_id(self, m: int) -> str:
        return f"h{m:07d}"

    def family(self, m: int) -> str:
        return self.model_id(int(self.root[m]))

    def positions(self, m: int) -> np.ndarray:
        """Model m's drawn positions, (slots, k) int64: rows unsorted (a child's keep draws are
        made against its parent's order) and may repeat a position (see `signature`)."""
        hit = self._cache.get(m)
        if hit is not None:
            return hit
        chain = [m]
        while self.parent[chain[-1]] >= 0 and int(self.parent[chain[-1]]) not in self._cache:
            chain.append(int(self.parent[chain[-1]]))
        top = int(self.parent[chain[-1]])
        pos = self._cache[top] if top >= 0 else None
        for node in reversed(chain):
            pos = self._make(node, pos)
        assert pos is not None
        if len(self._cache) > 4096:  # rebuilding on demand: keep only recent families
            self._cache.clear()
        self._cache[m] = pos
        return pos

    def stream(self, start: int = 0, stop: int | None = None):
        """(m, positions) for m in [start, stop), in order, holding one family at a time."""
        stop = self.n_models if stop is None else stop
        family: dict[int, np.ndarray] = {}
        for m in range(start, stop):
            parent = int(self.parent[m])
            if parent < 0:
                family = {}
            pos = self._make(m, family[parent]) if parent in family else self.positions(m)
            family[m] = pos
            yield m, pos

    def signature(self, m: int) -> Signature:
        """Model m's full signature (as `synthetic_signatures` makes them): each slot holds the
        distinct positions of its row, so k or, where a fresh draw repeated a position of its row
        (k^2 / 2n ~ 0.5 a row), a little fewer; not deduplicating is what makes streaming a Hub
        cheap (no sort of the k x slots draws per model)."""
        rows = [np.unique(r) for r in self.positions(m)]
        return _signature(self.params, self.keys, self.model_id(m), rows)

    def _make(self, m: int, parent_pos: np.ndarray | None) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 7, m])
        n, k = self.params.window, self.params.k
        if parent_pos is None:
            kept = np.full((self.slots, k), -1, dtype=np.int64)
        else:
            kept = np.where(rng.random((self.slots, k)) < self.keep[m], parent_pos, -1)
        fresh = kept < 0
        kept[fresh] = rng.integers(0, n, size=int(fresh.sum()))
        return kept


def _signature(
    params: SignatureParams,
    keys: tuple[str, ...],
    model_id: str,
    pos: list[np.ndarray],
    *,
    own_digests: bool = True,
) -> Signature:
    """A synthetic signature of sorted positions per slot. `own_digests`: each model's windows
    get their own digest (equal digests make any pair "identical"); False keeps zeros, as
    `synthetic_signatures` always made them."""
    n = params.window
    identity = np.zeros(0, dtype=np.uint64)
    return Signature(
        params,
        tuple(
            SlotSignature(
                key=key,
                tensor=key.split("|")[0],
                dtype="BF16",
                shape=(n // 512, 512),
                n=n,
                positions=p.astype(np.uint32),
                identity=identity,
                mean=0.0,
                std=1.0,
                kurtosis=3.0,
                absmax=4.0,
                distinct=1.0,
                digest=hashlib.blake2b(f"{model_id}|{key}".encode(), digest_size=16).digest()
                if own_digests
                else bytes(16),
            )
            for key, p in zip(keys, pos, strict=True)
        ),
        model_id=model_id,
    )


def store_synthetic(path: str | Path, sigs: Mapping[str, Signature]) -> None:
    """Write `sigs` into the store at `path`, each under a Hub-like record (revision r1, a
    creation date and downloads that vary with its rank in id order): the large stores of
    scripts/bench_queries.py and the stores of the build tests."""
    from hub.records import ModelRecord
    from lineage.catalogue import Catalogue
    from lineage.store import Store

    with Store(path) as store:
        catalogue = Catalogue(store)
        for i, (mid, sig) in enumerate(sorted(sigs.items())):
            rec = ModelRecord(
                id=mid,
                revision="r1",
                created_at=f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T00:00:00Z",
                downloads=(i * 7919) % 5000,
            )
            store.upsert_model(rec)
            catalogue.put(rec, sig)
