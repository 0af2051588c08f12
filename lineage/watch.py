"""Watching the Hub: new uploads listed by creation time, each scanned once, as they come.

`watch` polls the listing sorted by `createdAt` (newest first, paging stops at the watermark),
crawls the uploads it has not reported yet, oldest first, through `lineage.crawl_run` and
matches each against the store through its sketch index (`lineage.sketch_scan`,
`lineage.scanner`), which grows as uploads are scanned: an upload matching another one of the
same poll is found.

The watermark is the creation time listed from and the ids at or after it already reported.
Listing from a time includes that time, and the ids say which models of that instant were done,
so nothing is missed or reported twice, even when uploads share a timestamp. It is kept in the
summary of the `watch` rows of the `runs` table: one row per poll that found something, and one
when the watch ends (unless the poll in flight records the stop); a new watch on the same
endpoint resumes from the newest row.
A watch killed outright (kill -9) resumes from the last poll it finished; the models of the poll
in flight are then reported again, without reading their weights again (they are stored).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any

from hub.errors import HubError
from hub.hubsource import HubClient, iter_models, parse_since
from lineage.catalogue import Catalogue
from lineage.crawl_run import CrawlOptions, crawl_listing
from lineage.scanner import ScanResult, match_crawled
from lineage.sketch_scan import SketchMatcher
from lineage.store import Store

__all__ = ["INTERVAL", "NETWORK_POLLS", "WATCH", "Watermark", "last_watermark", "watch"]

log = logging.getLogger(__name__)

WATCH = "watch"  # the `kind` of the watch's rows in the `runs` table
INTERVAL = 60.0  # seconds between polls, by default
# A model whose weights fail with `network` is tried again at the next poll (the watermark waits
# before it), at most this many polls in all; then it is reported with that status and passed,
# so one broken repo cannot hold the watch back for ever.
NETWORK_POLLS = 3


@dataclass(frozen=True, slots=True)
class Watermark:
    """How far a watch has got.

    Attributes:
        created_at: uploads created at or after this instant are listed; None: not started (the
            first poll starts from the newest upload, scanning nothing).
        ids: the models created at or after `created_at` already reported.
    """

    created_at: datetime | None
    ids: frozenset[str] = frozenset()

    def to_dict(self) -> dict:
        when = self.created_at
        return {
            "created_at": when.isoformat().replace("+00:00", "Z") if when else None,
            "ids": sorted(self.ids),
        }

    @staticmethod
    def from_dict(doc: Any) -> Watermark | None:
        """The watermark `to_dict` wrote, or None for anything else (a row without one)."""
        if not isinstance(doc, dict) or not doc.get("created_at"):
            return None
        try:
            when = parse_since(doc["created_at"])
        except (TypeError, ValueError):
            return None
        ids = doc.get("ids") or ()
        return Watermark(when, frozenset(i for i in ids if isinstance(i, str)))


def last_watermark(store: Store, endpoint: str) -> Watermark | None:
    """The watermark of the newest `watch` run on `endpoint` that recorded one, or None."""
    for run in reversed(store.runs()):
        if run.kind == WATCH and run.params.get("endpoint") == endpoint:
            mark = Watermark.from_dict(run.summary.get("watermark"))
            if mark is not None:
                return mark
    return None


def _created(info: Any) -> datetime | None:
    when = getattr(info, "created_at", None)
    if not isinstance(when, datetime):
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def _advanced(
    mark: Watermark, polled: Sequence[Any], done: set[str], created: dict[str, datetime]
) -> Watermark:
    """The watermark after a poll of `polled` (oldest first) of which `done` were reported.

    It moves to the oldest model not done, so that it is listed again, or past all of them.
    """
    done = done & created.keys()
    left = [created[i.id] for i in polled if i.id in created and i.id not in done]
    when = min(left) if left else max([created[i] for i in done], default=mark.created_at)
    if when is None:
        return mark
    reported = {i for i in mark.ids if mark.created_at is not None and mark.created_at >= when}
    reported |= {i for i in done if created[i] >= when}
    return Watermark(when, frozenset(reported))


class _Poller:
    """A watch's state between polls: client, index, failed tries, the last row it recorded."""

    def __init__(
        self, store: Store, opts: CrawlOptions, *, interval: float, top: int, alpha: float | None
    ):
        assert opts.params is not None
        self.store = store
        self.opts = opts
        self.interval = interval
        self.client: HubClient = opts.client()
        self.catalogue = Catalogue(store, opts.params)
        self.index = SketchMatcher.from_store(store, opts.params)
        self.top = top
        self.alpha = alpha
        self.tries: Counter[str] = Counter()
        self.ended = False  # the last poll recorded the end of the watch

    def record(self, mark: Watermark, summary: dict, status: str) -> None:
        """One finished `watch` row holding the watermark."""
        assert self.opts.params is not None
        params = {
            "endpoint": self.client.endpoint,
            "interval": self.interval,
            "params": self.opts.params.tag(),
        }
        run_id = self.store.start_run(WATCH, params)
        self.store.finish_run(run_id, {"watermark": mark.to_dict(), **summary}, status=status)

    def listed(self, mark: Watermark) -> list[Any]:
        """New uploads, oldest first (raises the listing's `HubError`)."""
        if mark.created_at is None:
            return list(iter_models(self.client, sort="created", limit=1))
        found = iter_models(self.client, sort="created", since=mark.created_at)
        fresh = [i for i in found if i.id not in mark.ids and _created(i) is not None]
        return fresh[::-1]

    def poll(
        self, polled: list[Any], mark: Watermark, stop: threading.Event, warn: Callable[[str], None]
    ) -> Generator[ScanResult, None, Watermark]:
        """Crawl and match `polled` (oldest first), yielding each; the new watermark is the
        generator's return value, and is recorded whatever happens (a stop, an error)."""
        created = _times(polled)
        done: set[str] = set()
        counts: Counter[str] = Counter()
        status = "failed"
        crawled = crawl_listing(
            self.store, iter(polled), self.opts, client=self.client, fingerprint=True
        )
        try:
            try:
                for item in crawled:
                    model_id = item.record.id
                    if item.outcome.status == "network":
                        self.tries[model_id] += 1
                        if self.tries[model_id] < NETWORK_POLLS:
                            # not done: the watermark stays before it, the next poll lists it
                            warn(f"{item.outcome.reason}; {model_id} is tried at the next poll")
                            continue
                    self.tries.pop(model_id, None)
                    result = match_crawled(
                        self.store, item, self.index, self.catalogue, top=self.top, alpha=self.alpha
                    )
                    done.add(model_id)
                    counts["reported"] += 1
                    counts["matched"] += bool(result.matches)
                    counts["failed"] += result.status != "ok"
                    yield result
                    if stop.is_set():
                        break
            except HubError as err:  # the endpoint died during the poll: retried at the next
                warn(f"{err}; the uploads left are tried at the next poll")
            status = "stopped" if stop.is_set() else "ok"
        except (GeneratorExit, KeyboardInterrupt):
            status = "stopped"
            raise
        finally:
            # `crawl_listing` is a generator: closing it drops the jobs still in flight now
            getattr(crawled, "close", lambda: None)()
            mark = _advanced(mark, polled, done, created)
            self.record(mark, {"listed": len(polled), **counts}, status)
            self.ended = status != "ok"  # a stop or an error ends the watch with this row
        return mark


