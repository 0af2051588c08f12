"""A `ModelRecord` from what the Hub says about a repo (a huggingface_hub `ModelInfo`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hub.card import declared_bases
from hub.layout import ADAPTER_NAME
from hub.records import ModelRecord

__all__ = ["record_from_info", "sibling_names"]


def _iso(when: datetime | None) -> str | None:
    """A datetime as the Hub writes it: `2024-01-31T12:00:00.000Z`."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


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
    return [s.rfilename for s in siblings if getattr(s, "rfilename", None)]


def record_from_info(info: Any) -> ModelRecord:
    """A `ModelRecord` (source "hub", no path) from a huggingface_hub `ModelInfo`.

    Declared bases come from the card and the `base_model:` tags; the license from the card,
    else a `license:` tag; the parameter count from the `safetensors` summary. `extra` holds only
    endpoint-free facts about the repo (never a URL, never a token).
    """
    card = _card_dict(info)
    tags = tuple(t for t in (getattr(info, "tags", None) or ()) if isinstance(t, str))
    license_ = _text(card.get("license"))
    if license_ is None:
        license_ = next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)
    gated = getattr(info, "gated", None)
    st = getattr(info, "safetensors", None)
    names = sibling_names(info)
    extra: dict[str, Any] = {}
    if isinstance(gated, str):
        extra["gated_mode"] = gated
    if names is not None:
        extra["files"] = len(names)
        extra["adapter"] = ADAPTER_NAME in names
    repo_id = info.id
    author = getattr(info, "author", None) or (repo_id.split("/", 1)[0] if "/" in repo_id else None)
    downloads_all = getattr(info, "downloads_all_time", None)
    return ModelRecord(
        id=repo_id,
        revision=getattr(info, "sha", None),
        author=author,
        downloads=int(getattr(info, "downloads", None) or 0),
        downloads_all_time=int(downloads_all) if downloads_all is not None else None,
        likes=int(getattr(info, "likes", None) or 0),
        created_at=_iso(getattr(info, "created_at", None)),
        last_modified=_iso(getattr(info, "last_modified", None)),
        library=_text(getattr(info, "library_name", None)),
        pipeline_tag=_text(getattr(info, "pipeline_tag", None)),
        license=license_,
        gated=bool(gated),
        tags=tags,
        declared_bases=declared_bases(card, tags),
        parameter_count=int(st.total) if st is not None and st.total is not None else None,
        source="hub",
        path=None,
        extra=extra,
    )
