"""One exchange with the emulated Hub: what an endpoint is given and what it answers.

Endpoints are plain functions from a `Request` to an `Answer` (or an `ApiError`); only
`hub.emulator.handler` touches the socket. `HubContext` is the server state a request may read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from hub.emulator.counters import Tally
from hub.emulator.faults import FaultInjector
from hub.emulator.repos import RepoStore

__all__ = ["Answer", "ApiError", "FileSpan", "HubContext", "Request", "error_answer", "json_answer"]

Query = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class HubContext:
    """What every request of one server shares.

    Attributes:
        store: the repos served.
        injector: the fault injector.
        tally: the request counters.
        page_size: most items per page of /api/models and of trees.
        tokens: bearer tokens that unlock gated and private repos.
        url: the server's base URL (for `Link` headers when a request has no `Host`).
        tamper: (request, answer) -> the answer actually sent; tests play a hostile Hub with
            it (garbage JSON, foreign `Link`s, traversal ids, huge or dripping bodies).
    """

    store: RepoStore
    injector: FaultInjector
    tally: Tally
    page_size: int
    tokens: frozenset[str]
    url: str
    tamper: Callable[[Request, Answer], Answer] | None = None


class ApiError(Exception):
    """An error answer: status, the Hub's `X-Error-Code` (None: no code) and message."""

    def __init__(self, status: int, code: str | None, message: str, **headers: str):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the endpoints see it.

    Attributes:
        hub: the server's shared state.
        method: "GET", "HEAD" or "POST".
        path: URL path, still quoted, without the query string.
        query: query parameters in order, blanks kept.
        body: the request body (b"" without one).
        headers: request headers (case-insensitive `get`).
    """

    hub: HubContext
    method: str
    path: str
    query: Query
    body: bytes
    headers: Message = field(repr=False)

    @property
    def bearer(self) -> str | None:
        """The bearer token sent, None without one."""
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None

    @property
    def authorized(self) -> bool:
        """Whether the token unlocks gated and private repos."""
        return self.bearer in self.hub.tokens


@dataclass(frozen=True, slots=True)
class FileSpan:
    """`length` bytes of a file from `start`: an answer body streamed from disk."""

    path: Path
    start: int
    length: int


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: status, headers (Content-Length is added) and a body in memory or on disk.

    `drip_s` > 0 sends an in-memory body one byte at a time, waiting that long before each
    (a slow server, for tests).
    """

    status: int
    headers: dict[str, str]
    body: bytes = b""
    file: FileSpan | None = None
    drip_s: float = 0.0

    @property
    def length(self) -> int:
        """The Content-Length."""
        return self.file.length if self.file is not None else len(self.body)


def json_answer(data: Any, headers: dict[str, str] | None = None, status: int = 200) -> Answer:
    """A JSON answer."""
    body = json.dumps(data, default=str).encode()
    return Answer(
        status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body
    )


def error_answer(err: ApiError) -> Answer:
    """The Hub's error answer: `X-Error-Code` and `X-Error-Message` headers, a JSON body."""
    headers = dict(err.headers)
    if err.code:
        headers["X-Error-Code"] = err.code
    headers["X-Error-Message"] = err.message
    return json_answer({"error": err.message}, headers, err.status)
