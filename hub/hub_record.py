"""A `ModelRecord` from what the Hub says about a repo (a huggingface_hub `ModelInfo`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hub.card import declared_bases
from hub.layout import ADAPTER_NAME
from hub.records import ModelRecord, storable

__all__ = ["record_from_info", "sibling_names"]

_TEXT_MAX = 1000  # characters of a server-given name (library, pipeline tag, license, author)


def _iso(when: object) -> str | None:
    """A datetime as the Hub writes it: `2024-01-31T12:00:00.000Z` (None for anything else)."""
    if not isinstance(when, datetime):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:_TEXT_MAX]
    return None


def _count(value: object) -> int | None:
    """A count the server gave (downloads, likes, parameters): a non-negative integer that
    SQLite can hold, else None (a string, a float, a bool, 10^30)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        return None
    return value


def _card_dict(info: Any) -> dict:
    card = getattr(info, "card_data", None)
    if card is None:
        return {}
    if isinstance(card, dict):
        return card
    try:
        data = card.to_dict()
    except Exception:  # a card the library cannot serialise is "no card", never a crash
        return {}
    return data if isinstance(data, dict) else {}


def sibling_names(info: Any) -> list[str] | None:
    """The repo's file paths from a `ModelInfo`, or None when the info has no siblings."""
    siblings = getattr(info, "siblings", None)
    if siblings is None:
        return None
    if not isinstance(siblings, list):
        return None
    names = (getattr(s, "rfilename", None) for s in siblings)
    return [n for n in names if isinstance(n, str) and n]


def record_from_info(info: Any) -> ModelRecord:
    """A `ModelRecord` (source "hub", no path) from a huggingface_hub `ModelInfo`.

    Declared bases come from the card and the `base_model:` tags; the license from the card,
    else a `license:` tag; the parameter count from the `safetensors` summary. `extra` holds only
    endpoint-free facts about the repo (never a URL, never a token).
    """
    card = _card_dict(info)
    raw_tags = getattr(info, "tags", None)
    tags = tuple(t for t in (raw_tags if isinstance(raw_tags, list) else ()) if isinstance(t, str))
    license_ = _text(card.get("license"))
    if license_ is None:
        license_ = next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)
    gated = getattr(info, "gated", None)
    st = getattr(info, "safetensors", None)
    names = sibling_names(info)
    extra: dict[str, Any] = {}
    if isinstance(gated, str):
        extra["gated_mode"] = gated[:40]
    if names is not None:
        extra["files"] = len(names)
        extra["adapter"] = ADAPTER_NAME in names
    repo_id = info.id
    author = _text(getattr(info, "author", None)) or (
        repo_id.split("/", 1)[0] if "/" in repo_id else None
    )
    sha = getattr(info, "sha", None)
    total = getattr(st, "total", None) if st is not None else None
    record = ModelRecord(
        id=repo_id,
        revision=sha if isinstance(sha, str) else None,
        author=author,
        downloads=_count(getattr(info, "downloads", None)) or 0,
        downloads_all_time=_count(getattr(info, "downloads_all_time", None)),
        likes=_count(getattr(info, "likes", None)) or 0,
        created_at=_iso(getattr(info, "created_at", None)),
        last_modified=_iso(getattr(info, "last_modified", None)),
        library=_text(getattr(info, "library_name", None)),
        pipeline_tag=_text(getattr(info, "pipeline_tag", None)),
        license=license_,
        gated=bool(gated),
        tags=tags,
        declared_bases=declared_bases(card, tags),
        parameter_count=_count(total),
        source="hub",
        path=None,
        extra=extra,
    )
    return storable(record)
