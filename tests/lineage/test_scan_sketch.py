"""The scan's sketch matcher: an exact pre-check, `compare`'s verdicts, a persisted index."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fingerprint.comparison import compare
from fingerprint.errors import SignatureFormatError
from fingerprint.signature import Signature, SignatureParams, compute_signature
from hub.records import ModelRecord
from lineage.lab.synthetic import SyntheticHub
from lineage.match import SignatureIndex
from lineage.pipeline import store_signature
from lineage.sketch_codes import sketch_codes
from lineage.sketch_scan import MATCHING, SketchMatcher, sketch_folder
from lineage.sketch_verify import QueryMask, StoredPositions, read_positions
from lineage.store import Store
from tests.factory import MemorySource, llama_tensors, noisy


def _pruned(tensors: dict, keep: tuple[int, ...]) -> dict:
    """Layers `keep` of a model, renumbered 0, 1, ... (depth pruning)."""
    out = {}
    for name, value in tensors.items():
        if ".layers." not in name:
            out[name] = value
            continue
        layer = int(name.split(".layers.")[1].split(".")[0])
        if layer in keep:
            new = keep.index(layer)
            out[name.replace(f".layers.{layer}.", f".layers.{new}.")] = value
    return out


@pytest.fixture(scope="module")
def family() -> list[Signature]:
    """A four-layer base, fine-tunes, a chain, a depth-pruned child and unrelated models."""
    base = llama_tensors(0, layers=4, hidden=64, inter=128, vocab=256)
    tensors = {"base": base}
    for i in range(1, 4):
        tensors[f"ft-{i}"] = noisy(base, 0.01, i)
    tensors["chain"] = noisy(tensors["ft-1"], 0.01, 50)
    tensors["pruned"] = _pruned(noisy(base, 0.01, 60), (0, 2))
    for i in range(6):
        tensors[f"other-{i}"] = llama_tensors(100 + i, layers=4, hidden=64, inter=128, vocab=256)
    return [compute_signature(MemorySource(n, t), device="cpu") for n, t in tensors.items()]


def _store(path, sigs: list[Signature], revision: str = "r1") -> Store:
    store = Store(path)
    for sig in sigs:
        rec = ModelRecord(id=sig.model_id, revision=revision)
        store.upsert_model(rec)
        store_signature(store, rec, sig)
    return store


def _key(matches) -> list[tuple]:
    return [(m.model_id, m.verdict, m.shared, m.p_value, m.overlap) for m in matches]


def test_read_positions_reads_the_blob_as_from_bytes_does(family):
    for sig in family:
        got = read_positions(sig.to_bytes())
        want = StoredPositions.of(sig)
        assert got.keys == want.keys
        assert np.array_equal(got.ns, want.ns) and np.array_equal(got.sizes, want.sizes)
        assert np.array_equal(got.positions, want.positions)
    with pytest.raises(SignatureFormatError):
        read_positions(family[0].to_bytes()[:-7])


def _screened_pairs(sigs: list[Signature], alpha: float) -> int:
    """Every ordered pair: the pre-check never rejects what `compare` accepts, and where it
    meets slots by key its count and overlap are `compare`'s. Returns pairs `compare` accepts."""
    accepted = 0
    for q in sigs:
        mask = QueryMask(q)
        for c in sigs:
            if c is q:
                continue
            screen = mask.screen(read_positions(c.to_bytes()), alpha)
            pair = compare(q, c, alpha=alpha)
            if pair.verdict in MATCHING:
                accepted += 1
                assert screen.passes, (q.model_id, c.model_id, pair.verdict)
            if not screen.must_compare:
                assert screen.shared == sum(s.shared for s in pair.per_slot)
                assert screen.overlap == pair.overlap
                assert len(screen.common) == pair.slots_compared
    return accepted


def test_precheck_never_rejects_a_pair_compare_accepts(family):
    assert _screened_pairs(family, 1e-4) >= 20
    # the pruned child meets its base only by content: it always goes to compare, which finds it
    pruned = next(s for s in family if s.model_id == "pruned")
    base = next(s for s in family if s.model_id == "base")
    screen = QueryMask(pruned).screen(StoredPositions.of(base), 1e-4)
    assert screen.must_compare and compare(pruned, base).verdict == "derived"


def test_precheck_near_the_threshold():
    # small windows and weak children: many pairs just above and below the critical total
    params = SignatureParams(k=64, window=4096)
    hub = SyntheticHub(40, params=params, slots=8, family_mean=6, keep=(0.02, 0.3), seed=3)
    sigs = [hub.signature(m) for m in range(40)]
    assert _screened_pairs(sigs, 1e-4 / 40) >= 10


def test_matcher_gives_the_signature_index_matches(family, tmp_path):
    with _store(tmp_path / "db.sqlite", family) as store:
        matcher = SketchMatcher.from_store(store, family[0].params)
        old = SignatureIndex.from_store(store, family[0].params)
        assert len(matcher) == len(family)
        for sig in family:  # sketched from the stored blobs' positions: the signature's sketch
            assert np.array_equal(matcher.index.codes_of(sig.model_id), sketch_codes(sig))
        for sig in family:
            if sig.model_id == "pruned":
                continue  # the old index misses it (layers met by number); see the next test
            got = matcher.matches(sig, exclude=[sig.model_id])
            want = [m for m in old.matches(sig, exclude=[sig.model_id]) if m.model_id != "pruned"]
            assert _key([m for m in got if m.model_id != "pruned"]) == _key(want)
            assert _key(matcher.matches(sig, exclude=[sig.model_id], top=2)) == _key(got[:2])


