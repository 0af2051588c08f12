"""Grassmann similarity of sibling, unrelated and random LoRA adapters, trained for real.

    python scripts/adapter_similarity.py [--seeds 0 1 2 3 4] [--out docs/adapters.md]

Per seed `lineage.lab.adapters.run_seed` trains a tiny base, two siblings (same data, other
init and batch order), an adapter on other data and a random one, writes them as PEFT folders
and compares them with `lineage.adapters.compare_adapters`. Prints the summary over seeds
(mean and range per kind, with the k/d baseline) and the per-seed numbers; with --out the
tables replace the block between `<!-- adapters:begin -->` and `<!-- adapters:end -->`.
About 25 s per seed on one torch thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdoc import replace_block  # noqa: E402

from lineage.lab import adapters  # noqa: E402


def _stat(values: list[float]) -> str:
    return f"{sum(values) / len(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def tables(scores: list[adapters.PairScore]) -> list[str]:
    """The summary table (mean [min, max] over seeds per kind) and the per-seed table."""
    lines = [
        "| pair | pairs | similarity | left (output side) | right (input side) "
        "| random baseline k/d | modules |",
        "|---|---:|---|---|---|---:|---:|",
    ]
    for kind in adapters.KINDS:
        got = [s.result for s in scores if s.kind == kind]
        if not got:
            continue
        lines.append(
            f"| {kind} | {len(got)} | {_stat([r.similarity for r in got])} "
            f"| {_stat([r.left for r in got])} | {_stat([r.right for r in got])} "
            f"| {got[0].baseline:.3f} | {got[0].modules_compared} |"
        )
    lines += [
        "",
        "| seed | " + " | ".join(adapters.KINDS) + " |",
        "|---:|" + "---:|" * len(adapters.KINDS),
    ]
    for seed in sorted({s.seed for s in scores}):
        row = {s.kind: s.result for s in scores if s.seed == seed}
        cells = " | ".join(f"{row[k].similarity:.3f}" if k in row else "" for k in adapters.KINDS)
        lines.append(f"| {seed} | {cells} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, help="Markdown file to write the tables into")
    args = parser.parse_args(argv)
    start, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        scores = adapters.run(args.seeds, Path(tmp))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    a = adapters.ARCH
    lines = [
        f"Command: `python scripts/adapter_similarity.py --seeds {' '.join(map(str, args.seeds))}`"
        f" ({elapsed:.0f} s wall, {cpu:.0f} s CPU). Base: Llama-style, hidden {a.hidden}, {a.layers} layers, vocab "
        f"{a.vocab}; adapters r = {adapters.RANK}, alpha = {adapters.ALPHA:g} on q_proj and "
        f"v_proj, {adapters.ADAPTER_TRAINING.steps} AdamW steps; k = r = {adapters.RANK} "
        f"directions per module. Full fine-tunes: {adapters.FINETUNE_TRAINING.steps} steps, "
        f"top {adapters.FINETUNE_K} directions of child - base per block matrix.",
        "",
        *tables(scores),
    ]
    print("\n".join(lines))
    if args.out:
        replace_block(args.out, "adapters", "\n".join(lines), new_doc="# Adapters and siblings\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
