"""One bounded GET: a body cap, an overall deadline, few redirects, the token to one origin only.

Every byte a Hub sends us outside huggingface_hub's own small JSON calls goes through `get`:
listing pages and ranged reads of weight files. Whatever the server does, a call ends within its
deadline (a server dripping a byte a second cannot hold it), holds at most `max_bytes` of body
in memory (the body is streamed and reading stops at the cap: a 500 MB answer to a 64 KiB range
costs 64 KiB), follows at most `MAX_REDIRECTS` redirects, and sends the Authorization header
only to the origin (scheme, host, port) of the endpoint it was configured with: never across a
redirect or a `Link: rel=next` to another host.

Failures are `hub.errors` errors or transport errors of the HTTP library (retried by
`hub.retry`), each one line, never a URL with credentials.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from huggingface_hub.utils import get_session, hf_raise_for_status

from hub.errors import NetworkError, OfflineError

__all__ = ["DEADLINE_S", "MAX_REDIRECTS", "Answer", "BodyTooLargeError", "get", "origin"]

MAX_REDIRECTS = 5
DEADLINE_S = 120.0  # one request, headers to last byte; a window of 32 MiB needs far less
_ERROR_BODY_MAX = 64 * 1024  # of an error answer, enough for the Hub's JSON error
# A server that ignores `Range` answers 200 with the whole file: the bytes up to the range's end
# are read when they are this few, else the read is refused rather than the file downloaded.
RANGELESS_MAX = 64 * 2**20


class BodyTooLargeError(NetworkError):
    """An answer longer than it may be (a wrong server, not a transient failure)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What one GET got: final status, headers and the body (at most the cap asked for).

    Attributes:
        status: HTTP status of the last answer (after redirects).
        headers: its headers (case-insensitive mapping of the HTTP library).
        body: the bytes read, never more than `keep` or `max_bytes`.
        complete: False when reading stopped at `keep` before the body ended.
        url: the URL that answered.
        links: `Link` header targets by relation (`next`), resolved against `url`.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    complete: bool
    url: str
    links: Mapping[str, str]
    error: Any = field(default=None, repr=False)  # an error answer, rebuilt for the library

    def raise_for_status(self) -> None:
        """Raise huggingface_hub's error for an error status (`X-Error-Code` mapped: gated,
        not found ...), as `hf_raise_for_status` does for its own calls."""
        if self.error is not None:
            hf_raise_for_status(self.error)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _headers_for(url: str, headers: Mapping[str, str], auth_origin: str) -> dict[str, str]:
    if origin(url) == origin(auth_origin):
        return dict(headers)
    return {k: v for k, v in headers.items() if k.lower() != "authorization"}


