"""Ray vs threads: the same crawl of a local Hub under both engines, in models per second.

    python scripts/bench_engine.py [--models 2000] [--workers 4] [--latency-ms 20]
                                   [--dir /tmp/model-lineage-bench-engine] [--out docs/benchmarks.md]

Builds a zoo of `--models` tiny Llama-shaped models (once; later runs reuse it), serves it with
the local Hub server (hub.emulator.server, 127.0.0.1, `--latency-ms` added to every request: what
a real network costs) and crawls it through huggingface_hub twice, each into a fresh database
and window cache: `--engine threads` (`--workers` threads) and `--engine ray` (a local Ray on
this machine's cores; batches of 8 models, `--workers` threads inside each batch; Parquet shards
stored by the driver). Checks that both stores hold byte-identical signatures, prints a table
and writes it into docs/benchmarks.md between its markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdoc import publish, table  # noqa: E402
from benchmodels import llama_layer, write_random_safetensors  # noqa: E402

# Models of the warm-up crawl before each measured one.
WARM = 32


def build_zoo(root: Path, n: int) -> None:
    """`n` tiny models (hidden 64, 2 layers, vocabulary 256: about 200 KB each), written once."""
    models = []
    for i in range(n):
        repo_id = f"tiny/m{i:05d}"
        path = root / "repos" / repo_id / "model.safetensors"
        if not path.exists():
            shapes = [("model.embed_tokens.weight", (256, 64))]
            for layer in range(2):
                shapes += llama_layer(f"model.layers.{layer}.", 64, 128)
            write_random_safetensors(path, shapes, seed=1000 + i)
            (path.parent / "config.json").write_text(json.dumps({"architectures": ["Llama"]}))
        models.append(
            {
                "id": repo_id,
                "author": "tiny",
                "downloads": n - i,
                "createdAt": f"2024-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                "tags": ["safetensors"],
            }
        )
    (root / "manifest.json").write_text(json.dumps({"models": models}))


def crawl_once(url: str, work: Path, **options):
    from lineage.crawler import crawl
    from lineage.store import Store

    folder = Path(tempfile.mkdtemp(prefix=f"{options.get('engine', 'threads')}-", dir=work))
    db = folder / "lineage.db"
    with Store(db) as store:
        t = time.perf_counter()
        summary = crawl(
            store,
            endpoint=url,
            device="cpu",
            cache_dir=folder / "cache",
            token=False,
            hf_cache=False,
            **options,
        )
        elapsed = time.perf_counter() - t
    with sqlite3.connect(db) as con:
        blobs = dict(con.execute("SELECT model_id, blob FROM signatures"))
    return summary, elapsed, blobs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/model-lineage-bench-engine"))
    ap.add_argument("--models", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = ap.parse_args()

    os.environ.update(
        HF_HOME=str(args.dir / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_IMPLICIT_TOKEN="1",
        NO_PROXY="127.0.0.1,localhost",
    )
    import ray
    import torch

    from hub.emulator.faults import Faults
    from hub.emulator.server import serve

    zoo = args.dir / f"zoo-{args.models}"
    print(f"zoo of {args.models} models ...", file=sys.stderr, flush=True)
    build_zoo(zoo, args.models)
    work = args.dir / "runs"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    latency = Faults(latency_s=args.latency_ms / 1000)
    results = []
    warm: dict[str, float] = {}
    with serve(zoo, faults=latency, prehash=True, hash_cache=args.dir / "hashes.json") as server:
        t = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t
        try:
            for engine in ("threads", "ray"):
                # a warm-up crawl of WARM models first (its own database): Ray's workers import
                # torch and lineage once, the thread engine warms torch's kernels
                print(f"{engine} ...", file=sys.stderr, flush=True)
                options = {"workers": args.workers, "engine": engine}
                warm[engine] = crawl_once(server.url, work, limit=WARM, **options)[1]
                results.append((engine, *crawl_once(server.url, work, **options)))
        finally:
            ray.shutdown()
    (_, threads, _, blobs), (_, on_ray, _, ray_blobs) = results
    assert threads.fingerprinted == on_ray.fingerprinted == args.models, (threads, on_ray)
    assert blobs == ray_blobs, "Ray and threads stored different signatures"

    rows = [
        (
            name,
            f"{secs:.1f} s",
            f"{args.models / secs:.1f}",
            f"{s.bytes_fetched / 1e6:,.1f} MB",
            s.fingerprinted,
            f"{warm[name]:.1f} s",
        )
        for name, s, secs, _ in results
    ]
    lines = [
        f"Command: `python scripts/bench_engine.py --models {args.models} --workers "
        f"{args.workers} --latency-ms {args.latency_ms:g}` on {platform.machine()}, "
        f"{os.cpu_count()} cores (shared with other work), torch {torch.__version__} (CPU), "
        f"ray {ray.__version__}, {time.strftime('%Y-%m-%d')}. {args.models} tiny models "
        "(hidden 64, 2 layers) on the local Hub server with "
        f"{args.latency_ms:g} ms added to every request, crawled through huggingface_hub into a "
        "fresh database and window cache each time: `threads` with "
        f"{args.workers} workers; `ray` on a local Ray of {os.cpu_count()} CPUs (Ray Data, "
        f"batches of 8 models, {args.workers} threads inside each, chunks of 256 models written "
        "as Parquet shards and stored by the driver). Wall time of the whole crawl (listing, "
        "paths-info, headers, windows, signatures, store), after a warm-up crawl of "
        f"{WARM} models into another database (its time in the last column: on Ray, the "
        f"workers' first imports); starting the local Ray itself took {ray_start:.1f} s.",
        "",
        *table(("engine", "wall time", "models / s", "fetched", "fingerprinted", "warm-up"), rows),
        "",
        f"Signatures stored by the two crawls: byte-identical ({len(blobs)} of {len(blobs)}).",
    ]
    return publish(args.out, "bench_engine", "Ray vs threads: the same crawl", lines)


if __name__ == "__main__":
    sys.exit(main())
