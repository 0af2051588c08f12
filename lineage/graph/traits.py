"""What the graph reads off one model or one pair: quantization and adapter hints in the
metadata, a coarse value grid, float width, kurtosis, upload order, and the drift between two
models."""

from __future__ import annotations

import math
import re

import numpy as np

from fingerprint.comparison import PairResult
from fingerprint.signature import Signature
from hub.dtypes import DTYPE_BITS
from hub.records import ModelRecord
from lineage.graph.params import GraphParams

_QUANT_WORDS = re.compile(
    r"(?<![a-z])(gptq|awq|gguf|int8|int4|4bit|8bit|bnb|quantized|exl2|fp8)(?![a-z])", re.I
)
_ADAPTER_WORDS = re.compile(r"(?<![a-z])(lora|peft|adapter|qlora)(?![a-z])", re.I)


def upload_order(rec: ModelRecord) -> tuple[str, int, str]:
    """Sort key of the earliest upload: upload time (unknown last), then the most downloaded,
    then the id."""
    return (rec.created_at or "9999", -(rec.downloads or 0), rec.id)


# A format read without quantization (a GGUF of F16 weights, an fp32 ONNX export) is a copy in
# another file format, not a quantization.
_FLOAT_METHOD = re.compile(r":(?:all_|mostly_)?(?:f|fp|bf)(?:16|32|64)$", re.I)
# the bits a storage code names: Q4_K, GPTQ_I4, NF4, BNB_I8, ONNX_U8 (block scales left out)
_CODE_BITS = re.compile(r"(\d+)")


def quantization(rec: ModelRecord) -> str:
    """The quantization the weights were read through (`gguf:Q4_K_M`, `gptq:4bit-g128`), ""
    for float weights, float GGUF/ONNX conversions included."""
    method = rec.extra.get("quantization")
    if not isinstance(method, str) or not method:
        return ""
    return "" if all(_FLOAT_METHOD.search(m) for m in method.split(",")) else method


def file_format(rec: ModelRecord) -> str:
    """The format the weights were read through, quantized or not (`gguf:F16`), "" for
    safetensors floats."""
    method = rec.extra.get("quantization")
    return method if isinstance(method, str) else ""


def is_quantized_meta(rec: ModelRecord) -> bool:
    """Whether the files, the card or the name say quantized: a packed format read from the
    files, a declared relation, or a word like gptq."""
    if quantization(rec) or any(b.relation == "quantized" for b in rec.declared_bases):
        return True
    text = " ".join([rec.id, *rec.tags])
    return bool(_QUANT_WORDS.search(text))


def is_adapter_meta(rec: ModelRecord) -> bool:
    """Whether the files, the card or the name say adapter (LoRA, PEFT)."""
    if rec.extra.get("adapter") or any(b.relation == "adapter" for b in rec.declared_bases):
        return True
    return bool(_ADAPTER_WORDS.search(" ".join([rec.id, *rec.tags])))


def is_coarse(sig: Signature, params: GraphParams) -> bool:
    """Values rounded onto a quantization grid in a good share of slots.

    Trained float weights have ~all-distinct values per row; an int8 round trip leaves at most
    255 levels per row and 4-bit 16 per group. Embeddings are often left unquantized, hence a
    share of slots rather than all.
    """
    if not sig.slots:
        return False
    coarse = sum(s.distinct < params.coarse_distinct for s in sig.slots)
    return coarse >= params.coarse_share * len(sig.slots)


def coarser(child: Signature, parent: Signature, params: GraphParams) -> bool:
    """Whether `child` sits on a quantization grid that `parent` does not (quantized)."""
    return is_coarse(child, params) and not is_coarse(parent, params)


def mean_kurtosis(sig: Signature) -> float:
    """Mean weight kurtosis over the slots (0 without slots)."""
    return float(np.mean([s.kurtosis for s in sig.slots])) if sig.slots else 0.0


def storage_bits(code: str) -> int:
    """Bits per element of a storage code: the safetensors table, else the width a packed
    code names (`Q4_K` 4, `GPTQ_I4` 4, `BNB_I8` 8), else 32."""
    if code in DTYPE_BITS:
        return DTYPE_BITS[code]
    m = _CODE_BITS.search(code)
    return int(m.group(1)) if m else 32


def float_bits(sig: Signature) -> float:
    """Mean bits per element over the slots (32 without slots)."""
    return float(np.mean([storage_bits(s.dtype) for s in sig.slots])) if sig.slots else 32.0


def drift(pair: PairResult) -> float:
    """How far apart two related models are: -ln(overlap), shrunk by the identical share.

    Along a chain overlaps multiply, so -ln(overlap) adds up; exactly equal weights (a copy,
    frozen layers) bring it towards zero.
    """
    return -math.log(max(pair.overlap, 1e-9)) * (1.0 - 0.9 * pair.identity)
