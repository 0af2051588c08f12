"""Fingerprint cost on a large local safetensors file, against loading it whole.

    python scripts/bench_fingerprint.py [--gb 1.0] [--dtype bf16] [--dir bench-out] [--repeat 3]

Writes a Llama-shaped checkpoint of about --gb GB (streamed, tensor by tensor), then in one
run: fingerprints it with hub.local + fingerprint (bytes read, wall time) and loads it with
safetensors.torch.load_file (every tensor materialized). Both are timed from a warm page cache
(the full load's best case) and, where the OS allows evicting the file (posix_fadvise), cold.
Prints a table and writes it into docs/benchmarks.md between its markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdoc import write_section  # noqa: E402


def write_checkpoint(path: Path, gigabytes: float, dtype: str) -> int:
    """A Llama-shaped checkpoint (hidden 2048, as many layers as fit): 1 GB has 80+ tensors, so
    the plan fills all 64 slots, as it would for a real model."""
    size = {"bf16": 2, "f16": 2, "f32": 4}[dtype]
    code = {"bf16": "BF16", "f16": "F16", "f32": "F32"}[dtype]
    hidden, inter = 2048, 5632
    shapes = [("model.embed_tokens.weight", (32000, hidden))]
    layer = 0
    budget = int(gigabytes * 1e9)
    total = 32000 * hidden * size * 2
    while total < budget:
        p = f"model.layers.{layer}."
        for name, shape in [
            ("self_attn.q_proj.weight", (hidden, hidden)),
            ("self_attn.k_proj.weight", (hidden, hidden)),
            ("self_attn.v_proj.weight", (hidden, hidden)),
            ("self_attn.o_proj.weight", (hidden, hidden)),
            ("mlp.gate_proj.weight", (inter, hidden)),
            ("mlp.up_proj.weight", (inter, hidden)),
            ("mlp.down_proj.weight", (hidden, inter)),
            ("input_layernorm.weight", (hidden,)),
        ]:
            shapes.append((p + name, shape))
            total += int(np.prod(shape)) * size
        layer += 1
    shapes.append(("lm_head.weight", (32000, hidden)))
    header, offset = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape)) * size
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for _, shape in shapes:
            n = int(np.prod(shape))
            for start in range(0, n, 1 << 24):
                chunk = rng.standard_normal(min(1 << 24, n - start), dtype=np.float32) * 0.02
                if dtype == "bf16":
                    f.write((chunk.view(np.uint32) >> 16).astype(np.uint16).tobytes())
                elif dtype == "f16":
                    f.write(chunk.astype(np.float16).tobytes())
                else:
                    f.write(chunk.tobytes())
    return path.stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--dtype", choices=("bf16", "f16", "f32"), default="bf16")
    ap.add_argument("--dir", type=Path, default=Path("bench-out"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = ap.parse_args()

    import torch
    from safetensors.torch import load_file

    from fingerprint.signature import compute_signature
    from hub.local import open_local_model

    folder = args.dir / f"big-{args.dtype}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    if not path.exists() or path.stat().st_size < args.gb * 1e9 * 0.98:
        print(f"writing {args.gb} GB checkpoint to {path} ...", file=sys.stderr)
        write_checkpoint(path, args.gb, args.dtype)
    size = path.stat().st_size
    (folder / "config.json").write_text("{}")

    def evict() -> bool:
        """Drop the file from the page cache (POSIX_FADV_DONTNEED): a cold read from disk."""
        if not hasattr(os, "posix_fadvise"):
            return False
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        return True

    def full_load() -> float:
        t = time.perf_counter()
        # load_file may map the file lazily: copy every tensor so all bytes are really read
        tensors = {k: v.clone() for k, v in load_file(str(path)).items()}
        elapsed = time.perf_counter() - t
        del tensors
        return elapsed

    def fingerprint() -> tuple[float, int, object]:
        t = time.perf_counter()
        model = open_local_model(folder)
        sig = compute_signature(model, device="cpu")
        return time.perf_counter() - t, model.bytes_read, sig

    compute_signature(open_local_model(folder), device="cpu")  # warm up torch's kernels
    timings: dict[str, list[float]] = {
        "load warm": [],
        "fp warm": [],
        "load cold": [],
        "fp cold": [],
    }
    cold = evict()
    for _ in range(args.repeat):
        timings["load warm"].append(full_load())
        fp_s_, read, sig = fingerprint()
        timings["fp warm"].append(fp_s_)
        if cold:
            evict()
            timings["load cold"].append(full_load())
            evict()
            timings["fp cold"].append(fingerprint()[0])
    med = {k: statistics.median(v) for k, v in timings.items() if v}
    load_s, fp_s = med["load warm"], med["fp warm"]
    bytes_read = [read]
    rows = [
        (
            "file size",
            f"{size / 1e9:.2f} GB ({args.dtype}, {len(open_local_model(folder).tensor_infos())} tensors)",
        ),
        ("slots fingerprinted", str(len(sig.slots))),
        (
            "bytes read by fingerprint",
            f"{bytes_read[-1] / 1e6:.1f} MB ({bytes_read[-1] / size:.1%} of the file)",
        ),
        ("fingerprint, warm page cache (median)", f"{fp_s:.3f} s"),
        ("load_file + materialize, warm page cache (median)", f"{load_s:.3f} s"),
        ("fingerprint / full load, warm", f"{fp_s / load_s:.3f}x"),
    ]
    if "fp cold" in med:
        rows += [
            ("fingerprint, cold (file evicted from the page cache)", f"{med['fp cold']:.3f} s"),
            ("load_file + materialize, cold", f"{med['load cold']:.3f} s"),
            ("fingerprint / full load, cold", f"{med['fp cold'] / med['load cold']:.3f}x"),
        ]
    threads = torch.get_num_threads()
    rows.append(("runs", f"{args.repeat} of each, torch {torch.__version__}, {threads} threads"))
    table = ["| measure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    text = "\n".join(
        [
            f"Command: `python scripts/bench_fingerprint.py --gb {args.gb} --dtype {args.dtype}` "
            f"on {platform.machine()} ({platform.processor() or 'cpu'}), {time.strftime('%Y-%m-%d')}.",
            "",
            *table,
            "",
            "Targets (issue 2): at most 10% of the file's bytes read, at most 0.2x the full-load time.",
        ]
    )
    print(text)
    if args.out:
        write_section(args.out, "bench_fingerprint", "Fingerprinting a large local file", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
