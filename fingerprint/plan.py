"""Which tensors a signature samples (slots) and which bytes of each it reads (windows).

The plan is a pure function of the tensor index (names, dtypes, shapes) and the parameters, so
two checkpoints of one architecture choose the same slots, whatever their dtype or where they
were read from.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import index as index_of
from typing import NamedTuple

from fingerprint.protocol import TensorMeta

# Names that checkpoints put around the same weights. Each is the whole of a wrapper, so the
# tensors under it are the ones its parent saved without it. `encoder.` and `decoder.` are not
# here: encoder-decoder models hold both, and in BERT-like models `encoder.` is part of the
# parent's own names. A name that two tensors of one checkpoint would share keeps its raw form
# (`plan_slots`).
_PREFIXES = (
    "base_model.model.",  # PEFT
    "module.",  # DDP, DataParallel
    "_orig_mod.",  # torch.compile
    # HF task models keep their base model under `base_model_prefix`: LlamaForCausalLM under
    # `model.` (OPTForCausalLM's `model.decoder.` so meets OPTModel's `decoder.`), GPT-2 under
    # `transformer.`, BertForMaskedLM under `bert.` (xlm-roberta and camembert use `roberta.`,
    # deberta-v2 `deberta.`)
    "model.",
    "transformer.",
    "language_model.",
    "bert.",
    "roberta.",
    "distilbert.",
    "deberta.",
    "electra.",
    "albert.",
    "mpnet.",
    "gpt_neox.",
    # a SentenceTransformer's own state_dict: module 0 is the Transformer, its HF model `auto_model`
    "0.auto_model.",
)

# A tensor inside a numbered block (`encoder.layer.3.`, `layers.10.`, `h.0.`): the body that
# evenly spaced picks are spread over.
_IN_LAYER = re.compile(r"(?:^|\.)\d+\.")

_ROLE_PATTERNS = (
    ("embedding", re.compile(r"embed|wte|wpe|word_embeddings|tok_embeddings|shared\.weight")),
    ("head", re.compile(r"lm_head|^output\.|^head\.|classifier|score\.")),
    ("attention", re.compile(r"attn|attention|q_proj|k_proj|v_proj|o_proj|query|key|value")),
    ("mlp", re.compile(r"mlp|ffn|feed_forward|fc\d|gate_proj|up_proj|down_proj|dense|experts")),
)


# Names repeat from model to model of an architecture (a crawl plans thousands of Llamas), so the
# three per-name functions below keep their answers.
_NAMES_CACHED = 1 << 16


@lru_cache(maxsize=_NAMES_CACHED)
def normalize_name(name: str) -> str:
    """Strip wrapper prefixes: `module.model.layers.0.x` -> `layers.0.x`, `bert.x` -> `x`."""
    # no prefix is the start of another, so at most one matches at a time; one is never
    # stripped when nothing would be left
    while name.startswith(_PREFIXES):
        prefix = next(p for p in _PREFIXES if name.startswith(p))
        if len(name) <= len(prefix):
            break
        name = name[len(prefix) :]
    return name


@lru_cache(maxsize=_NAMES_CACHED)
def role_of(normalized: str) -> str:
    """Rough role of a tensor: embedding, head, attention, mlp or other."""
    for role, pattern in _ROLE_PATTERNS:
        if pattern.search(normalized):
            return role
    return "other"


_DIGITS = re.compile(r"(\d+)")


@lru_cache(maxsize=_NAMES_CACHED)
def _natural_key(name: str) -> tuple:
    # layers.10 sorts after layers.9, so "evenly spaced" means spread across depth
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))


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


def normalized_names(names: Sequence[str]) -> dict[str, str]:
    """Each tensor's normalized name, unless two tensors of the checkpoint would share it.

    Those keep their raw names: two tensors under one slot key would not compare, and guessing
    which of them is "the" layer is how a wrong match would start.
    """
    norms = {name: normalize_name(name) for name in names}
    counts = Counter(norms.values())
    return {name: norm if counts[norm] == 1 else name for name, norm in norms.items()}


@dataclass(frozen=True, slots=True)
class _Candidate:
    info: _Meta
    normalized: str
    role: str


class _Meta(NamedTuple):
    """What the plan reads of a tensor (`TensorMeta`)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    decodable: bool