def test_matcher_finds_the_depth_pruned_child(family, tmp_path):
    with _store(tmp_path / "db.sqlite", family) as store:
        matcher = SketchMatcher.from_store(store, family[0].params)
        base = next(s for s in family if s.model_id == "base")
        found = {m.model_id: m.verdict for m in matcher.matches(base, exclude=["base"])}
        assert found["pruned"] == "derived"
        assert not any(k.startswith("other-") for k in found)


def test_top_is_the_head_of_all_matches(tmp_path):
    hub = SyntheticHub(120, seed=11, family_mean=30)
    sigs = [hub.signature(m) for m in range(120)]
    with _store(tmp_path / "db.sqlite", sigs) as store:
        matcher = SketchMatcher.from_store(store, sigs[0].params)
        for q in (3, 40, 77):
            every = matcher.matches(sigs[q], exclude=[sigs[q].model_id])
            assert len(every) > 5
            for top in (1, 3, 5):
                got = matcher.matches(sigs[q], exclude=[sigs[q].model_id], top=top)
                assert _key(got) == _key(every[:top])


def test_index_persists_next_to_the_database_and_follows_the_store(family, tmp_path):
    db = tmp_path / "db.sqlite"
    first, rest = family[:5], family[5:]
    with _store(db, first) as store:
        SketchMatcher.from_store(store, first[0].params).close()
        folder = sketch_folder(store)
        assert folder == tmp_path / "db.sqlite.sketch" and (folder / "scan.json").exists()
        ids = (folder / "index" / "ids.txt").read_text()
        with SketchMatcher.from_store(store, first[0].params) as again:
            assert (folder / "index" / "ids.txt").read_text() == ids  # opened, not rebuilt
            assert len(again) == len(first)
            # a second scan while this one holds the folder works on its own copy
            with SketchMatcher.from_store(store, first[0].params) as other:
                assert len(other) == len(first) and other.index.path.parent != folder
        # new models in the store are added when the index is opened
        for sig in rest:
            rec = ModelRecord(id=sig.model_id, revision="r1")
            store.upsert_model(rec)
            store_signature(store, rec, sig)
        with SketchMatcher.from_store(store, first[0].params) as grown:
            assert len(grown) == len(family)
        assert (folder / "index" / "ids.txt").read_text().splitlines()[: len(first)] == (
            ids.splitlines()
        )
        # a model at a new revision without a signature is no longer matched against
        store.upsert_model(ModelRecord(id="ft-1", revision="r2"))
        with SketchMatcher.from_store(store, first[0].params) as moved:
            assert "ft-1" not in moved and "ft-2" in moved
            base = next(s for s in family if s.model_id == "base")
            assert "ft-1" not in {m.model_id for m in moved.matches(base, exclude=["base"])}
        # made for other parameters (or another format): rebuilt from the store
        doc = json.loads((folder / "scan.json").read_text())
        (folder / "scan.json").write_text(json.dumps({**doc, "params": "v0"}))
        with SketchMatcher.from_store(store, first[0].params) as rebuilt:
            assert len(rebuilt) == len(family) - 1
        assert len((folder / "index" / "ids.txt").read_text().splitlines()) == len(family) - 1


def test_reading_ahead_answers_what_one_read_at_a_time_does(family, tmp_path):
    # current, at an old revision (moved on), made with other parameters, no signature, no
    # model: one read of the whole batch gives each the answer of its own read
    from lineage.catalogue import Catalogue
    from lineage.sketch_scan import StoreSource

    params = family[0].params
    with _store(tmp_path / "db.sqlite", family[:5]) as store:
        store.upsert_model(ModelRecord(id="ft-1", revision="r2"))  # its signature is of r1
        store.upsert_model(ModelRecord(id="bare", revision="r1"))
        other = dataclasses.replace(family[2], params=dataclasses.replace(params, k=params.k // 2))
        Catalogue(store, other.params).put(ModelRecord(id="ft-2", revision="r1"), other)
        ids = [s.model_id for s in family[:5]] + ["bare", "gone"]

        def answers(source: StoreSource) -> list:
            out = []
            for model_id in ids:
                pos = source.positions(model_id)
                sig = source.signature(model_id) if pos is not None else None
                out.append(None if pos is None else (pos.keys, pos.positions.tobytes(), sig))
            return out

        one = answers(StoreSource(Catalogue(store, params)))
        ahead = StoreSource(Catalogue(store, params))
        ahead.read_ahead(ids)
        assert answers(ahead) == one
        assert [a is not None for a in one] == [True, False, False, True, True, False, False]
        assert store.current_blobs(ids, params.tag()).keys() == {"base", "ft-3", "chain"}


def test_an_in_memory_store_gets_a_temporary_index(family):
    with _store(":memory:", family[:3]) as store:
        assert sketch_folder(store) is None
        matcher = SketchMatcher.from_store(store, family[0].params)
        folder = matcher.index.path
        assert len(matcher) == 3 and folder.exists()
        matcher.close()
        assert not folder.exists()


def test_screen_of_a_shared_query_mask_equals_a_fresh_one(family):
    # the mask keeps what a candidate's slot layout decides (`_Shape`) for the next candidate
    # of that layout: screens through one mask equal those of a new mask each time, whatever
    # the order of layouts (fine-tunes, a depth-pruned child, other models) and the alpha
    for q in family:
        shared = QueryMask(q)
        for alpha in (1e-4, 1e-2):
            for c in [*family, *reversed(family)]:
                pos = read_positions(c.to_bytes())
                assert shared.screen(pos, alpha) == QueryMask(q).screen(pos, alpha)
