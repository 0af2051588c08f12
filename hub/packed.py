"""Packed tensors: a float tensor stored as something else (GGUF blocks, GPTQ/AWQ integers
with scales and zeros, bitsandbytes 4-bit with absmax, FP8 with scales, ONNX initializers).

A packed tensor is listed under its float name and shape as the model defines it (the Hugging
Face name `model.layers.0.self_attn.q_proj.weight`, shape [out, in]), so its slots meet the
same slots of the source model. Its elements come from one or more stored arrays (its
`parts`) through a `Codec`: the codec says which byte ranges of the parts hold the first `n`
elements (row-major, in the float tensor's order), and decodes those bytes to float32. A
format where those rows are contiguous (GGUF, bitsandbytes, FP8) reads a few ranges; one that
stores the weight transposed (GPTQ, AWQ, ONNX MatMul) reads a strided set of short ranges,
which `coalesce` merges where the gaps are small.

Nothing here reads files: `hub.tensor_index.TensorIndex.read_window` reads the ranges a codec
asks for through its source and hands the bytes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class Part:
    """One stored array a packed tensor reads: its file and the absolute byte span of its data."""

    file: str
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Read:
    """Bytes [start, end) of the part named `part`, offsets relative to the part's first byte."""

    part: str
    start: int
    end: int


class Codec(Protocol):
    """How one packed tensor's elements are stored (an instance holds that tensor's parameters:
    bits, group size, permutation ...).

    Attributes:
        dtype: the storage code recorded in signatures (`Q4_K`, `GPTQ_I4`, `NF4` ...): not a
            float width, so the graph reads no down-cast into it.
        method: the quantization as users name it (`gguf:Q4_K`, `gptq:4bit-g128`, `bnb:nf4`).
    """

    @property
    def dtype(self) -> str: ...

    @property
    def method(self) -> str: ...

    def reads(self, n: int) -> Sequence[Read]:
        """The byte ranges that hold the first `n` elements of the float tensor (row-major).

        Raises:
            ValueError: `n` is not a window this codec can read (not whole rows where the
                format needs them, more than the tensor holds).
        """
        ...

    def decode(self, n: int, chunks: Sequence[bytes]) -> np.ndarray:
        """The first `n` float32 values from the bytes of `reads(n)`, in the same order.

        Raises:
            ValueError: the bytes cannot be what the format says (a bad scale, a short chunk):
                the model's failure, with the file named by the caller.
        """
        ...


@dataclass(frozen=True, slots=True)
class Packed:
    """A float tensor stored packed.

    Attributes:
        name: the float tensor's name (as the unquantized model names it).
        shape: the float tensor's shape, outermost first.
        parts: role (`qweight`, `scales` ...) -> where that stored array lies.
        codec: how its elements are read and decoded.
    """

    name: str
    shape: tuple[int, ...]
    parts: Mapping[str, Part]
    codec: Codec


@dataclass(frozen=True, slots=True)
class Recognized:
    """What a packed format found among a model's stored tensors.

    Attributes:
        packed: the float tensors it stands for, by name.
        consumed: the stored tensors it reads (`x.qweight`, `x.scales` ...): no longer listed
            as tensors of their own.
        method: the model's quantization (`gptq:4bit-g128`), or "" when it found nothing.
    """

    packed: Mapping[str, Packed]
    consumed: frozenset[str]
    method: str


def coalesce(spans: Sequence[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Absolute [start, end) spans merged where the hole between two is at most `gap` bytes:
    one read instead of many for a strided layout, at the cost of the holes' bytes.

    >>> coalesce([(0, 4), (8, 12), (100, 104)], gap=4)
    [(0, 12), (100, 104)]
    """
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


@dataclass(frozen=True, slots=True)
class ReadCost:
    """What one window costs a source: bytes read (merged holes included) and reads made."""

    nbytes: int
    requests: int


def cheapest_within(costs: Sequence[int], budget: int) -> set[int]:
    """Indices of the cheapest items whose costs sum to at most `budget`; among equal costs,
    an order spread evenly over the positions (bit-reversed), so that slots of one cost kept
    from a plan sorted by depth cover the depth rather than its first layers.

    >>> sorted(cheapest_within([5, 1, 1, 1, 1], budget=2))
    [2, 4]
    """
    spread = _spread_rank(len(costs))
    kept: set[int] = set()
    total = 0
    for i in sorted(range(len(costs)), key=lambda i: (costs[i], spread[i])):
        if total + costs[i] > budget:
            break  # sorted by cost: nothing after this fits either
        kept.add(i)
        total += costs[i]
    return kept


def _spread_rank(m: int) -> list[int]:
    """Each position's rank in bit-reversed order: the lowest ranks spread over 0..m-1."""
    bits = max(1, (m - 1).bit_length())
    rev = [int(format(i, f"0{bits}b")[::-1], 2) for i in range(m)]
    rank = {r: k for k, r in enumerate(sorted(rev))}
    return [rank[r] for r in rev]
