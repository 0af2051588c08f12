"""`device = auto | cpu | cuda` -> where the kernels run, with a clear error when CUDA is
missing; and how many threads torch may use for them.

On the CPU the kernels are numpy on the calling thread and torch is not imported (not even to
ask for a GPU when the installed torch is a CPU-only build: `_torch_may_see_gpu`), so
`--threads` matters only where torch runs them, on a GPU.

Threads: the kernels are elementwise passes over a few hundred thousand values, far too little
work to split. With torch's default (one thread per core) they ran 10-30x slower as soon as
another process was busy on the machine, because each op waits for a descheduled thread. So
torch runs them on one thread by default; parallelism belongs to the workers that fingerprint
several models at once, one thread each.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from fingerprint.errors import DeviceUnavailableError

DEVICES = ("auto", "cpu", "cuda")
THREADS_ENV = "LINEAGE_THREADS"
DEFAULT_THREADS = 1

_threads: int | None = None  # set_threads' choice; None: the environment, else the default


def resolve_device(device: str = "auto") -> str:
    """Map a user's choice to "cpu" or "cuda".

    Raises:
        DeviceUnavailableError: "cuda" was asked for and torch sees no GPU.
        ValueError: not one of auto, cpu, cuda.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu" or (device == "auto" and not _torch_may_see_gpu()):
        return "cpu"
    try:
        import torch
    except ImportError:
        has_cuda = False
    else:
        has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise DeviceUnavailableError(
            "--device cuda was asked for but torch sees no CUDA GPU; "
            "use --device auto or --device cpu (or install a CUDA build of torch)"
        )
    return "cuda" if has_cuda else "cpu"


# `cuda = None` / `hip = None` in torch/version.py: a build with neither sees no GPU
_NO_GPU_LINE = re.compile(r"^(cuda|hip)\s*(?::[^=]*)?=\s*None\s*$", re.MULTILINE)


@lru_cache(maxsize=1)
def _torch_may_see_gpu() -> bool:
    """False when torch is not installed or is a CPU-only build, known without importing it.

    Importing torch takes seconds, longer than fingerprinting two models; a CPU-only build
    writes `cuda = None` and `hip = None` into its `torch/version.py`. Anything unexpected
    (no such file, another layout) answers True, and torch is asked.
    """
    try:
        spec = find_spec("torch")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin:
        return False
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return True
    return not says_cpu_only(text)


def says_cpu_only(version_py: str) -> bool:
    """Whether the text of a `torch/version.py` says the build has neither CUDA nor ROCm."""
    return len({m.group(1) for m in _NO_GPU_LINE.finditer(version_py)}) == 2


def set_threads(threads: int | None) -> None:
    """Choose torch's intra-op threads for the fingerprint kernels, per calling thread.

    Args:
        threads: threads per worker (>= 1); None goes back to $LINEAGE_THREADS, else 1.

    Raises:
        ValueError: threads < 1.
    """
    global _threads
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    _threads = threads


def kernel_threads() -> int:
    """The thread count the kernels use: set_threads' choice, else $LINEAGE_THREADS, else 1.

    Raises:
        ValueError: $LINEAGE_THREADS is not a whole number >= 1.
    """
    if _threads is not None:
        return _threads
    env = os.environ.get(THREADS_ENV, "").strip()
    if not env:
        return DEFAULT_THREADS
    if not env.isdigit() or int(env) < 1:
        raise ValueError(f"{THREADS_ENV} must be a whole number >= 1, not {env!r}")
    return int(env)


def use_kernel_threads() -> int:
    """Make torch, in the calling thread, use `kernel_threads()`; returns that count.

    torch keeps the count per OS thread (OpenMP), so every worker thread has to say it: the
    kernels call this on entry. It stays set afterwards; asking costs well under a microsecond.
    """
    import torch

    n = kernel_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
