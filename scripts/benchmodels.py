"""Large random safetensors files for the benchmarks, written tensor by tensor (never held whole)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

# safetensors dtype -> (bytes per element, float32 chunk -> the bytes written)
ENCODINGS = {
    "F32": (4, lambda chunk: chunk.tobytes()),
    "F16": (2, lambda chunk: chunk.astype(np.float16).tobytes()),
    "BF16": (2, lambda chunk: (chunk.view(np.uint32) >> 16).astype(np.uint16).tobytes()),
}
CHUNK = 1 << 24  # elements drawn at a time


def llama_layer(prefix: str, hidden: int, inter: int) -> list[tuple[str, tuple[int, ...]]]:
    """The weight shapes of one Llama decoder layer, named `prefix` + the HF tensor name."""
    return [
        (prefix + "self_attn.q_proj.weight", (hidden, hidden)),
        (prefix + "self_attn.k_proj.weight", (hidden, hidden)),
        (prefix + "self_attn.v_proj.weight", (hidden, hidden)),
        (prefix + "self_attn.o_proj.weight", (hidden, hidden)),
        (prefix + "mlp.gate_proj.weight", (inter, hidden)),
        (prefix + "mlp.up_proj.weight", (inter, hidden)),
        (prefix + "mlp.down_proj.weight", (hidden, inter)),
        (prefix + "input_layernorm.weight", (hidden,)),
    ]


def write_random_safetensors(
    path: Path, shapes: list[tuple[str, tuple[int, ...]]], *, seed: int, dtype: str = "F16"
) -> int:
    """Normal(0, 0.02) weights of `shapes` in `dtype`, written through a temporary file.

    Returns:
        The file's size in bytes.
    """
    size, encode = ENCODINGS[dtype]
    header, offset = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape)) * size
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for _, shape in shapes:
            n = int(np.prod(shape))
            for start in range(0, n, CHUNK):
                chunk = rng.standard_normal(min(CHUNK, n - start), dtype=np.float32) * 0.02
                f.write(encode(chunk))
    os.replace(tmp, path)
    return path.stat().st_size
