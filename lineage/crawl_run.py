"""One pass over a Hub listing: decide what to read, fingerprint it on the engine, store it.

Shared by `lineage.crawler.crawl` and `lineage.scanner.scan`. For each listed model: compare it with
the store (`new`, `changed`, `unchanged`), decide whether its weights need reading (a new or
changed commit always; an unchanged one when its signature is not current and its stored status
deserves another try, `lineage.policy`), read those on the engine's executor (bounded
concurrency and look-ahead) and write every result on the calling thread, one transaction per
model (record and signature together), so a crash or a kill loses at most the models in flight
and running again finishes the job.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fingerprint.device import resolve_device
from fingerprint.signature import Signature, SignatureParams
from hub.errors import NetworkError
from hub.hubsource import HubClient, ReadStats, open_hub_model, record_from_info
from hub.records import ModelRecord
from hub.retry import RetryPolicy
from hub.window_cache import WindowCache
from lineage.catalogue import Catalogue
from lineage.engine import Engine, Executor, Outcome, ThreadExecutor, store_outcome
from lineage.policy import Context, retries
from lineage.store import Store

__all__ = ["NETWORK_FAILURES_IN_A_ROW", "CrawlOptions", "Crawled", "ModelOutcome", "crawl_listing"]

Progress = Callable[[int, int, str], None]

# This many models in a row failing with `network` (each after its own retries) means the
# endpoint is down: the crawl stops instead of waiting out every remaining model.
NETWORK_FAILURES_IN_A_ROW = 8
# What reading extends from the stored record of an unchanged commit (header facts).
_KEPT_EXTRA = ("adapter", "adapter_base")


@dataclass(frozen=True, slots=True)
class CrawlOptions:
    """How `crawl` and `scan` reach the Hub and fingerprint what they list.

    Attributes:
        endpoint: Hub URL (default `HF_ENDPOINT`, else https://huggingface.co).
        device: where signatures are computed: `auto`, `cpu` or `cuda`.
        workers: models read at the same time.
        progress: called as (done, listed so far, model id) after each model; an exception it
            raises stops the run (what was stored stays stored).
        cache_dir: the window cache folder; None: `$LINEAGE_CACHE/windows` or
            `~/.cache/model-lineage/windows`; False: no cache.
        token: Hub token; None: huggingface_hub's (HF_TOKEN or a stored login). Never stored.
        retry: retry policy for the calls huggingface_hub does not retry.
        params: signature parameters (default `SignatureParams()`).
        hf_cache: the HF hub cache to read snapshots from (True: huggingface_hub's; False:
            never).
        executor: where weights are read and hashed (default: a local pool of `workers`
            threads, closed at the end of the run); engine `threads` only.
        engine: `threads` (the executor above) or `ray` (Ray Data batches of models, each read
            on `workers` threads, written as Parquet shards and stored by this process:
            `lineage.engines.ray_engine`; needs the `ray` extra).
        address: the Ray cluster to run on (engine `ray`); None starts a local Ray.
        shards_dir: where a Ray crawl writes its shards (None: a temporary folder).
    """

    endpoint: str | None = None
    device: str = "auto"
    workers: int = 4
    progress: Progress | None = None
    cache_dir: str | os.PathLike[str] | None | bool = None
    token: str | bool | None = None
    retry: RetryPolicy | None = None
    params: SignatureParams | None = None
    hf_cache: str | os.PathLike[str] | None | bool = True
    executor: Executor | None = None
    engine: str = "threads"
    address: str | None = None
    shards_dir: str | os.PathLike[str] | None = None

    def resolved(self) -> CrawlOptions:
        """These options with the default parameters filled in and the device resolved.

        Raises:
            DeviceUnavailableError: `device="cuda"` without a GPU.
        """
        return replace(
            self, params=self.params or SignatureParams(), device=resolve_device(self.device)
        )

    def client(self) -> HubClient:
        """A Hub client for these options."""
        return HubClient(self.endpoint, self.token, retry=self.retry)


@dataclass(frozen=True, slots=True)
class ModelOutcome:
    """What a crawl did with one model.

    Attributes:
        model_id: the repo id.
        state: `new`, `changed` (another commit than stored) or `unchanged`.
        status: `ok` or the reason code it could not be read.
        reason: one sentence when status is not `ok`.
        fingerprinted: a signature was computed and stored in this run.
        bytes_fetched: network bytes for its weights (headers, index, windows).
        bytes_cached: bytes the window cache served.
        bytes_local: bytes read from the local HF cache.
        size: bytes of its weight files (0 when not opened).
    """

    model_id: str
    state: str
    status: str = "ok"
    reason: str = ""
    fingerprinted: bool = False
    bytes_fetched: int = 0
    bytes_cached: int = 0
    bytes_local: int = 0
    size: int = 0


@dataclass(frozen=True, slots=True)
class Crawled:
    """One listed model once it is stored: its record, state, outcome and new signature."""

    record: ModelRecord
    state: str
    outcome: ModelOutcome
    signature: Signature | None = None


@dataclass(slots=True)
class _Job:
    """One listed model; `stats` is filled in by the worker that reads it."""

    info: Any
    record: ModelRecord
    state: str
    work: bool
    stats: ReadStats = field(default_factory=ReadStats)


def _unreadable(model_id: str, err: Exception) -> str:
    return (
        f"{model_id}: its weights cannot be read as their headers describe ({err}); "
        "check the repo's files"
    )


def token_available(token: str | bool | None) -> bool:
    """Whether a Hub token will be sent (given, or huggingface_hub's own)."""
    if token is False:
        return False
    if isinstance(token, str):
        return bool(token)
    from huggingface_hub import get_token

    return get_token() is not None


def window_cache(cache_dir: str | os.PathLike[str] | None | bool) -> WindowCache | None:
    """The window cache `cache_dir` names (see `CrawlOptions.cache_dir`)."""
    if cache_dir is False:
        return None
    return WindowCache(None if cache_dir in (None, True) else Path(cache_dir))  # type: ignore[arg-type]


def _job(store: Store, catalogue: Catalogue, info: Any, *, fingerprint: bool, token: bool) -> _Job:
    """Compare a listed model with the store and decide whether its weights need reading."""
    record = record_from_info(info)
    old = store.get_model(record.id)
    state = "new" if old is None else "unchanged" if old.revision == record.revision else "changed"
    if old is not None and state == "unchanged":
        # Same commit: keep what reading the weights taught us (status, header-based
        # parameter count, adapter base) over the listing's summary.
        record = replace(
            record,
            status=old.status,
            reason=old.reason,
            parameter_count=old.parameter_count or record.parameter_count,
            extra={**record.extra, **{k: v for k, v in old.extra.items() if k in _KEPT_EXTRA}},
        )
    settled = state == "unchanged" and (
        catalogue.is_current(record) or not retries(record.status, Context.CRAWL, token=token)
    )
    if not fingerprint or settled:
        return _Job(info, record, state, work=False)
    return _Job(info, replace(record, status="ok", reason=""), state, work=True)


def _store(catalogue: Catalogue, outcome: Outcome[_Job]) -> Crawled:
    """Write one listed model; the only place a crawl writes a model."""
    job = outcome.job
    if not outcome.attempted:
        catalogue.store.upsert_model(job.record)
        rec = job.record
        return Crawled(rec, job.state, ModelOutcome(rec.id, job.state, rec.status, rec.reason))
    # a success stores the record as read from the files (header facts), a failure the listed one
    rec = store_outcome(catalogue, outcome.record or job.record, outcome, upsert=True)
    done = ModelOutcome(
        rec.id,
        job.state,
        status=rec.status,
        reason=rec.reason,
        fingerprinted=outcome.signature is not None,
        bytes_fetched=job.stats.fetched,
        bytes_cached=job.stats.cached,
        bytes_local=job.stats.local,
        size=outcome.size,
    )
    return Crawled(rec, job.state, done, outcome.signature)


def crawl_listing(
    store: Store,
    listing: Iterator[Any],
    options: CrawlOptions,
    *,
    client: HubClient,
    fingerprint: bool,
) -> Iterator[Crawled]:
    """Store (and fingerprint) every listed model; yield each once it is stored.

    Args:
        store: the database.
        listing: `huggingface_hub` model infos, as `hub.hubsource.iter_models` yields them.
        options: resolved options (`CrawlOptions.resolved()`).
        client: the Hub client the listing came from (`options.client()`).
        fingerprint: False stores records only.

    Raises:
        NetworkError: `NETWORK_FAILURES_IN_A_ROW` models in a row failed with `network`.
        ValueError: `options.workers` < 1.
    """
    assert options.params is not None, "pass CrawlOptions.resolved()"
    catalogue = Catalogue(store, options.params)
    cache = window_cache(options.cache_dir)
    token = token_available(options.token)
    executor = options.executor or ThreadExecutor(options.workers, name="crawl")
    engine: Engine[_Job] = Engine(
        open_model=lambda job: open_hub_model(
            job.info, client=client, cache=cache, hf_cache=options.hf_cache, stats=job.stats
        ),
        model_id=lambda job: job.record.id,
        unreadable=_unreadable,
        executor=executor,
        params=options.params,
        device=options.device,
    )
    seen = done = failures_in_a_row = 0

    def jobs() -> Iterator[_Job]:
        nonlocal seen
        for info in listing:
            seen += 1
            yield _job(store, catalogue, info, fingerprint=fingerprint, token=token)

    if options.engine == "ray":
        outcomes = _ray_outcomes(jobs(), options, client, cache, token=token)
    else:
        outcomes = engine.run(jobs(), needs_work=lambda job: job.work)
    try:
        for outcome in outcomes:
            item = _store(catalogue, outcome)
            done += 1
            if options.progress is not None:
                options.progress(done, seen, item.record.id)
            yield item
            if item.outcome.status == "network":
                failures_in_a_row += 1
                if failures_in_a_row >= NETWORK_FAILURES_IN_A_ROW:
                    raise NetworkError(
                        f"{failures_in_a_row} models in a row could not be read over the network "
                        f"(last: {item.outcome.reason}); the endpoint seems down: what was stored "
                        "is kept, run the crawl again later"
                    )
            elif item.outcome.fingerprinted:
                failures_in_a_row = 0
    finally:
        # Normally nothing is pending here; after an error or an interrupt, jobs not started
        # are dropped and those running finish in the background without being stored.
        if options.executor is None:
            executor.close()


def _ray_outcomes(
    jobs: Iterator[_Job],
    options: CrawlOptions,
    client: HubClient,
    cache: WindowCache | None,
    *,
    token: bool,
) -> Iterator[Outcome[_Job]]:
    """The engine's outcomes, computed on Ray (`lineage.engines.ray_engine`)."""
    from lineage.engines.ray_engine import HubOpener, RayStage, fingerprint_on_ray

    assert options.params is not None
    opener = HubOpener.of(
        client, cache, options.hf_cache, token=options.token, token_available=token
    )
    stage = RayStage(opener, _unreadable, options.params, options.device, options.workers)
    for job, row in fingerprint_on_ray(
        jobs,
        needs_work=lambda job: job.work,
        listed=lambda job: (job.record, job.info),
        stage=stage,
        address=options.address,
        shards_dir=options.shards_dir,
    ):
        if row is None:
            yield Outcome(job, attempted=False)
            continue
        job.stats.fetched, job.stats.cached = row.bytes_fetched, row.bytes_cached
        job.stats.local = row.bytes_local
        yield row.outcome(job)
