"""Crawling a Hub into the store, and scanning new uploads against it.

`crawl` lists models (author, search, tag filters, sort, limit, since), stores each record and
fingerprints the models that are new, changed (another commit) or lack a current signature.
Weights are read by worker threads (bounded concurrency, bounded look-ahead); every store write
happens on the calling thread, one transaction per model (record and signature together), so a
crash or a kill loses at most the models in flight, and running the crawl again finishes the job.

What a crawl costs: the listing pages; then, per model to fingerprint, one `paths-info` call,
the safetensors headers (about 64 KiB per file) and one range request per slot window (at most
64 windows of at most 2^18 elements: under 32 MiB for a 16-bit model of any size). Windows and
headers are cached on disk by content hash (`hub.window_cache`), so re-fingerprinting costs no
weight bytes; a model whose commit and signature are unchanged costs nothing beyond its share of
the listing. A model that cannot be read is stored with its status (`gated`, `not_found`,
`no_safetensors`, `malformed`, `network`) and reason, and the crawl goes on.

`scan` lists the newest uploads (sorted by creation date, since a date), crawls them the same
way and matches each against a `lineage.match.SignatureIndex` of everything the store holds,
saying whether the declared base agrees with what the weights show.
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fingerprint.device import resolve_device
from fingerprint.signature import Signature, SignatureParams, compute_signature
from hub.errors import HubError, MalformedFileError, NetworkError
from hub.hubsource import (
    HubClient,
    ReadStats,
    iter_models,
    open_hub_model,
    parse_since,
    record_from_info,
)
from hub.records import DeclaredBase, ModelRecord
from hub.retry import RetryPolicy
from hub.window_cache import WindowCache
from lineage.match import Match, SignatureIndex
from lineage.pipeline import store_signature
from lineage.store import Store

__all__ = ["CrawlSummary", "ModelOutcome", "ScanResult", "crawl", "scan"]

Progress = Callable[[int, int, str], None]

# Failures that a second try at the same commit cannot fix; "gated" is retried with a token.
STICKY = ("no_safetensors", "malformed", "not_found")
# This many models in a row failing with `network` (each after its own retries) means the
# endpoint is down: the crawl stops instead of waiting out every remaining model.
NETWORK_FAILURES_IN_A_ROW = 8


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
class CrawlSummary:
    """What a crawl did.

    Attributes:
        seen: models listed (after the `since` cut).
        new, changed, unchanged: listed models by how they compare with the store.
        fingerprinted: signatures computed and stored.
        skipped_by_reason: models left without a signature, per status code (this run's
            failures and known failures at an unchanged commit).
        bytes_fetched: network bytes for weights (headers, index files, windows).
        elapsed: seconds.
        bytes_cached: bytes served by the window cache instead of the network.
        run_id: the run recorded in the store.
        models: one outcome per listed model, in listing order.
    """

    seen: int
    new: int
    changed: int
    unchanged: int
    fingerprinted: int
    skipped_by_reason: dict[str, int] = field(hash=False)
    bytes_fetched: int
    elapsed: float
    bytes_cached: int = 0
    run_id: int = 0
    models: tuple[ModelOutcome, ...] = field(default=(), repr=False, hash=False)

    def to_dict(self) -> dict:
        return {
            "seen": self.seen,
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "fingerprinted": self.fingerprinted,
            "skipped_by_reason": dict(self.skipped_by_reason),
            "bytes_fetched": self.bytes_fetched,
            "bytes_cached": self.bytes_cached,
            "elapsed": round(self.elapsed, 3),
            "run_id": self.run_id,
        }


@dataclass(frozen=True, slots=True)
class ScanResult:
    """One new upload, scanned.

    Attributes:
        model_id: the repo id.
        created_at: upload date (ISO 8601).
        status, reason: `ok`, or why its weights could not be read (then `matches` is empty).
        declared_bases: what its card and tags declare.
        matches: stored models it significantly shares weights with, best first.
        declared_agrees: True when a declared base is among the matches; False when a declared
            base has a signature in the store but is not matched; None when nothing declared
            has a signature to check against (or the model could not be read).
        undeclared: matched models not declared as bases and not uploaded after this one
            (candidate parents the card does not name).
        state: `new`, `changed` or `unchanged` relative to the store.
    """

    model_id: str
    created_at: str | None
    status: str
    reason: str
    declared_bases: tuple[DeclaredBase, ...]
    matches: tuple[Match, ...]
    declared_agrees: bool | None
    undeclared: tuple[str, ...] = ()
    state: str = "new"

    def to_dict(self) -> dict:
        return {
            "model": self.model_id,
            "created_at": self.created_at,
            "status": self.status,
            "reason": self.reason,
            "state": self.state,
            "declared_base": [{"id": b.id, "relation": b.relation} for b in self.declared_bases],
            "declared_agrees": self.declared_agrees,
            "undeclared": list(self.undeclared),
            "matches": [m.to_dict() for m in self.matches],
        }


# ---- the engine shared by crawl and scan ------------------------------------------------------


@dataclass(slots=True)
class _Item:
    record: ModelRecord
    state: str
    outcome: ModelOutcome
    signature: Signature | None = None


@dataclass(slots=True)
class _Job:
    info: Any
    record: ModelRecord
    state: str
    future: Future


def _fetch(
    info: Any,
    client: HubClient,
    cache: WindowCache | None,
    hf_cache: Any,
    params: SignatureParams,
    device: str,
) -> tuple[ModelRecord | None, Signature | None, HubError | None, ReadStats, int]:
    """Runs on a worker thread: open the model and fingerprint it. Never touches the store."""
    stats = ReadStats()
    try:
        model = open_hub_model(info, client=client, cache=cache, hf_cache=hf_cache, stats=stats)
        size = sum(h.file_size or 0 for h in model.headers.values())
        sig = compute_signature(model, params=params, device=device)
    except HubError as err:
        return None, None, err, stats, 0
    except (OSError, ValueError) as err:  # bytes that do not decode as their header says
        bad = MalformedFileError(
            f"{info.id}: its weights cannot be read as their headers describe ({err}); "
            "check the repo's files",
            model_id=info.id,
        )
        return None, None, bad, stats, 0
    return model.record, sig, None, stats, size


def _token_available(token: str | bool | None) -> bool:
    if token is False:
        return False
    if isinstance(token, str):
        return bool(token)
    from huggingface_hub import get_token

    return get_token() is not None


def _run(
    store: Store,
    listing: Iterator[Any],
    *,
    client: HubClient,
    fingerprint: bool,
    device: str,
    workers: int,
    cache: WindowCache | None,
    hf_cache: Any,
    params: SignatureParams,
    retry_gated: bool,
    progress: Progress | None,
) -> Iterator[_Item]:
    """List, decide, fetch on workers, write on this thread; yield each model once it is stored."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    tag = params.tag()
    pending: deque[_Job] = deque()
    seen = 0
    done = 0

    def finish(job: _Job) -> _Item:
        record, sig, err, stats, size = job.future.result()
        bytes_ = {
            "bytes_fetched": stats.fetched,
            "bytes_cached": stats.cached,
            "bytes_local": stats.local,
        }
        with store.transaction():
            if err is None and record is not None and sig is not None:
                store.upsert_model(record)
                store_signature(store, record, sig)
                outcome = ModelOutcome(
                    record.id, job.state, fingerprinted=True, size=size, **bytes_
                )
            else:
                assert err is not None
                record = job.record
                store.upsert_model(record)
                store.set_status(record.id, err.status, str(err))
                record = replace(record, status=err.status, reason=str(err))
                outcome = ModelOutcome(
                    record.id, job.state, status=err.status, reason=str(err), **bytes_
                )
        return _Item(record, job.state, outcome, sig)

    failures_in_a_row = 0

    def emit(item: _Item) -> Iterator[_Item]:
        nonlocal done, failures_in_a_row
        done += 1
        if progress is not None:
            progress(done, seen, item.record.id)
        yield item
        if item.outcome.status == "network":
            failures_in_a_row += 1
            if failures_in_a_row >= NETWORK_FAILURES_IN_A_ROW:
                raise NetworkError(
                    f"{failures_in_a_row} models in a row could not be read over the network "
                    f"(last: {item.outcome.reason}); the endpoint seems down: what was stored is "
                    "kept, run the crawl again later"
                )
        elif item.outcome.fingerprinted:
            failures_in_a_row = 0

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crawl")
    try:
        for info in listing:
            seen += 1
            record = record_from_info(info)
            old = store.get_model(record.id)
            state = (
                "new"
                if old is None
                else "unchanged"
                if old.revision == record.revision
                else "changed"
            )
            if old is not None and state == "unchanged":
                # Same commit: keep what reading the weights taught us (status, header-based
                # parameter count, adapter base) over the listing's summary.
                record = replace(
                    record,
                    status=old.status,
                    reason=old.reason,
                    parameter_count=old.parameter_count or record.parameter_count,
                    extra={
                        **record.extra,
                        **{k: v for k, v in old.extra.items() if k in ("adapter", "adapter_base")},
                    },
                )
            current = state == "unchanged" and store.has_current_signature(
                record.id, record.revision, params=tag
            )
            known_failure = state == "unchanged" and (
                record.status in STICKY or (record.status == "gated" and not retry_gated)
            )
            if not fingerprint or current or known_failure:
                store.upsert_model(record)
                yield from emit(
                    _Item(
                        record,
                        state,
                        ModelOutcome(record.id, state, record.status, record.reason),
                    )
                )
                continue
            future = pool.submit(_fetch, info, client, cache, hf_cache, params, device)
            pending.append(_Job(info, replace(record, status="ok", reason=""), state, future))
            while len(pending) >= 2 * workers:
                yield from emit(finish(pending.popleft()))
        while pending:
            yield from emit(finish(pending.popleft()))
    finally:
        # Normally nothing is pending here; after an error or an interrupt, jobs not started
        # are dropped and those running finish in the background without being stored.
        pool.shutdown(wait=False, cancel_futures=True)