def watch(
    store: Store,
    *,
    interval: float = INTERVAL,
    max_polls: int | None = None,
    since: str | date | datetime | None = None,
    top: int = 5,
    alpha: float | None = None,
    stop: threading.Event | None = None,
    warn: Callable[[str], None] | None = None,
    options: CrawlOptions | None = None,
    **settings: Any,
) -> Generator[ScanResult, None, None]:
    """Watch a Hub for new uploads: poll, scan each upload once, yield it as soon as it is matched.

    Every `interval` seconds the listing is read newest first down to the watermark; the uploads
    not reported yet are crawled (stored with their signature or their failure) oldest first,
    matched against every current signature in the store and added to the index. A model that
    cannot be read is yielded with its status and reason; a `network` failure is first passed to
    `warn` and tried again at the next polls (`NETWORK_POLLS` in all). A listing that fails, or
    an endpoint that dies during a poll, is passed to `warn` and tried again at the next poll:
    the watch never stops for the network.

    Args:
        store: the database.
        interval: seconds between the starts of two polls (a long poll starts the next at once).
        max_polls: stop after this many polls; None: until `stop` is set or the caller stops
            iterating.
        since: start from uploads created at or after this date, instead of where the last
            watch on this endpoint stopped (or, for a first watch, the newest upload).
        top: keep the best `top` matches per model.
        alpha: significance level; default 1e-4 divided by the number of indexed models.
        stop: set it (from a signal handler, another thread) to stop after the model being
            matched, or at once between polls.
        warn: called with one line when a poll fails (default: a logging warning).
        options: how to reach the Hub and fingerprint (`CrawlOptions`).
        **settings: `CrawlOptions` fields, overriding `options`.

    Yields:
        A `ScanResult` per new upload, oldest first within a poll, `seen_at` set. Close the
        generator (or let it end) to record where the watch got to.

    Raises:
        ValueError: `interval` < 0 or `max_polls` < 1.
        TypeError: a setting that is not a `CrawlOptions` field.
    """
    if interval < 0:
        raise ValueError(f"interval must be >= 0 seconds, got {interval}")
    if max_polls is not None and max_polls < 1:
        raise ValueError(f"max_polls must be >= 1, got {max_polls}")
    opts = replace(options or CrawlOptions(), **settings).resolved()
    poller = _Poller(store, opts, interval=interval, top=top, alpha=alpha)
    stop = stop if stop is not None else threading.Event()
    say = warn if warn is not None else log.warning
    start = parse_since(since)
    resumed = Watermark(start) if start else last_watermark(store, poller.client.endpoint)
    mark = resumed or Watermark(None)
    polls = 0
    status = "failed"
    started = time.monotonic()
    try:
        while max_polls is None or polls < max_polls:
            # `interval` apart from start to start: a long poll is followed by the next at once
            if polls and stop.wait(max(0.0, started + interval - time.monotonic())):
                break
            if stop.is_set():
                break
            polls += 1
            started = time.monotonic()
            try:
                polled = poller.listed(mark)
            except HubError as err:
                say(f"poll {polls}: {err}; polling again in {interval:g} s")
                continue
            if mark.created_at is None:
                # A first watch starts from the newest upload (the Hub's clock, not ours).
                mark = _advanced(mark, polled, {i.id for i in polled}, _times(polled))
            elif polled:
                mark = yield from poller.poll(polled, mark, stop, say)
        status = "stopped" if stop.is_set() else "ok"
    except (GeneratorExit, KeyboardInterrupt):
        status = "stopped"
        raise
    finally:
        poller.index.close()
        # The end of the watch is recorded, unless the poll it happened in did so.
        if not poller.ended:
            poller.record(mark, {"polls": polls}, status)


def _times(polled: Sequence[Any]) -> dict[str, datetime]:
    return {i.id: when for i in polled if (when := _created(i)) is not None}
