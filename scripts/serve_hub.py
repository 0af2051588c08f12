"""Serve a zoo folder as a local Hugging Face Hub, optionally with injected faults.

    python scripts/serve_hub.py --root zoo --port 8765
    HF_ENDPOINT=http://127.0.0.1:8765 HF_HUB_DISABLE_XET=1 python -c \\
        "from huggingface_hub import HfApi; print([m.id for m in HfApi().list_models()])"

Faults are deterministic for a given --seed (see hub/faults.py), e.g.
`--rate-429 0.1 --retry-after 2 --fail-first 503:3:resolve` (the first three requests whose path
contains "resolve" answer 503).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from hub.emulator.faults import KINDS, FailFirst, Faults
from hub.emulator.server import PAGE_SIZE, serve


def _fail_first(spec: str) -> FailFirst:
    """`KIND[:COUNT[:PATTERN]]`, e.g. `429:2:/api/models`."""
    kind, _, rest = spec.partition(":")
    count, _, pattern = rest.partition(":")
    try:
        return FailFirst(kind, int(count or 1), pattern)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--fail-first {spec!r}: {err}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", required=True, type=Path, help="zoo folder (manifest.json, repos/)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: loopback only)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free one)")
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE, help="items per listing page")
    parser.add_argument("--token", action="append", default=[], help="token unlocking gated repos")
    parser.add_argument(
        "--no-prehash", action="store_true", help="hash files on first request, not at start"
    )
    parser.add_argument(
        "--hash-cache", type=Path, help="JSON file keeping content hashes between runs"
    )
    faults = parser.add_argument_group("faults (deterministic for a given seed)")
    faults.add_argument("--seed", type=int, default=0)
    faults.add_argument("--rate-429", type=float, default=0.0, help="share answered 429")
    faults.add_argument("--retry-after", type=int, default=1, help="seconds announced on 429")
    faults.add_argument("--rate-5xx", type=float, default=0.0, help="share answered 500/502/503")
    faults.add_argument("--rate-truncate", type=float, default=0.0, help="share of cut GET bodies")
    faults.add_argument("--truncate-fraction", type=float, default=0.5, help="share of body sent")
    faults.add_argument("--rate-reset", type=float, default=0.0, help="share of reset connections")
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    faults.add_argument("--fault-pattern", default="", help="regex: paths the random faults hit")
    faults.add_argument(
        "--fail-first",
        type=_fail_first,
        action="append",
        default=[],
        metavar="KIND[:N[:PATTERN]]",
        help=f"fail the first N requests matching PATTERN; KIND in {', '.join(KINDS)}",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.root.is_dir():
        print(f"error: --root {args.root} is not a folder", file=sys.stderr)
        return 2
    try:
        faults = Faults(
            seed=args.seed,
            rate_429=args.rate_429,
            rate_5xx=args.rate_5xx,
            rate_truncate=args.rate_truncate,
            rate_reset=args.rate_reset,
            retry_after=args.retry_after,
            truncate_fraction=args.truncate_fraction,
            latency_s=args.latency,
            pattern=args.fault_pattern,
            fail_first=tuple(args.fail_first),
        )
    except ValueError as err:
        print(f"error: {err} (check the fault options)", file=sys.stderr)
        return 2
    began = time.monotonic()
    server = serve(
        args.root,
        host=args.host,
        port=args.port,
        faults=faults,
        page_size=args.page_size,
        tokens=args.token,
        prehash=not args.no_prehash,
        hash_cache=args.hash_cache,
    )
    repos = len(server.store.ids())
    print(f"serving {repos} repos from {args.root} at {server.url}", flush=True)
    print(f"  ready in {time.monotonic() - began:.1f} s; set HF_ENDPOINT={server.url}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop cleanly: counters, hash cache
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        counters = server.counters
        print(
            f"answered {counters.requests} requests, {counters.bytes_total} body bytes, "
            f"{counters.range_requests} ranged; statuses {counters.statuses}; "
            f"faults {counters.faults}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