def _client(endpoint: str | None, token: str | bool | None, retry: RetryPolicy | None) -> HubClient:
    return HubClient(endpoint, token, retry=retry)


def _cache(cache_dir: str | os.PathLike[str] | None | bool) -> WindowCache | None:
    if cache_dir is False:
        return None
    return WindowCache(None if cache_dir in (None, True) else Path(cache_dir))  # type: ignore[arg-type]


def _since_text(since: str | date | datetime | None) -> str | None:
    when = parse_since(since)
    return when.isoformat() if when is not None else None


def crawl(
    store: Store,
    *,
    endpoint: str | None = None,
    authors: Sequence[str] = (),
    search: str | None = None,
    filters: Sequence[str] = (),
    sort: str = "downloads",
    limit: int | None = None,
    since: str | date | datetime | None = None,
    fingerprint: bool = True,
    device: str = "auto",
    workers: int = 4,
    progress: Progress | None = None,
    cache_dir: str | os.PathLike[str] | None | bool = None,
    token: str | bool | None = None,
    retry: RetryPolicy | None = None,
    params: SignatureParams | None = None,
    hf_cache: str | os.PathLike[str] | None | bool = True,
) -> CrawlSummary:
    """Crawl a Hub into the store: list, store records, fingerprint what is new or changed.

    Args:
        store: the database.
        endpoint: Hub URL (default `HF_ENDPOINT`, else https://huggingface.co).
        authors: only these authors (one listing each); empty: everyone.
        search: substring of the repo id.
        filters: tags every model must carry (`base_model:finetune:org/x` walks a base's
            children; see `hub.hubsource.children_filter`).
        sort: `downloads`, `created`, `likes` or `modified`, descending.
        limit: at most this many models.
        since: only models created on or after this date (ISO 8601 text, date or datetime).
        fingerprint: False stores records only (no weight bytes read).
        device: where signatures are computed: `auto`, `cpu` or `cuda`.
        workers: models read at the same time.
        progress: called as (done, listed so far, model id) after each model; an exception it
            raises stops the crawl (what was stored stays stored).
        cache_dir: the window cache folder; None: `$LINEAGE_CACHE/windows` or
            `~/.cache/model-lineage/windows`; False: no cache.
        token: Hub token; None: huggingface_hub's (HF_TOKEN or a stored login). Never stored.
        retry: retry policy for the calls huggingface_hub does not retry.
        params: signature parameters (default `SignatureParams()`).
        hf_cache: the HF hub cache to read snapshots from (True: huggingface_hub's; False: never).

    Returns:
        A `CrawlSummary`; the run is also recorded in the store (`store.runs()`).

    Raises:
        NetworkError: the listing itself could not be read, or `NETWORK_FAILURES_IN_A_ROW`
            models in a row failed with `network` (the endpoint is down); models stored so
            far stay.
        DeviceUnavailableError: `device="cuda"` without a GPU.
    """
    started = time.monotonic()
    params = params or SignatureParams()
    device = resolve_device(device)
    client = _client(endpoint, token, retry)
    run_id = store.start_run(
        "crawl",
        {
            "endpoint": client.endpoint,
            "authors": list(authors),
            "search": search,
            "filters": list(filters),
            "sort": sort,
            "limit": limit,
            "since": _since_text(since),
            "fingerprint": fingerprint,
            "workers": workers,
            "params": params.tag(),
        },
    )
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    outcomes: list[ModelOutcome] = []
    fetched = cached = 0

    def summary() -> CrawlSummary:
        return CrawlSummary(
            seen=len(outcomes),
            new=counts["new"],
            changed=counts["changed"],
            unchanged=counts["unchanged"],
            fingerprinted=counts["fingerprinted"],
            skipped_by_reason=dict(sorted(skipped.items())),
            bytes_fetched=fetched,
            elapsed=time.monotonic() - started,
            bytes_cached=cached,
            run_id=run_id,
            models=tuple(outcomes),
        )

    status = "failed"
    try:
        listing = iter_models(
            client,
            authors=authors,
            search=search,
            filters=filters,
            sort=sort,
            limit=limit,
            since=since,
        )
        for item in _run(
            store,
            listing,
            client=client,
            fingerprint=fingerprint,
            device=device,
            workers=workers,
            cache=_cache(cache_dir),
            hf_cache=hf_cache,
            params=params,
            retry_gated=_token_available(token),
            progress=progress,
        ):
            out = item.outcome
            outcomes.append(out)
            counts[item.state] += 1
            counts["fingerprinted"] += out.fingerprinted
            if out.status != "ok":
                skipped[out.status] += 1
            fetched += out.bytes_fetched
            cached += out.bytes_cached
        status = "ok"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        result = summary()
        store.finish_run(run_id, result.to_dict(), status=status)
    return result


