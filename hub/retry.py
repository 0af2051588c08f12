"""Bounded retries for the Hub calls huggingface_hub does not retry itself.

huggingface_hub retries its own downloads and the later pages of a listing; `model_info`,
`get_paths_info`, the first page of a listing (1.x) and our range requests are single shots. A
`RetryPolicy` wraps them: a 429 waits what the server asks (`RateLimit: ...;r=0;t=N`, else
`Retry-After: N`), a 408/5xx, a timeout, a reset or a truncated body backs off exponentially,
and every wait is capped by `max_sleep`. After `attempts` tries the last failure becomes a
`hub.errors.NetworkError` that names the model and what was being read, never a URL with
credentials or a header. A connection that cannot be made at all (refused, unknown host) is not
retried: the endpoint is down or mistyped, and backing off for a minute would only hide that.
This is the only retry layer: the huggingface_hub calls we use do not retry on their own.

The sleep function is part of the policy, so tests pass `sleep=lambda s: None` (or record the
waits) instead of sleeping.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

from huggingface_hub.errors import HfHubHTTPError

from hub.errors import NetworkError

__all__ = [
    "RETRY_STATUSES",
    "RetryPolicy",
    "ShortBodyError",
    "http_errors",
    "retry_delay",
    "transport_errors",
]

T = TypeVar("T")

# Statuses worth another try: timeouts, rate limits, server errors.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_RATELIMIT = re.compile(r"\br\s*=\s*(\d+)\s*;\s*t\s*=\s*(\d+)")


class ShortBodyError(Exception):
    """A response body shorter (or longer) than the range asked for; retried, never cached."""


def transport_errors() -> tuple[type[BaseException], ...]:
    """The transport exceptions of the HTTP library huggingface_hub uses (httpx 1.x, httpx2 2.x).

    Found through `HfHubHTTPError`'s bases, so whichever library this huggingface_hub was built
    on is the one caught. Timeouts, refused or reset connections and bodies cut short are all
    `TransportError`s there.
    """
    for base in HfHubHTTPError.__mro__:
        module = base.__module__.split(".")[0]
        if base.__name__ == "HTTPError" and module.startswith("httpx"):
            mod = __import__(module)
            return (mod.TransportError,)
    return ()


def http_errors() -> tuple[type[BaseException], ...]:
    """Every exception of that HTTP library (`HTTPError`: transport, decoding, bad URLs...)."""
    for base in HfHubHTTPError.__mro__:
        if base.__name__ == "HTTPError" and base.__module__.split(".")[0].startswith("httpx"):
            return (base,)
    return ()


def connect_errors() -> tuple[type[BaseException], ...]:
    """The HTTP library's `ConnectError` (refused, unknown host, unreachable), from the module
    `transport_errors` found; its `ConnectTimeout` is a timeout, and is retried."""
    found: list[type[BaseException]] = []
    for transport in transport_errors():
        module = __import__(transport.__module__.split(".")[0])
        if isinstance(getattr(module, "ConnectError", None), type):
            found.append(module.ConnectError)
    return tuple(found)


_TRANSPORT = transport_errors()
_CONNECT = connect_errors()
_RETRYABLE: tuple[type[BaseException], ...] = (ShortBodyError, *_TRANSPORT)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def retry_delay(
    headers: Mapping[str, str], *, clock: Callable[[], float] = time.time
) -> float | None:
    """Seconds a 429 (or 503) answer asks the client to wait, or None when it does not say.

    `RateLimit: "api";r=0;t=55` (IETF draft, what the Hub sends) wins when no request is left;
    else `Retry-After` as seconds or as an HTTP date (counted from `clock()`, epoch seconds).
    """
    ratelimit = _header(headers, "ratelimit")
    if ratelimit:
        m = _RATELIMIT.search(ratelimit)
        if m and int(m.group(1)) == 0:
            return float(m.group(2))
    value = (_header(headers, "retry-after") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - clock())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        attempts: tries in all (1 = no retry).
        base_delay: first back-off after a 5xx or a transport error, doubled each time.
        max_sleep: cap on any single wait, a server's Retry-After included.
        sleep: the function that waits (tests inject a recorder).
        clock: the current time in epoch seconds, for `Retry-After` dates (tests inject one).
    """

    attempts: int = 6
    base_delay: float = 1.0
    max_sleep: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.time, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_sleep < 0:
            raise ValueError("RetryPolicy.base_delay and max_sleep must be >= 0")

    def call(self, fn: Callable[[], T], *, what: str, model_id: str | None = None) -> T:
        """Run `fn`, retrying retryable failures; other exceptions pass through untouched.

        Args:
            fn: the call (no arguments).
            what: what is being read, for the final message ("the listing", "a window of x").
            model_id: the model, for the final message and the error.

        Raises:
            NetworkError: every attempt failed with a retryable error, or the endpoint could
                not be connected to at all (at once: no retry).
        """
        delay = self.base_delay
        attempt = 0
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except _CONNECT as err:
                subject = f"{what} of {model_id}" if model_id else what
                raise NetworkError(_unanswered(err, subject), model_id=model_id) from None
            except HfHubHTTPError as err:
                status = err.response.status_code if err.response is not None else None
                if status not in RETRY_STATUSES:
                    raise
                asked = (
                    retry_delay(err.response.headers, clock=self.clock)
                    if err.response is not None
                    else None
                )
                problem = f"HTTP {status}"
            except _RETRYABLE as err:
                asked = None
                problem = f"{type(err).__name__}: {_first_line(err)}"
            if attempt == self.attempts:
                break
            wait = asked if asked is not None else delay
            self.sleep(min(self.max_sleep, max(0.0, wait)))
            delay *= 2
        subject = f"{what} of {model_id}" if model_id else what
        tries = f"{attempt} attempt" + ("s" if attempt != 1 else "")
        raise NetworkError(
            f"could not read {subject} after {tries} (last: {problem}); "
            "check the endpoint and your connection, then run the crawl again",
            model_id=model_id,
        )


def _unanswered(err: BaseException, subject: str) -> str:
    """One line for a connection that could not be made: why, and where (the origin only: no
    path, query or credentials)."""
    reason = _first_line(err)
    reason = reason.split("] ", 1)[1] if reason.startswith("[Errno") and "] " in reason else reason
    try:
        url = err.request.url  # type: ignore[attr-defined]
        where = f" at {url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
    except (AttributeError, RuntimeError):  # a ConnectError raised without its request
        where = ""
    return (
        f"could not read {subject}: the endpoint did not answer ({reason.lower()}){where}; "
        "check HF_ENDPOINT (or --endpoint) and your connection"
    )


def _first_line(err: BaseException) -> str:
    # Transport messages name hosts and ports at most; never headers. Keep one short line.
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:200]
