"""The fingerprinting engine: jobs in, one outcome per model out, work on an executor.

`add`, `fingerprint`, `crawl` and `scan` all fingerprint through `Engine.run`: it opens each
job's model with the caller's opener, computes its signature on an `Executor` and yields, on the
calling thread and in the order the jobs came, an `Outcome` (a signature, or a failure with its
status and reason). A model that cannot be read never stops the others: whatever a worker
raises for one model (an `Exception`, not an interrupt) becomes that model's failure with a
one-line reason, and a signature the store cannot hold is refused before it reaches the store.
`store_outcome` is the one place an outcome is written to the store, one transaction per model,
so a crash loses at most the models in flight.

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

from fingerprint.errors import SignatureFormatError
from fingerprint.protocol import TensorSource
from fingerprint.signature import Signature, SignatureParams, compute_signature
from hub.errors import HubError
from hub.records import ModelRecord
from lineage.catalogue import Catalogue
from lineage.errors import StoreError

__all__ = [
    "UNEXPECTED",
    "Engine",
    "Executor",
    "OpenedModel",
    "Outcome",
    "ThreadExecutor",
    "one_line",
    "store_outcome",
    "unexpected",
]

# The status of a model whose reading failed in a way no rule foresaw (`hub.errors.HubError`'s).
UNEXPECTED = HubError.status
_REASON_MAX = 500  # characters of a stored reason; a reason quoting a 70,000-character name is cut

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


def one_line(text: str, limit: int = _REASON_MAX) -> str:
    """`text` on one line (whitespace runs collapsed) and at most `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def unexpected(model_id: str, err: BaseException) -> str:
    """The reason stored for a failure no rule foresaw: what was raised, and what to do."""
    detail = one_line(str(err), 200)
    what = f"{type(err).__name__}: {detail}" if detail else type(err).__name__
    return one_line(
        f"{model_id}: reading it failed unexpectedly ({what}); the other models were not "
        "affected, report this with the model id if it persists"
    )


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
            sig.to_bytes()  # a signature the store could not hold fails here, not in the store
        except HubError as err:
            return Outcome(job, status=err.status, reason=one_line(str(err)))
        except SignatureFormatError as err:
            return Outcome(job, status="malformed", reason=one_line(str(err)))
        except (OSError, ValueError) as err:  # bytes that do not decode as their header says
            reason = self.unreadable(self.model_id(job), err)
            return Outcome(job, status="malformed", reason=one_line(reason))
        except Exception as err:  # one odd model never stops the others
            return Outcome(job, status=UNEXPECTED, reason=unexpected(self.model_id(job), err))
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
    try:
        return _write(catalogue, record, outcome, upsert=upsert)
    except StoreError:
        raise  # the database itself failed: nothing else can be stored either
    except Exception as err:  # this model's data: the transaction rolled back, store a failure
        if outcome.signature is None:
            raise
        failed = replace(
            outcome, signature=None, status=UNEXPECTED, reason=unexpected(record.id, err)
        )
        return _write(catalogue, record, failed, upsert=upsert)


def _write(
    catalogue: Catalogue, record: ModelRecord, outcome: Outcome[Any], *, upsert: bool
) -> ModelRecord:
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