# ---- scan ----------------------------------------------------------------------------------


def _agreement(
    store: Store, record: ModelRecord, matches: list[Match], index: SignatureIndex
) -> tuple[bool | None, tuple[str, ...]]:
    matched = {m.model_id for m in matches}
    declared = {b.id for b in record.declared_bases}

    def could_be_parent(model_id: str) -> bool:
        # Parents are uploaded before their children (99.7% of documented Hub edges): a match
        # created after this model is a child or a sibling, not an undeclared base.
        other = store.get_model(model_id)
        mine, theirs = record.created_at, other.created_at if other else None
        return not (mine and theirs and theirs > mine)

    undeclared = tuple(
        m.model_id for m in matches if m.model_id not in declared and could_be_parent(m.model_id)
    )
    if declared & matched:
        return True, undeclared
    if any(b in index for b in declared):
        return False, undeclared
    return None, undeclared


def scan(
    store: Store,
    *,
    endpoint: str | None = None,
    since: str | date | datetime | None = None,
    limit: int | None = None,
    device: str = "auto",
    workers: int = 4,
    top: int = 5,
    alpha: float | None = None,
    cache_dir: str | os.PathLike[str] | None | bool = None,
    token: str | bool | None = None,
    retry: RetryPolicy | None = None,
    params: SignatureParams | None = None,
    hf_cache: str | os.PathLike[str] | None | bool = True,
    progress: Progress | None = None,
) -> Iterator[ScanResult]:
    """Scan new uploads: newest first since a date, fingerprinted, stored and matched.

    Each listed model is crawled as by `crawl` (stored with its signature or its failure), then
    matched against an index of every signature in the store (built once, and each scanned model
    is added to it, so later uploads match earlier ones). Matching costs the model's own k x T
    postings, whatever the store's size.

    Args:
        store, endpoint, device, workers, cache_dir, token, retry, params, hf_cache, progress:
            as for `crawl`.
        since: only uploads created on or after this date (listing stops at the first older).
        limit: at most this many uploads.
        top: keep the best `top` matches per model.
        alpha: significance level; default 1e-4 divided by the number of indexed models.

    Yields:
        A `ScanResult` per listed model, in listing order (newest first).
    """
    params = params or SignatureParams()
    device = resolve_device(device)
    client = _client(endpoint, token, retry)
    run_id = store.start_run(
        "scan",
        {
            "endpoint": client.endpoint,
            "since": _since_text(since),
            "limit": limit,
            "params": params.tag(),
        },
    )
    index = SignatureIndex.from_store(store, params)
    counts: Counter[str] = Counter()
    status = "failed"
    try:
        listing = iter_models(client, sort="created", limit=limit, since=since)
        for item in _run(
            store,
            listing,
            client=client,
            fingerprint=True,
            device=device,
            workers=workers,
            cache=_cache(cache_dir),
            hf_cache=hf_cache,
            params=params,
            retry_gated=_token_available(token),
            progress=progress,
        ):
            rec = item.record
            sig = item.signature
            if sig is None and item.outcome.status == "ok":
                row = store.get_signature(rec.id)
                if row is not None and row.params == params.tag():
                    sig = Signature.from_bytes(row.blob, model_id=rec.id)
            matches: list[Match] = []
            if sig is not None:
                matches = index.matches(sig, alpha=alpha, exclude=(rec.id,))[:top]
                index.add(rec.id, sig)
            agrees, undeclared = _agreement(store, rec, matches, index)
            counts["scanned"] += 1
            counts["matched"] += bool(matches)
            counts["failed"] += item.outcome.status != "ok"
            yield ScanResult(
                model_id=rec.id,
                created_at=rec.created_at,
                status=item.outcome.status,
                reason=item.outcome.reason,
                declared_bases=rec.declared_bases,
                matches=tuple(matches),
                declared_agrees=agrees if sig is not None else None,
                undeclared=undeclared,
                state=item.state,
            )
        status = "ok"
    except GeneratorExit:
        status = "interrupted"
        raise
    finally:
        store.finish_run(run_id, dict(counts), status=status)
