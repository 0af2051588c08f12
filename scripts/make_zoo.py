"""Write the model zoo with known lineage (see lineage/lab/zoo.py and docs/evaluation.md).

python scripts/make_zoo.py --out zoo --size tiny --seed 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from lineage.lab.zoo import SIZES, generate_zoo  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", required=True, help="folder to write (a previous zoo there is replaced)"
    )
    parser.add_argument(
        "--size", choices=sorted(SIZES), default="tiny", help="model dimensions (default: tiny)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="everything random follows from it (default: 0)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="processes (default: min(2, CPUs))"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        summary = generate_zoo(args.out, size=args.size, seed=args.seed, workers=args.workers)
    except (FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"wrote {summary.n_models} models in {len(summary.families)} families to {summary.path} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
