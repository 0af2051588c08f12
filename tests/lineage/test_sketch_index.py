"""The sketch index: recall against exact counts, incremental = batch, memmap round trip, size."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from fingerprint import significance
from lineage.lab.synthetic import SyntheticHub
from lineage.sketch_codes import (
    DEFAULT_RATE,
    distinct,
    select_codes,
    sketch_hashes,
)
from lineage.sketch_index import (
    DEFAULT_MAX_CODES,
    MAX_SEGMENT,
    SketchIndex,
    sketch_codes,
    sketch_rows,
    slot_salt,
)

N_MODELS = 2000


@pytest.fixture(scope="module")
def hub() -> SyntheticHub:
    return SyntheticHub(N_MODELS, seed=7)


@pytest.fixture(scope="module")
def sigs(hub: SyntheticHub) -> dict[int, object]:
    return {m: hub.signature(m) for m in range(N_MODELS)}


@pytest.fixture(scope="module")
def codes(sigs) -> dict[int, np.ndarray]:
    return {m: sketch_codes(s) for m, s in sigs.items()}


def _index(path, codes: dict[int, np.ndarray], hub: SyntheticHub, **kw) -> SketchIndex:
    index = SketchIndex(path, **kw)
    index.extend((hub.model_id(m), c) for m, c in codes.items())
    return index


def _family_totals(hub: SyntheticHub, sigs) -> dict[int, np.ndarray]:
    """Exact shared totals of every pair inside each family (root -> matrix over members)."""
    out = {}
    n = hub.params.window
    for root in np.unique(hub.root).tolist():
        members = np.flatnonzero(hub.root == root)
        cols = [
            np.concatenate(
                [i * n + s.positions.astype(np.int64) for i, s in enumerate(sigs[m].slots)]
            )
            for m in members.tolist()
        ]
        rows = np.repeat(np.arange(members.size), [c.size for c in cols])
        x = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, np.concatenate(cols))))
        out[root] = np.asarray((x @ x.T).todense()).astype(np.int64)
    return out


def test_recall_against_exact_counts(tmp_path, hub, sigs, codes):
    index = _index(tmp_path / "i", codes, hub)
    totals = _family_totals(hub, sigs)
    crit = significance.critical_total([(hub.params.window, hub.params.k)] * 64, 0.01 / N_MODELS)
    rng = np.random.default_rng(0)
    related = found = 0
    for q in rng.choice(N_MODELS, size=300, replace=False).tolist():
        root = int(hub.root[q])
        mine = totals[root][q - root]
        truth = {root + i for i in np.flatnonzero(mine >= crit).tolist()} - {q}

        def verify(c, root=root, mine=mine) -> bool:
            return int(hub.root[c.row]) == root and int(mine[c.row - root]) >= crit

        hits = {c.row for c in index.related(codes[q], verify, exclude=[hub.model_id(q)])}
        assert hits <= truth  # verification keeps precision exact
        related += len(truth)
        found += len(truth & hits)
    assert related > 3000
    assert found / related >= 0.99


def test_sketch_of_streamed_positions_equals_sketch_of_signature(hub, sigs):
    # the benchmark sketches drawn positions directly; the index sketches signatures
    salts = np.array([slot_salt(k) for k in hub.keys], dtype=np.uint64)
    for m, pos in hub.stream(0, 50):
        assert np.array_equal(sketch_rows(salts, pos), sketch_codes(sigs[m]))


def _slot_by_slot(sig) -> np.ndarray:
    """A sketch by its definition: each eligible slot's (salt, position) hashes, then the
    sampled ones."""
    parts = [
        sketch_hashes(slot_salt(s.key), s.positions) for s in sig.slots if s.positions.size < s.n
    ]
    return select_codes(np.concatenate(parts), DEFAULT_RATE, DEFAULT_MAX_CODES)


def test_sketch_codes_equal_their_slot_by_slot_definition(hub, sigs):
    # k positions in every slot takes the vectorized hash; a slot cut short, or one whose
    # window is no larger than k (left out), takes the slot-by-slot one: both are the definition
    sig = sigs[3]
    cut = dataclasses.replace(sig.slots[1], positions=sig.slots[1].positions[:100])
    small = dataclasses.replace(sig.slots[2], n=int(sig.slots[2].positions.size))
    for s in (
        sig,
        *(dataclasses.replace(sig, slots=(sig.slots[0], x, *sig.slots[2:])) for x in (cut,)),
        dataclasses.replace(sig, slots=(*sig.slots[:2], small, *sig.slots[3:])),
    ):
        want = _slot_by_slot(s)
        assert want.size > 500 and np.array_equal(sketch_codes(s), want)
    assert not np.array_equal(
        _slot_by_slot(sig),
        _slot_by_slot(dataclasses.replace(sig, slots=(*sig.slots[:2], small, *sig.slots[3:]))),
    )


def test_incremental_append_equals_batch_build(tmp_path, hub, codes):
    first = dict(list(codes.items())[:1500])
    batch = _index(tmp_path / "batch", first, hub, seal_every=64)
    one = SketchIndex(tmp_path / "one", seal_every=64)
    for m, c in first.items():
        one.add_codes(hub.model_id(m), c)
    # reopened from disk half way, then appended: still the same index
    more = SketchIndex(tmp_path / "one", seal_every=64)
    assert len(more) == 1500
    for q in (0, 17, 1499):
        a, b = batch.counts(codes[q]), more.counts(codes[q])
        order_a, order_b = np.argsort(a[0]), np.argsort(b[0])
        assert np.array_equal(a[0][order_a], b[0][order_b])
        assert np.array_equal(a[1][order_a], b[1][order_b])
    # merged segments stay few: 1500 / 64 would be 23, eight of a size merge into one
    assert len(more._segments) < 23


def test_memmap_round_trip(tmp_path, hub, codes):
    index = _index(tmp_path / "i", codes, hub, seal_every=256)
    again = SketchIndex(tmp_path / "i")
    assert again.ids == index.ids
    assert all(isinstance(s.rows, np.memmap) for s in again._segments)
    assert np.array_equal(again.codes_of(hub.model_id(5)), codes[5])
    assert again.candidates(codes[5]) == index.candidates(codes[5])


def test_replaced_model_keeps_only_its_new_sketch(tmp_path, hub, codes):
    index = _index(tmp_path / "i", dict(list(codes.items())[:100]), hub, seal_every=32)
    index.add_codes(hub.model_id(3), codes[50])  # model 3 now looks like model 50
    names = [c.model_id for c in index.candidates(codes[3])]
    assert hub.model_id(3) not in names or codes[3].size == 0
    assert hub.model_id(3) in [c.model_id for c in index.candidates(codes[50])]


def test_bytes_per_model(tmp_path, hub, codes):
    index = _index(tmp_path / "i", codes, hub)
    assert max(c.size for c in codes.values()) <= DEFAULT_MAX_CODES  # the log: <= 4 KiB a model
    # in memory a posting is a 2-byte row; keys (8 bytes per distinct code of a segment) are
    # bounded by an architecture's sampled universe, so they vanish per model as segments grow
    rows = sum(s.rows.nbytes for s in index._segments)
    assert rows / N_MODELS <= 2 * DEFAULT_MAX_CODES
    # keys: at most the sampled (slot, position) pairs of the architecture (64 x 2^18 / rate),
    # so a full segment (MAX_SEGMENT models) holds at most this many bytes a model
    universe = 64 * hub.params.window // index.rate
    for s in index._segments:
        assert s.keys.size <= 1.01 * universe
    assert 2 * DEFAULT_MAX_CODES + 8 * 1.01 * universe / MAX_SEGMENT <= 4096


def test_unrelated_queries_return_few_candidates(tmp_path, hub, codes):
    index = _index(tmp_path / "i", codes, hub)
    other = SyntheticHub(200, seed=8)
    roots = [m for m in range(200) if other.parent[m] < 0]
    counts = [len(index.candidates(sketch_codes(other.signature(m)))) for m in roots]
    # chance sharing is Poisson(2) codes: >= 8 for about 0.1% of models
    assert np.mean(counts) <= 0.01 * N_MODELS
    # a related query finds its family
    q = next(m for m in range(N_MODELS) if hub.parent[m] >= 0)
    assert hub.model_id(int(hub.parent[q])) in [c.model_id for c in index.candidates(codes[q])]


def test_search_verifies_with_compare(tmp_path, hub, sigs, codes):
    index = _index(tmp_path / "i", dict(list(codes.items())[:300]), hub)
    q = next(m for m in range(300) if hub.parent[m] >= 0)
    found = index.search(sigs[q], lambda mid: sigs[int(mid[1:])], exclude=[hub.model_id(q)])
    assert hub.model_id(int(hub.parent[q])) in [c.model_id for c, _ in found]
    assert all(pair.verdict != "unrelated" for _, pair in found)


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64, np.int64])
def test_distinct_is_np_unique(dtype):
    rng = np.random.default_rng(3)
    for values in (
        rng.integers(0, 50, 400),  # many repeats
        rng.integers(0, 2**31, 1000),
        np.zeros(0),
        np.array([7]),
        np.array([5, 5, 5]),
    ):
        a = values.astype(dtype)
        got, want = distinct(a), np.unique(a)
        assert got.dtype == want.dtype and np.array_equal(got, want)
