"""`lineage crawl` and `lineage scan`: thin commands over `lineage.crawl`.

`register(subparsers)` adds both to the `lineage` parser; each command takes the parsed
arguments and an open Store and returns the exit code (0 done, 1 a user-facing error, which
`lineage.cli.main` prints as one line). Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from lineage.store import Store

__all__ = ["cmd_crawl", "cmd_scan", "register"]

_COST = (
    "What is read: the listing (one request per page of models); then, for each model that is "
    "new, changed or has no signature yet, one paths-info call, the first 64 KiB of each "
    "safetensors file (its header) and one HTTP range request per slot window: at most 64 "
    "windows of at most 2^18 elements, so under 32 MiB for a 16-bit model and under 64 MiB for "
    "F32, whatever its size. Pickle files (.bin, .pt) are never downloaded. Unchanged models "
    "with a signature cost nothing beyond the listing.",
    "Cache: windows and headers are kept on disk by content hash in $LINEAGE_CACHE/windows "
    "(default ~/.cache/model-lineage/windows), so fingerprinting again costs no weight bytes; "
    "snapshots already in the Hugging Face cache (HF_HOME) are read from disk.",
    "Token: HF_TOKEN (or a stored `hf auth login`) for gated and private models; it is never "
    "stored, logged or printed.",
)


def _paragraphs(*texts: str) -> str:
    # Paths like ~/.cache/model-lineage must not be split at their hyphens.
    return "\n\n".join(
        textwrap.fill(t, width=78, break_on_hyphens=False, break_long_words=False) for t in texts
    )


def _since(value: str) -> str:
    from hub.hubsource import parse_since

    try:
        parse_since(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_crawl(args: argparse.Namespace, store: Store) -> int:
    from lineage.crawl import crawl
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
    from lineage.crawl import scan
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


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--endpoint",
        metavar="URL",
        default=None,
        help="Hub URL (default: $HF_ENDPOINT, else https://huggingface.co)",
    )
    p.add_argument(
        "--since",
        type=_since,
        metavar="DATE",
        help="only models created on or after DATE (e.g. 2024-05-01)",
    )
    p.add_argument("--limit", type=_positive, metavar="N", help="at most N models")
    p.add_argument("--json", action="store_true", help="machine-readable output (JSON lines)")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to compute signatures: auto uses a GPU when torch sees one (default: auto)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `crawl` and `scan` to the `lineage` command's subparsers."""
    p = subparsers.add_parser(
        "crawl",
        help="list Hub models into the database and fingerprint the new or changed ones",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_paragraphs(
            "List models on the Hub (or a Hub-compatible --endpoint), store their metadata and "
            "declared bases, and fingerprint those that are new, changed or lack a signature. "
            "Models that cannot be read (gated, missing, pickle-only, malformed, network) are "
            "stored with the reason and the crawl goes on. Exit 0 once the listing is done, 1 "
            "when the listing itself fails or the endpoint stops answering. Interrupted or "
            "killed, it keeps what it stored: run it again to finish.",
            *_COST,
        ),
    )
    _common(p)
    p.add_argument(
        "--author", action="append", metavar="A", help="only this author's models (repeatable)"
    )
    p.add_argument("--search", metavar="S", help="only ids containing S")
    p.add_argument(
        "--filter",
        action="append",
        metavar="TAG",
        help="only models with this tag (repeatable, all must match); "
        "base_model:finetune:ORG/NAME walks the children of a base",
    )
    p.add_argument(
        "--sort",
        choices=("downloads", "created", "likes", "modified"),
        default="downloads",
        help="listing order, descending (default: downloads); with --since, 'created' stops "
        "paging at the first older model",
    )
    p.add_argument(
        "--no-fingerprint", action="store_true", help="store metadata only; read no weight bytes"
    )
    p.add_argument(
        "--workers",
        type=_positive,
        default=4,
        metavar="N",
        help="models read at the same time (default: 4)",
    )
    p.set_defaults(func=cmd_crawl)

    p = subparsers.add_parser(
        "scan",
        help="fingerprint the newest uploads and match each against the database",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_paragraphs(
            "List the newest uploads (by creation date, newest first), fingerprint and store "
            "them, and match each against every signature in the database through an inverted "
            "index (cost: the model's own postings, not one comparison per stored model). "
            "Prints each significant match (overlap, identity, p-value, verdict: significance "
            "is corrected for the number of stored models) and whether the declared base "
            "agrees with the weights; --json prints one JSON object per model.",
            *_COST,
        ),
    )
    _common(p)
    p.set_defaults(func=cmd_scan)
