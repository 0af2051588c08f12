"""lineage.paircache and schema version 2: a detailed pair is stored once and read back exactly;
a database written with the version 1 layout (the per-slot detail twice) is upgraded in place."""

from __future__ import annotations

import json
import sqlite3
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from fingerprint.comparison import PairResult, compare
from fingerprint.signature import compute_signature
from hub.records import ModelRecord
from lineage.paircache import is_current, pair_result, pair_row
from lineage.store import MIGRATIONS, PairRow, Store
from tests.factory import MemorySource, llama_tensors, noisy


@pytest.fixture(scope="module")
def result() -> PairResult:
    base = llama_tensors(0, layers=2, hidden=64, inter=128, vocab=256)
    a = compute_signature(MemorySource("org/a", base), device="cpu")
    b = compute_signature(MemorySource("org/b", noisy(base, 0.01, 1)), device="cpu")
    return compare(a, b)


RECORDS = {m: ModelRecord(id=m, revision=f"rev-{m}") for m in ("org/a", "org/b", "org/c")}


def _store(path: Path, migrations=MIGRATIONS) -> Store:
    store = Store(path, migrations=migrations)
    for rec in RECORDS.values():
        store.upsert_model(rec)
    return store


def _v1_row(p: PairResult, *, a: str, b: str) -> PairRow:
    """A row as version 1 wrote it (the old `build._row`): per-slot detail twice."""
    return PairRow(
        a=a,
        b=b,
        revision_a=f"rev-{a}",
        revision_b=f"rev-{b}",
        overlap=p.overlap,
        identity=p.identity,
        p_value=p.p_value,
        log10_p=p.log10_p,
        slots_compared=p.slots_compared,
        verdict=p.verdict,
        detail={
            "overlap_std": p.overlap_std,
            "overlap_median": p.overlap_median,
            "overlap_min": p.overlap_min,
            "per_slot": [
                {"tensor": s.tensor, "overlap": s.overlap, "identity": s.identity}
                for s in p.per_slot
            ],
            "result": p.to_dict(),
        },
    )


def test_a_pair_is_stored_once_and_read_back_exactly(tmp_path: Path, result: PairResult):
    with _store(tmp_path / "db.sqlite") as store:
        store.put_pairs([pair_row(result, RECORDS)])
        row = store.get_pair("org/a", "org/b")
        assert row.revision_a == "rev-org/a" and "result" not in row.detail
        assert pair_result(row) == result
        # what reports read is still there, once
        assert row.detail["overlap_std"] == result.overlap_std
        assert [s["tensor"] for s in row.detail["per_slot"]] == [s.tensor for s in result.per_slot]
        (stored,) = (
            sqlite3.connect(tmp_path / "db.sqlite").execute("SELECT detail FROM pairs").fetchone()
        )
        assert zlib.decompress(stored[3:]).count(b'"per_slot"') == 1


def test_a_pair_given_b_first_keeps_its_slot_counts_with_their_models(result: PairResult):
    flipped = PairResult.from_dict(
        {**result.to_dict(), "a": "org/b", "b": "org/a", "slots_a": 7, "slots_b": 9}
    )
    row = pair_row(flipped, RECORDS)
    assert (row.a, row.detail["slots_a"], row.detail["slots_b"]) == ("org/a", 9, 7)


def test_a_pair_given_b_first_keeps_its_layer_map_read_from_a():
    # org/b (3 layers) compared with org/a (6): b's layer 1 is a's layer 2
    pruned = PairResult(
        "org/b", "org/a", 0.9, 0.9, 0.9, 0.0, 0.0, 0.0, -300.0, 0, 3, 6, "derived", (),
        layer_map=((0, 0), (1, 2), (2, 4)),
    )  # fmt: skip
    row = pair_row(pruned, RECORDS)
    assert (row.a, row.detail["layer_map"]) == ("org/a", [[0, 0], [2, 1], [4, 2]])
    assert pair_result(row).layer_map == ((0, 0), (2, 1), (4, 2))


def test_rows_without_detail_hold_no_result():
    background = PairRow("org/a", "org/c", "r", "r", 0.01, None, 0.5, -0.3, 0, "unrelated", {})
    assert pair_result(background) is None and pair_result(None) is None


def test_a_version_1_database_is_upgraded_and_keeps_its_pairs(tmp_path: Path, result: PairResult):
    db = tmp_path / "old.sqlite"
    flipped = PairResult.from_dict(
        {**result.to_dict(), "a": "org/c", "b": "org/a", "slots_a": 7, "slots_b": 9}
    )
    background = PairRow(
        "org/b", "org/c", "rev-org/b", "rev-org/c", 0.01, None, 0.5, -0.3, 0, "unrelated", {}
    )
    with _store(db, migrations=MIGRATIONS[:1]) as old:
        assert old.schema_version == 1
        # stored as (org/a, org/c) with the result computed the other way round
        old.put_pairs(
            [
                _v1_row(result, a="org/a", b="org/b"),
                _v1_row(flipped, a="org/c", b="org/a"),
                background,
            ]
        )
        before = {(r.a, r.b): r for r in old.pairs()}
    with Store(db) as store:
        assert store.schema_version == len(MIGRATIONS) == 4
        after = {(r.a, r.b): r for r in store.pairs()}
        assert set(after) == set(before)
        for key, row in after.items():
            # the columns are untouched; only the detail changed layout
            assert row.overlap == before[key].overlap and row.verdict == before[key].verdict
            assert "result" not in row.detail
        assert pair_result(after["org/a", "org/b"]) == result
        upgraded = pair_result(after["org/a", "org/c"])
        assert (upgraded.a, upgraded.slots_a, upgraded.slots_b) == ("org/a", 9, 7)
        assert after["org/b", "org/c"].detail == {}
        versions = store._connection().execute("SELECT version FROM schema_version").fetchall()
        assert [v[0] for v in versions] == [1, 2, 3, 4]
    # opening again changes nothing
    with Store(db) as store:
        assert json.dumps([r.detail for r in store.pairs()]) == json.dumps(
            [after[k].detail for k in sorted(after)]
        )


def test_a_cached_pair_is_current_only_under_these_rules_and_revisions(result: PairResult):
    row = pair_row(result, RECORDS)
    assert is_current(row, RECORDS)
    # made by older comparison rules (or before the version was kept): recomputed, so a verdict
    # the rules no longer give never comes back from the cache
    assert not is_current(replace(row, detail={**row.detail, "compare": 1}), RECORDS)
    unversioned = {k: v for k, v in row.detail.items() if k != "compare"}
    assert not is_current(replace(row, detail=unversioned), RECORDS)
    moved = {**RECORDS, "org/b": ModelRecord(id="org/b", revision="rev-2")}
    assert not is_current(row, moved)
    background = PairRow(
        "org/a", "org/b", "rev-org/a", "rev-org/b", 0.01, None, 0.5, -0.3, 0, "unrelated", {}
    )
    assert not is_current(background, RECORDS) and not is_current(None, RECORDS)
