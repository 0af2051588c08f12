"""All-pairs comparison through an inverted index (slot, position) -> models.

Counting co-occurrences is X X^T, where row i of X holds model i's bottom-k positions as
columns (slot id, position). Models that share no slot never meet, so architectures are blocked
for free. Up to `exact_limit` models every position is indexed and the counts are exact; beyond
it each slot keeps only positions whose hash falls in 1/`sample_rate` of the space (the same
positions for every model, so shared positions survive together), the p-values use the null of
the sampled windows (approximate; the exact per-slot comparison of the edges the graph keeps is
done by `detailed_pairs`).

On the CPU the counts are made by `allpairs_counts.counts_cpu`: one slot at a time, into the
upper triangle of 2-byte counts held in bands of bounded size, each band's rows split among
threads while another sorts the next slot; with numba installed (the `fast` extra) a compiled
kernel (`allpairs_jit`) makes the same counts faster. Only pairs that can matter leave a band:
those at or above their block's critical count, cross-block pairs, and, up to
`background_limit` models, every pair that shares a position (the unrelated background for
reports).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fingerprint import significance
from fingerprint.comparison import PairResult, check_compatible, compare
from fingerprint.device import resolve_device
from fingerprint.signature import Signature
from hub.records import ModelRecord
from lineage.allpairs_counts import Threshold, counts_cpu, slot_entries

DEFAULT_ALPHA = 0.01


@dataclass(frozen=True, slots=True)
class PairStats:
    """Significant pairs as parallel arrays (indices into `ids`), with exact totals."""

    ids: tuple[str, ...]
    i: np.ndarray
    j: np.ndarray
    shared: np.ndarray
    overlap: np.ndarray
    p_value: np.ndarray
    pairs_tested: int
    alpha_pair: float
    mode: str
    # pairs sharing slots that are not significant, as (i, j, overlap, p_value) arrays:
    # kept in exact mode only, for reports and calibration plots
    background: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def overlaps(self) -> dict[frozenset[str], float]:
        """Overlap of every significant pair, keyed by the unordered pair of model ids."""
        return {
            frozenset((self.ids[i], self.ids[j])): float(o)
            for i, j, o in zip(self.i.tolist(), self.j.tolist(), self.overlap.tolist(), strict=True)
        }


def _design(
    sigs: list[Signature], slot_ids: dict[str, int], width: int, sample_rate: int
) -> sp.csr_matrix:
    rows, cols = [], []
    for sid, entries in enumerate(slot_entries(sigs, slot_ids, sample_rate)):
        for r, pos in entries:
            cols.append(sid * width + pos.astype(np.int64))
            rows.append(np.full(pos.size, r, dtype=np.int64))
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    data = np.ones(row.size, dtype=np.float32)
    return sp.csr_matrix((data, (row, col)), shape=(len(sigs), len(slot_ids) * width))


def _cooccurrence_cuda_or_none(x: sp.csr_matrix) -> sp.coo_matrix | None:
    try:
        return _cooccurrence_cuda(x)
    except (RuntimeError, MemoryError) as e:  # e.g. out of GPU memory for a huge store
        print(f"warning: GPU co-occurrence failed ({e}); counting on the CPU", file=sys.stderr)
        return None


def _cooccurrence_cuda(x: sp.csr_matrix) -> sp.coo_matrix:
    import torch

    t = torch.sparse_csr_tensor(
        torch.from_numpy(x.indptr.astype(np.int64)),
        torch.from_numpy(x.indices.astype(np.int64)),
        torch.from_numpy(x.data),
        size=x.shape,
        device="cuda",
    )
    c = (t @ t.transpose(0, 1).to_sparse_csr()).to_sparse_coo().coalesce().cpu()
    idx = c.indices().numpy()
    keep = idx[0] < idx[1]
    return sp.coo_matrix(
        (np.rint(c.values().numpy()[keep]).astype(np.int64), (idx[0][keep], idx[1][keep])),
        shape=x.shape[:1] * 2,
    )


def _common_slots(a: Signature, b: Signature) -> tuple[tuple[int, int], ...]:
    keys = {s.key: s for s in b.slots}
    return tuple(
        sorted(
            (s.n, min(s.positions.size, keys[s.key].positions.size))
            for s in a.slots
            if s.key in keys and s.positions.size < s.n
        )
    )


def _sampled(slots: tuple[tuple[int, int], ...], rate: int) -> tuple[tuple[int, int], ...]:
    """The null of sampled counts: each slot shrinks to a window n/rate with k/rate drawn."""
    if rate == 1:
        return slots
    return tuple((max(1, n // rate), max(1, k // rate)) for n, k in slots)


def significant_pairs(
    sigs: Mapping[str, Signature],
    *,
    alpha: float = DEFAULT_ALPHA,
    device: str = "auto",
    exact_limit: int = 20_000,
    sample_rate: int = 32,
    background_limit: int = 1500,
    workers: int | None = None,
) -> PairStats:
    """Every pair whose total bottom-k overlap is significant after Bonferroni correction.

    Args:
        sigs: model id -> signature; all made with the same parameters.
        alpha: family-wise error rate over all pairs tested.
        device: "auto", "cpu" or "cuda" for the co-occurrence product.
        exact_limit: index every position up to this many models; sample beyond it.
        sample_rate: keep 1 position in this many when sampling.
        background_limit: up to this many models (and exact counts), also return every
            non-significant pair that shares a position (`PairStats.background`).
        workers: counting threads on the CPU (default: the CPUs this process may use).
    """
    ids = tuple(sorted(sigs))
    ordered = [sigs[i] for i in ids]
    for s in ordered[1:]:
        check_compatible(ordered[0], s)
    n_models = len(ids)
    pairs_tested = max(1, n_models * (n_models - 1) // 2)
    alpha_pair = alpha / pairs_tested
    empty = np.zeros(0, dtype=np.int64)
    if n_models < 2:
        return PairStats(ids, empty, empty, empty, np.zeros(0), np.zeros(0), 0, alpha_pair, "exact")
    slot_ids = {k: n for n, k in enumerate(sorted({s.key for g in ordered for s in g.slots}))}
    width = max(s.n for g in ordered for s in g.slots) if slot_ids else 1
    mode = "exact" if n_models <= exact_limit else "sampled"
    rate = 1 if mode == "exact" else sample_rate
    background = mode == "exact" and n_models <= background_limit
    arch_of = [g.arch for g in ordered]
    arch_names = sorted(set(arch_of))
    code_of = {a: c for c, a in enumerate(arch_names)}
    arch = np.array([code_of[a] for a in arch_of], dtype=np.int64)
    # within an architecture block every pair has the same null: (tail, critical count, sum k)
    nulls: dict[int, tuple[np.ndarray, int, int]] = {}
    for code in range(len(arch_names)):
        first = ordered[int(np.argmax(arch == code))]
        slots = _sampled(_common_slots(first, first), rate)
        if slots:
            pmf = significance.null_distribution(slots)
            tail = np.append(np.cumsum(pmf[::-1])[::-1], 0.0)  # tail[c] = P(S >= c)
            crit = significance.critical_total(slots, alpha_pair)
            nulls[code] = (tail, crit, sum(k for _, k in _common_slots(first, first)))
    never = np.iinfo(np.int64).max
    crit_of = np.array(
        [nulls[c][1] if c in nulls else never for c in range(len(arch_names))], dtype=np.int64
    )
    # the smallest count a pair needs to matter: its block's critical count (1 across blocks,
    # whose nulls differ pair by pair; 1 for all when the background is kept)
    low = Threshold(arch, np.ones_like(crit_of) if background else crit_of, 1)

    counts = None
    if resolve_device(device) == "cuda":
        counts = _cooccurrence_cuda_or_none(_design(ordered, slot_ids, width, rate))
    if counts is not None:
        rows, cols, data = counts.row.astype(np.int64), counts.col.astype(np.int64), counts.data
    else:
        rows, cols, data = counts_cpu(ordered, slot_ids, rate, low, workers=workers)
    same = arch[rows] == arch[cols]

    out_i, out_j, out_c, out_p, out_o = [], [], [], [], []
    bg: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    # same architecture block: one null distribution per block, vectorized
    for code, (tail, crit, total_k) in sorted(nulls.items()):
        block = same & (arch[rows] == code)
        sel = block & (data >= crit)
        if background:
            rest = block & ~sel
            cr = data[rest]
            bg.append((rows[rest], cols[rest], cr / total_k, tail[np.minimum(cr, tail.size - 1)]))
        c = data[sel]
        out_i.append(rows[sel])
        out_j.append(cols[sel])
        out_c.append(c)
        out_p.append(tail[np.minimum(c, tail.size - 1)])
        out_o.append(c * rate / total_k)
    # across blocks (a few slots differ, e.g. a quantized model with fewer float tensors)
    for i, j, c in zip(rows[~same], cols[~same], data[~same], strict=True):
        full = _common_slots(ordered[i], ordered[j])
        slots = _sampled(full, rate)
        if not slots:
            continue
        p = significance.combined_tail(int(c), slots)
        o = c * rate / sum(k for _, k in full)
        if p <= alpha_pair:
            out_i.append(np.array([i]))
            out_j.append(np.array([j]))
            out_c.append(np.array([c]))
            out_p.append(np.array([p]))
            out_o.append(np.array([o]))
        elif background:
            bg.append((np.array([i]), np.array([j]), np.array([o]), np.array([p])))
    cat = np.concatenate if out_i else (lambda _: np.zeros(0))
    return PairStats(
        ids,
        cat(out_i).astype(np.int64),
        cat(out_j).astype(np.int64),
        cat(out_c).astype(np.int64),
        np.minimum(cat(out_o).astype(np.float64), 1.0),
        cat(out_p).astype(np.float64),
        pairs_tested,
        alpha_pair,
        mode,
        tuple(np.concatenate(parts) for parts in zip(*bg, strict=True)) if bg else None,  # type: ignore[arg-type]
    )


def candidate_pairs(stats: PairStats, top: int | None) -> set[tuple[int, int]]:
    """Significant pairs (as index pairs) among each model's `top` strongest; all if None."""
    if top is None:
        return set(zip(stats.i.tolist(), stats.j.tolist(), strict=True))
    by_model: dict[int, list[tuple[float, int, int]]] = {}
    for i, j, o in zip(stats.i.tolist(), stats.j.tolist(), stats.overlap.tolist(), strict=True):
        by_model.setdefault(i, []).append((-o, i, j))
        by_model.setdefault(j, []).append((-o, i, j))
    chosen: set[tuple[int, int]] = set()
    for entries in by_model.values():
        chosen.update((i, j) for _, i, j in sorted(entries)[:top])
    return chosen


