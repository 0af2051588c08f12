"""The models a crawl visits: listing filters, date cuts, each id once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timezone
from typing import Any

from hub.client import HubClient

__all__ = ["children_filter", "iter_models", "parse_since"]


def children_filter(base_id: str, relation: str | None = None) -> str:
    """The listing filter that finds the models declaring `base_id` as their base.

    `base_model:<id>` matches every child; `base_model:<relation>:<id>` (relation `finetune`,
    `adapter`, `quantized` or `merge`) only those of that kind.
    """
    return f"base_model:{relation}:{base_id}" if relation else f"base_model:{base_id}"


def parse_since(value: str | date | datetime | None) -> datetime | None:
    """An aware UTC datetime from `2024-05-01`, `2024-05-01T12:00`, `...Z`, a date or datetime.

    Raises:
        ValueError: the text is not an ISO 8601 date or date-time.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day)
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date; give one like 2024-05-01 or 2024-05-01T12:00:00Z"
            ) from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


# The date cuts a listing can apply: (argument, `ModelInfo` attribute, the sort it stops paging).
_CUTS = (("since", "created_at", "created"), ("modified_since", "last_modified", "modified"))


def _when(info: Any, attribute: str) -> datetime | None:
    when = getattr(info, attribute, None)
    if not isinstance(when, datetime):
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def iter_models(
    client: HubClient,
    *,
    authors: Sequence[str] = (),
    search: str | None = None,
    filters: Sequence[str] = (),
    sort: str = "downloads",
    limit: int | None = None,
    since: str | date | datetime | None = None,
    modified_since: str | date | datetime | None = None,
) -> Iterator[Any]:
    """The models a crawl visits, as `ModelInfo`s with the `EXPAND` fields, each id once.

    Args:
        client: endpoint, token and retries.
        authors: one listing per author, one after the other; empty: all authors.
        search: substring of the repo id.
        filters: tags every model must carry, e.g. `children_filter("org/base")`.
        sort: `downloads`, `created`, `likes` or `modified`, descending.
        limit: at most this many models in all.
        since: keep models created at or after this date. Sorting by `created`, paging stops at
            the first older model; other sorts filter on the client and read every page.
        modified_since: keep models last modified (`lastModified`: the last commit) at or after
            this date, the daily refresh's question. Sorting by `modified`, paging stops at the
            first older model; other sorts filter on the client.
    """
    given = {"since": parse_since(since), "modified_since": parse_since(modified_since)}
    cuts = [(attr, cut, stops) for name, attr, stops in _CUTS if (cut := given[name]) is not None]
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    # A server-side limit is only safe when the client keeps every model it is given in order.
    server_limit = limit if all(stops == sort for _, _, stops in cuts) else None
    seen: set[str] = set()
    for author in authors or (None,):
        listing = client.list_models(
            author=author, search=search, filters=filters, sort=sort, limit=server_limit
        )
        for info in listing:
            if info.id in seen:
                continue  # pages of a live listing may shift: never visit a model twice
            older = [stops for attr, cut, stops in cuts if (_when(info, attr) or cut) < cut]
            missing = any(_when(info, attr) is None for attr, _, _ in cuts)
            if sort in older:
                break  # sorted descending by this date: everything after it is older
            if older or missing:
                continue
            seen.add(info.id)
            yield info
            if limit is not None and len(seen) >= limit:
                return
