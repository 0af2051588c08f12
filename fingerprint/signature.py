"""Signatures: per-slot bottom-k positions, identity MinHash and window statistics."""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from fingerprint import kernels
from fingerprint.device import resolve_device
from fingerprint.plan import Slot, plan_slots
from fingerprint.protocol import TensorSource

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class SignatureParams:
    """Everything that must match for two signatures to be comparable.

    Attributes:
        k: bottom-k positions kept per slot.
        window: element budget W per slot (the window is the first rows that fit in it).
        max_slots: at most this many slots per model (T).
        identity_k: hashes kept per slot for the identity MinHash.
        identity_window: the identity MinHash covers the first this-many elements of a window.
        min_elements: smaller tensors are skipped.
        seed: identity hash seed.
        version: signature format version.
    """

    k: int = 512
    window: int = 1 << 18
    max_slots: int = 64
    identity_k: int = 256
    identity_window: int = 1 << 16
    min_elements: int = 4096
    seed: int = 0x6C696E65
    version: int = FORMAT_VERSION

    def tag(self) -> str:
        """Short text that differs whenever the parameters do (stored beside the blob)."""
        return (
            f"v{self.version}:k{self.k}:w{self.window}:t{self.max_slots}:"
            f"i{self.identity_k}:iw{self.identity_window}:m{self.min_elements}:s{self.seed}"
        )


@dataclass(frozen=True, slots=True, eq=False)
class SlotSignature:
    """The signature of one slot (one window of one tensor).

    `positions` are the sorted uint32 positions of the k smallest values in the window;
    `identity` the sorted uint64 bottom-k MinHash of (position, value bits).
    """

    key: str
    tensor: str
    dtype: str
    shape: tuple[int, ...]
    n: int
    positions: np.ndarray
    identity: np.ndarray
    mean: float
    std: float
    kurtosis: float
    absmax: float
    distinct: float
    digest: bytes

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SlotSignature):
            return NotImplemented
        return (
            (self.key, self.tensor, self.dtype, self.shape, self.n, self.digest)
            == (other.key, other.tensor, other.dtype, other.shape, other.n, other.digest)
            and np.array_equal(self.positions, other.positions)
            and np.array_equal(self.identity, other.identity)
            and (self.mean, self.std, self.kurtosis, self.absmax, self.distinct)
            == (other.mean, other.std, other.kurtosis, other.absmax, other.distinct)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Signature:
    """A model's fingerprint: its parameters, slots, skipped tensors and bytes read."""

    params: SignatureParams
    slots: tuple[SlotSignature, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    bytes_read: int = 0
    model_id: str = field(default="", compare=False)

    @property
    def arch(self) -> str:
        """Architecture block key: models are only compared within one block."""
        h = hashlib.blake2b(digest_size=8)
        for s in sorted(self.slots, key=lambda s: s.key):
            h.update(s.key.encode() + b"\0")
        return h.hexdigest()

    def to_bytes(self) -> bytes:
        from fingerprint.format import dumps

        return dumps(self)

    @staticmethod
    def from_bytes(blob: bytes, model_id: str = "") -> Signature:
        from fingerprint.format import loads

        return loads(blob, model_id=model_id)


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
    skipped = list(planned_skips)
    readable = []
    for slot in slots:
        if kernels.supported_dtype(slot.dtype):
            readable.append(slot)
        else:
            skipped.append((slot.tensor, f"dtype {slot.dtype} not supported by this torch"))
    out: list[SlotSignature] = []
    bytes_read = 0
    # Sources that say they can (local files) read a few windows ahead while one is hashed:
    # on a cold disk the reads, not the hashing, take the time.
    ahead = max(1, int(getattr(source, "parallel_reads", 1)))
    with ThreadPoolExecutor(max_workers=ahead) as pool:
        pending = (pool.submit(source.read_range, s.tensor, s.start, s.end) for s in readable)
        window: deque = deque(itertools.islice(pending, ahead))
        for i, slot in enumerate(readable):
            raw = window.popleft().result()
            window.extend(itertools.islice(pending, 1))
            bytes_read += len(raw)
            out.append(_slot_signature(slot, raw, params, dev))
            if on_slot is not None:
                on_slot(i + 1, len(readable))
    return Signature(
        params=params,
        slots=tuple(out),
        skipped=tuple(sorted(skipped)),
        bytes_read=bytes_read,
        model_id=source.model_id,
    )


def _slot_signature(slot: Slot, raw: bytes, params: SignatureParams, device: str) -> SlotSignature:
    x = kernels.decode(raw, slot.dtype, device)
    positions = kernels.bottom_k_positions(x, params.k)
    identity = kernels.identity_minhash(x, params.identity_k, params.seed, params.identity_window)
    mean, std, kurt, absmax, distinct, digest = kernels.window_stats(x, raw, slot.cols)
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