def detailed_pairs(
    sigs: Mapping[str, Signature],
    stats: PairStats,
    *,
    top: int | None = 8,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[PairResult]:
    """Full per-slot comparisons for each model's `top` strongest significant partners
    (all significant pairs when `top` is None), with the verdict at the corrected alpha."""
    chosen = candidate_pairs(stats, top)
    out = []
    for n, (i, j) in enumerate(sorted(chosen)):
        a, b = stats.ids[i], stats.ids[j]
        sa, sb = sigs[a], sigs[b]
        out.append(compare(_named(sa, a), _named(sb, b), alpha=stats.alpha_pair))
        if progress is not None:
            progress(n + 1, len(chosen), f"{a} ~ {b}")
    return out


def index_pairs(pairs: Iterable[PairResult]) -> dict[frozenset[str], PairResult]:
    """Comparisons keyed by the unordered pair of model ids (a later duplicate wins)."""
    return {frozenset((p.a, p.b)): p for p in pairs}


def declared_pairs(
    records: Mapping[str, ModelRecord],
    sigs: Mapping[str, Signature],
    have: Iterable[PairResult],
) -> dict[tuple[str, str], PairResult]:
    """Comparisons of each model with the bases its card declares, where `have` lacks them.

    A declared base is often not significant (a wrong card), so the detailed pairs miss it;
    the anomaly rules still need its numbers. Compared at `compare`'s own alpha, base first.

    Args:
        records: model id -> metadata, for every id in `sigs`.
        sigs: model id -> signature; bases without a signature are skipped.
        have: comparisons already made (either order).

    Returns:
        (base, model) -> comparison.
    """
    known = index_pairs(have)
    out: dict[tuple[str, str], PairResult] = {}
    for model in sorted(sigs):
        for base in records[model].declared_bases:
            key = (base.id, model)
            if base.id in sigs and frozenset(key) not in known and key not in out:
                out[key] = compare(sigs[base.id], sigs[model])
    return out


def _named(sig: Signature, model_id: str) -> Signature:
    if sig.model_id == model_id:
        return sig
    return Signature(sig.params, sig.slots, sig.skipped, sig.bytes_read, model_id)
