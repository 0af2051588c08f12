"""Copy the demo's figures into docs/figures/ and link them from README.md.

    lineage demo --out demo-out && python scripts/readme_figures.py demo-out

The README shows figures the demo generated, never hand-drawn ones; re-run this after changing
the plots or the graph layer.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

BEGIN, END = "<!-- readme-figures:begin -->", "<!-- readme-figures:end -->"
FIGURES = [
    ("tree_aurora-labs_Aurora-Base.png", "The largest recovered family of the demo zoo, one model per row "
     "with its org/name beside its node: indented by generation, node size by downloads, colour by "
     "relation, arm width and number the overlap, the second parent of a merge as a dashed pink arc, "
     "anomalies in red."),
    ("heatmap.png", "Bottom-k overlap between every pair, ordered by recovered family: linear from the "
     "chance level (marked on the colour bar) to 1."),
    ("downloads_vs_overlap.png", "The seed study's question: overlap per download bucket of the derived "
     "model, same vs different family, as box and strip plots on one shared y axis."),
    ("lineage_map.png", "The lineage map: mean overlap against the share of slots left byte-identical; "
     "partial fine-tunes and merged adapters fall in the partly untouched region, recovered edges are "
     "coloured by relation (merges have no region of their own)."),
]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("demo", type=Path, help="the demo's --out folder")
    ap.add_argument("--readme", type=Path, default=Path("README.md"))
    ap.add_argument("--dest", type=Path, default=Path("docs/figures"))
    args = ap.parse_args()
    source = args.demo / "report" / "figures"
    missing = [name for name, _ in FIGURES if not (source / name).is_file()]
    if missing:
        print(
            f"error: {source} lacks {', '.join(missing)}; run `lineage demo --out {args.demo}` first",
            file=sys.stderr,
        )
        return 1
    args.dest.mkdir(parents=True, exist_ok=True)
    lines = [BEGIN]
    for name, caption in FIGURES:
        shutil.copyfile(source / name, args.dest / name)
        rel = (args.dest / name).as_posix()
        lines += [f"![{caption}]({rel})", f"*{caption}*", ""]
    lines.append(END)
    text = args.readme.read_text()
    head, rest = text.split(BEGIN, 1)
    args.readme.write_text(head + "\n".join(lines) + rest.split(END, 1)[1])
    print(f"copied {len(FIGURES)} figures to {args.dest} and updated {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
