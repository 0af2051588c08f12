"""Query parameters as the Hub reads them (flags, `expand`, positive integers) and paging.

Each reader raises `ApiError(400)` for a value the Hub would refuse. Listings are paged by an
opaque `cursor` and an absolute `Link: <...>; rel="next"` header, as on the Hub.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import urlencode

from hub.emulator.messages import Answer, ApiError, Request, json_answer
from hub.emulator.records import EXPAND_FIELDS

__all__ = ["encode_cursor", "expand_fields", "flag", "offset", "page_answer", "positive_int"]


def flag(value: str | None) -> bool:
    """A boolean parameter: present and empty, `1`, `true` or `yes` (any case) mean True."""
    return value is not None and value.lower() in ("1", "true", "yes", "")


def expand_fields(pairs: Iterable[tuple[str, str]]) -> list[str] | None:
    """The fields named by `expand` (or `expand[]`), in order, once each; None when not given."""
    names = [v for k, v in pairs if k in ("expand", "expand[]")]
    if not names:
        return None
    unknown = sorted(set(names) - EXPAND_FIELDS)
    if unknown:
        raise ApiError(400, None, f"Invalid expand fields: {', '.join(unknown)}")
    return list(dict.fromkeys(names))


def encode_cursor(offset: int) -> str:
    """The opaque `cursor` of the page that starts at item `offset`."""
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def offset(cursor: str | None) -> int:
    """The item offset a `cursor` (from `encode_cursor`) stands for; 0 without one."""
    if not cursor:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind == "o" and int(number) >= 0:
            return int(number)
    except ValueError:
        pass
    raise ApiError(400, None, f"Invalid cursor: {cursor}")


def positive_int(value: str, name: str) -> int:
    """An integer parameter that must be at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ApiError(400, None, f"{name} must be a positive integer, got {value!r}")
    return number


def page_answer(req: Request, page: list, end: int, total: int) -> Answer:
    """One page of a paged listing, with an absolute `Link: <...>; rel="next"` when more follow.

    Args:
        req: the request (its path and query, less `cursor`, make the next link).
        page: the items of this page.
        end: offset of the first item after this page.
        total: number of items over all pages.
    """
    headers = {}
    if end < total:
        kept = [(k, v) for k, v in req.query if k != "cursor"]
        host = req.headers.get("Host")
        base = f"http://{host}" if host else req.hub.url
        url = f"{base}{req.path}?{urlencode([*kept, ('cursor', encode_cursor(end))])}"
        headers["Link"] = f'<{url}>; rel="next"'
    return json_answer(page, headers)
