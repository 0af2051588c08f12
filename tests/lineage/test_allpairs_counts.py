"""All-pairs counts made slot by slot in bands: equal to the sparse product, whatever the bands."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fingerprint.signature import Signature
from lineage import allpairs
from lineage.allpairs import _counts_cpu, _design, significant_pairs
from lineage.lab.synthetic import synthetic_signatures


def _mixed(n: int, seed: int) -> dict[str, Signature]:
    """Synthetic families over three architectures: some models lack the first or last slots,
    so there are pairs across blocks as well as within them."""
    sigs, _ = synthetic_signatures(n, max(2, n // 30), slots=12, seed=seed)
    ids = sorted(sigs)
    for m in ids[::7]:
        g = sigs[m]
        sigs[m] = Signature(g.params, g.slots[:10], g.skipped, g.bytes_read, g.model_id)
    for m in ids[3::11]:
        g = sigs[m]
        sigs[m] = Signature(g.params, g.slots[3:], g.skipped, g.bytes_read, g.model_id)
    return sigs


def _reference(sigs: dict[str, Signature]) -> sp.csr_matrix:
    ordered = [sigs[k] for k in sorted(sigs)]
    slot_ids = {k: i for i, k in enumerate(sorted({s.key for g in ordered for s in g.slots}))}
    x = _design(ordered, slot_ids, 1 << 18, 1)
    return sp.triu(x @ x.T, 1).tocsr().astype(np.int64)


@pytest.mark.parametrize(
    "band_bytes,cache_bytes,step", [(512 << 20, 4 << 20, 1 << 21), (3000, 700, 97)]
)
def test_counts_equal_the_sparse_product_whatever_the_bands(
    monkeypatch, band_bytes, cache_bytes, step
):
    # tiny bands, cache blocks and steps force many of each
    monkeypatch.setattr(allpairs, "BAND_BYTES", band_bytes)
    monkeypatch.setattr(allpairs, "CACHE_BYTES", cache_bytes)
    monkeypatch.setattr(allpairs, "PAIRS_PER_STEP", step)
    sigs = _mixed(150, seed=3)
    ordered = [sigs[k] for k in sorted(sigs)]
    slot_ids = {k: i for i, k in enumerate(sorted({s.key for g in ordered for s in g.slots}))}
    i, j, c = _counts_cpu(ordered, slot_ids, 1, lambda band: 1)
    ours = sp.coo_matrix((c, (i, j)), shape=(len(ordered),) * 2).tocsr()
    reference = _reference(sigs)
    assert ours.nnz == reference.nnz > 0
    assert (ours != reference).nnz == 0
    # pairs come out in (i, j) order, as the selection downstream expects
    assert np.all(np.diff(i * len(ordered) + j) > 0)


def test_significant_and_background_pairs_carry_exact_counts_and_cover_every_shared_pair():
    sigs = _mixed(200, seed=5)
    stats = significant_pairs(sigs, device="cpu")
    assert stats.mode == "exact" and stats.background is not None
    reference = _reference(sigs)
    pairs = zip(stats.i.tolist(), stats.j.tolist(), strict=True)
    sig_pairs = dict(zip(pairs, stats.shared.tolist(), strict=True))
    assert all(reference[i, j] == c for (i, j), c in sig_pairs.items())
    assert np.all(stats.p_value <= stats.alpha_pair)
    bi, bj, _, bp = stats.background
    assert np.all(bp > stats.alpha_pair)
    # significant and background pairs together are every pair that shares a position
    shared = set(zip(*(a.tolist() for a in reference.nonzero()), strict=True))
    background = set(zip(bi.tolist(), bj.tolist(), strict=True))
    assert not background & set(sig_pairs)
    assert background | set(sig_pairs) == shared


def test_beyond_the_background_limit_only_the_background_goes():
    sigs = _mixed(120, seed=6)
    kept = significant_pairs(sigs, device="cpu")
    lean = significant_pairs(sigs, device="cpu", background_limit=50)
    assert lean.mode == "exact" and lean.background is None and kept.background is not None
    for field in ("i", "j", "shared", "overlap", "p_value"):
        assert np.array_equal(getattr(kept, field), getattr(lean, field))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_and_cpu_find_the_same_pairs():
    sigs = _mixed(150, seed=7)
    cpu = significant_pairs(sigs, device="cpu")
    gpu = significant_pairs(sigs, device="cuda")
    for field in ("i", "j", "shared", "overlap", "p_value"):
        assert np.array_equal(getattr(cpu, field), getattr(gpu, field))
    assert all(np.array_equal(a, b) for a, b in zip(cpu.background, gpu.background, strict=True))
