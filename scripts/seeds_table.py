"""One row per zoo seed: the tool's accuracy on `lineage demo` folders, tuned and held-out seeds
apart.

    python scripts/seeds_table.py DEMO_DIR [DEMO_DIR ...] [--tuned 0,1,2] [--out docs/evaluation.md]

Each DEMO_DIR is the output of `lineage demo --seed N --out DEMO_DIR`. A row: parent accuracy,
merges with at least one parent right, family ARI, anomaly precision / recall, the verdicts the
tool gave to unrelated same-architecture pairs (any "derived" or "cousin" is a false claim), and
the related pairs (same family) it found (verdict derived or identical). Seeds in --tuned are
those the graph's priors were chosen on; the others are held out. With --out the table replaces
the block between `<!-- seeds:begin -->` and `<!-- seeds:end -->`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdoc import replace_block  # noqa: E402

from fingerprint.comparison import DERIVED  # noqa: E402
from lineage.lab import evaluation  # noqa: E402

CLAIMS = ("derived", "identical", "cousin")


def _rate(r: evaluation.Rate) -> str:
    return f"{r.value:.2f} ({r.correct}/{r.total})" if r.value is not None else "n/a"


def row(demo: Path, tuned: set[int]) -> tuple[int, str]:
    truth = evaluation.load_truth(demo / "zoo" / "truth.json")
    report = evaluation.evaluate(
        truth,
        evaluation.load_tree(demo / "exports" / "tree.json"),
        anomalies=evaluation.load_anomalies(demo / "exports" / "anomalies.json"),
    )
    verdicts = {
        frozenset((p["a"], p["b"])): p["verdict"]
        for p in json.loads((demo / "exports" / "pairs.json").read_text())
    }
    models = truth.models
    same_arch = [
        (a, b)
        for a, b in itertools.combinations(sorted(models), 2)
        if models[a].arch == models[b].arch
    ]
    unrelated = [p for p in same_arch if models[p[0]].family != models[p[1]].family]
    related = [p for p in same_arch if models[p[0]].family == models[p[1]].family]
    false = sum(verdicts.get(frozenset(p)) in CLAIMS for p in unrelated)
    found = sum(verdicts.get(frozenset(p)) in DERIVED for p in related)
    a = report.anomalies["all"] if report.anomalies else None
    seed = truth.seed if truth.seed is not None else -1
    cells = [
        str(seed),
        "tuned" if seed in tuned else "held out",
        _rate(report.parents.overall),
        f"{report.parents.merge_any_parent.correct}/{report.parents.merge_any_parent.total}",
        f"{report.ari:.3f}",
        f"{a.precision:.3f} / {a.recall:.3f}" if a and a.precision is not None else "n/a",
        f"{false} of {len(unrelated)}",
        f"{found} / {len(related)}",
    ]
    return seed, "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demos", type=Path, nargs="+", help="`lineage demo --out` folders")
    parser.add_argument("--tuned", default="0,1,2", help="seeds the priors were chosen on")
    parser.add_argument("--out", type=Path, help="Markdown file to write the table into")
    args = parser.parse_args(argv)
    tuned = {int(s) for s in args.tuned.split(",") if s}
    for demo in args.demos:
        if not (demo / "exports" / "tree.json").is_file():
            parser.error(f"{demo} holds no exports/tree.json: run `lineage demo --out {demo}`")
    rows = sorted(row(d, tuned) for d in args.demos)
    text = "\n".join(
        [
            f"Command: `python scripts/seeds_table.py {' '.join(shlex.quote(str(d)) for d in args.demos)}`",
            "",
            "| seed | role | parent accuracy | merges (>=1 parent) | family ARI | anomalies P / R "
            "| unrelated same-arch pairs called derived or cousin | related pairs found |",
            "|---|---|---|---|---|---|---|---|",
            *(r for _, r in rows),
        ]
    )
    print(text)
    if args.out:
        replace_block(args.out, "seeds", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
