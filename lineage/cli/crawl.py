"""`lineage crawl`, `lineage scan` and `lineage import-shards`: handlers over `lineage.crawler`
(and `lineage.watch`, `lineage.engines.shards`).

Each takes the parsed arguments and an open Store and returns the exit code (0 done, 1 a
user-facing error, which `lineage.cli.main` prints as one line). Progress goes to stderr,
results to stdout. Their arguments are rows of `lineage.cli.table`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lineage.store import Store

__all__ = ["check_crawl", "check_scan", "cmd_crawl", "cmd_import_shards", "cmd_scan"]


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def check_crawl(args: argparse.Namespace) -> str | None:
    """The usage problem of a `crawl` command line, if any (see `lineage.cli.spec.Command`)."""
    if args.address is not None and args.engine != "ray":
        return "--address names a Ray cluster: add --engine ray"
    return None


def cmd_crawl(args: argparse.Namespace, store: Store) -> int:
    """`lineage crawl`: list Hub models into the store and fingerprint what is new."""
    from lineage.crawler import crawl
    from lineage.progress import Progress

    summary = crawl(
        store,
        endpoint=args.endpoint,
        authors=args.author or (),
        search=args.search,
        filters=args.filter or (),
        sort=args.sort,
        limit=args.limit,
        since=args.since,
        modified_since=args.modified_since,
        fingerprint=not args.no_fingerprint,
        device=args.device,
        workers=args.workers,
        progress=Progress("crawl", enabled=not args.json),
        engine=args.engine,
        address=args.address,
    )
    if args.json:
        print(json.dumps(summary.to_dict(), sort_keys=False))
        return 0
    skipped = ", ".join(f"{k} {v}" for k, v in summary.skipped_by_reason.items()) or "none"
    print(
        f"models seen {summary.seen} (new {summary.new}, changed {summary.changed}, "
        f"unchanged {summary.unchanged}); fingerprinted {summary.fingerprinted}; "
        f"skipped: {skipped}"
    )
    print(
        f"bytes fetched {_mb(summary.bytes_fetched)} (from the window cache "
        f"{_mb(summary.bytes_cached)}) in {summary.elapsed:.1f} s"
    )
    for m in summary.models:
        if m.status != "ok":
            print(f"skipped {m.model_id}: {m.reason}", file=sys.stderr)
    return 0


def _describe(result) -> list[str]:
    bases = ", ".join(
        f"{b.id} ({b.relation})" if b.relation else b.id for b in result.declared_bases
    )
    head = f"{result.model_id}  created {result.created_at or '?'}"
    lines = [head, f"  declared base: {bases or 'none'}"]
    if result.status != "ok":
        lines.append(f"  not read ({result.status}): {result.reason}")
        return lines
    if not result.matches:
        lines.append("  matches: none in the database")
    for m in result.matches:
        p = f"{m.p_value:.3g}" if m.p_value > 0 else "< 1e-300"
        lines.append(
            f"  match {m.model_id}: {m.verdict}, overlap {m.overlap:.3f}, "
            f"identity {m.identity:.3f}, p {p}, {m.slots_compared} slots"
        )
    verdict = {
        True: "agrees with the weights",
        False: "does NOT match the weights",
        None: "cannot be checked (no declared base in the database)",
    }[result.declared_agrees]
    lines.append(f"  declared base {verdict}")
    if result.undeclared:
        lines.append(f"  undeclared relatives: {', '.join(result.undeclared)}")
    return lines


def check_scan(args: argparse.Namespace) -> str | None:
    """The usage problem of a `scan` command line, if any (see `lineage.cli.spec.Command`)."""
    if not args.watch:
        given = [
            f for f, v in (("--interval", args.interval), ("--max-polls", args.max_polls)) if v
        ]
        if given:
            return f"{' and '.join(given)} {'need' if len(given) > 1 else 'needs'} --watch"
    elif args.limit is not None:
        return (
            "--limit does not apply to --watch (each poll scans every new upload); use --max-polls"
        )
    return None


@contextmanager
def _stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """SIGTERM sets `stop` (the watch ends after the model in hand) instead of killing us."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def on_sigterm(signum: int, frame: object) -> None:
        # Set from another thread: the handler runs in the main thread, which may be holding
        # the event's own lock (inside `wait`) at that instant.
        threading.Thread(target=stop.set, name="sigterm").start()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _watch(args: argparse.Namespace, store: Store) -> int:
    """`lineage scan --watch`: one JSON line per new upload until stopped."""
    from lineage.watch import INTERVAL, watch

    def warn(line: str) -> None:
        print(f"warning: {line}", file=sys.stderr, flush=True)

    stop = threading.Event()
    n = 0
    results = watch(
        store,
        interval=args.interval or INTERVAL,
        max_polls=args.max_polls,
        since=args.since,
        stop=stop,
        warn=warn,
        endpoint=args.endpoint,
        device=args.device,
    )
    how = "done"
    with _stop_on_sigterm(stop):
        try:
            for result in results:
                n += 1
                print(json.dumps(result.to_dict()), flush=True)
        except KeyboardInterrupt:
            how = "interrupted"
        finally:
            results.close()  # records where it got to, if the loop did not end on its own
    if stop.is_set():
        how = "stopped (SIGTERM)"
    print(
        f"watch {how}: {n} new uploads reported; the next `lineage scan --watch` resumes "
        "where this one stopped",
        file=sys.stderr,
    )
    return 0


def cmd_scan(args: argparse.Namespace, store: Store) -> int:
    """`lineage scan`: fingerprint the newest uploads and match each against the store; with
    `--watch`, keep doing so for new uploads (`lineage.watch.watch`)."""
    from lineage.crawler import scan
    from lineage.progress import Progress

    if args.watch:
        return _watch(args, store)

    results = scan(
        store,
        endpoint=args.endpoint,
        since=args.since,
        limit=args.limit,
        device=args.device,
        progress=Progress("scan", enabled=False),
    )
    n = 0
    for result in results:
        n += 1
        if args.json:
            print(json.dumps(result.to_dict()), flush=True)
        else:
            print("\n".join(_describe(result)), flush=True)
    if not args.json:
        print(f"scanned {n} models", file=sys.stderr)
    return 0


def cmd_import_shards(args: argparse.Namespace, store: Store) -> int:
    """`lineage import-shards DIR`: store the models of a Ray crawl's Parquet shards."""
    from lineage.engines import EngineUnavailableError
    from lineage.engines.shards import import_shards

    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise EngineUnavailableError(
            "import-shards reads Parquet with pyarrow, which is not installed: "
            "pip install 'model-lineage[ray]'"
        ) from None
    summary = import_shards(store, args.folder)
    if args.json:
        print(json.dumps(dataclasses.asdict(summary)))
        return 0
    print(
        f"shard rows {summary.rows}: fingerprinted {summary.fingerprinted}, failed "
        f"{summary.failed}, skipped {summary.skipped} (already stored)"
    )
    return 0
