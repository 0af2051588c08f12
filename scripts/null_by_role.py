"""How well the pair test's null holds, per role, on zoo pairs that are unrelated by construction.

    python scripts/null_by_role.py DEMO_DIR [DEMO_DIR ...] [--out docs/evaluation.md]

Each DEMO_DIR is the output of `lineage demo --seed N --out DEMO_DIR` (its `zoo/truth.json`
and `lineage.db`). Every pair of models of different families and the same architecture is
compared; per role the script prints shared positions against what the null expects, how often
a slot's own tail falls below 1e-2 and 1e-3 against how often it should, and the verdicts those
pairs got (anything but "unrelated" is a false claim). With --out the tables replace the block
between `<!-- null:begin -->` and `<!-- null:end -->` of that file.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdoc import replace_block  # noqa: E402

from lineage.catalogue import load_inputs  # noqa: E402
from lineage.lab import evaluation, null_check  # noqa: E402
from lineage.store import Store  # noqa: E402


def _label(demo: Path, truth: evaluation.Truth) -> str:
    return f"zoo seed {truth.seed}" if truth.seed is not None else demo.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demos", type=Path, nargs="+", help="`lineage demo --out` folders")
    parser.add_argument("--out", type=Path, help="Markdown file to write the tables into")
    args = parser.parse_args(argv)
    rows = []
    for demo in args.demos:
        truth_path, db = demo / "zoo" / "truth.json", demo / "lineage.db"
        if not truth_path.is_file() or not db.is_file():
            parser.error(
                f"{demo} holds no zoo/truth.json and lineage.db: run `lineage demo --out {demo}`"
            )
        truth = evaluation.load_truth(truth_path)
        with Store(db) as store:
            _, sigs = load_inputs(store)
        pairs = null_check.unrelated_pairs(
            {m.id: m.family for m in truth.models.values()},
            {m.id: m.arch for m in truth.models.values()},
        )
        rows.append((_label(demo, truth), null_check.check(sigs, pairs)))
    lines = [
        f"Command: `python scripts/null_by_role.py {' '.join(shlex.quote(str(d)) for d in args.demos)}`",
        "",
        *null_check.table(rows),
        "",
        *null_check.verdict_table(rows),
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        replace_block(args.out, "null", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
