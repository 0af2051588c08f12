"""Reading the first elements of a GGUF tensor, in the order of the Hugging Face tensor.

A GGUF tensor is stored as rows of `ne0` elements (ne reversed is the row-major shape), each
row a whole number of blocks (32 elements for Q8_0/Q4_0..., 256 for the K-quants, 1 for the
float types). A window of the HF tensor is its first rows; what it takes to read them:

* as stored: the first blocks of the data, one range;
* rows permuted for rotary attention (llama's q_proj/k_proj): HF row h*d + t*d/2 + j is stored
  row h*d + 2j + t (d the head size), so HF rows [0, r) lie in the stored rows of the first
  heads: one range of at most about 2r rows, decoded and gathered into HF order;
* transposed (GPT-2's Conv1D, HF [in, out] stored as [out, in]): HF rows [0, r) are the first r
  columns of every stored row: per stored row, the blocks covering those columns.

Decoding: the float types through `hub.decode` (bit-exact, as for safetensors), block types
through `gguf.quants.dequantize`, the reference implementation of llama.cpp's Python package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hub import decode
from hub.packed import Read

PART = "data"
# GGUF float types decoded as safetensors' (the same bytes, little-endian).
FLOAT_TYPES = ("F32", "F16", "BF16", "F64")


@lru_cache(maxsize=64)
def dequantizable(type_name: str) -> bool:
    """Whether a ggml type decodes to floats: the float types, and every block type
    `gguf.quants` can dequantize (tried once on a zero block)."""
    if type_name in FLOAT_TYPES:
        return True
    import gguf
    from gguf.quants import dequantize

    qtype = gguf.GGMLQuantizationType.__members__.get(type_name)
    if qtype is None or qtype not in gguf.GGML_QUANT_SIZES:
        return False
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    try:
        with np.errstate(all="ignore"):
            dequantize(np.zeros(type_size, dtype=np.uint8), qtype)
    except (NotImplementedError, ValueError):
        return False
    return True


def dequantize(raw: bytes, type_name: str) -> np.ndarray:
    """Whole blocks of a ggml type -> float32 values, one per element."""
    if type_name in FLOAT_TYPES:
        return decode.decode(raw, type_name)
    import gguf
    from gguf.quants import dequantize as reference

    qtype = gguf.GGMLQuantizationType[type_name]
    # a corrupt scale gives inf or nan values, not an error: the window says what it holds
    with np.errstate(all="ignore"):
        out = reference(np.frombuffer(raw, dtype=np.uint8), qtype)
    return np.asarray(out, dtype=np.float32).reshape(-1)


def stored_row(hf_rows: np.ndarray, heads: int, rows: int) -> np.ndarray:
    """The stored row of each HF row of a tensor whose rows the converter permuted for
    rotary attention with `heads` heads (`LlamaModel.permute` in convert_hf_to_gguf.py)."""
    d = rows // heads
    half = d // 2
    h, w = np.divmod(hf_rows, d)
    t, j = np.divmod(w, half)
    return h * d + 2 * j + t


@dataclass(frozen=True, slots=True)
class GGUFCodec:
    """One GGUF tensor's storage (a `hub.packed.Codec`).

    Attributes:
        type_name: the ggml type (`Q4_K`), the dtype signatures record.
        file_type: the file's quantization as users name it (`Q4_K_M`).
        block: elements per block; type_size: bytes per block.
        rows, cols: the stored matrix (cols = ne0, rows = the product of the other dims).
        heads: > 0 when the rows are permuted for rotary attention with that many heads.
        transposed: the HF tensor is the stored matrix transposed.
    """

    type_name: str
    file_type: str
    block: int
    type_size: int
    rows: int
    cols: int
    heads: int = 0
    transposed: bool = False

    @property
    def dtype(self) -> str:
        return self.type_name

    @property
    def method(self) -> str:
        return f"gguf:{self.file_type}"

    @property
    def row_bytes(self) -> int:
        return self.cols // self.block * self.type_size

    def _blocks(self, elements: int) -> int:
        return -(-elements // self.block)

    def _check(self, n: int) -> None:
        if not 0 < n <= self.rows * self.cols:
            raise ValueError(f"{n} elements asked of a tensor of {self.rows * self.cols}")
        if self.transposed and n > self.rows and n % self.rows:
            raise ValueError(f"{n} elements are not whole rows of {self.rows}")

    def _span(self, n: int) -> int:
        """Stored rows [0, span) hold HF rows [0, ceil(n / cols)) of a permuted tensor."""
        hf_rows = np.arange(-(-n // self.cols))
        return int(stored_row(hf_rows, self.heads, self.rows).max()) + 1

    def reads(self, n: int) -> Sequence[Read]:
        """The byte ranges holding the first `n` elements of the HF tensor (row-major)."""
        self._check(n)
        if self.transposed:
            # HF rows [0, r) = stored columns [0, r) of every stored row (n < rows: the first
            # column of the first n stored rows, a single HF row wider than the window)
            width = n // self.rows if n >= self.rows else 1
            count = self.rows if n >= self.rows else n
            size = self._blocks(width) * self.type_size
            rb = self.row_bytes
            return [Read(PART, i * rb, i * rb + size) for i in range(count)]
        if self.heads:
            if n < self.cols:  # HF row 0 is stored row 0
                return [Read(PART, 0, self._blocks(n) * self.type_size)]
            return [Read(PART, 0, self._span(n) * self.row_bytes)]
        return [Read(PART, 0, self._blocks(n) * self.type_size)]

    def decode(self, n: int, chunks: Sequence[bytes]) -> np.ndarray:
        """The first `n` float32 values of the HF tensor from the bytes of `reads(n)`."""
        wanted = self.reads(n)
        if len(chunks) != len(wanted) or any(
            len(c) != r.end - r.start for c, r in zip(chunks, wanted, strict=False)
        ):
            raise ValueError("the bytes read are not the ranges the tensor needs")
        values = dequantize(b"".join(chunks), self.type_name)
        if self.transposed:
            count = len(chunks)
            stored = values.reshape(count, -1)
            if n >= self.rows:
                return np.ascontiguousarray(stored[:, : n // self.rows].T).reshape(-1)
            return np.ascontiguousarray(stored[:, 0])
        if self.heads and n >= self.cols:
            matrix = values.reshape(-1, self.cols)
            hf_rows = np.arange(-(-n // self.cols))
            return matrix[stored_row(hf_rows, self.heads, self.rows)].reshape(-1)[:n]
        return values[:n]
