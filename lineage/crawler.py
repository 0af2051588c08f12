"""Crawling a Hub into the store, and scanning new uploads against it.

`crawl` lists models (author, search, tag filters, sort, limit, since), stores each record and
fingerprints the models that are new, changed (another commit) or lack a current signature
(`lineage.crawl_run` does one pass: decide, read on the engine's executor, store one
transaction per model). `scan` (`lineage.scanner`, re-exported here) does the same for the newest
uploads and matches each against the store.

What a crawl costs: the listing pages; then, per model to fingerprint, one `paths-info` call,
the safetensors headers (about 64 KiB per file) and one range request per slot window (at most
64 windows of at most 2^18 elements: under 32 MiB for a 16-bit model of any size). Windows and
headers are cached on disk by content hash (`hub.window_cache`), so re-fingerprinting costs no
weight bytes; a model whose commit and signature are unchanged costs nothing beyond its share of
the listing. A model that cannot be read is stored with its status (`gated`, `not_found`,
`no_safetensors`, `malformed`, `network`) and reason, and the crawl goes on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from hub.hubsource import iter_models
from lineage.crawl_run import NETWORK_FAILURES_IN_A_ROW, CrawlOptions, ModelOutcome, crawl_listing
from lineage.scanner import ScanResult, scan, since_text
from lineage.store import Store

__all__ = [
    "NETWORK_FAILURES_IN_A_ROW",
    "CrawlOptions",
    "CrawlSummary",
    "ModelOutcome",
    "ScanResult",
    "crawl",
    "scan",
]


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


def crawl(
    store: Store,
    *,
    authors: Sequence[str] = (),
    search: str | None = None,
    filters: Sequence[str] = (),
    sort: str = "downloads",
    limit: int | None = None,
    since: str | date | datetime | None = None,
    modified_since: str | date | datetime | None = None,
    fingerprint: bool = True,
    options: CrawlOptions | None = None,
    **settings: Any,
) -> CrawlSummary:
    """Crawl a Hub into the store: list, store records, fingerprint what is new or changed.

    Args:
        store: the database.
        authors: only these authors (one listing each); empty: everyone.
        search: substring of the repo id.
        filters: tags every model must carry (`base_model:finetune:org/x` walks a base's
            children; see `hub.hubsource.children_filter`).
        sort: `downloads`, `created`, `likes` or `modified`, descending.
        limit: at most this many models.
        since: only models created on or after this date (ISO 8601 text, date or datetime).
        modified_since: only models whose last commit (`lastModified`) is on or after this
            date: a daily refresh (with `sort="modified"` the listing stops at the first older).
        fingerprint: False stores records only (no weight bytes read).
        options: how to reach the Hub and fingerprint (`CrawlOptions`: endpoint, device,
            workers, progress, cache_dir, token, retry, params, hf_cache, executor, engine,
            address, shards_dir).
        **settings: `CrawlOptions` fields given one by one, overriding `options`
            (`crawl(store, endpoint=url, workers=2)`).

    Returns:
        A `CrawlSummary`; the run is also recorded in the store (`store.runs()`).

    Raises:
        NetworkError: the listing itself could not be read, or `NETWORK_FAILURES_IN_A_ROW`
            models in a row failed with `network` (the endpoint is down); models stored so
            far stay.
        DeviceUnavailableError: `device="cuda"` without a GPU.
        EngineUnavailableError: `engine="ray"` without the `ray` extra installed.
        TypeError: a setting that is not a `CrawlOptions` field.
        ValueError: an unknown engine, or an executor or a token string given with
            `engine="ray"`.
    """
    started = time.monotonic()
    opts = replace(options or CrawlOptions(), **settings).resolved()
    assert opts.params is not None
    _check_engine(opts)
    client = opts.client()
    run_id = store.start_run(
        "crawl",
        {
            "endpoint": client.endpoint,
            "authors": list(authors),
            "search": search,
            "filters": list(filters),
            "sort": sort,
            "limit": limit,
            "since": since_text(since),
            "modified_since": since_text(modified_since),
            "fingerprint": fingerprint,
            "workers": opts.workers,
            "engine": opts.engine,
            "params": opts.params.tag(),
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
            modified_since=modified_since,
        )
        for item in crawl_listing(store, listing, opts, client=client, fingerprint=fingerprint):
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


def _check_engine(opts: CrawlOptions) -> None:
    """Refuse an engine that cannot run before anything is listed or recorded."""
    from lineage.engines import ENGINES, require_ray

    if opts.engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {opts.engine!r}")
    if opts.engine == "ray":
        if opts.executor is not None:
            raise ValueError("an executor runs the threads engine; give one or engine='ray'")
        if isinstance(opts.token, str):
            raise ValueError(
                "a token is not sent to Ray workers: set HF_TOKEN on every node and crawl "
                "with token=None"
            )
        require_ray()
