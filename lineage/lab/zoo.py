"""A model zoo with known lineage: tiny real models written as Hugging Face repos, plus the truth.

`generate_zoo(out_dir, size="tiny", seed=0)` trains several independent base models per
architecture, derives the others from them with real recipes (fine-tunes, chains, LoRA, partial
fine-tunes, casts, quantization round trips, merges, re-uploads, vocabulary extensions, disguised
copies), and writes the layout of docs/contracts.md: `manifest.json` (Hub-style metadata),
`truth.json` (what was really done, and every injected anomaly) and `repos/<org>/<name>/`.

The zoo is a pure function of (size, seed): no clock, no global random state, one CPU thread per
worker, sorted JSON. Families are independent, so they are generated in worker processes; the
result does not depend on how many.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from lineage.lab.zoo_meta import metadata, truth, write_card, write_json
from lineage.lab.zoo_plan import PLAN, SIZES, families, root_of
from lineage.lab.zoo_weights import FamilyJob, run_family

__all__ = ["PLAN", "SIZES", "ZooSummary", "generate_zoo"]


@dataclass(frozen=True, slots=True)
class ZooSummary:
    """What `generate_zoo` wrote: model count, family roots, and the zoo folder."""

    n_models: int
    families: tuple[str, ...]
    path: Path


def generate_zoo(
    out_dir: str | os.PathLike, *, size: str = "tiny", seed: int = 0, workers: int | None = None
) -> ZooSummary:
    """Train and write the whole zoo into `out_dir` (replacing a zoo already there).

    Args:
        out_dir: folder to write; created if needed. A non-empty folder that is not a zoo is refused.
        size: "tiny" (seconds), "small" or "large" (models of a few hundred MB).
        seed: everything random (weights, data, downloads, dates) follows from it.
        workers: processes to use; default min(2, CPUs). The files do not depend on it.

    Returns:
        The summary, with `families` the root ids in plan order.
    """
    if size not in SIZES:
        raise ValueError(f"unknown zoo size {size!r}: use one of {', '.join(SIZES)}")
    out = Path(out_dir)
    _prepare(out)
    roots = families(PLAN)
    jobs = [FamilyJob(root, size, seed, str(out)) for root in roots]
    _run_jobs(jobs, workers or min(2, os.cpu_count() or 1))
    metas = metadata(PLAN, seed)
    for spec in PLAN:
        write_card(out / "repos" / spec.id, spec, metas[spec.id])
    write_json(out / "manifest.json", {"models": [metas[s.id] for s in PLAN]})
    write_json(out / "truth.json", truth(PLAN, metas, seed))
    return ZooSummary(len(PLAN), tuple(roots), out)


def _run_jobs(jobs: list[FamilyJob], workers: int) -> None:
    """Generate families in `workers` child interpreters (plain subprocesses, not multiprocessing,
    so callers need no `if __name__ == "__main__"` guard), or in this process when workers == 1."""
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            run_family(job)
        return
    # Greedy bin packing by training steps, so the workers finish at about the same time.
    bins: list[list[FamilyJob]] = [[] for _ in range(min(workers, len(jobs)))]
    loads = [0] * len(bins)
    for job in sorted(jobs, key=lambda j: -sum(s.steps for s in PLAN if root_of(s.id) == j.root)):
        i = loads.index(min(loads))
        bins[i].append(job)
        loads[i] += sum(s.steps for s in PLAN if root_of(s.id) == job.root)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    )
    code = "import sys, json; from lineage.lab.zoo import _worker_main; _worker_main(json.load(sys.stdin))"
    with ThreadPoolExecutor(max_workers=len(bins)) as pool:
        runs = [
            pool.submit(subprocess.run, [sys.executable, "-c", code], input=json.dumps([asdict(j) for j in b]),
                        text=True, capture_output=True, env=env)
            for b in bins
        ]  # fmt: skip
        for run in runs:
            done = run.result()
            if done.returncode:
                raise RuntimeError(
                    f"zoo worker failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
                )


def _worker_main(jobs: list[dict]) -> None:
    """Entry point of a worker interpreter: generate the families it was given."""
    for job in jobs:
        run_family(FamilyJob(**job))


def _prepare(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / "manifest.json").exists():
            raise FileExistsError(
                f"{out} is not empty and holds no zoo; choose an empty or new folder"
            )
        shutil.rmtree(out / "repos", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
