"""What the graph reads off a record's format: quantization methods and storage widths."""

from __future__ import annotations

import dataclasses

import pytest

from hub.records import ModelRecord
from lineage.graph.traits import file_format, is_quantized_meta, quantization, storage_bits


def _rec(method: object = None, mid: str = "org/model") -> ModelRecord:
    extra = {} if method is None else {"quantization": method}
    return dataclasses.replace(ModelRecord(id=mid), extra=extra)


@pytest.mark.parametrize(
    ("method", "quantized"),
    [
        ("gguf:Q4_K_M", True),
        ("gptq:4bit-g128", True),
        ("bnb:nf4", True),
        ("onnx:int8", True),
        ("gguf:F16", False),
        ("gguf:MOSTLY_BF16", False),
        ("onnx:fp32", False),
        ("gguf:F16,onnx:int8", True),
        ("", False),
        (7, False),
    ],
)
def test_a_float_conversion_is_no_quantization(method, quantized):
    rec = _rec(method)
    assert bool(quantization(rec)) is quantized
    assert is_quantized_meta(rec) is quantized
    assert file_format(rec) == (method if isinstance(method, str) else "")


@pytest.mark.parametrize(
    ("code", "bits"),
    [("BF16", 16), ("F32", 32), ("F8_E4M3", 8), ("Q4_K", 4), ("Q8_0", 8), ("GPTQ_I4", 4),
     ("NF4", 4), ("BNB_I8", 8), ("ONNX_U8", 8), ("WEIRD", 32)],
)  # fmt: skip
def test_storage_bits_reads_the_width_a_packed_code_names(code, bits):
    assert storage_bits(code) == bits
