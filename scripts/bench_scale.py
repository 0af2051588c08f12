"""Candidate search for millions of models: the sketch index (`lineage.sketch_index`) at scale.

    python scripts/bench_scale.py [--sizes 10000 30000 100000] [--no-recall] [--no-million]
        [--out docs/benchmarks.md]

One synthetic Hub (`lineage.lab.synthetic.SyntheticHub`, seed 1: one architecture, 64 slots x
512 positions in 2^18-element windows, families of mean size 33 whose children keep 20-95% of
their parent's positions) is streamed once and appended to one index; at each size the index
is measured as it stands: build time so far, bytes per model, and queries by new uploads (the
next models of the Hub: related, their family is indexed) and by roots of another seed
(unrelated), each as candidate search alone and as the scan's whole match
(`lineage.sketch_scan.SketchMatcher.matches`: candidates, expansion, the exact pre-check on
each candidate's stored positions, `compare` of those that pass), with the scan's `top` 5 and
with every match. A stored model is read from its signature blob (`read_positions`, then
`Signature.from_bytes` for `compare`), through a real SQLite store as `lineage scan` reads it
(timed); its blob is made from the Hub (every slot topped up to exactly k positions, as real
signatures have them: `full_k`) and written to the store when a first, untimed scan of the
query asks for it.
Recall (unless --no-recall): at 10,000 models, 1,000 indexed models as queries (the first
10,000 of the seed-1 Hub, whose parameters the index's defaults were chosen on) and the same on
a held-out seed, against exact counts: a pair is related when its exact shared total reaches
the critical total at alpha 0.01 / N, `compare`'s test; a sample of such pairs near the
threshold is checked against `compare` itself. With --million, 1,000,000 models as sketch
postings made directly (no signatures: families are stars around their root in sketch space,
which is all candidate search sees), queried the same way (candidate search only).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdoc import publish, table  # noqa: E402

from fingerprint import significance  # noqa: E402
from fingerprint.comparison import compare  # noqa: E402
from fingerprint.signature import Signature  # noqa: E402
from lineage.lab.synthetic import SyntheticHub  # noqa: E402
from lineage.sketch_index import (  # noqa: E402
    DEFAULT_EXPAND,
    DEFAULT_EXPAND_SHARED,
    DEFAULT_MAX_CODES,
    DEFAULT_MIN_SHARED,
    DEFAULT_RATE,
    MAX_SEGMENT,
    SketchIndex,
    segment_counts,
    sketch_codes,
    sketch_rows,
    slot_salt,
)
from lineage.sketch_scan import SketchMatcher, StoreSource  # noqa: E402
from lineage.sketch_segments import jit_enabled  # noqa: E402
from lineage.sketch_verify import StoredPositions  # noqa: E402

QUERIES = 10
RECALL_QUERIES = 1000


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hub_codes(salts: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """`sketch_codes` of a Hub model from its drawn positions (equal: tested)."""
    return sketch_rows(salts, pos)


class FamilyTotals:
    """Exact shared totals of every pair inside each family (families are contiguous)."""

    def __init__(self, n: int):
        self.n = n
        self.blocks: dict[int, np.ndarray] = {}  # root -> members' totals
        self._root, self._rows = -1, list[np.ndarray]()

    def add(self, root: int, pos: np.ndarray) -> None:
        if root != self._root:
            self.close()
            self._root, self._rows = root, []
        self._rows.append(np.unique((np.arange(pos.shape[0])[:, None] * self.n + pos).ravel()))

    def close(self) -> None:
        if self._rows:
            cols = np.concatenate(self._rows)
            rows = np.repeat(np.arange(len(self._rows)), [r.size for r in self._rows])
            x = sp.csr_matrix((np.ones(cols.size, np.float32), (rows, cols)))
            self.blocks[self._root] = np.asarray((x @ x.T).todense()).astype(np.int32)
        self._rows = []


def recall(hub: SyntheticHub, index: SketchIndex, totals: FamilyTotals, n: int, seed: int) -> dict:
    crit = significance.critical_total([(hub.params.window, hub.params.k)] * hub.slots, 0.01 / n)
    rng = np.random.default_rng(seed)
    related = found = verified = 0
    near: list[tuple[int, int]] = []
    for q in rng.choice(n, size=RECALL_QUERIES, replace=False).tolist():
        root = int(hub.root[q])
        block = totals.blocks[root]
        members = np.arange(root, root + block.shape[0])
        mine = block[q - root]
        truth = {int(m) for m, t in zip(members, mine, strict=True) if m != q and t >= crit}
        related += len(truth)
        near += [(q, m) for m in truth if mine[m - root] < 2 * crit]
        calls = [0]

        def verify(c, root=root, mine=mine, block=block, calls=calls) -> bool:
            calls[0] += 1
            r = c.row
            return int(hub.root[r]) == root and int(mine[r - root]) >= crit

        hits = index.related(index.codes_of(hub.model_id(q)), verify, exclude=[hub.model_id(q)])
        found += sum(1 for c in hits if c.row in truth)
        verified += calls[0]
    # the oracle against `compare` itself, on related pairs near the threshold (the hard ones)
    sample = [near[i] for i in rng.choice(len(near), size=min(40, len(near)), replace=False)]
    agree = sum(
        compare(hub.signature(a), hub.signature(b), alpha=0.01 / n).verdict != "unrelated"
        for a, b in sample
    )
    return {
        "related": related,
        "recall": found / max(1, related),
        "verified": verified / RECALL_QUERIES,
        "crit": crit,
        "agree": f"{agree}/{len(sample)}",
    }


def full_k(sig: Signature) -> Signature:
    """`sig` with every slot topped up to exactly k positions, as a real signature has them (the
    synthetic Hub's rows lose ~0.5 positions to repeats; left so, every pair would have a null
    of its own, whose convolution real signatures never pay). The added positions are drawn
    from the model's id, so a model's blob is the same whenever it is made."""
    k = sig.params.k
    rng = np.random.default_rng(int.from_bytes(sig.model_id.encode()[-8:], "little"))
    slots = []
    for s in sig.slots:
        pos = s.positions
        while pos.size < k:
            pos = np.union1d(pos, rng.integers(0, s.n, size=k - pos.size)).astype(np.uint32)
        slots.append(dataclasses.replace(s, positions=pos))
    return dataclasses.replace(sig, slots=tuple(slots))


class HubSource:
    """Stored models of a synthetic Hub for `SketchMatcher`, in a real SQLite store
    (`lineage.store.Store`) read through `StoreSource`, as `lineage scan` reads a store's
    blobs (timed). A model's blob is made from the Hub and written the first time a scan asks
    for it (the making and writing are counted in `excluded`, to be taken off the times);
    `query_times` runs every query once before timing it, so the timed scans only read."""

    def __init__(self, hub: SyntheticHub, folder: Path):
        from lineage.catalogue import Catalogue
        from lineage.store import Store

        self.hub = hub
        folder.mkdir(parents=True, exist_ok=True)
        self.store = Store(folder / "stored.sqlite")
        self.catalogue = Catalogue(self.store, hub.params)
        self.reader = StoreSource(self.catalogue)
        self.written: set[str] = set()
        self.excluded = self.excluded_cpu = 0.0
        self.screened = self.compared = 0

    def _write(self, model_id: str) -> None:
        if model_id in self.written:
            return
        from hub.records import ModelRecord

        t, c = time.perf_counter(), time.process_time()
        rec = ModelRecord(id=model_id, revision="r")
        self.store.upsert_model(rec)
        self.catalogue.put(rec, full_k(self.hub.signature(int(model_id[1:]))))
        self.written.add(model_id)
        self.excluded += time.perf_counter() - t
        self.excluded_cpu += time.process_time() - c

    def read_ahead(self, model_ids: list[str]) -> None:
        for model_id in model_ids:
            self._write(model_id)
        self.reader.read_ahead(model_ids)

    def positions(self, model_id: str) -> StoredPositions | None:
        self.screened += 1
        self._write(model_id)
        return self.reader.positions(model_id)

    def signature(self, model_id: str) -> Signature | None:
        self.compared += 1
        self._write(model_id)
        return self.reader.signature(model_id)


def query_times(matcher: SketchMatcher, source: HubSource, queries: list) -> dict:
    """Times of `queries` (signatures) against `matcher`, whose stored models `source` makes."""
    out: dict[str, list[float]] = {
        k: []
        for k in ("cand", "top", "top_cpu", "all", "direct", "screened", "compared", "matches")
    }
    for sig in queries:
        matcher.matches(sig)  # every model it reads written to the store, not timed
        t = time.perf_counter()
        direct = matcher.index.candidates(sketch_codes(sig), min_shared=DEFAULT_MIN_SHARED)
        out["cand"].append((time.perf_counter() - t) * 1e3)
        out["direct"].append(len(direct))
        for mode, top in (("top", 5), ("all", None)):
            source.excluded, source.excluded_cpu, source.screened, source.compared = 0, 0, 0, 0
            t, c = time.perf_counter(), time.process_time()
            found = matcher.matches(sig, top=top)
            out[mode].append((time.perf_counter() - t - source.excluded) * 1e3)
            cpu = (time.process_time() - c - source.excluded_cpu) * 1e3
            if top is None:
                out["screened"].append(source.screened)
                out["compared"].append(source.compared)
                out["matches"].append(len(found))
            else:
                out["compared_top"] = [*out.get("compared_top", []), source.compared]
                out["top_cpu"].append(cpu)
    return {
        **{
            k: (np.median(out[k]), np.percentile(out[k], 95))
            for k in ("cand", "top", "top_cpu", "all")
        },
        **{k: float(np.mean(out[k])) for k in ("direct", "screened", "compared", "matches")},
        "compared_top": float(np.mean(out["compared_top"])),
    }


def scale(sizes: list[int], workdir: Path, with_recall: bool) -> tuple[list[dict], dict, dict]:
    top = max(sizes)
    hub = SyntheticHub(top + 1000, seed=1)
    others = SyntheticHub(5000, seed=99)  # unrelated uploads: roots of another Hub
    salts = np.array([slot_salt(k) for k in hub.keys], dtype=np.uint64)
    index = SketchIndex(workdir / "scale")
    totals = FamilyTotals(hub.params.window)
    rows, build_s, recall_10k = [], 0.0, {}
    batch: list[tuple[str, np.ndarray]] = []
    for m, pos in hub.stream(0, top):
        if m < 10_000 and with_recall:
            totals.add(int(hub.root[m]), pos)
        batch.append((hub.model_id(m), hub_codes(salts, pos)))
        if len(batch) == 1024 or m + 1 in sizes or m + 1 == top:
            t = time.perf_counter()
            index.extend(batch)
            build_s += time.perf_counter() - t
            batch = []
        if m + 1 == 10_000 and with_recall:
            totals.close()
            recall_10k = recall(hub, index, totals, 10_000, seed=5)
            print("recall seed 1", recall_10k, flush=True)
            totals.blocks.clear()
        if m + 1 in sizes:
            n = m + 1
            live = {hub.model_id(x): None for x in range(n)}
            source = HubSource(hub, workdir / f"stored-{n}")
            matcher = SketchMatcher(index, source, hub.params, live)
            new = [x for x in range(n, n + 300) if hub.root[x] < n][:QUERIES]
            rel = query_times(matcher, source, [full_k(hub.signature(x)) for x in new])
            roots = [x for x in range(others.n_models) if others.parent[x] < 0][:QUERIES]
            unrel = query_times(matcher, source, [full_k(others.signature(x)) for x in roots])
            b = index.nbytes()
            rows.append(
                {
                    "n": n,
                    "build_s": build_s,
                    "disk": (b["log"] + b["postings"]) / n,
                    "disk_mb": (b["log"] + b["postings"]) / 2**20,
                    "mem": index.memory_bytes() / n,
                    "rel": rel,
                    "unrel": unrel,
                    "peak": peak_mb(),
                }
            )
            print(rows[-1], flush=True)
    if not with_recall:
        return rows, {}, {}
    # held-out seed: its own 10,000-model Hub and index
    held = SyntheticHub(10_000, seed=2)
    hidx = SketchIndex(workdir / "held")
    htot = FamilyTotals(held.params.window)
    items = []
    for m, pos in held.stream():
        htot.add(int(held.root[m]), pos)
        items.append((held.model_id(m), hub_codes(salts, pos)))
    htot.close()
    hidx.extend(items)
    return rows, recall_10k, recall(held, hidx, htot, 10_000, seed=6)


def million(n_models: int = 1_000_000, seed: int = 3) -> dict:
    """Sketch postings of `n_models` made directly, in segments as the index keeps them."""
    rng = np.random.default_rng(seed)
    universe = 64 * (1 << 18) // DEFAULT_RATE  # sampled (slot, position) pairs of an architecture
    table = np.unique(rng.integers(0, 1 << 32, size=universe + 4096, dtype=np.uint32))[:universe]
    per = DEFAULT_MAX_CODES
    t = time.perf_counter()
    segments, family_roots = [], None
    for start in range(0, n_models, MAX_SEGMENT):
        size = min(MAX_SEGMENT, n_models - start)
        is_root = rng.random(size) < 1 / 33
        is_root[0] = True
        root = np.maximum.accumulate(np.where(is_root, np.arange(size), 0))
        idx = rng.integers(0, universe, size=(size, per), dtype=np.int32)
        keep = rng.random((size, per)) < rng.uniform(0.2, 0.95, size)[:, None]
        keep[is_root] = False
        idx = np.where(keep, idx[root], idx)
        flat = idx.ravel()
        order = np.argsort(flat)
        rows = (order // per).astype(np.uint16)
        srt = flat[order]
        del order
        head = np.flatnonzero(np.r_[True, srt[1:] != srt[:-1]])
        keys, starts = table[srt[head]], np.r_[head, srt.size].astype(np.uint32)
        segments.append((start, size, keys, starts, rows))
        family_roots = (idx[root[-1]], size - 1)  # the last family: related queries
        del idx, keep, flat, srt
    build = time.perf_counter() - t
    assert family_roots is not None
    root_idx = family_roots[0]

    def query(codes: np.ndarray) -> float:
        t0 = time.perf_counter()
        q = np.unique(codes)
        hits = [segment_counts(k, s, r, q, size) for _, size, k, s, r in segments]
        _ = [c[c >= DEFAULT_MIN_SHARED].size for _, c in hits]
        return (time.perf_counter() - t0) * 1e3

    rel, unrel = [], []
    for _ in range(QUERIES):
        fresh = rng.integers(0, universe, size=per)
        keep = rng.random(per) < rng.uniform(0.2, 0.95)
        rel.append(query(table[np.where(keep, root_idx, fresh)]))
        unrel.append(query(table[rng.integers(0, universe, size=per)]))
    mem = sum(k.nbytes + s.nbytes + r.nbytes for *_, k, s, r in segments)
    return {
        "n": n_models,
        "build_s": build,
        "mem": mem / n_models,
        "rel": (np.median(rel), np.percentile(rel, 95)),
        "unrel": (np.median(unrel), np.percentile(unrel, 95)),
        "peak": peak_mb(),
    }


def fit(ns: list[int], ys: list[float]) -> float:
    return float(np.polyfit(np.log(ns), np.log(ys), 1)[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    ap.add_argument("--million", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument(
        "--recall",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure recall at 10,000 models (most of the default run's time)",
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows, tuned, held = scale(sorted(args.sizes), Path(tmp), args.recall)
    big = million() if args.million else None
    wall = time.perf_counter() - t0

    def ms(pair: tuple[float, float]) -> str:
        return f"{pair[0]:.1f} / {pair[1]:.1f}"

    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Command: `python scripts/bench_scale.py --sizes {' '.join(map(str, args.sizes))}"
        f"{'' if args.recall else ' --no-recall'}{'' if args.million else ' --no-million'}` on "
        f"{platform.machine()}, 2 cores shared with other work (load average {load} at the "
        f"end), {date.today()}, {wall:.0f} s in all. Index defaults: rate 1/{DEFAULT_RATE}, at "
        f"most {DEFAULT_MAX_CODES} codes a model, candidates at >= {DEFAULT_MIN_SHARED} shared "
        f"codes, up to {DEFAULT_EXPAND} expansions through candidates that pass the pre-check "
        f"(their candidates at >= {DEFAULT_EXPAND_SHARED}) (`lineage.sketch_index`, "
        "`lineage.sketch_scan`). Synthetic Hub (`SyntheticHub`, seed 1): one architecture, 64 "
        "slots x 512 positions, families of mean size 33. Counting and the pre-check: "
        + (
            "compiled (numba, `lineage.sketch_jit`)."
            if jit_enabled()
            else "numpy (numba absent or LINEAGE_NO_JIT=1)."
        ),
    ]
    if args.recall:
        lines += [
            "",
            "Recall of related pairs at 10,000 models (1,000 indexed models as queries; related "
            "= exact shared total at or above the critical total at alpha 0.01 / N, `compare`'s "
            "test):",
            "",
            *table(
                [
                    "Hub",
                    "related pairs",
                    "recall",
                    "candidates verified / query",
                    "critical total",
                    "near-threshold pairs `compare` confirms",
                ],
                [
                    [
                        name,
                        f"{r['related']:,}",
                        f"{r['recall']:.4f}",
                        f"{r['verified']:.1f}",
                        r["crit"],
                        r["agree"],
                    ]
                    for name, r in (
                        ("seed 1 (defaults chosen on it)", tuned),
                        ("seed 2 (held out)", held),
                    )
                ],
            ),
        ]
    lines += [
        "",
        f"Scale (times in ms, median / p95 of {QUERIES} queries; 'candidates' = candidate "
        "search alone; 'scan' = `SketchMatcher.matches` with the scan's top 5, 'all' = every "
        "match: candidates, expansion, the pre-check of each candidate on its stored positions, "
        "`compare` of those that pass, each stored model read from a real SQLite store "
        "(`StoreSource`: its model row, its signature row and blob, `read_positions`, and "
        "`Signature.from_bytes` for those compared), timed; the blobs are written to the store "
        "before timing, each query scanned once first; 'CPU' = the process's CPU time for the "
        "same calls, what a quiet core would take; peak = process maxrss so far, Hub "
        "generation included):",
        "",
        *table(
            [
                "models",
                "build (s, cumulative)",
                "index on disk",
                "bytes / model in memory",
                "query",
                "candidates",
                "scan (top 5)",
                "scan (top 5), CPU",
                "all matches",
                "direct candidates, screened, compared (top 5 / all), matches",
                "peak MB",
            ],
            [
                [
                    f"{r['n']:,}" if kind == "related" else "",
                    f"{r['build_s']:.1f}" if kind == "related" else "",
                    f"{r['disk_mb']:,.0f} MB ({r['disk']:,.0f} B / model)"
                    if kind == "related"
                    else "",
                    f"{r['mem']:,.0f}" if kind == "related" else "",
                    kind,
                    ms(q["cand"]),
                    ms(q["top"]),
                    ms(q["top_cpu"]),
                    ms(q["all"]),
                    f"{q['direct']:.1f}, {q['screened']:.1f}, {q['compared_top']:.1f} / "
                    f"{q['compared']:.1f}, {q['matches']:.1f}",
                    f"{r['peak']:,.0f}" if kind == "related" else "",
                ]
                for r in rows
                for kind, q in (("related", r["rel"]), ("unrelated", r["unrel"]))
            ],
        ),
    ]
    ns = [r["n"] for r in rows]
    if len(ns) > 1:
        lines += [
            "",
            "Growth (fitted exponent of n): candidate search (related) "
            f"{fit(ns, [r['rel']['cand'][0] for r in rows]):.2f}, (unrelated) "
            f"{fit(ns, [r['unrel']['cand'][0] for r in rows]):.2f}; scan (related) "
            f"{fit(ns, [r['rel']['top'][0] for r in rows]):.2f}, (unrelated) "
            f"{fit(ns, [r['unrel']['top'][0] for r in rows]):.2f}; build "
            f"{fit(ns, [r['build_s'] for r in rows]):.2f}.",
        ]
    if big:
        lines += [
            "",
            f"One new model against {big['n']:,} known, synthetic sketch postings only (made "
            "directly in sketch space, no full signatures: candidate search needs none; no "
            "verification): related "
            f"{ms(big['rel'])} ms, unrelated {ms(big['unrel'])} ms (median / p95); postings "
            f"{big['mem']:,.0f} bytes / model in memory; made in {big['build_s']:.0f} s; peak "
            f"{big['peak']:,.0f} MB.",
        ]
    lines += [
        "",
        "Targets (issues 11, 15): recall >= 0.99 at 10k; < 100 ms against 100k (median, index "
        "loaded), < 1 s against 1M; <= 4 KB per model in memory; index <= 1 GB for 100k.",
    ]
    return publish(args.out, "bench_scale", "Candidate search at scale", lines)


if __name__ == "__main__":
    raise SystemExit(main())
