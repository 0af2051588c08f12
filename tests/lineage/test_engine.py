"""lineage.engine with the local thread executor: failures isolated, results independent of
timing and of the number of workers, outcomes stored in one place."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from fingerprint.signature import SignatureParams
from hub.errors import GatedModelError
from hub.records import ModelRecord
from lineage.catalogue import Catalogue
from lineage.engine import Engine, Outcome, ThreadExecutor, store_outcome
from lineage.store import Store
from tests.factory import MemorySource, llama_tensors


class Opened(MemorySource):
    """A MemorySource that also carries what a real opened model carries."""

    def __init__(self, model_id: str, seed: int):
        super().__init__(model_id, llama_tensors(seed, layers=1, hidden=64, inter=128, vocab=256))
        self.record = ModelRecord(id=model_id, revision="r1", parameter_count=seed)
        self.headers = {}


class Broken(Opened):
    def read_window(self, name: str, n: int):
        raise ValueError("bytes do not match the header")


def opener(delays: dict[str, float]):
    """Opens "ok-N", "gated-N" and "broken-N" jobs; each waits its delay first (out of order)."""

    def open_model(job: str):
        time.sleep(delays.get(job, 0.0))
        kind, seed = job.rsplit("-", 1)
        if kind == "gated":
            raise GatedModelError(f"{job} is gated; set HF_TOKEN", model_id=job)
        return (Broken if kind == "broken" else Opened)(job, int(seed))

    return open_model


def engine(executor, delays=None) -> Engine[str]:
    return Engine(
        open_model=opener(delays or {}),
        model_id=lambda job: job,
        unreadable=lambda model_id, err: f"{model_id}: unreadable ({err})",
        executor=executor,
        params=SignatureParams(),
        device="cpu",
    )


JOBS = ["ok-1", "gated-2", "ok-3", "broken-4", "ok-5", "ok-6"]


def _summary(outcomes: list[Outcome[str]]) -> list[tuple]:
    return [
        (o.job, o.status, o.reason, o.signature.to_bytes() if o.signature else None)
        for o in outcomes
    ]


def test_failures_are_isolated_and_results_do_not_depend_on_workers_or_timing():
    with ThreadExecutor(1) as one:
        sequential = list(engine(one).run(JOBS))
    # the first jobs finish last on four threads: outcomes still come in job order, equal
    delays = {"ok-1": 0.3, "gated-2": 0.2, "ok-3": 0.1}
    with ThreadExecutor(4) as four:
        parallel = list(engine(four, delays).run(JOBS))
    assert _summary(parallel) == _summary(sequential)
    by_job = {o.job: o for o in sequential}
    assert [o.job for o in sequential] == JOBS
    assert by_job["gated-2"].status == "gated" and "HF_TOKEN" in by_job["gated-2"].reason
    assert by_job["broken-4"].status == "malformed"
    assert by_job["broken-4"].reason == "broken-4: unreadable (bytes do not match the header)"
    ok = [o for o in sequential if o.status == "ok"]
    assert len(ok) == 4 and all(o.signature is not None and o.record for o in ok)
    assert len({o.signature.to_bytes() for o in ok}) == 4


def test_jobs_without_work_pass_through_and_look_ahead_is_bounded():
    running = []
    lock = threading.Lock()
    peak = 0

    def open_model(job: str):
        nonlocal peak
        with lock:
            running.append(job)
            peak = max(peak, len(running))
        time.sleep(0.05)
        with lock:
            running.remove(job)
        return Opened(job, 1)

    jobs = [f"m-{i}" for i in range(10)]
    pulled = []

    def listing():
        for job in jobs:
            pulled.append(job)
            yield job

    with ThreadExecutor(2) as executor:
        eng = Engine(open_model, str, lambda m, e: "", executor, SignatureParams(), "cpu")
        outcomes = eng.run(listing(), needs_work=lambda job: job != "m-0")
        first = next(outcomes)
        assert first.job == "m-0" and not first.attempted and first.signature is None
        second = next(outcomes)
        # one collected, at most 2 x workers submitted beyond it
        assert second.job == "m-1" and len(pulled) <= 1 + 2 * 2
        rest = list(outcomes)
    assert [o.job for o in rest] == jobs[2:] and peak <= 2


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        ThreadExecutor(0)


def test_store_outcome_writes_a_model_in_one_place(tmp_path: Path):
    with Store(tmp_path / "db.sqlite") as store, ThreadExecutor(1) as executor:
        catalogue = Catalogue(store)
        good, bad = list(engine(executor).run(["ok-1", "gated-2"]))
        stored = store_outcome(catalogue, good.record, good, upsert=True)
        assert stored.status == "ok" and catalogue.is_current(stored)
        listed = ModelRecord(id="gated-2", revision="r1")
        stored = store_outcome(catalogue, listed, bad, upsert=True)
        assert (stored.status, stored.reason) == ("gated", bad.reason)
        assert store.require_model("gated-2").status == "gated"
        # a later success clears the failure
        again = store_outcome(
            catalogue, stored, Outcome("gated-2", signature=good.signature), upsert=False
        )
        assert again.status == "ok" and store.require_model("gated-2").reason == ""
