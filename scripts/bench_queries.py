"""Queries on a large store: tree, anomalies and audit, built once and then read back.

    python scripts/bench_queries.py [--models 1000] [--families 30] [--out docs/benchmarks.md]
        [--before FILE --before-label TEXT]

Makes a store of synthetic models (`lineage.lab.synthetic`: families as random trees of
signatures, with Hub-like records), then runs whole `lineage` processes against it, as a user
would, and reports wall time and peak memory (GNU time's %M) of each: the first `tree` (all
pairs, the per-slot comparisons of the significant ones, the graph; stored), a second `tree`
and `anomalies` (read back: the store did not change), `audit` of one model, and a `tree` that
rebuilds (`--no-reuse` has no CLI flag: a model's downloads change, so the store's state does).
Also the database size and the machine's load average (the numbers depend on it). Writes a
table into docs/benchmarks.md between its markers. `--before FILE`: a Markdown file an earlier
run wrote with `--out` (at another commit, say); its wall and peak columns join the table,
query by query, so one section shows before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdoc import publish, table  # noqa: E402


def make_store(path: Path, n_models: int, n_families: int) -> str:
    """The store of synthetic models; returns one model id to audit."""
    from lineage.lab.synthetic import store_synthetic, synthetic_signatures

    sigs, _ = synthetic_signatures(n_models, n_families, seed=1)
    store_synthetic(path, sigs)
    return sorted(sigs)[n_models // 2]


def timed(db: Path, *args: str) -> tuple[float, float | None]:
    """(wall seconds, peak MB) of one `lineage` process; peak None without GNU time."""
    cmd = [sys.executable, "-m", "lineage", "--db", str(db), *args]
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if gnu_time:
        cmd = [gnu_time, "-f", "%M", *cmd]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"lineage {' '.join(args)} failed: {out.stderr.strip()[-300:]}")
    peak = float(out.stderr.strip().splitlines()[-1]) / 1024 if gnu_time else None
    return wall, peak


def before_rows(path: Path) -> dict[str, tuple[str, str]]:
    """query -> (wall, peak memory) from the bench_queries table of an earlier run's file."""
    doc = path.read_text()
    if "<!-- bench_queries:begin -->" not in doc:
        raise SystemExit(f"{path} holds no bench_queries section; pass a file written by --out")
    block = doc.split("<!-- bench_queries:begin -->", 1)[1].split("<!-- bench_queries:end -->")[0]
    rows = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] not in ("query", "") and not cells[0].startswith("-"):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def commit() -> str:
    """The checkout's short commit, with `+` when the work tree has changes ('' without git)."""
    root = Path(__file__).parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=root,
        ).stdout.strip()
    except OSError:
        return ""
    return head + ("+" if dirty else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--families", type=int, default=30)
    ap.add_argument("--out", type=Path, help="Markdown file to write the table into")
    ap.add_argument("--before", type=Path, help="an earlier run's --out file, shown beside")
    ap.add_argument("--before-label", default="before", help="what the earlier run measured")
    args = ap.parse_args()
    before = before_rows(args.before) if args.before else None
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="lineage-bench-queries-") as tmp:
        db = Path(tmp) / "lineage.db"
        t = time.perf_counter()
        audit_id = make_store(db, args.models, args.families)
        made = time.perf_counter() - t
        rows = []
        for label, cmd in (
            ("tree, first (builds and stores the graph)", ("tree",)),
            ("tree, again (reads the stored graph)", ("tree",)),
            ("anomalies (reads it)", ("anomalies", "--json")),
            ("audit one model", ("audit", audit_id)),
        ):
            wall, peak = timed(db, *cmd)
            load.append(os.getloadavg()[0])
            rows.append((label, f"{wall:.2f} s", f"{peak:.0f} MB" if peak else "n/a"))
        from hub.records import ModelRecord
        from lineage.store import Store

        with Store(db) as store:  # one model's downloads change: the next tree rebuilds
            rec = store.get_model(audit_id)
            assert isinstance(rec, ModelRecord)
            store.upsert_model(dataclasses.replace(rec, downloads=(rec.downloads or 0) + 1))
        wall, peak = timed(db, "tree")
        load.append(os.getloadavg()[0])
        rows.append(
            (
                "tree after a change (rebuild, pairs cached)",
                f"{wall:.2f} s",
                f"{peak:.0f} MB" if peak else "n/a",
            )
        )
        size = db.stat().st_size / 2**20
    header = ["query", "wall", "peak memory"]
    if before is not None:
        header += [f"wall, {args.before_label}", f"peak, {args.before_label}"]
        rows = [(*r, *before.get(r[0], ("-", "-"))) for r in rows]
    at = commit()
    lines = [
        f"Command: `python scripts/bench_queries.py --models {args.models} --families "
        f"{args.families}` on {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_version()}{f', commit {at}' if at else ''}; whole processes, as a "
        f"user runs them. Store made in {made:.0f} s; database {size:.0f} MB. Load average "
        f"(1 min) {min(load):.1f}-{max(load):.1f} while it ran.",
        "",
        *table(header, rows),
    ]
    return publish(args.out, "bench_queries", f"Queries on a {args.models}-model store", lines)


if __name__ == "__main__":
    raise SystemExit(main())
