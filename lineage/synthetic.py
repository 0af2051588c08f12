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
    n = params.window
    k = params.k
    keys = [f"layers.{i}.mlp.up_proj.weight|512|{n}" for i in range(slots)]
    positions: list[list[np.ndarray]] = []
    family: dict[str, str] = {}
    parents: list[int] = []
    for m in range(n_models):
        if m < n_families:
            pos = [rng.choice(n, k, replace=False) for _ in keys]
            parents.append(-1)
        else:
            parent = int(rng.integers(0, m))
            parents.append(parent)
            p_keep = rng.uniform(*keep)
            pos = []
            for old in positions[parent]:
                kept = old[rng.random(k) < p_keep]
                fresh = rng.choice(n, 2 * k, replace=False)
                fresh = fresh[~np.isin(fresh, kept)][: k - kept.size]
                pos.append(np.concatenate([kept, fresh]))
        positions.append(pos)
        root = m
        while parents[root] >= 0:
            root = parents[root]
        family[f"m{m:05d}"] = f"m{root:05d}"
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
                    identity=np.sort(rng.integers(0, 2**63, params.identity_k, dtype=np.uint64)),
                    mean=0.0,
                    std=1.0,
                    kurtosis=3.0,
                    absmax=4.0,
                    distinct=1.0,
                    digest=rng.bytes(16),
                )
                for key, p in zip(keys, pos, strict=True)
            ),
            model_id=mid,
        )
    return sigs, family
