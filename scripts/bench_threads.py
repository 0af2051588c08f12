"""Fingerprinting under load: torch thread counts against a full load and the bare window reads.

    python scripts/bench_threads.py [--mb 200] [--dtypes bf16 f32] [--repeat 5] [--dir /tmp/...]

Writes a Llama-shaped checkpoint of about --mb MB per dtype with `safetensors.torch.save_file`,
starts a busy loop on one core (another CPU-bound process, as on a shared machine) and then, in
alternating rounds in one process, times: `safetensors.torch.load_file` of the whole file (every
tensor copied), a bare `os.pread` of exactly the window bytes the fingerprint reads (the floor),
and `compute_signature` with the kernels' default thread count and with 1 and 2 torch threads
(`fingerprint.device.set_threads`). All from a warm page cache. Absolute times depend on the
load; the ratios within a round are what to read. A per-stage profile (read and decode,
bottom-k, identity MinHash, window stats) follows. Writes the tables into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdoc import publish, table  # noqa: E402

MODES = ("load_file", "pread of windows", "fingerprint, default", "fingerprint, 1 thread",
         "fingerprint, 2 threads")  # fmt: skip


def write_checkpoint(folder: Path, megabytes: float, dtype: str) -> Path:
    """A Llama-shaped model (hidden 1024) with as many layers as fit in `megabytes`."""
    from benchmodels import llama_layer, write_random_safetensors

    code, size = {"bf16": ("BF16", 2), "f32": ("F32", 4)}[dtype]
    hidden, inter, vocab = 1024, 2816, 8192
    shapes = [("model.embed_tokens.weight", (vocab, hidden))]
    total, layer = 2 * vocab * hidden * size, 0
    while total < megabytes * 1e6:
        block = llama_layer(f"model.layers.{layer}.", hidden, inter)
        shapes += block
        total += sum(math.prod(shape) * size for _, shape in block)
        layer += 1
    shapes.append(("lm_head.weight", (vocab, hidden)))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    path = folder / "model.safetensors"
    write_random_safetensors(path, shapes, seed=0, dtype=code)
    return path


def measure(folder: Path, repeat: int) -> tuple[dict[str, list[float]], dict, dict[str, float]]:
    import numpy as np
    import torch
    from safetensors.torch import load_file

    from fingerprint import kernels
    from fingerprint.device import set_threads
    from fingerprint.plan import plan_slots
    from fingerprint.signature import SignatureParams, compute_signature
    from hub.local import open_local_model

    path = folder / "model.safetensors"
    params = SignatureParams()
    model = open_local_model(folder)
    slots, _ = plan_slots(
        model.tensor_infos(),
        max_slots=params.max_slots,
        window=params.window,
        min_elements=params.min_elements,
    )
    ranges = []
    for s in slots:
        itemsize = {"BF16": 2, "F16": 2, "F32": 4}[s.dtype]
        ranges.append(model.locate_range(s.tensor, 0, s.n * itemsize)[1:])

    def load() -> None:
        tensors = {k: v.clone() for k, v in load_file(str(path)).items()}
        del tensors

    def pread() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            for start, end in ranges:
                os.pread(fd, end - start, start)
        finally:
            os.close(fd)

    def fingerprint(threads: int | None) -> None:
        set_threads(threads)
        compute_signature(open_local_model(folder), params=params, device="cpu")

    runs = {
        "load_file": load,
        "pread of windows": pread,
        "fingerprint, default": lambda: fingerprint(None),
        "fingerprint, 1 thread": lambda: fingerprint(1),
        "fingerprint, 2 threads": lambda: fingerprint(2),
    }
    for fn in runs.values():  # warm the page cache and torch's kernels
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    set_threads(None)

    # per stage, default threads, one pass over the windows
    stages = dict.fromkeys(("read + decode", "bottom-k", "identity MinHash", "window stats"), 0.0)
    for s in slots:
        t = time.perf_counter()
        data = model.read_window(s.tensor, s.n)
        x = kernels.to_device(data.values, "cpu")
        t1 = time.perf_counter()
        kernels.bottom_k_positions(x, params.k)
        t2 = time.perf_counter()
        kernels.identity_minhash(x, params.identity_k, params.seed, params.identity_window)
        t3 = time.perf_counter()
        kernels.window_stats(x, data.raw, s.cols)
        t4 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[key] += dt
    info = {
        "size_mb": path.stat().st_size / 1e6,
        "window_mb": sum(e - s for s, e in ranges) / 1e6,
        "slots": len(slots),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    return times, info, stages


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=200)
    ap.add_argument("--dtypes", nargs="+", choices=("bf16", "f32"), default=["bf16", "f32"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench-threads"))
    ap.add_argument("--no-busy", action="store_true", help="no busy loop beside the benchmark")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = ap.parse_args()

    folders = {}
    for dtype in args.dtypes:
        folder = args.dir / f"model-{dtype}"
        if not (folder / "model.safetensors").exists():
            print(f"writing {folder} ...", file=sys.stderr)
            write_checkpoint(folder, args.mb, dtype)
        folders[dtype] = folder
    busy = None
    if not args.no_busy:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        results = {d: measure(f, args.repeat) for d, f in folders.items()}
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()

    lines = [
        f"Command: `python scripts/bench_threads.py --mb {args.mb:g} --dtypes "
        f"{' '.join(args.dtypes)} --repeat {args.repeat}`"
        f"{' --no-busy' if args.no_busy else ''} on {platform.machine()}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}; "
        + ("a busy loop ran on one core throughout" if busy else "no busy loop")
        + ". Warm page cache; medians over the rounds, modes alternating within each round. "
        "Default = what a caller gets without choosing (`fingerprint.device.kernel_threads()`).",
        "",
    ]
    header = ("file", "measure", "median", "/ load_file", "/ pread of windows")
    rows = []
    for dtype, (times, info, _) in results.items():
        med = {k: statistics.median(v) for k, v in times.items()}
        label = f"{dtype}, {info['size_mb']:.0f} MB, {info['slots']} slots, {info['window_mb']:.1f} MB read"
        for name in MODES:
            rows.append(
                (
                    label,
                    name,
                    f"{med[name]:.3f} s",
                    f"{med[name] / med['load_file']:.3f}x",
                    f"{med[name] / med['pread of windows']:.1f}x",
                )
            )
            label = ""
    lines += table(header, rows)
    lines += ["", "Where a fingerprint's time goes (one pass, default threads):", ""]
    stage_rows = []
    for dtype, (_, _, stages) in results.items():
        total = sum(stages.values())
        stage_rows += [
            (dtype, k, f"{v * 1e3:.0f} ms", f"{v / total:.0%}") for k, v in stages.items()
        ]
    lines += table(("file", "stage", "time", "share"), stage_rows)
    return publish(args.out, "bench_threads", "Fingerprinting under load: threads", lines)


if __name__ == "__main__":
    sys.exit(main())
