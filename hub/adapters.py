"""The low-rank factors of a PEFT/LoRA adapter, read from an opened model.

An adapter repo (`hub.layout`'s `adapter` row) holds `adapter_model.safetensors` with one pair
of factors per adapted module, named as PEFT saves them:
`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` ([r, in]) and `...lora_B.weight`
([out, r]); the update is dW = (lora_alpha / r) * B @ A. `adapter_config.json` says r,
lora_alpha, target_modules and base_model_name_or_path.

Factors are small (r x (in + out) per module), so each is read whole; a byte cap per model
(`MAX_FACTOR_BYTES`) bounds what one adapter can cost, and what it leaves out is recorded.
No torch: decoding goes through `hub.decode`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hub import bounded_json, decode, dtypes
from hub.errors import HubError
from hub.layout import ADAPTER_CONFIG, SMALL_FILE_MAX
from hub.tensor_index import TensorIndex

# A rank-16 adapter on every linear layer of an 8B Llama is about 80 MB in fp32 (42 MB in bf16):
# the cap keeps most of such an adapter and bounds a hostile one.
MAX_FACTOR_BYTES = 64 * 2**20

# `<module>.lora_A.weight`, `<module>.lora_embedding_B`, and the in-memory form with the adapter
# name (`<module>.lora_A.default.weight`) that some tools save.
_FACTOR = re.compile(r"^(?P<module>.+)\.lora_(?:embedding_)?(?P<ab>[AB])(?:\.[^.]+)?(?:\.weight)?$")

Factors = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, slots=True)
class AdapterFactors:
    """What an adapter's weights and config say about its update.

    Attributes:
        model_id: the opened model's id.
        factors: module name as stored (without `.lora_A.weight`) -> (A float32 [r, in],
            B float32 [out, r]).
        rank: `r` of adapter_config.json, None without a config.
        alpha: `lora_alpha`, None without a config.
        base: `base_model_name_or_path` as written (a repo id or a path), None if absent.
        target_modules: as configured (a regex string becomes one entry).
        bytes_read: factor bytes read.
        left_out: modules not read because of the byte cap, largest first.
        notes: what could not be read and why (no config, unpaired factors, undecodable dtype).
    """

    model_id: str
    factors: Factors = field(compare=False, hash=False)
    rank: int | None = None
    alpha: float | None = None
    base: str | None = None
    target_modules: tuple[str, ...] = ()
    bytes_read: int = 0
    left_out: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def scale(self) -> float | None:
        """alpha / r (PEFT's default scaling), None when the config does not say both."""
        if self.rank and self.alpha is not None:
            return self.alpha / self.rank
        return None


def read_config(model: TensorIndex) -> dict[str, Any] | None:
    """adapter_config.json of an opened model, None when it has none or it does not parse.

    A local folder is read from its path; another source offers `read_small(path)` (bytes of a
    small file of the repo) if it can. Never raises: a broken config is no config.
    """
    reader = getattr(model, "read_small", None)
    try:
        if callable(reader):
            raw = reader(ADAPTER_CONFIG)
        else:
            root = getattr(model, "path", None)
            if root is None:
                return None
            with open(Path(root) / ADAPTER_CONFIG, "rb") as f:
                raw = f.read(SMALL_FILE_MAX + 1)
        doc = bounded_json.loads(raw, max_bytes=SMALL_FILE_MAX)
    except (OSError, KeyError, bounded_json.JsonBoundError, HubError):
        return None
    return doc if isinstance(doc, dict) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def read_factors(
    model: TensorIndex,
    *,
    config: Mapping[str, Any] | None = None,
    max_bytes: int = MAX_FACTOR_BYTES,
) -> AdapterFactors:
    """The LoRA factors of an opened adapter, per module, with r and alpha from its config.

    Args:
        model: an opened model (`hub.local.open_local_model`, `hub.hubsource.open_hub_model`).
        config: adapter_config.json's content; default `read_config(model)`.
        max_bytes: factor bytes read at most; the largest modules beyond it are left out.

    Returns:
        The factors; a model without LoRA tensors gives none (and a note saying so).

    Raises:
        MalformedFileError, HubError: the bytes could not be read (see `TensorIndex.read_range`).
    """
    notes: list[str] = []
    cfg = read_config(model) if config is None else dict(config)
    if cfg is None:
        notes.append(f"no readable {ADAPTER_CONFIG}: r from the factors' shapes, alpha unknown")
        cfg = {}
    pairs: dict[str, dict[str, Any]] = {}
    for info in model.tensor_infos():
        m = _FACTOR.match(info.name)
        if m:
            pairs.setdefault(m["module"], {})[m["ab"]] = info
    candidates: list[tuple[int, str]] = []
    for module in sorted(pairs):
        got = pairs[module]
        if set(got) != {"A", "B"}:
            notes.append(f"{module}: only lora_{''.join(sorted(got))} stored, skipped")
            continue
        a, b = got["A"], got["B"]
        reason = _unusable(a, b)
        if reason:
            notes.append(f"{module}: {reason}, skipped")
            continue
        size = sum(_nbytes(i) for i in (a, b))
        candidates.append((size, module))
    if not pairs:
        notes.append("no lora_A / lora_B tensors: not a LoRA adapter")
    # Smallest first, so the cap leaves out the fewest modules and always the largest ones.
    candidates.sort()
    factors: Factors = {}
    spent = 0
    left_out: list[str] = []
    for size, module in candidates:
        if spent + size > max_bytes:
            left_out.append(module)
            continue
        a, b = pairs[module]["A"], pairs[module]["B"]
        fa, fb = _read(model, a), _read(model, b)
        r = fa.shape[0]
        factors[module] = (fa.reshape(r, -1), fb.reshape(fb.shape[0], r))
        spent += size
    if left_out:
        notes.append(
            f"{len(left_out)} of {len(candidates)} modules left out: their factors pass the "
            f"{max_bytes} byte cap"
        )
    targets = cfg.get("target_modules")
    if isinstance(targets, str):
        target_modules: tuple[str, ...] = (targets,)
    elif isinstance(targets, list):
        target_modules = tuple(t for t in targets if isinstance(t, str))
    else:
        target_modules = ()
    rank = _number(cfg.get("r"))
    base = cfg.get("base_model_name_or_path")
    return AdapterFactors(
        model_id=model.model_id,
        factors=factors,
        rank=int(rank) if rank is not None and rank > 0 else None,
        alpha=_number(cfg.get("lora_alpha")),
        base=base if isinstance(base, str) and base else None,
        target_modules=target_modules,
        bytes_read=spent,
        left_out=tuple(reversed(left_out)),
        notes=tuple(notes),
    )


def _nbytes(info: Any) -> int:
    return int(np.prod(info.shape, dtype=np.int64)) * dtypes.size(info.dtype)


def _unusable(a: Any, b: Any) -> str:
    """Why a pair of factor tensors cannot be one LoRA update ("" when it can)."""
    for info in (a, b):
        if not info.decodable:
            return f"{info.name} is {info.dtype}, which is not decoded"
    if len(a.shape) < 2 or len(b.shape) < 2:
        return f"factors of shapes {list(a.shape)} and {list(b.shape)} are not matrices"
    # B [out, r] (a conv's [out, r, 1, 1]) against A [r, in] (a conv's [r, in, kh, kw])
    if b.shape[1] != a.shape[0] or int(np.prod(b.shape[2:], dtype=np.int64)) != 1:
        return f"lora_B {list(b.shape)} does not multiply lora_A {list(a.shape)}"
    return ""


def _read(model: TensorIndex, info: Any) -> np.ndarray:
    n = int(np.prod(info.shape, dtype=np.int64))
    raw = model.read_range(info.name, 0, n * dtypes.size(info.dtype))
    return decode.decode(raw, info.dtype).reshape(info.shape)
