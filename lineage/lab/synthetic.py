"""Synthetic signatures with known families, for all-pairs benchmarks and tests.

Real signatures take real weights; at 10,000 models that is a lot of disk for a benchmark of
the counting stage alone. Here a root's bottom-k positions are random, and a child keeps each
of its parent's positions with probability `keep` and draws the rest anew, which is how
fine-tuning acts on the extremes.
"""

from __future__ import annotations

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
    keys = [f"layers.{i}.mlp.up_proj.weight|512|{n}" for i in range(slots)]
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
    identity = np.zeros(0, dtype=np.uint64)  # not used by the all-pairs stage
    sigs = {}
    for m, pos in enumerate(positions):
        mid = f"m{m:05d}"
        sigs[mid] = Signature(
            params,
            tuple(
                SlotSignature(
                    key=key,
                    tensor=key.split("|")[0],
                    dtype="BF16",
                    shape=(n // 512, 512),
                    n=n,
                    positions=np.sort(p).astype(np.uint32),
                    identity=identity,
                    mean=0.0,
                    std=1.0,
                    kurtosis=3.0,
                    absmax=4.0,
                    distinct=1.0,
                    digest=bytes(16),
                )
                for key, p in zip(keys, pos, strict=True)
            ),
            model_id=mid,
        )
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