def _offline() -> bool:
    """Whether huggingface_hub's offline mode is on (read at call time, as it reads it)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def get(
    url: str,
    *,
    headers: Mapping[str, str],
    auth_origin: str,
    what: str,
    max_bytes: int,
    byte_range: tuple[int, int] | None = None,
    timeout: float,
    deadline_s: float = DEADLINE_S,
    params: Mapping[str, object] | list[tuple[str, object]] | None = None,
    model_id: str | None = None,
) -> Answer:
    """GET `url`, following redirects, reading at most `max_bytes` of body within `deadline_s`.

    With `byte_range=(start, end)` a `Range` header is sent; a 206 body may hold at most
    `end - start` bytes, and a 200 (the server ignored the range) is read up to `end` only
    (`complete` False when the file goes on), refused when that is over `RANGELESS_MAX`.

    Args:
        url: the URL (its query string may already hold parameters).
        headers: request headers; Authorization goes only to URLs of `auth_origin`'s origin.
        auth_origin: the configured endpoint.
        what: what is read, for messages ("the model listing", "model.safetensors of org/x").
        max_bytes: a longer body is an error (`BodyTooLargeError`), read no further.
        byte_range: `[start, end)` of the file to ask for.
        timeout: seconds per connect and per read.
        deadline_s: seconds for the whole request, redirects and body included.
        params: query parameters of the first request.
        model_id: the model, for errors.

    Raises:
        NetworkError: too many redirects, a redirect without a target, the deadline passed.
        OfflineError: HF_HUB_OFFLINE is set (nothing is sent).
        BodyTooLargeError: more than `max_bytes` of body.
        transport errors of the HTTP library (`hub.retry.transport_errors`), to be retried.
    """
    if _offline():
        raise OfflineError(
            f"{what}: HF_HUB_OFFLINE is set, so the Hub is not reached; unset it to crawl or "
            "scan, or add local folders and the HF cache with `lineage add`",
            model_id=model_id,
        )
    session = get_session()
    start = time.monotonic()
    if byte_range is not None:
        headers = {**headers, "Range": f"bytes={byte_range[0]}-{byte_range[1] - 1}"}
    for _ in range(MAX_REDIRECTS + 1):
        if time.monotonic() - start > deadline_s:
            raise NetworkError(
                f"{what}: no answer within {deadline_s:.0f} s; try again later", model_id=model_id
            )
        request = session.build_request(
            "GET",
            url,
            headers=_headers_for(url, headers, auth_origin),
            params=params,  # type: ignore[arg-type]
            timeout=timeout,
        )
        response = session.send(request, stream=True, follow_redirects=False)
        try:
            if response.is_redirect:
                target = response.headers.get("location")
                if not target:
                    raise NetworkError(
                        f"{what}: the server redirected without a Location; check the endpoint",
                        model_id=model_id,
                    )
                url, params = urljoin(str(response.url), target), None
                continue
            failed = response.status_code >= 400
            cap, keep = _caps(response.status_code, max_bytes, byte_range, what, model_id)
            body, complete = _read(response, what, cap, keep, start, deadline_s, model_id)
            final = str(response.url)
            links = {
                str(rel): urljoin(final, str(link.get("url", "")))
                for rel, link in response.links.items()
                if link.get("url")
            }
            error = _rebuilt(response, body, request) if failed else None
            return Answer(
                response.status_code, response.headers, body, complete, final, links, error
            )
        finally:
            response.close()
    raise NetworkError(
        f"{what}: more than {MAX_REDIRECTS} redirects (a redirect loop?); check the endpoint",
        model_id=model_id,
    )


def _rebuilt(response: Any, body: bytes, request: Any) -> Any:
    """An error answer with its (capped, decoded) body, for `hf_raise_for_status`."""
    framing = ("content-encoding", "content-length", "transfer-encoding")
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in framing]
    return type(response)(response.status_code, headers=headers, content=body, request=request)


def _caps(
    status: int,
    max_bytes: int,
    byte_range: tuple[int, int] | None,
    what: str,
    model_id: str | None,
) -> tuple[int, int | None]:
    """(most body bytes allowed, bytes after which reading stops without error) for an answer."""
    if status >= 400:
        return _ERROR_BODY_MAX, _ERROR_BODY_MAX
    if byte_range is None:
        return max_bytes, None
    begin, end = byte_range
    if status != 200:
        return min(max_bytes, end - begin), None
    if end > RANGELESS_MAX:
        raise NetworkError(
            f"{what}: the server ignores Range requests and would send the whole file to give "
            f"bytes {begin}-{end}; use an endpoint that serves ranges",
            model_id=model_id,
        )
    return end, end


def _read(
    response: object,
    what: str,
    max_bytes: int,
    keep: int | None,
    start: float,
    deadline_s: float,
    model_id: str | None,
) -> tuple[bytes, bool]:
    """The body, streamed: at most `keep` bytes, an error past `max_bytes` or the deadline."""
    declared = response.headers.get("content-length", "")  # type: ignore[attr-defined]
    if declared.isdigit() and int(declared) > max_bytes and keep is None:
        raise BodyTooLargeError(
            f"{what}: the server announced {int(declared)} bytes, over the {max_bytes}-byte "
            "limit; check the endpoint",
            model_id=model_id,
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():  # type: ignore[attr-defined]
        chunks.append(chunk)
        size += len(chunk)
        if keep is not None and size >= keep:
            return b"".join(chunks)[:keep], False
        if size > max_bytes:
            raise BodyTooLargeError(
                f"{what}: the answer is over the {max_bytes}-byte limit; check the endpoint",
                model_id=model_id,
            )
        if time.monotonic() - start > deadline_s:
            raise NetworkError(
                f"{what}: the server sent {size} bytes in {deadline_s:.0f} s and was still "
                "sending (too slow); try again later",
                model_id=model_id,
            )
    return b"".join(chunks), True
