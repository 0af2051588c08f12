"""Quantized safetensors checkpoints: which format packs a model's weights, read as floats.

Each row of `RECOGNIZERS` is one format (GPTQ, AWQ, bitsandbytes, FP8, compressed-tensors).
It looks at the stored tensors (names, dtypes, shapes: `x.qweight` beside `x.scales`,
`x.weight` of U8 beside `x.weight.absmax`) and at `config.json`'s `quantization_config`, and
returns the float tensors it can read (`hub.packed.Recognized`). The first row that finds any
decides; a model no row recognises is read as stored (its integer tensors are skipped).

A recogniser never raises for data it does not understand: it leaves those tensors stored and
says why in the method text only when it read nothing (the model then fails with the usual
"no float tensors" reason). `recognize` is called by every source after its tensor index is
built, so a folder and the same files on the Hub are read alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module

from hub.packed import Recognized

# (name, "module:function"): function(tensors, config, model_id) -> Recognized | None, where
# `tensors` maps stored names to `hub.tensor_index.Located` and `config` is config.json ({}
# when absent). Imported when first used: a plain fp16 model never loads them.
# GPTQ before AWQ: both store `x.qweight`, told apart by quant_method or by shape.
RECOGNIZERS: tuple[tuple[str, str], ...] = (
    ("gptq", "hub.quant.gptq:recognize"),
    ("awq", "hub.quant.awq:recognize"),
    ("bitsandbytes", "hub.quant.bnb:recognize"),
    ("compressed-tensors", "hub.quant.ctensors:recognize"),
    ("fp8", "hub.quant.fp8:recognize"),
)

# Stored names that mean a packed format may be present: worth reading config.json for.
PACKED_HINTS = (".qweight", ".absmax", ".SCB", "weight_scale", "weight_packed", ".quant_state")

NOTHING = Recognized(packed={}, consumed=frozenset(), method="")


def looks_packed(names: Mapping[str, object] | list[str]) -> bool:
    """Whether any stored name hints at a packed format (cheap; before reading config.json)."""
    return any(h in n for n in names for h in PACKED_HINTS)


def _load(target: str) -> Callable[..., Recognized | None]:
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


def recognize(tensors: Mapping[str, object], config: Mapping, model_id: str) -> Recognized:
    """The packed float tensors of a model, by the first format of `RECOGNIZERS` that finds
    some; `NOTHING` when none does."""
    if not looks_packed(list(tensors)) and not config.get("quantization_config"):
        return NOTHING
    for _name, target in RECOGNIZERS:
        found = _load(target)(tensors, config, model_id)
        if found is not None and found.packed:
            return found
    return NOTHING
