"""lineage.catalogue and the freshness rule: current = stored at the model's revision AND with
the parameters asked for; every caller (build, match, fingerprint, compare) follows that rule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fingerprint.signature import Signature, SignatureParams, compute_signature
from hub.records import ModelRecord
from lineage.catalogue import Catalogue, load_inputs
from lineage.errors import LineageError
from lineage.match import SignatureIndex
from lineage.pipeline import add_local, fingerprint_models, resolve_signature
from lineage.store import Freshness, SignatureRow, Store, freshness
from tests.factory import MemorySource, llama_tensors, write_model

OTHER = SignatureParams(k=256)


def tiny(seed: int) -> dict:
    return llama_tensors(seed, layers=2, hidden=64, inter=128, vocab=256)


def signature(model_id: str, seed: int, params: SignatureParams | None = None) -> Signature:
    return compute_signature(MemorySource(model_id, tiny(seed)), params=params, device="cpu")


def row(revision: str | None, params: str) -> SignatureRow:
    return SignatureRow("m", revision, "arch", params, 1, 1, b"")


def test_the_rule_checks_revision_then_parameters():
    tag = SignatureParams().tag()
    assert freshness(None, "r1", tag) is Freshness.MISSING
    assert freshness(row("r1", tag), "r1", tag) is Freshness.CURRENT
    assert freshness(row("r0", tag), "r1", tag) is Freshness.OTHER_REVISION
    assert freshness(row("r1", OTHER.tag()), "r1", tag) is Freshness.OTHER_PARAMS
    # a signature of weights that are gone is stale whatever its parameters
    assert freshness(row("r0", OTHER.tag()), "r1", tag) is Freshness.OTHER_REVISION


def test_fresh_stale_revision_stale_params(tmp_path: Path):
    with Store(tmp_path / "db.sqlite") as store:
        rec = ModelRecord(id="org/a", revision="r1")
        store.upsert_model(rec)
        sig = signature("org/a", 0)
        catalogue = Catalogue(store)
        assert catalogue.freshness(rec) is Freshness.MISSING and catalogue.load(rec) is None
        catalogue.put(rec, sig)
        assert catalogue.is_current(rec)
        assert catalogue.load(rec).to_bytes() == sig.to_bytes()
        assert catalogue.current() == {"org/a": catalogue.load(rec)}
        # the model moved on: the stored signature describes weights that are gone
        moved = replace(rec, revision="r2")
        assert catalogue.freshness(moved) is Freshness.OTHER_REVISION
        assert catalogue.load(moved) is None
        # other parameters asked for: not comparable
        other = Catalogue(store, OTHER)
        assert other.freshness(rec) is Freshness.OTHER_PARAMS
        assert other.load(rec) is None and other.current() == {}
        # the store's own question agrees, and without params checks the revision only
        assert store.has_current_signature("org/a", "r1", params=sig.params.tag())
        assert not store.has_current_signature("org/a", "r1", params=OTHER.tag())
        assert store.has_current_signature("org/a", "r1")
        assert not store.has_current_signature("org/a", "r2")


@pytest.fixture
def mixed(tmp_path: Path) -> Store:
    """Three local models: `cur` current, `old` signed with other parameters, `none` unsigned."""
    for i, name in enumerate(("cur", "old", "none")):
        write_model(tmp_path / "zoo" / name, tiny(i))
    store = Store(tmp_path / "db.sqlite")
    add_local(store, [tmp_path / "zoo"])
    catalogue = Catalogue(store)
    for rec in store.models():
        if rec.id.endswith("cur"):
            catalogue.put(rec, signature(rec.id, 0))
        elif rec.id.endswith("old"):
            catalogue.put(rec, signature(rec.id, 1, OTHER))
    yield store
    store.close()


def _states(store: Store) -> dict[str, Freshness]:
    catalogue = Catalogue(store)
    return {r.id.rsplit("/", 1)[-1]: catalogue.freshness(r) for r in store.models()}


def test_every_caller_follows_the_one_rule(mixed: Store):
    assert _states(mixed) == {
        "cur": Freshness.CURRENT,
        "old": Freshness.OTHER_PARAMS,
        "none": Freshness.MISSING,
    }
    ids = {r.id.rsplit("/", 1)[-1]: r.id for r in mixed.models()}
    # build refuses stale parameters, with the message it always gave
    with pytest.raises(LineageError, match="made with other parameters or an older version"):
        load_inputs(mixed)
    # the scan index holds only current signatures
    assert SignatureIndex.from_store(mixed).ids == [ids["cur"]]
    # compare uses the current one as stored, and recomputes the stale one
    stored = mixed.get_signature(ids["cur"]).blob
    assert resolve_signature(mixed, ids["cur"], device="cpu").to_bytes() == stored
    resolve_signature(mixed, ids["old"], device="cpu")
    assert _states(mixed)["old"] is Freshness.CURRENT
    # fingerprint reads exactly the models that are not current
    summary = fingerprint_models(mixed, device="cpu")
    assert summary.fingerprinted == (ids["none"],)
    assert set(summary.skipped) == {ids["cur"], ids["old"]}
    records, sigs = load_inputs(mixed)
    assert set(sigs) == set(records)
