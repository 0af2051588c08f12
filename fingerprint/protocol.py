"""The small protocol through which fingerprint/ reads tensors.

fingerprint/ never opens files or sockets itself: a source (hub/ provides several) lists its
tensors and hands out byte ranges of one tensor's data. Anything with these methods works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """Name, safetensors dtype code (`F32`, `BF16`, `I8`...) and shape of one stored tensor."""

    name: str
    dtype: str
    shape: tuple[int, ...]


@runtime_checkable
class TensorSource(Protocol):
    """Where a model's tensors come from.

    `read_range(name, start, end)` returns bytes [start, end) of that tensor's data (offsets
    relative to the tensor's first byte, little-endian as in safetensors), exactly end - start
    bytes or an exception.
    """

    @property
    def model_id(self) -> str: ...

    def tensor_infos(self) -> Sequence[TensorInfo]: ...

    def read_range(self, name: str, start: int, end: int) -> bytes: ...
