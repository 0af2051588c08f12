"""Which tensors a signature samples (slots) and which bytes of each it reads (windows).

The plan is a pure function of the tensor index (names, dtypes, shapes) and the parameters, so
two checkpoints of one architecture choose the same slots, whatever their dtype or where they
were read from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from fingerprint.protocol import TensorMeta

# Wrappers that checkpoints put around the same layer (DDP, torch.compile, PEFT, HF heads).
_PREFIXES = (
    "base_model.model.",
    "module.",
    "_orig_mod.",
    "model.",
    "transformer.",
    "language_model.",
)

_ROLE_PATTERNS = (
    ("embedding", re.compile(r"embed|wte|wpe|word_embeddings|tok_embeddings|shared\.weight")),
    ("head", re.compile(r"lm_head|^output\.|^head\.|classifier|score\.")),
    ("attention", re.compile(r"attn|attention|q_proj|k_proj|v_proj|o_proj|query|key|value")),
    ("mlp", re.compile(r"mlp|ffn|feed_forward|fc\d|gate_proj|up_proj|down_proj|dense|experts")),
)


def normalize_name(name: str) -> str:
    """Strip wrapper prefixes so `module.model.layers.0.x` and `layers.0.x` match."""
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix) :]
                changed = True
    return name


def role_of(normalized: str) -> str:
    """Rough role of a tensor: embedding, head, attention, mlp or other."""
    for role, pattern in _ROLE_PATTERNS:
        if pattern.search(normalized):
            return role
    return "other"


def _natural_key(name: str) -> tuple:
    # layers.10 sorts after layers.9, so "evenly spaced" means spread across depth
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


@dataclass(frozen=True, slots=True)
class Slot:
    """One planned read: the first `rows` rows of a tensor viewed as rows x cols.

    `n` = elements in the window (the source reads and decodes them: `read_window`).
    """

    key: str
    tensor: str
    normalized: str
    role: str
    dtype: str
    shape: tuple[int, ...]
    rows: int
    cols: int
    n: int


def window_rows(rows: int, cols: int, budget: int) -> int:
    """Rows in the window: a power of two no larger than min(rows, budget // cols).

    Depends on `rows` only through the power of two below it, so appending a few rows (a
    vocabulary extension: 32000 -> 32016 tokens) leaves the window, and the slot key, unchanged.
    """
    limit = min(rows, max(1, budget // cols))
    return 1 << (limit.bit_length() - 1)


def eligibility(info: TensorMeta, min_elements: int) -> str | None:
    """None when the tensor can be fingerprinted, else the reason it is skipped."""
    if not info.decodable:  # the source says whether it can give float values
        return f"dtype {info.dtype} is not floating point"
    if len(info.shape) < 2:
        return f"{len(info.shape)}-D tensor (norms and biases carry no lineage signal)"
    if math.prod(info.shape) < min_elements:
        return f"{math.prod(info.shape)} elements < {min_elements}"
    return None


def plan_slots(
    infos: Sequence[TensorMeta], *, max_slots: int, window: int, min_elements: int
) -> tuple[tuple[Slot, ...], tuple[tuple[str, str], ...]]:
    """Choose at most `max_slots` slots spread across depth and roles.

    Returns:
        (slots, skipped): the slots in natural name order, and (tensor, reason) for every tensor
        that was not chosen.
    """
    skipped: list[tuple[str, str]] = []
    eligible: list[TensorMeta] = []
    for info in infos:
        reason = eligibility(info, min_elements)
        if reason is None:
            eligible.append(info)
        else:
            skipped.append((info.name, reason))
    eligible.sort(key=lambda i: _natural_key(normalize_name(i.name)))

    chosen = _spread(eligible, max_slots)
    chosen_set = {id(i) for i in chosen}
    skipped.extend((i.name, "not in plan") for i in eligible if id(i) not in chosen_set)

    slots = []
    for info in chosen:
        norm = normalize_name(info.name)
        rows, cols = info.shape[0], math.prod(info.shape[1:])
        r = window_rows(rows, cols, window)
        # a single row wider than the budget: its first `window` elements
        n = r * cols if cols <= window else window
        trailing = "x".join(str(d) for d in info.shape[1:])
        slots.append(
            Slot(
                key=f"{norm}|{trailing}|{n}",
                tensor=info.name,
                normalized=norm,
                role=role_of(norm),
                dtype=info.dtype,
                shape=tuple(info.shape),
                rows=r,
                cols=cols,
                n=n,
            )
        )
    return tuple(slots), tuple(sorted(skipped))


def _spread(eligible: list[TensorMeta], max_slots: int) -> list[TensorMeta]:
    """Evenly spaced picks over the depth-ordered list; the embedding and head always in."""
    if len(eligible) <= max_slots:
        return list(eligible)
    must = [i for i in eligible if role_of(normalize_name(i.name)) in ("embedding", "head")][:2]
    rest = [i for i in eligible if all(i is not m for m in must)]
    want = max_slots - len(must)
    if want <= 0:
        return must[:max_slots]
    step = (len(rest) - 1) / max(1, want - 1)
    picks = {round(j * step) for j in range(want)}
    chosen = must + [rest[j] for j in sorted(picks)]
    chosen.sort(key=lambda i: _natural_key(normalize_name(i.name)))
    return chosen
