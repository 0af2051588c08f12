"""The small protocol through which fingerprint/ reads tensors.

fingerprint/ never opens files or sockets, and knows no storage format: a source (hub/ provides
several) lists its tensors and hands out the first elements of one, decoded to float32, with
the raw bytes they came from. Anything with these attributes works (the protocols are
structural: a source's own records satisfy them without importing this module).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class TensorMeta(Protocol):
    """What fingerprint needs to know about one stored tensor.

    Attributes:
        name: the tensor's name in its model.
        dtype: the storage dtype code (`F32`, `BF16`, `I8` ...), recorded in signatures.
        shape: dimensions, outermost first.
        decodable: whether the source can decode its elements to float values.
    """

    @property
    def name(self) -> str: ...

    @property
    def dtype(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def decodable(self) -> bool: ...


class WindowData(Protocol):
    """The first elements of a tensor, row-major.

    Attributes:
        values: float32 values, one per element.
        raw: the stored bytes they were decoded from (hashed into the slot's digest, and counted
            as bytes read).

    Optionally `plain`: the dtype code of `raw` when it holds the elements themselves, little
    endian (`F32`, `BF16`, ...), else None. The compiled CPU pass then reads float32 and
    bfloat16 windows straight from `raw` and never asks for `values` (a source may decode them
    lazily: hub's `TensorWindow` does).
    """

    @property
    def values(self) -> np.ndarray: ...

    @property
    def raw(self) -> bytes: ...


@runtime_checkable
class TensorSource(Protocol):
    """Where a model's tensors come from.

    `read_window(name, n)` returns the first `n` elements of that tensor (row-major), decoded,
    or raises; it may be called from several threads when the source has an attribute
    `parallel_reads` > 1.

    Optionally `limit_slots(slots, params) -> (kept, [(tensor, reason)])`: the planned slots
    (`fingerprint.plan.Slot`) the source will read within the model's byte budget, in plan
    order, and why each other one is left out (hub's sources: `TensorIndex.limit_slots`, which
    drops the costliest windows of a layout or dtype that would read more than `max_slots`
    windows of `window` float32 values). Without it every planned slot is read.

    Optionally `prefetch(windows)`: told the (name, n) windows about to be read, in order, the
    source may start fetching them (hub's local files ask the kernel to read them ahead);
    `compute_signature` then reads and signs every window on the calling thread. Without it,
    a source with `parallel_reads` > 1 has that many windows read and signed by worker
    threads, and any other has one window read ahead by a thread.
    """

    @property
    def model_id(self) -> str: ...

    def tensor_infos(self) -> Sequence[TensorMeta]: ...

    def read_window(self, name: str, n: int) -> WindowData: ...


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """A plain `TensorMeta`, for sources written outside hub/ (tests, in-memory models)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    decodable: bool


@dataclass(frozen=True, slots=True, eq=False)
class Window:
    """A plain `WindowData`, for sources written outside hub/ (`plain`: see `WindowData`)."""

    values: np.ndarray
    raw: bytes
    plain: str | None = None
