"""The model listing: `GET /api/models` with search, filters, sort, `expand` and paging.

Parameters: search, author, filter (repeated; tags, library or pipeline), pipeline_tag, gated,
sort, direction, limit, expand, full, cardData, config, cursor. Private repos are left out
without a valid token.
"""

from __future__ import annotations

from typing import Any

from hub.emulator.messages import Answer, ApiError, Request
from hub.emulator.query import expand_fields, flag, offset, page_answer, positive_int
from hub.emulator.records import (
    EXPAND_FIELDS,
    LIST_DEFAULT_FIELDS,
    LIST_FULL_FIELDS,
    model_record,
)
from hub.emulator.repos import RepoStore

__all__ = ["list_models"]

# Fields a listing filters on.
_FILTERED = ("tags", "library_name", "pipeline_tag", "author", "private", "gated")
# Query switches that add a field to the default listing fields.
_ADDED_FIELDS = (("full", LIST_FULL_FIELDS), ("cardData", ("cardData",)), ("config", ("config",)))
_SORT_ALIASES = {
    "last_modified": "lastModified",
    "created_at": "createdAt",
    "trending_score": "trendingScore",
}


def list_models(req: Request) -> Answer:
    """One page of the models that match the query, in the order asked."""
    hub = req.hub
    q = dict(req.query)
    fields = expand_fields(req.query)
    if fields is None:
        fields = list(LIST_DEFAULT_FIELDS)
        for switch, added in _ADDED_FIELDS:
            if flag(q.get(switch)):
                fields += added
    filters = [v for k, v in req.query if k in ("filter", "filter[]") and v]
    ids = [i for i in hub.store.ids() if _matches(req, q, filters, i)]
    if q.get("sort"):
        ids = _sorted(hub.store, ids, q["sort"], descending=q.get("direction", "-1") != "1")
    limit = positive_int(q["limit"], "limit") if q.get("limit") else None
    size = min(limit, hub.page_size) if limit else hub.page_size
    start = offset(q.get("cursor"))
    page = [model_record(hub.store, i, fields) for i in ids[start : start + size]]
    return page_answer(req, page, start + size, len(ids))


def _matches(req: Request, q: dict[str, str], filters: list[str], repo_id: str) -> bool:
    search = (q.get("search") or "").lower()
    if search and search not in repo_id.lower():
        return False
    meta = model_record(req.hub.store, repo_id, _FILTERED) or {}
    if meta.get("private") and not req.authorized:
        return False
    author = (q.get("author") or "").lower()
    if author and (meta.get("author") or "").lower() != author:
        return False
    labels = {*meta.get("tags", ()), meta.get("library_name"), meta.get("pipeline_tag")}
    if not all(f in labels for f in filters):
        return False
    if "pipeline_tag" in q and meta.get("pipeline_tag") != q["pipeline_tag"]:
        return False
    return "gated" not in q or bool(meta.get("gated")) == flag(q["gated"])


def _sorted(store: RepoStore, ids: list[str], key: str, *, descending: bool) -> list[str]:
    """`ids` sorted by a record field; repos without a value for it come last, in list order."""
    key = _SORT_ALIASES.get(key, key)
    if key not in EXPAND_FIELDS and key != "id":
        raise ApiError(400, None, f"Invalid sort field: {key}")
    values = {i: i if key == "id" else (model_record(store, i, [key]) or {}).get(key) for i in ids}
    known = sorted(
        (i for i in ids if values[i] is not None),
        key=lambda i: _sort_key(values[i]),
        reverse=descending,
    )
    return known + [i for i in ids if values[i] is None]


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before strings before anything else, so mixed values never raise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, value) if isinstance(value, str) else (2, str(value))
