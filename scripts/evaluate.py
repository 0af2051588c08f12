"""Score lineage recovery on a zoo with known truth: the baselines, and the tool's output if given.

    python scripts/evaluate.py --zoo zoo [--tree tree.json --anomalies anomalies.json
                               --pairs pairs.json] [--out docs/evaluation.md]

Without --zoo, a tiny zoo (seed 0) is generated in a temporary folder first. With --out, the
tables replace the block between `<!-- evaluation:begin -->` and `<!-- evaluation:end -->` of
that file (the whole file when it has no such block).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from lineage.lab import baselines, evaluation  # noqa: E402

BEGIN, END = "<!-- evaluation:begin -->", "<!-- evaluation:end -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--zoo", type=Path, help="zoo folder with truth.json (default: a fresh tiny zoo)"
    )
    parser.add_argument("--tree", type=Path, help="the tool's `lineage tree --format json` output")
    parser.add_argument(
        "--anomalies", type=Path, help="the tool's `lineage anomalies --json` output"
    )
    parser.add_argument("--pairs", type=Path, help="pair scores (CSV or JSON of a, b, overlap)")
    parser.add_argument(
        "--name", default="tool", help="row name for the --tree results (default: tool)"
    )
    parser.add_argument("--baselines", default=",".join(baselines.BASELINES),
                        help="comma-separated baselines to run, or 'none' (default: all)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="Markdown file to write the tables into")
    args = parser.parse_args(argv)
    names = () if args.baselines == "none" else tuple(n for n in args.baselines.split(",") if n)
    unknown = [n for n in names if n not in baselines.BASELINES]
    if unknown:
        parser.error(
            f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(baselines.BASELINES)}"
        )
    if args.tree is None and (args.anomalies or args.pairs):
        parser.error("--anomalies and --pairs score the tool's output: give --tree too")
    if args.tree is None and not names:
        parser.error("nothing to score: give --tree or run at least one baseline")

    with tempfile.TemporaryDirectory(prefix="lineage-zoo-") as tmp:
        zoo = args.zoo
        if zoo is None:
            from lineage.lab.zoo import generate_zoo

            zoo = generate_zoo(Path(tmp) / "zoo", size="tiny", seed=0).path
        if not (zoo / "truth.json").is_file():
            print(
                f"error: {zoo} has no truth.json; make a zoo with scripts/make_zoo.py",
                file=sys.stderr,
            )
            return 1
        truth = evaluation.load_truth(zoo)
        reports, timings = [], {}
        for name in names:
            start = time.perf_counter()
            res = baselines.run_baselines(zoo, (name,))[0]
            timings[name] = time.perf_counter() - start
            pairs = (
                [evaluation.Pair(p["a"], p["b"], p["overlap"]) for p in res.pairs]
                if res.pairs
                else None
            )
            reports.append(
                evaluation.evaluate(
                    truth, res.tree, anomalies=res.anomalies, pairs=pairs, name=name
                )
            )
        if args.tree is not None:
            reports.append(
                evaluation.evaluate(
                    truth,
                    evaluation.load_tree(args.tree),
                    anomalies=evaluation.load_anomalies(args.anomalies) if args.anomalies else None,
                    pairs=evaluation.load_pairs(args.pairs) if args.pairs else None,
                    name=args.name,
                )
            )
    command = "python scripts/evaluate.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    text = (
        f"Zoo: {len(truth.models)} models, {len({t.family for t in truth.models.values()})} families, "
        f"seed {truth.seed}. Command: `{command.strip()}`\n\n"
        + evaluation.markdown_report(truth, reports)
    )
    print(text)
    print(
        "baseline run time: " + ", ".join(f"{n} {s:.1f} s" for n, s in timings.items()),
        file=sys.stderr,
    )
    if args.out:
        _write_block(args.out, text)
    return 0


def _write_block(path: Path, text: str) -> None:
    block = f"{BEGIN}\n{text}{END}"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END) :]
    else:
        new = "# Evaluation\n\n" + block + "\n"
    path.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
