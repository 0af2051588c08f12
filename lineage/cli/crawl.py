"""`lineage crawl` and `lineage scan`: handlers over `lineage.crawler`.

Each takes the parsed arguments and an open Store and returns the exit code (0 done, 1 a
user-facing error, which `lineage.cli.main` prints as one line). Progress goes to stderr,
results to stdout. Their arguments are rows of `lineage.cli.table`.
"""

from __future__ import annotations

import argparse
import json
import sys

from lineage.store import Store

__all__ = ["cmd_crawl", "cmd_scan"]


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


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
        fingerprint=not args.no_fingerprint,
        device=args.device,
        workers=args.workers,
        progress=Progress("crawl", enabled=not args.json),
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


def cmd_scan(args: argparse.Namespace, store: Store) -> int:
    """`lineage scan`: fingerprint the newest uploads and match each against the store."""
    from lineage.crawler import scan
    from lineage.progress import Progress

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
