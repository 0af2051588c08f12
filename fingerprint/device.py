"""`device = auto | cpu | cuda` -> a torch device, with a clear error when CUDA is missing; and
how many threads torch may use for the fingerprint kernels.

Threads: the kernels are elementwise passes over a few hundred thousand values, far too little
work to split. With torch's default (one thread per core) they run 10-30x slower as soon as
another process is busy on the machine, because each op waits for a descheduled thread. So they
run on one thread by default; parallelism belongs to the workers that fingerprint several models
at once, one thread each.
"""

from __future__ import annotations

import os

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
    import torch

    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return "cpu"
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise DeviceUnavailableError(
            "--device cuda was asked for but torch sees no CUDA GPU; "
            "use --device auto or --device cpu (or install a CUDA build of torch)"
        )
    return "cuda" if has_cuda else "cpu"


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
