"""Computing a signature: per-slot bottom-k positions, identity MinHash and window statistics.

The records (`Signature`, `SlotSignature`, `SignatureParams`) live in `fingerprint.records` and
are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import numpy as np

from fingerprint import kernels
from fingerprint.device import resolve_device
from fingerprint.plan import Slot, plan_slots
from fingerprint.protocol import TensorSource, WindowData
from fingerprint.records import FORMAT_VERSION, Signature, SignatureParams, SlotSignature

__all__ = [
    "FORMAT_VERSION",
    "Signature",
    "SignatureParams",
    "SlotSignature",
    "compute_signature",
]


def compute_signature(
    source: TensorSource,
    *,
    params: SignatureParams | None = None,
    device: str = "auto",
    on_slot: Callable[[int, int], None] | None = None,
) -> Signature:
    """Fingerprint a model by reading only its slot windows.

    Args:
        source: anything satisfying `fingerprint.protocol.TensorSource`.
        params: signature parameters (defaults: `SignatureParams()`).
        device: "auto", "cpu" or "cuda".
        on_slot: progress callback (done, total).

    Returns:
        The signature; `bytes_read` counts the window bytes this call read.
    """
    params = params or SignatureParams()
    dev = resolve_device(device)
    slots, planned_skips = plan_slots(
        source.tensor_infos(),
        max_slots=params.max_slots,
        window=params.window,
        min_elements=params.min_elements,
    )
    # A source that knows what its reads cost may keep fewer slots within the model's byte
    # budget (`TensorSource`); each kept window is unchanged, so it still meets the same slot.
    limit = getattr(source, "limit_slots", None)
    if limit is not None:
        kept, over = limit(slots, params)
        slots = tuple(kept)
        planned_skips = (*planned_skips, *over)

    # whether the compiled pass runs is asked once per model (it turns on between models)
    jit = kernels.jit_kernels() if dev == "cpu" else None

    def sign(slot: Slot, data: WindowData) -> SlotSignature:
        return _slot_signature(slot, data, params, dev, jit)

    prefetch = getattr(source, "prefetch", None)
    if prefetch is not None:
        out, bytes_read = _sign_inline(source, prefetch, slots, sign, on_slot)
    else:
        out, bytes_read = _sign_in_threads(source, slots, sign, on_slot)
    return Signature(
        params=params,
        slots=tuple(out),
        skipped=tuple(sorted(planned_skips)),
        bytes_read=bytes_read,
        model_id=source.model_id,
    )


Sign = Callable[[Slot, WindowData], SlotSignature]
Progress = Callable[[int, int], None] | None


def _sign_inline(
    source: TensorSource,
    prefetch: Callable[[list[tuple[str, int]]], None],
    slots: tuple[Slot, ...],
    sign: Sign,
    on_slot: Progress,
) -> tuple[list[SlotSignature], int]:
    """Every window read and signed on the calling thread, after the source was told which
    windows come (`prefetch`: a local file asks the kernel to read them ahead, so a cold disk
    still works while the first windows are signed). No worker threads: beside a busy process
    they cost a fifth more time than they save (docs/benchmarks.md); parallelism comes from
    fingerprinting several models at once."""
    prefetch([(s.tensor, s.n) for s in slots])
    out: list[SlotSignature] = []
    bytes_read = 0
    for i, slot in enumerate(slots):
        data = source.read_window(slot.tensor, slot.n)
        bytes_read += len(data.raw)
        out.append(sign(slot, data))
        if on_slot is not None:
            on_slot(i + 1, len(slots))
    return out, bytes_read


def _sign_in_threads(
    source: TensorSource, slots: tuple[Slot, ...], sign: Sign, on_slot: Progress
) -> tuple[list[SlotSignature], int]:
    """Windows read by worker threads (remote sources: the reads overlap the signing).

    A source with `parallel_reads` > 1 has each worker read and sign its window (the kernels
    let go of the GIL for the long steps). The window's arrays are dropped by the thread that
    made them: freed from another thread, glibc's per-thread arenas hand their pages back and
    fault them in again (up to a third more CPU in all: docs/benchmarks.md). Any other source
    reads one window ahead while the calling thread signs the last one.
    """
    out: list[SlotSignature] = []
    bytes_read = 0
    ahead = max(1, int(getattr(source, "parallel_reads", 1)))
    sign_in_worker = ahead > 1

    def job(slot: Slot) -> tuple[int, WindowData | SlotSignature]:
        data = source.read_window(slot.tensor, slot.n)
        if sign_in_worker:
            return len(data.raw), sign(slot, data)
        return len(data.raw), data

    with ThreadPoolExecutor(max_workers=ahead) as pool:
        pending = (pool.submit(job, s) for s in slots)
        window: deque = deque(itertools.islice(pending, ahead))
        for i, slot in enumerate(slots):
            nbytes, done = window.popleft().result()
            window.extend(itertools.islice(pending, 1))
            bytes_read += nbytes
            if not isinstance(done, SlotSignature):
                done = sign(slot, done)
            out.append(done)
            if on_slot is not None:
                on_slot(i + 1, len(slots))
    return out, bytes_read


# dtype codes whose stored bytes the compiled pass reads as they are (it runs on little-endian
# machines only: `kernels.jit_kernels`): (view dtype, shift to float32 bits); a window of
# another dtype is read through its decoded float32 values
_STORED_BITS: dict[str, tuple[np.dtype, int]] = {
    "F32": (np.dtype("<u4"), 0),
    "BF16": (np.dtype("<u2"), 16),
}


def _slot_signature(
    slot: Slot, data: WindowData, params: SignatureParams, device: str, jit: ModuleType | None
) -> SlotSignature:
    raw = data.raw
    parts = _sign_stored(slot, data, params, jit) if jit is not None else None
    if parts is None:
        if len(data.values) != slot.n:
            raise ValueError(
                f"{slot.tensor}: the source decoded {len(data.values)} values for a "
                f"{slot.n}-element window"
            )
        x = kernels.to_device(data.values, device)
        parts = (
            kernels.bottom_k_positions(x, params.k),
            kernels.identity_minhash(x, params.identity_k, params.seed, params.identity_window),
            kernels.window_stats(x, raw, slot.cols, params.seed, params.identity_window),
        )
    positions, identity, (mean, std, kurt, absmax, distinct, digest) = parts
    return SlotSignature(
        key=slot.key,
        tensor=slot.tensor,
        dtype=slot.dtype,
        shape=slot.shape,
        n=slot.n,
        positions=positions,
        identity=identity,
        mean=mean,
        std=std,
        kurtosis=kurt,
        absmax=absmax,
        distinct=distinct,
        digest=digest,
    )


def _sign_stored(
    slot: Slot, data: WindowData, params: SignatureParams, jit: ModuleType
) -> tuple | None:
    """The window signed by the compiled pass (`kernels.sign_stored`, `jit` its kernels), from
    its stored bytes where the source says they are plain float32 or bfloat16 elements
    (`plain`, see `fingerprint.protocol.WindowData`; no float32 copy is made), else from its
    decoded values (which the numpy path would decode anyway); None where the values path
    should say what is wrong."""
    stored = _STORED_BITS.get(getattr(data, "plain", None) or "")
    if stored is not None and len(data.raw) == slot.n * stored[0].itemsize:
        a, shift = np.frombuffer(data.raw, dtype=stored[0]), stored[1]
    else:
        values = np.ascontiguousarray(data.values, dtype=np.float32).reshape(-1)
        if values.size != slot.n:
            return None  # the values path says what is wrong
        a, shift = values.view(np.uint32), 0
    identity = (params.identity_k, params.seed, params.identity_window)
    return kernels.sign_stored(a, shift, data.raw, slot.cols, params.k, identity, jit)
