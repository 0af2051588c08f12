"""Scanning new uploads: crawled like `crawl` does, then matched against the whole store.

`scan` lists the newest uploads (sorted by creation date, since a date), crawls them through
`lineage.crawl_run` and matches each against everything the store holds, through the sketch
index kept next to the database (`lineage.sketch_scan.SketchMatcher`: candidates by sampled
positions, an exact pre-check, then `compare`), saying whether the declared base agrees with
what the weights show.
`lineage.watch.watch` keeps doing so, poll after poll; both match a stored model through
`match_crawled`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any

from hub.hubsource import iter_models, parse_since
from hub.records import DeclaredBase, ModelRecord
from lineage.catalogue import Catalogue
from lineage.crawl_run import Crawled, CrawlOptions, crawl_listing
from lineage.match import Match
from lineage.sketch_scan import SketchMatcher
from lineage.store import Store

__all__ = ["ScanResult", "match_crawled", "scan"]


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
        seen_at: when it was matched (ISO 8601 UTC), so a stream of results can be timed.
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
    seen_at: str | None = None

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
            "seen_at": self.seen_at,
        }


def since_text(since: str | date | datetime | None) -> str | None:
    """`since` as stored in a run's parameters (ISO 8601), or None."""
    when = parse_since(since)
    return when.isoformat() if when is not None else None


def _agreement(
    store: Store, record: ModelRecord, matches: list[Match], index: SketchMatcher
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def match_crawled(
    store: Store,
    item: Crawled,
    index: SketchMatcher,
    catalogue: Catalogue,
    *,
    top: int = 5,
    alpha: float | None = None,
) -> ScanResult:
    """Match one stored model against the index, then add it to the index.

    Adding it at once means a later upload (of the same scan or poll) matches this one.

    Args:
        store: the database `item` was stored in.
        item: what `lineage.crawl_run.crawl_listing` yielded for the model.
        index: the signatures to match against; the model's own signature joins it.
        catalogue: the store and signature parameters (loads a signature the crawl kept).
        top: keep the best `top` matches.
        alpha: significance level; default 1e-4 divided by the number of indexed models.
    """
    rec = item.record
    sig = item.signature
    if sig is None and item.outcome.status == "ok":
        sig = catalogue.load(rec)
    matches: list[Match] = []
    if sig is not None:
        matches = index.matches(sig, alpha=alpha, exclude=(rec.id,), top=top)
        index.add(rec.id, sig, revision=rec.revision)
    agrees, undeclared = _agreement(store, rec, matches, index)
    return ScanResult(
        model_id=rec.id,
        created_at=rec.created_at,
        status=item.outcome.status,
        reason=item.outcome.reason,
        declared_bases=rec.declared_bases,
        matches=tuple(matches),
        declared_agrees=agrees if sig is not None else None,
        undeclared=undeclared,
        state=item.state,
        seen_at=_now(),
    )


def scan(
    store: Store,
    *,
    since: str | date | datetime | None = None,
    limit: int | None = None,
    top: int = 5,
    alpha: float | None = None,
    options: CrawlOptions | None = None,
    **settings: Any,
) -> Iterator[ScanResult]:
    """Scan new uploads: newest first since a date, fingerprinted, stored and matched.

    Each listed model is crawled as by `crawl` (stored with its signature or its failure), then
    matched against every current signature in the store through the sketch index next to the
    database (brought up to date when the scan starts; each scanned model is added to it, so
    later uploads match earlier ones). Matching reads the sketch postings of the query's sampled
    positions, then the stored positions of its candidates only (`lineage.sketch_scan`).

    Args:
        store: the database.
        since: only uploads created on or after this date (listing stops at the first older).
        limit: at most this many uploads.
        top: keep the best `top` matches per model.
        alpha: significance level; default 1e-4 divided by the number of indexed models.
        options: how to reach the Hub and fingerprint (`CrawlOptions`).
        **settings: `CrawlOptions` fields (endpoint, device, workers, cache_dir, token, retry,
            params, hf_cache, progress), overriding `options`.

    Yields:
        A `ScanResult` per listed model, in listing order (newest first).

    Raises:
        TypeError: a setting that is not a `CrawlOptions` field.
    """
    opts = replace(options or CrawlOptions(), **settings).resolved()
    assert opts.params is not None
    client = opts.client()
    run_id = store.start_run(
        "scan",
        {
            "endpoint": client.endpoint,
            "since": since_text(since),
            "limit": limit,
            "params": opts.params.tag(),
        },
    )
    catalogue = Catalogue(store, opts.params)
    index = SketchMatcher.from_store(store, opts.params)
    counts: Counter[str] = Counter()
    status = "failed"
    try:
        listing = iter_models(client, sort="created", limit=limit, since=since)
        for item in crawl_listing(store, listing, opts, client=client, fingerprint=True):
            result = match_crawled(store, item, index, catalogue, top=top, alpha=alpha)
            counts["scanned"] += 1
            counts["matched"] += bool(result.matches)
            counts["failed"] += result.status != "ok"
            yield result
        status = "ok"
    except GeneratorExit:
        status = "interrupted"
        raise
    finally:
        index.close()
        store.finish_run(run_id, dict(counts), status=status)
