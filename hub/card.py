"""Model cards: YAML front matter and the lineage it declares.

A card declares its parents with `base_model` (one id or a list) and `base_model_relation`
(one of `finetune`, `adapter`, `quantized`, `merge`); the Hub mirrors them as tags
`base_model:<id>` and `base_model:<relation>:<id>`. Both are read here, never trusted further:
the graph layer checks them against the weights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from hub.records import RELATIONS, DeclaredBase

# Same block the Hub recognises: `---` on the first line, YAML, a closing `---` line.
_FRONT_MATTER = re.compile(
    r"^\ufeff?(\s*---[ \t]*(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(?:\r\n|\n|$))"
)

_TAG_PREFIX = "base_model:"
# Front matter longer than this is not a card worth a YAML parse (a hostile 200k-item list);
# real cards, evaluation results included, stay well under it.
FRONT_MATTER_MAX = 256 * 1024
# README bytes read for its card: the front matter is at the top.
README_MAX = 2 * FRONT_MATTER_MAX
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster when present


def read_card(readme: Path) -> dict:
    """The front matter of a README file ({} when missing, unreadable or not a card), reading
    at most `README_MAX` bytes of it."""
    try:
        with open(readme, "rb") as f:
            text = f.read(README_MAX).decode("utf-8", errors="replace")
    except OSError:
        return {}
    return split_front_matter(text)[0]


def split_front_matter(readme_text: str) -> tuple[dict, str]:
    """Split a README into its YAML front matter and its body.

    Never raises: a card without front matter, with YAML that does not parse or is not a
    mapping, or with front matter over `FRONT_MATTER_MAX` characters, gives `{}` (and the body
    after the block, when there is one).

    Returns:
        (card data, Markdown body).
    """
    m = _FRONT_MATTER.match(readme_text)
    if m is None:
        return {}, readme_text
    body = readme_text[m.end() :]
    if len(m.group(2)) > FRONT_MATTER_MAX:
        return {}, body
    try:
        data = yaml.load(m.group(2), Loader=_Loader)  # a safe loader, C or Python
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):
        # Cards in the wild have tabs, duplicate anchors, odd dates: a bad card is "no card".
        return {}, body
    return (data if isinstance(data, dict) else {}), body


def _relation(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    rel = value.strip().lower()
    return rel if rel in RELATIONS else None


def _card_bases(card_data: dict) -> list[DeclaredBase]:
    raw = card_data.get("base_model")
    ids = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    rel_raw = card_data.get("base_model_relation")
    out = []
    for i, item in enumerate(ids):
        if not isinstance(item, str) or not item.strip():
            continue
        if isinstance(rel_raw, list):
            # A list of relations pairs up with a list of bases, when the lengths agree.
            rel = _relation(rel_raw[i]) if len(rel_raw) == len(ids) else None
        else:
            rel = _relation(rel_raw)
        out.append(DeclaredBase(id=item.strip(), relation=rel))
    return out


def _tag_base(tag: str) -> DeclaredBase | None:
    if not tag.startswith(_TAG_PREFIX):
        return None
    rest = tag[len(_TAG_PREFIX) :].strip()
    head, sep, tail = rest.partition(":")
    if sep:
        # `base_model:<relation>:<id>`; repo ids never contain ':'.
        rest, rel = tail.strip(), _relation(head)
    else:
        rel = None
    return DeclaredBase(id=rest, relation=rel) if rest else None


def declared_bases(card_data: dict, tags: Iterable[str]) -> tuple[DeclaredBase, ...]:
    """The parents a model declares, from its card and its tags.

    Card entries come first, then tag entries in tag order. An id declared several times is
    kept once, at its first place, with the first non-None relation given for it.

    Args:
        card_data: the front matter (as `split_front_matter` or the Hub's `cardData` gives it).
        tags: the model's tags; only `base_model:...` ones are read.
    """
    found = _card_bases(card_data) if isinstance(card_data, dict) else []
    found += [b for b in (_tag_base(t) for t in tags if isinstance(t, str)) if b is not None]
    merged: dict[str, str | None] = {}
    for b in found:
        if merged.get(b.id) is None:
            merged[b.id] = b.relation
    return tuple(DeclaredBase(id=i, relation=r) for i, r in merged.items())
