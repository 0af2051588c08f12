"""One odd model never stops a run: valid-but-odd safetensors files (a 70,000-character tensor
name, 258 dimensions, a lone surrogate), any exception a worker meets, and a signature the store
cannot hold each become that model's recorded failure, and the rest of the crawl or add completes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from fingerprint.signature import SignatureParams, compute_signature
from hub.records import ModelRecord
from lineage.catalogue import Catalogue
from lineage.crawler import crawl
from lineage.engine import Engine, Outcome, ThreadExecutor, store_outcome
from lineage.pipeline import add_local, fingerprint_models
from lineage.store import Store
from tests.factory import POISONS, MemorySource, llama_tensors, write_model, write_poisoned_model
from tests.hub_helpers import BAD, GOOD, fast_retry, meta

POISON = "aaa/poison"


def _one_line(reason: str) -> None:
    assert reason and "\n" not in reason and len(reason) <= 500


def _poisoned_zoo(crawl_zoo: Path, dst: Path, kind: str) -> Path:
    zoo = shutil.copytree(crawl_zoo, dst)
    write_poisoned_model(zoo / "repos" / POISON, kind)
    manifest = json.loads((zoo / "manifest.json").read_text())
    # the most downloaded: the listing gives it first
    manifest["models"].insert(0, meta(POISON, 0, downloads=10**9))
    (zoo / "manifest.json").write_text(json.dumps(manifest))
    return zoo


@pytest.mark.parametrize("kind", sorted(POISONS))
def test_a_poisoned_repo_listed_first_never_stops_the_crawl(hub_env, crawl_zoo, tmp_path, kind):
    server = hub_env.start(_poisoned_zoo(crawl_zoo, tmp_path / "zoo", kind))
    with Store(tmp_path / "db.sqlite") as store:
        summary = crawl(
            store,
            endpoint=server.url,
            cache_dir=tmp_path / "cache",
            token=False,
            retry=fast_retry(),
            device="cpu",
            hf_cache=False,
            workers=2,
        )
        assert summary.models[0].model_id == POISON
        assert summary.fingerprinted == len(GOOD)
        assert summary.seen == len(GOOD) + len(BAD) + 1
        poison = store.require_model(POISON)
        assert poison.status == "malformed" and store.get_signature(POISON) is None
        _one_line(poison.reason)
        assert POISON in poison.reason and "model.safetensors" in poison.reason
        assert {r.id for r in store.models() if store.get_signature(r.id)} == set(GOOD)
        assert store.runs()[-1].status == "ok"


def test_a_poisoned_folder_never_stops_an_add(tmp_path):
    models = tmp_path / "models"
    for kind in POISONS:
        write_poisoned_model(models / "odd" / kind, kind)
    write_model(
        models / "org" / "fine", llama_tensors(1, layers=1, hidden=64, inter=128, vocab=256)
    )
    with Store(tmp_path / "db.sqlite") as store:
        added = add_local(store, [models])
        ids = [*added.new, *added.changed]
        # a header the format refuses fails at the add; one it accepts fails at fingerprinting
        failed = {f.model: f for f in added.failed}
        done = fingerprint_models(store, ids, device="cpu")
        failed |= {f.model: f for f in done.failed}
        assert done.fingerprinted == ("org/fine",)
        assert set(failed) == {f"odd/{kind}" for kind in POISONS}
        for f in failed.values():
            _one_line(f.reason)
        # never a model row that says ok without a signature
        for rec in store.models():
            assert (rec.status == "ok") == (store.get_signature(rec.id) is not None), rec


class Opened(MemorySource):
    def __init__(self, model_id: str, tensors: dict[str, torch.Tensor]):
        super().__init__(model_id, tensors)
        self.record = ModelRecord(id=model_id, revision="r1")
        self.headers: dict = {}


def _opener(job: str) -> Opened:
    tensors = llama_tensors(3, layers=1, hidden=64, inter=128, vocab=256)
    if job == "raises":
        raise KeyError("x" * 100_000)  # an error nobody planned for, with a huge message
    if job == "recursion":
        raise RecursionError("maximum recursion depth exceeded")
    if job == "long-name":  # what a source without header bounds would hand over
        tensors["w" * 70_000] = tensors.pop("lm_head.weight")
    return Opened(job, tensors)


def test_any_exception_of_a_worker_is_that_models_failure():
    jobs = ["ok", "raises", "recursion", "long-name", "ok-2"]
    with ThreadExecutor(2) as executor:
        engine = Engine(
            open_model=_opener,
            model_id=lambda j: j,
            unreadable=lambda mid, err: f"{mid}: {err}",
            executor=executor,
            params=SignatureParams(),
            device="cpu",
        )
        outcomes = {o.job: o for o in engine.run(jobs)}
    assert [outcomes[j].status for j in jobs] == ["ok", "error", "error", "malformed", "ok"]
    for job in ("raises", "recursion", "long-name"):
        _one_line(outcomes[job].reason)
        assert outcomes[job].reason.startswith(job if job != "long-name" else "the signature")
    assert "KeyError" in outcomes["raises"].reason


def test_a_signature_the_store_cannot_hold_leaves_a_failure_not_an_ok_row(tmp_path):
    tensors = llama_tensors(3, layers=1, hidden=64, inter=128, vocab=256)
    tensors["w" * 70_000] = tensors.pop("lm_head.weight")
    sig = compute_signature(MemorySource("odd", tensors), device="cpu")
    with Store(tmp_path / "db.sqlite") as store:
        record = ModelRecord(id="odd", revision="r1")
        store.upsert_model(record)  # what `add` does before fingerprinting
        stored = store_outcome(
            Catalogue(store), record, Outcome("odd", signature=sig), upsert=False
        )
        assert stored.status == "error"
        row = store.require_model("odd")
        assert row.status == "error" and store.get_signature("odd") is None
        _one_line(row.reason)
