"""All-pairs counts made slot by slot in bands of the upper triangle: equal to the sparse product,
whatever the bands, blocks, steps, threads and thresholds, on the numpy path and on the compiled
(numba) one, with identical pairs, totals, overlaps and p-values on both."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fingerprint.signature import Signature
from lineage import allpairs_counts
from lineage.allpairs import _design, significant_pairs
from lineage.allpairs_counts import counts_cpu
from lineage.lab.synthetic import synthetic_signatures

try:
    import numba  # noqa: F401

    HAVE_NUMBA = True
except ImportError:
    HAVE_NUMBA = False


@pytest.fixture(
    params=[
        "numpy",
        pytest.param(
            "jit",
            marks=pytest.mark.skipif(
                not HAVE_NUMBA, reason="numba not installed (the 'fast' extra; make venv has it)"
            ),
        ),
    ]
)
def path(request, monkeypatch):
    """Count on the numpy path or the compiled one, whatever the number of models."""
    if request.param == "numpy":
        monkeypatch.setenv("LINEAGE_NO_JIT", "1")
    else:
        monkeypatch.delenv("LINEAGE_NO_JIT", raising=False)
        monkeypatch.setattr(allpairs_counts, "JIT_MIN_MODELS", 0)
    assert allpairs_counts.counting_path(10) == request.param
    return request.param


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
    "band_bytes,cache_bytes,step,select,workers",
    [(512 << 20, 4 << 20, 1 << 21, 1 << 22, 1), (3000, 700, 97, 333, 3)],
)
def test_counts_equal_the_sparse_product_whatever_the_bands(
    monkeypatch, path, band_bytes, cache_bytes, step, select, workers
):
    # tiny bands, cache blocks, steps, buffers and selections force many of each; three threads
    # split every band's rows
    monkeypatch.setattr(allpairs_counts, "BAND_BYTES", band_bytes)
    monkeypatch.setattr(allpairs_counts, "CACHE_BYTES", cache_bytes)
    monkeypatch.setattr(allpairs_counts, "PAIRS_PER_STEP", step)
    monkeypatch.setattr(allpairs_counts, "SELECT_COUNTS", select)
    sigs = _mixed(150, seed=3)
    ordered = [sigs[k] for k in sorted(sigs)]
    slot_ids = {k: i for i, k in enumerate(sorted({s.key for g in ordered for s in g.slots}))}
    i, j, c = counts_cpu(ordered, slot_ids, 1, lambda i, j: 1, workers=workers)
    ours = sp.coo_matrix((c, (i, j)), shape=(len(ordered),) * 2).tocsr()
    reference = _reference(sigs)
    assert ours.nnz == reference.nnz > 0
    assert (ours != reference).nnz == 0
    # pairs come out in (i, j) order, as the selection downstream expects
    assert np.all(np.diff(i * len(ordered) + j) > 0)


def test_only_pairs_at_or_above_their_low_count_leave_a_band(monkeypatch, path):
    monkeypatch.setattr(allpairs_counts, "BAND_BYTES", 5000)
    sigs = _mixed(120, seed=8)
    ordered = [sigs[k] for k in sorted(sigs)]
    slot_ids = {k: i for i, k in enumerate(sorted({s.key for g in ordered for s in g.slots}))}
    reference = _reference(sigs).tocoo()
    # a threshold that differs pair by pair: odd i need 40 shared positions, even i need 3
    i, j, c = counts_cpu(ordered, slot_ids, 1, lambda i, j: np.where(i % 2 == 1, 40, 3))
    want = (reference.data >= np.where(reference.row % 2 == 1, 40, 3)) & (reference.data > 0)
    order = np.lexsort((reference.col[want], reference.row[want]))
    assert 0 < i.size < reference.nnz
    assert np.array_equal(i, reference.row[want][order])
    assert np.array_equal(j, reference.col[want][order])
    assert np.array_equal(c, reference.data[want][order])


@pytest.mark.parametrize("band_bytes,workers", [(512 << 20, 2), (3000, 3)])
def test_a_threshold_table_keeps_the_same_pairs_on_both_paths(
    monkeypatch, path, band_bytes, workers
):
    # the table the compiled path selects with inside its kernel: one count per group within,
    # one across, a group that keeps nothing; every band, thread and row split gives the same
    monkeypatch.setattr(allpairs_counts, "BAND_BYTES", band_bytes)
    sigs = _mixed(140, seed=12)
    ordered = [sigs[k] for k in sorted(sigs)]
    slot_ids = {k: i for i, k in enumerate(sorted({s.key for g in ordered for s in g.slots}))}
    reference = _reference(sigs).tocoo()
    group = np.arange(len(ordered), dtype=np.int64) % 3
    never = np.iinfo(np.int64).max
    low = allpairs_counts.Threshold(group, np.array([2, 25, never], dtype=np.int64), 6)
    i, j, c = counts_cpu(ordered, slot_ids, 1, low, workers=workers)
    r, k = reference.row, reference.col
    want = reference.data >= np.where(group[r] == group[k], low.within[group[r]], 6)
    order = np.lexsort((k[want], r[want]))
    assert 0 < i.size < reference.nnz
    assert not np.any((group[i] == 2) & (group[j] == 2))
    assert np.array_equal(i, r[want][order])
    assert np.array_equal(j, k[want][order])
    assert np.array_equal(c, reference.data[want][order])


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed (the 'fast' extra)")
def test_sampled_counts_are_the_same_on_both_paths_across_many_bands(monkeypatch):
    # sampled positions (int64, 1 in 4) through bands of a few rows, two threads and a table
    monkeypatch.setattr(allpairs_counts, "JIT_MIN_MODELS", 0)
    monkeypatch.setattr(allpairs_counts, "BAND_BYTES", 20000)
    sigs = _mixed(160, seed=13)
    ordered = [sigs[k] for k in sorted(sigs)]
    slot_ids = {k: i for i, k in enumerate(sorted({s.key for g in ordered for s in g.slots}))}
    group = np.arange(len(ordered), dtype=np.int64) % 2
    low = allpairs_counts.Threshold(group, np.array([1, 3], dtype=np.int64), 2)
    got = {}
    for name, off in (("jit", "0"), ("numpy", "1")):
        monkeypatch.setenv("LINEAGE_NO_JIT", off)
        assert allpairs_counts.counting_path(len(ordered)) == name
        got[name] = counts_cpu(ordered, slot_ids, 4, low, workers=2)
    assert got["jit"][0].size > 0
    assert all(np.array_equal(a, b) for a, b in zip(got["jit"], got["numpy"], strict=True))


def test_significant_and_background_pairs_carry_exact_counts_and_cover_every_shared_pair(path):
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


def test_same_pairs_and_totals_as_the_product_at_every_alpha_with_and_without_threads(path):
    # significant pairs (same family and otherwise) decided on exact totals: the selection made
    # inside the bands equals thresholding the full sparse product
    sigs = _mixed(300, seed=9)
    reference = _reference(sigs)
    for alpha in (0.01, 1e-6):
        one = significant_pairs(sigs, alpha=alpha, device="cpu", background_limit=0, workers=1)
        two = significant_pairs(sigs, alpha=alpha, device="cpu", background_limit=0, workers=2)
        assert one.i.size > 0
        for field in ("i", "j", "shared", "overlap", "p_value"):
            assert np.array_equal(getattr(one, field), getattr(two, field))
        assert all(
            reference[i, j] == c
            for i, j, c in zip(one.i.tolist(), one.j.tolist(), one.shared.tolist(), strict=True)
        )


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed (the 'fast' extra)")
def test_compiled_and_numpy_paths_give_identical_pairs_totals_overlaps_and_p_values(monkeypatch):
    # many copies (a column holding a dozen models) and pairs across blocks, on both paths
    sigs = _mixed(250, seed=11)
    ids = sorted(sigs)
    for m in ids[1:13]:
        g = sigs[ids[0]]
        sigs[m] = Signature(g.params, g.slots, g.skipped, g.bytes_read, m)
    monkeypatch.setattr(allpairs_counts, "JIT_MIN_MODELS", 0)
    results = {}
    for name, off in (("jit", "0"), ("numpy", "1")):
        monkeypatch.setenv("LINEAGE_NO_JIT", off)
        assert allpairs_counts.counting_path(len(sigs)) == name
        results[name] = significant_pairs(sigs, device="cpu", workers=2)
    jit, ref = results["jit"], results["numpy"]
    assert jit.i.size > 12 * 11 // 2  # the copies are all significant
    for field in ("i", "j", "shared", "overlap", "p_value"):
        assert np.array_equal(getattr(jit, field), getattr(ref, field))
    assert jit.pairs_tested == ref.pairs_tested
    assert all(np.array_equal(a, b) for a, b in zip(jit.background, ref.background, strict=True))


def test_no_jit_below_the_threshold_or_when_turned_off(monkeypatch):
    monkeypatch.delenv("LINEAGE_NO_JIT", raising=False)
    small = allpairs_counts.JIT_MIN_MODELS - 1
    assert allpairs_counts.counting_path(small) == "numpy"
    big = allpairs_counts.JIT_MIN_MODELS
    assert allpairs_counts.counting_path(big) == ("jit" if HAVE_NUMBA else "numpy")
    monkeypatch.setenv("LINEAGE_NO_JIT", "1")
    assert allpairs_counts.counting_path(big) == "numpy"
