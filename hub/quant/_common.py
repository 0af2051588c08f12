"""What the quantized formats share: config lookups, parts, bit unpacking, checked chunks.

Every recogniser reads `config.json`'s `quantization_config` through `qconfig`, names the
stored arrays a float tensor reads with `part`, and turns the chunks its codec asked for into
arrays with `ints` / `floats`, which raise ValueError on a chunk of the wrong length (the
seam turns that into a MalformedFileError naming the file).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hub import decode
from hub.packed import Packed, Part, Read, Recognized

if TYPE_CHECKING:  # annotations only: hub.tensor_index imports this package
    from hub.tensor_index import Located

# A weight inside a numbered block (`model.layers.3.`, `encoder.layer.0.`, `h.11.`): the tensors
# the quantization tools pack; embeddings, heads and norms stay floats.
BLOCK = re.compile(r"\.\d+\.")


def qconfig(config: Mapping) -> dict[str, Any]:
    """`quantization_config` of config.json ({} when absent or not an object)."""
    q = config.get("quantization_config") if isinstance(config, Mapping) else None
    return dict(q) if isinstance(q, Mapping) else {}


def as_int(value: object, default: int) -> int:
    """An int setting of a config, `default` when absent or not a plain int."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def part(loc: Located) -> Part:
    """Where a stored array's data lies."""
    return Part(loc.file, loc.entry.start, loc.entry.end)


def shape_of(tensors: Mapping[str, Located], name: str) -> tuple[int, ...] | None:
    loc = tensors.get(name)
    return loc.entry.shape if loc is not None else None


def dtype_of(tensors: Mapping[str, Located], name: str) -> str | None:
    loc = tensors.get(name)
    return loc.entry.dtype if loc is not None else None


def float_size(code: str | None) -> int | None:
    """Bytes per element of a float dtype `hub.decode` reads (scales), None for others."""
    if code is None or not decode.decodable(code):
        return None
    return {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}.get(code, 1)


def rows_for(n: int, rows: int, cols: int) -> int:
    """Rows of a [rows, cols] float tensor that hold its first `n` elements.

    Raises:
        ValueError: `n` is not in 1..rows*cols.
    """
    if not 0 < n <= rows * cols:
        raise ValueError(f"a window of {n} elements does not fit a [{rows}, {cols}] tensor")
    return math.ceil(n / cols)


def recognized(packed: Mapping[str, Packed], consumed: set[str]) -> Recognized:
    """What a recognizer found: its packed tensors, the stored tensors they read, and the
    methods of their codecs (sorted, comma-joined; "" when it found nothing)."""
    methods = sorted({p.codec.method for p in packed.values()})
    return Recognized(packed, frozenset(consumed), ",".join(methods))


def checked(chunk: bytes, nbytes: int, what: str) -> bytes:
    if len(chunk) != nbytes:
        raise ValueError(f"{what}: got {len(chunk)} bytes where {nbytes} are needed")
    return chunk


def ints(chunks: Sequence[bytes], dtype: str, what: str, width: int) -> np.ndarray:
    """Chunks of little-endian integers, each `width` elements, stacked as [len(chunks), width]."""
    size = np.dtype(dtype).itemsize
    raw = b"".join(checked(c, width * size, what) for c in chunks)
    return np.frombuffer(raw, dtype=dtype).reshape(len(chunks), width)


def floats(chunks: Sequence[bytes], code: str, what: str, width: int) -> np.ndarray:
    """Chunks of a float dtype (`F16`, `BF16`, `F32` ...), each `width` elements, as float32
    [len(chunks), width]; non-finite scales are refused (no weight decodes through them)."""
    size = float_size(code) or 4
    raw = b"".join(checked(c, width * size, what) for c in chunks)
    out = decode.decode(raw, code).reshape(len(chunks), width)
    if not np.isfinite(out).all():
        raise ValueError(f"{what} holds non-finite values")
    return out


def unpack(words: np.ndarray, bits: int) -> np.ndarray:
    """Integers of `bits` bits packed low bits first into int32 words: [..., w] -> [..., w, 32/bits]
    (uint8 values)."""
    shifts = np.arange(0, 32, bits, dtype=np.uint32)
    mask = np.uint32((1 << bits) - 1)
    return ((words.astype(np.uint32)[..., None] >> shifts) & mask).astype(np.uint8)


def unpack_stream(words: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The first `count` integers of `bits` bits each from the little-endian bit stream of
    int32 words along the last axis: value k at stream bits [k * bits, (k + 1) * bits), so a
    value may straddle two words (GPTQ's 3-bit layout: 32 values in 3 words). [..., w] ->
    [..., count] (uint8 values).

    Raises:
        ValueError: the words hold fewer than `count` values.
    """
    if count * bits > words.shape[-1] * 32:
        raise ValueError(f"{words.shape[-1]} words hold fewer than {count} {bits}-bit values")
    raw = np.ascontiguousarray(words.astype("<u4")).view(np.uint8)
    stream = np.unpackbits(raw, axis=-1, bitorder="little")[..., : count * bits]
    weights = (1 << np.arange(bits, dtype=np.uint16)).astype(np.uint16)
    groups = stream.reshape(*stream.shape[:-1], count, bits).astype(np.uint16)
    return (groups @ weights).astype(np.uint8)


def strided(part: str, row_bytes: int, rows: int, start: int, end: int) -> list[Read]:
    """Bytes [start, end) of each of `rows` rows of `row_bytes` bytes: one short read per row
    (a transposed layout; `hub.packed.coalesce` merges them)."""
    return [Read(part, i * row_bytes + start, i * row_bytes + end) for i in range(rows)]


def float_dims(config: Mapping) -> tuple[int | None, int | None]:
    """(hidden, intermediate) sizes of a transformer config, when it names them."""
    text = config.get("text_config")
    cfg: Mapping = text if isinstance(text, Mapping) and "hidden_size" not in config else config
    hidden = next(
        (
            cfg[k]
            for k in ("hidden_size", "d_model", "n_embd", "dim")
            if isinstance(cfg.get(k), int)
        ),
        None,
    )
    inter = next(
        (
            cfg[k]
            for k in ("intermediate_size", "ffn_dim", "d_ff", "n_inner", "hidden_dim")
            if isinstance(cfg.get(k), int)
        ),
        None,
    )
    return hidden, inter


# Layers whose input is the MLP's inner width (the rest of a block reads the hidden size).
_DOWN = re.compile(
    r"(down_proj|fc2|dense_4h_to_h|\.w2|mlp\.c_proj|\.wo|(?<!attention)\.output\.dense)$"
)


def infer_shape(
    name: str, numel: int, tensors: Mapping[str, Located], config: Mapping
) -> tuple[int, int] | None:
    """The [out, in] shape of a flattened weight of `numel` elements (bitsandbytes stores
    none): from its bias when it has one, else from the config's hidden and intermediate sizes
    by the layer's role; None when neither decides."""
    stem = name.removesuffix(".weight")
    bias = shape_of(tensors, stem + ".bias")
    if bias is not None and len(bias) == 1 and bias[0] > 0 and numel % bias[0] == 0:
        return bias[0], numel // bias[0]
    hidden, inter = float_dims(config)
    width = inter if _DOWN.search(stem) else hidden
    if width and numel % width == 0:
        return numel // width, width
    return None