# Whole indexes repeat too (every fine-tune of a base keeps its tensors): the last plans made are
# kept, keyed by the index and the parameters (a Llama's index is about 100 KB).
_PLANS_CACHED = 64


def plan_slots(
    infos: Sequence[TensorMeta], *, max_slots: int, window: int, min_elements: int
) -> tuple[tuple[Slot, ...], tuple[tuple[str, str], ...]]:
    """Choose at most `max_slots` slots spread across depth and roles.

    Returns:
        (slots, skipped): the slots in natural name order, and (tensor, reason) for every tensor
        that was not chosen.
    """
    # dimensions as ints (a numpy integer or a bool equals one and would share its key)
    index = tuple((i.name, i.dtype, tuple(map(index_of, i.shape)), i.decodable) for i in infos)
    return _plan(index, max_slots, window, min_elements)


def plan_cache_clear() -> None:
    """Forget the plans kept (benchmarks time a first plan with it)."""
    _plan.cache_clear()


@lru_cache(maxsize=_PLANS_CACHED)
def _plan(
    index: tuple[tuple[str, str, tuple[int, ...], bool], ...],
    max_slots: int,
    window: int,
    min_elements: int,
) -> tuple[tuple[Slot, ...], tuple[tuple[str, str], ...]]:
    infos = [_Meta(*i) for i in index]
    skipped: list[tuple[str, str]] = []
    eligible: list[_Meta] = []
    for info in infos:
        reason = eligibility(info, min_elements)
        if reason is None:
            eligible.append(info)
        else:
            skipped.append((info.name, reason))
    norms = normalized_names([i.name for i in eligible])
    candidates = [_Candidate(i, norms[i.name], role_of(norms[i.name])) for i in eligible]
    candidates.sort(key=lambda c: _natural_key(c.normalized))

    chosen = _spread(candidates, max_slots)
    chosen_names = {c.info.name for c in chosen}
    skipped.extend(
        (c.info.name, "not in plan") for c in candidates if c.info.name not in chosen_names
    )

    slots = []
    for c in chosen:
        info = c.info  # (a _Meta: shape is a tuple)
        rows, cols = info.shape[0], math.prod(info.shape[1:])
        r = window_rows(rows, cols, window)
        # a single row wider than the budget: its first `window` elements
        n = r * cols if cols <= window else window
        trailing = "x".join(str(d) for d in info.shape[1:])
        slots.append(
            Slot(
                key=f"{c.normalized}|{trailing}|{n}",
                tensor=info.name,
                normalized=c.normalized,
                role=c.role,
                dtype=info.dtype,
                shape=info.shape,
                rows=r,
                cols=cols,
                n=n,
            )
        )
    return tuple(slots), tuple(sorted(skipped))


def _spread(candidates: list[_Candidate], max_slots: int) -> list[_Candidate]:
    """Evenly spaced picks over the layers; two embeddings (else the head) always in.

    The picks are spaced over the tensors inside numbered blocks only, so a tensor outside them
    that one checkpoint has and its parent lacks (a task head such as
    `cls.predictions.transform.dense`, a dropped pooler) shifts no pick: both choose the same
    slots. Embeddings come before heads for the same reason: `classifier.dense` sorts first.
    """
    if len(candidates) <= max_slots:
        return list(candidates)
    ends = [c for c in candidates if c.role in ("embedding", "head")]
    must = sorted(ends, key=lambda c: c.role != "embedding")[:2]
    kept = {c.info.name for c in must}  # (a name listed twice leaves with its twin)
    rest = [c for c in candidates if c.info.name not in kept]
    body = [c for c in rest if _IN_LAYER.search(c.normalized)] or rest
    want = max_slots - len(must)
    if want <= 0:
        return must[:max_slots]
    if len(body) <= want:
        # room for every layer tensor: the rest of the room goes to the others, in name order
        in_body = {c.info.name for c in body}
        others = [c for c in rest if c.info.name not in in_body]
        chosen = must + body + others[: want - len(body)]
    else:
        step = (len(body) - 1) / max(1, want - 1)
        picks = {round(j * step) for j in range(want)}
        chosen = must + [body[j] for j in sorted(picks)]
    chosen.sort(key=lambda c: _natural_key(c.normalized))
    return chosen
