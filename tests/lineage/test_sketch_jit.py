"""The scan's compiled paths and the blob layout cache give exactly what the numpy paths give."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fingerprint import blob_layouts
from fingerprint.signature import Signature
from lineage.lab.synthetic import SyntheticHub
from lineage.sketch_index import SketchIndex, sketch_codes
from lineage.sketch_segments import jit_enabled
from lineage.sketch_verify import QueryMask, StoredPositions, read_positions

pytest.importorskip("numba")

N_MODELS = 600


@pytest.fixture(scope="module")
def hub() -> SyntheticHub:
    return SyntheticHub(N_MODELS, seed=11, family_mean=20.0)


@pytest.fixture(scope="module")
def index(tmp_path_factory, hub) -> SketchIndex:
    # small segments and an unsealed tail: every kind of segment is counted
    index = SketchIndex(tmp_path_factory.mktemp("jit") / "i", seal_every=32)
    index.extend((hub.model_id(m), sketch_codes(hub.signature(m))) for m in range(N_MODELS - 7))
    return index


def _both(monkeypatch, run):
    monkeypatch.setenv("LINEAGE_NO_JIT", "1")
    assert not jit_enabled()
    slow = run()
    monkeypatch.setenv("LINEAGE_NO_JIT", "0")
    assert jit_enabled()
    return slow, run()


@pytest.mark.parametrize("least", [1, 2, 12, 15, 16, 40])
def test_compiled_counts_equal_numpy(monkeypatch, hub, index, least):
    # a family's sketches (relatives: shared codes) with unrelated ones, 70 > 64 lanes
    queries = [index.codes_of(hub.model_id(m)) for m in [*range(40), *range(300, 330)]]
    slow, fast = _both(monkeypatch, lambda: index.counts_many(queries, least))
    for (r0, c0), (r1, c1) in zip(slow, fast, strict=True):
        assert np.array_equal(r0, r1) and np.array_equal(c0, c1)
        assert r1.dtype == c1.dtype == np.int64
        assert np.all(c1 >= least) and np.all(np.diff(r1) > 0)
    counted = fast
    slow, fast = _both(monkeypatch, lambda: index.reaching(queries, least))
    assert sum(r.size for r in fast) > 0
    for a, b, (rows, _) in zip(slow, fast, counted, strict=True):
        assert np.array_equal(a, b) and np.array_equal(b, rows)


@pytest.mark.parametrize("sketches", [5, 12, 30, 64])
@pytest.mark.parametrize("least", [3, 8, 12, 15])
def test_every_counter_word_and_plane_kernel_equals_numpy(monkeypatch, hub, index, sketches, least):
    # 5, 12, 30 and 64 sketches a pass: 8-, 16-, 32- and 64-bit counter words; 8-15 take the
    # unrolled 4-plane kernel (saturating at 15: a family's sketches share more codes than
    # that with their relatives), 3 the general one
    queries = [index.codes_of(hub.model_id(m)) for m in range(sketches)]
    slow, fast = _both(monkeypatch, lambda: index.reaching(queries, least))
    assert sum(r.size for r in fast) > sketches  # rows beyond each sketch's own
    for a, b in zip(slow, fast, strict=True):
        assert np.array_equal(a, b)


def test_related_is_the_same_with_and_without_the_kernels(monkeypatch, hub, index):
    def run():
        out = []
        for q in (0, 45, 310, N_MODELS - 3):  # the last: not indexed (a new upload)
            codes = sketch_codes(hub.signature(q))
            same = lambda c, q=q: int(hub.root[c.row]) == int(hub.root[q])  # noqa: E731
            out.append(index.related(codes, same, expand_shared=4, exclude=[hub.model_id(q)]))
        return out

    slow, fast = _both(monkeypatch, run)
    assert slow == fast and sum(map(len, fast)) > 20


def test_compiled_screen_equals_numpy(monkeypatch, hub):
    mask = QueryMask(hub.signature(5))
    cands = [StoredPositions.of(hub.signature(m)) for m in (5, 6, 7, 300)]

    def run():
        return [mask.screen(c, 1e-6) for c in cands]

    slow, fast = _both(monkeypatch, run)
    assert slow == fast and fast[0].shared > 0


def _relaid(sig: Signature, key_suffix: str) -> Signature:
    slots = (dataclasses.replace(sig.slots[0], key=sig.slots[0].key + key_suffix), *sig.slots[1:])
    return dataclasses.replace(sig, slots=slots)


def test_blob_read_through_a_cached_layout_equals_a_walk(hub):
    sigs = [hub.signature(m) for m in (1, 2, 3)]
    # same length, other keys: the layout read before must not be taken for it
    sigs.append(_relaid(hub.signature(4), "x"))
    sigs.append(_relaid(hub.signature(5), "y"))
    for sig in sigs + sigs + sigs:  # the second walk of a layout keeps it, the third uses it
        got = read_positions(sig.to_bytes())
        want = StoredPositions.of(sig)
        assert got.keys == want.keys == tuple(s.key for s in sig.slots)
        assert np.array_equal(got.ns, want.ns) and np.array_equal(got.sizes, want.sizes)
        assert np.array_equal(got.positions, np.concatenate([s.positions for s in sig.slots]))
    assert blob_layouts.positions(sigs[0].to_bytes()) is not None  # read through its layout


@pytest.mark.parametrize("no_jit", ["1", "0"])
def test_query_table_holds_exactly_the_query_positions(monkeypatch, hub, no_jit):
    # the table made with `reduceat` over distinct cells (numpy) or bit by bit (compiled) is
    # the one `bitwise_or.at` makes
    monkeypatch.setenv("LINEAGE_NO_JIT", no_jit)
    sig = hub.signature(9)
    mask = QueryMask(sig)
    every = np.concatenate(
        [mask.offsets[t] + s.positions.astype(np.int64) for t, s in enumerate(sig.slots)]
    )
    want = np.zeros_like(mask.table)
    np.bitwise_or.at(want, every >> 3, (1 << (every & 7)).astype(np.uint8))
    assert mask.eligible.all() and np.array_equal(mask.table, want) and want.any()


def test_a_query_position_past_its_window_takes_the_numpy_path(monkeypatch, hub):
    # the compiled fill sets nothing outside the table; numpy's path decides what happens
    sig = hub.signature(9)
    last = sig.slots[-1]
    bad = dataclasses.replace(last, positions=np.r_[last.positions[:-1], last.n + 64])
    sig = dataclasses.replace(sig, slots=(*sig.slots[:-1], bad))
    outcome = []
    for no_jit in ("1", "0"):
        monkeypatch.setenv("LINEAGE_NO_JIT", no_jit)
        try:
            outcome.append(QueryMask(sig).table.tobytes())
        except IndexError:
            outcome.append(b"IndexError")
    assert outcome[0] == outcome[1]


@pytest.mark.parametrize("least", [3, 12])
def test_counting_the_segments_on_threads_gives_the_rows_of_one(monkeypatch, hub, index, least):
    from lineage import sketch_jit

    monkeypatch.setenv("LINEAGE_NO_JIT", "0")
    queries = [index.codes_of(hub.model_id(m)) for m in [*range(30), 400]]
    segments = index._searched()
    where = [index._directory(seg) for seg in segments]
    assert len(segments) > 3
    one = sketch_jit.reaching(segments, where, queries, least, 64, workers=1)
    for workers in (2, 3):
        many = sketch_jit.reaching(segments, where, queries, least, 64, workers=workers)
        assert all(np.array_equal(a, b) for a, b in zip(one, many, strict=True))
    assert sum(r.size for r in one) > len(queries)
