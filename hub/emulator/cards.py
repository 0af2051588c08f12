"""Model cards as the Hub reads them: YAML front matter and the tags it derives from it.

The emulation imports nothing else of `hub`, so it parses cards itself, as the Hub does on its
side; `hub.card` is the client's reading of the same text.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["card_tags", "parse_front_matter"]


def parse_front_matter(text: str) -> dict[str, Any] | None:
    """The YAML front matter of a model card, None if absent or not a mapping."""
    if not text.startswith("---"):
        return None
    lines = text.splitlines()
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            try:
                data = yaml.safe_load("\n".join(lines[1:end]))
            except yaml.YAMLError:
                return None
            return data if isinstance(data, dict) else None
    return None


def card_tags(meta: dict, card: dict | None) -> list[str]:
    """Manifest tags plus the `base_model:` and `license:` tags the Hub derives from the card.

    Args:
        meta: the repo's manifest record.
        card: its card's front matter, None without a card.
    """
    tags = list(meta.get("tags") or [])
    if card:
        bases = card.get("base_model") or []
        bases = [bases] if isinstance(bases, str) else [b for b in bases if isinstance(b, str)]
        relation = card.get("base_model_relation")
        for base in bases:
            tags.append(f"base_model:{base}")
            if isinstance(relation, str):
                tags.append(f"base_model:{relation}:{base}")
        if isinstance(card.get("license"), str):
            tags.append(f"license:{card['license']}")
    return list(dict.fromkeys(tags))
