"""All-pairs significance at scale, on synthetic signatures of one architecture.

    python scripts/bench_allpairs.py [--sizes 1000 10000] [--families-per-1000 30]

For each size, in a fresh subprocess (so peak memory is that size's own): generate signatures
(64 slots x 512 positions in 2^18-element windows, families as random trees whose children keep
20-95% of their parent's positions), then time `lineage.allpairs.significant_pairs` and report
peak memory (ru_maxrss), pairs found and how many of them are same-family. Writes a table into
docs/benchmarks.md between its markers.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdoc import publish, table  # noqa: E402


def one(n_models: int, n_families: int) -> dict:
    import resource

    from lineage.allpairs import significant_pairs
    from lineage.lab.synthetic import synthetic_signatures

    t = time.perf_counter()
    sigs, family = synthetic_signatures(n_models, n_families, seed=1)
    gen_s = time.perf_counter() - t
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    stats = significant_pairs(sigs, device="cpu")
    pairs_s = time.perf_counter() - t
    ids = stats.ids
    same = sum(
        family[ids[i]] == family[ids[j]]
        for i, j in zip(stats.i.tolist(), stats.j.tolist(), strict=True)
    )
    return {
        "models": n_models,
        "families": n_families,
        "mode": stats.mode,
        "generate_s": round(gen_s, 1),
        "allpairs_s": round(pairs_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_before_mb": round(base_rss / 1024),
        "pairs_tested": stats.pairs_tested,
        "significant": int(stats.i.size),
        "same_family": int(same),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--families-per-1000", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    ap.add_argument("--one", type=int, nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return 0
    rows = []
    for n in args.sizes:
        fam = max(1, n * args.families_per_1000 // 1000)
        res = subprocess.run(
            [sys.executable, __file__, "--one", str(n), str(fam)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(rows[-1], file=sys.stderr)
    cells = [
        (
            f"{r['models']:,}",
            r["families"],
            r["mode"],
            f"{r['allpairs_s']} s",
            f"{r['peak_rss_mb']:,} MB ({r['rss_before_mb']:,} MB holding the signatures)",
            f"{r['pairs_tested']:,}",
            f"{r['significant']:,}",
            f"{r['same_family']:,}",
        )
        for r in rows
    ]
    header = ("models", "families", "mode", "all-pairs time", "peak memory", "pairs tested",
              "significant", "of them same-family")  # fmt: skip
    return publish(
        args.out,
        "bench_allpairs",
        "All pairs at scale",
        [
            f"Command: `python scripts/bench_allpairs.py --sizes {' '.join(map(str, args.sizes))}` on "
            f"{platform.machine()}, 2 cores, {time.strftime('%Y-%m-%d')}. Signatures are synthetic "
            "(64 slots, k=512, window 2^18); time is `significant_pairs` alone (CPU), "
            "signature generation excluded.",
            "",
            *table(header, cells),
            "",
            "Target (issue 5): 10,000 models in under a minute on this CPU.",
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
