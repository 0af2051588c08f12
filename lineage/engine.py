"""The fingerprinting engine: jobs in, one outcome per model out, work on an executor.

`add`, `fingerprint`, `crawl` and `scan` all fingerprint through `Engine.run`: it opens each
job's model with the caller's opener, computes its signature on an `Executor` and yields, on the
calling thread and in the order the jobs came, an `Outcome` (a signature, or a failure with its
status and reason). A model that cannot be read never stops the others. `store_outcome` is the
one place an outcome is written to the store, one transaction per model, so a crash loses at
most the models in flight.

The executor seam is `Executor`: `submit(fn, job)` returning something with `.result()`, and
`close()`. `ThreadExecutor` (a local thread pool) is the one used today; another executor (Ray)
only has to provide the same two calls. Whatever `fn` returns must travel back whole: the
outcome carries the job, so per-job state filled in by the opener (bytes read) comes back with
it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

from fingerprint.protocol import TensorSource
from fingerprint.signature import Signature, SignatureParams, compute_signature
from hub.errors import HubError
from hub.records import ModelRecord
from lineage.catalogue import Catalogue

__all__ = ["Engine", "Executor", "OpenedModel", "Outcome", "ThreadExecutor", "store_outcome"]

J = TypeVar("J")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class Pending(Protocol[R_co]):
    """A submitted call: `result()` waits for it and returns its value (or raises its error)."""

    def result(self) -> R_co: ...


class Executor(Protocol):
    """Where fingerprinting runs.

    Attributes:
        workers: jobs that run at the same time; the engine keeps at most 2 x workers submitted
            and not yet collected (bounded look-ahead).
    """

    workers: int

    def submit(self, fn: Callable[[J], R], job: J) -> Pending[R]:
        """Start `fn(job)`; may return before it ran."""
        ...

    def close(self) -> None:
        """Drop jobs not started; never waits for running ones (their results are dropped)."""
        ...


class ThreadExecutor:
    """A local thread pool: `workers` threads named `{name}_N`.

    Raises:
        ValueError: `workers` < 1.
    """

    def __init__(self, workers: int = 1, *, name: str = "fingerprint"):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    def submit(self, fn: Callable[[J], R], job: J) -> Pending[R]:
        return self._pool.submit(fn, job)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> ThreadExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OpenedModel(TensorSource, Protocol):
    """What an opener returns: a `fingerprint.protocol.TensorSource` that also carries the
    model's record as read from its files and the parsed headers of its weight files (local
    folders and Hub models both do)."""

    @property
    def record(self) -> ModelRecord: ...

    @property
    def headers(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Outcome(Generic[J]):
    """What the engine did with one job.

    Attributes:
        job: the job, as the worker left it.
        attempted: False when the job needed no work (then nothing else is set).
        signature: the signature, when it could be computed.
        record: the record the opened model carries (header facts such as the parameter
            count), when it could be opened and fingerprinted.
        size: bytes of its weight files (0 when not read).
        status: `ok`, or the status code of the failure (`hub.errors`).
        reason: one sentence when status is not `ok`.
    """

    job: J
    attempted: bool = True
    signature: Signature | None = None
    record: ModelRecord | None = None
    size: int = 0
    status: str = "ok"
    reason: str = ""


def _always(job: object) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Engine(Generic[J]):
    """Fingerprints jobs on an executor.

    Attributes:
        open_model: job -> the opened model (runs on the executor).
        model_id: job -> its model id (for messages).
        unreadable: (model id, error) -> the reason stored when a model's bytes do not decode
            as its headers say (an OSError or ValueError while reading); status `malformed`.
        executor: where the work runs.
        params: signature parameters.
        device: where signatures are computed (`cpu`, `cuda`; already resolved).
    """

    open_model: Callable[[J], OpenedModel]
    model_id: Callable[[J], str]
    unreadable: Callable[[str, Exception], str]
    executor: Executor
    params: SignatureParams
    device: str

    def fingerprint(self, job: J) -> Outcome[J]:
        """Open and fingerprint one job; never touches the store. Runs on the executor."""
        try:
            model = self.open_model(job)
            size = sum(getattr(h, "file_size", 0) or 0 for h in model.headers.values())
            sig = compute_signature(model, params=self.params, device=self.device)
        except HubError as err:
            return Outcome(job, status=err.status, reason=str(err))
        except (OSError, ValueError) as err:  # bytes that do not decode as their header says
            return Outcome(job, status="malformed", reason=self.unreadable(self.model_id(job), err))
        return Outcome(job, signature=sig, record=model.record, size=size)

    def run(
        self, jobs: Iterable[J], *, needs_work: Callable[[J], bool] = _always
    ) -> Iterator[Outcome[J]]:
        """One outcome per job.

        Jobs that need work are submitted in order and collected in that order, with at most
        2 x `executor.workers` outstanding; a job that needs none is yielded at once
        (`attempted=False`), ahead of work still outstanding. Stop iterating to stop: jobs not
        started are dropped by the executor's `close()`, which is the caller's to call.
        """
        window = 2 * self.executor.workers
        pending: deque[Pending[Outcome[J]]] = deque()
        for job in jobs:
            if not needs_work(job):
                yield Outcome(job, attempted=False)
                continue
            pending.append(self.executor.submit(self.fingerprint, job))
            while len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def store_outcome(
    catalogue: Catalogue, record: ModelRecord, outcome: Outcome[Any], *, upsert: bool
) -> ModelRecord:
    """Write one model's outcome in one transaction; return its record as stored.

    Args:
        catalogue: the store and signature parameters.
        record: the model's record (for a success, the one its signature belongs to).
        outcome: what the engine did.
        upsert: write `record` itself first (a crawl); else it is already stored.
    """
    store = catalogue.store
    with store.transaction():
        if upsert:
            store.upsert_model(record)
        if outcome.signature is not None:
            catalogue.put(record, outcome.signature)
            if record.status != "ok":
                store.set_status(record.id, "ok", "")
                record = replace(record, status="ok", reason="")
        else:
            store.set_status(record.id, outcome.status, outcome.reason)
            record = replace(record, status=outcome.status, reason=outcome.reason)
    return record
