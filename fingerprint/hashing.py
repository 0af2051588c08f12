"""splitmix64's finaliser, the one integer hash of the project, in numpy and in torch.

Both forms give the same 64 bits for the same input (tests/fingerprint/test_hashing.py checks
it): numpy on uint64 arrays, torch on int64 tensors (torch has no uint64 arithmetic, so the
right shifts are made logical by masking and the multiplies wrap). The torch form uses only
tensor operators, so this module does not import torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

C1 = 0xBF58476D1CE4E5B9
C2 = 0x94D049BB133111EB
GOLDEN = 0x9E3779B97F4A7C15


def signed64(x: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


def splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser of every element of a uint64 array (wrapping arithmetic).

    Returns a new array; after the first step it works in place, which halves the passes.
    """
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x *= np.uint64(C1)
        x ^= x >> np.uint64(27)
        x *= np.uint64(C2)
        x ^= x >> np.uint64(31)
        return x


_S1, _S2 = signed64(C1), signed64(C2)


def splitmix64_torch(z: Any) -> Any:
    """The same finaliser on an int64 torch tensor: the bits of `splitmix64` on its uint64 view."""
    z = (z ^ ((z >> 30) & ((1 << 34) - 1))) * _S1
    z = (z ^ ((z >> 27) & ((1 << 37) - 1))) * _S2
    return z ^ ((z >> 31) & ((1 << 33) - 1))
