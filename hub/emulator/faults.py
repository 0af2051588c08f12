"""Fault injection for the local Hub server: rate limits, server errors, broken bodies, slowness.

A `Faults` value says what to inject; a `FaultInjector` (one per running server) decides, request
by request, which fault (if any) a request gets. Decisions are reproducible:

- `fail_first` rules fail the first `count` requests whose method and path match, in arrival order.
- Random faults draw from a generator seeded with `(seed, method, path, n)` where `n` counts the
  earlier requests for the same method and path. The same sequence of requests per path therefore
  meets the same faults, whatever the interleaving of threads.

Kinds of fault:

    "429"       429 Too Many Requests with `Retry-After: <retry_after>` and `RateLimit` headers
    "500", "502", "503"
                a server error with an empty JSON error body
    "truncate"  full headers (with the real Content-Length) but only part of the body, then close
    "reset"     the connection is reset (TCP RST) before any byte of the answer is sent

`latency_s` is added to every request that matches `pattern`, faulted or not.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from dataclasses import dataclass

__all__ = ["KINDS", "SERVER_ERRORS", "FailFirst", "Fault", "FaultInjector", "Faults"]

KINDS = ("429", "500", "502", "503", "truncate", "reset")
SERVER_ERRORS = ("500", "502", "503")


@dataclass(frozen=True, slots=True)
class FailFirst:
    """Fail the first `count` requests matching `pattern` (and `method`, when given).

    Attributes:
        kind: one of `KINDS`.
        count: how many matching requests fail; later ones pass.
        pattern: regular expression searched in the request path (query string included);
            empty matches every request.
        method: "GET", "HEAD" or "POST"; None matches any method.
    """

    kind: str
    count: int = 1
    pattern: str = ""
    method: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"FailFirst.kind must be one of {KINDS}, got {self.kind!r}")
        if self.count < 0:
            raise ValueError(f"FailFirst.count must be >= 0, got {self.count}")
        re.compile(self.pattern)


@dataclass(frozen=True, slots=True)
class Faults:
    """What the server injects. The default injects nothing.

    Attributes:
        seed: seed of the random faults.
        rate_429: probability that a matching request is answered 429.
        rate_5xx: probability of a 500, 502 or 503 answer.
        rate_truncate: probability that a GET body is cut short (`truncate_fraction` of it is sent).
        rate_reset: probability that the connection is reset before answering.
        retry_after: seconds announced in `Retry-After` and `RateLimit` on 429 answers.
        truncate_fraction: share of the body sent before a truncated answer closes.
        latency_s: seconds added to every matching request.
        pattern: regular expression searched in the request path (query string included); random
            faults and latency apply only to matching requests. Empty matches every request.
        fail_first: deterministic rules, checked before the random faults.
    """

    seed: int = 0
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_truncate: float = 0.0
    rate_reset: float = 0.0
    retry_after: int = 1
    truncate_fraction: float = 0.5
    latency_s: float = 0.0
    pattern: str = ""
    fail_first: tuple[FailFirst, ...] = ()

    def __post_init__(self) -> None:
        rates = (self.rate_429, self.rate_5xx, self.rate_truncate, self.rate_reset)
        if any(r < 0 for r in rates) or sum(rates) > 1:
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1, got {rates}")
        if not 0 <= self.truncate_fraction < 1:
            raise ValueError(f"truncate_fraction must be in [0, 1), got {self.truncate_fraction}")
        if self.retry_after < 0 or self.latency_s < 0:
            raise ValueError("retry_after and latency_s must be >= 0")
        re.compile(self.pattern)

    @property
    def active(self) -> bool:
        """True when this configuration can inject anything at all."""
        return bool(
            self.rate_429
            or self.rate_5xx
            or self.rate_truncate
            or self.rate_reset
            or self.latency_s
            or any(rule.count for rule in self.fail_first)
        )


@dataclass(frozen=True, slots=True)
class Fault:
    """The decision for one request: a fault kind (or None) and the latency to add."""

    kind: str | None
    latency_s: float = 0.0


class FaultInjector:
    """Thread-safe decisions for one server; counts what it injected in `injected`."""

    def __init__(self, faults: Faults | None = None):
        self.faults = faults or Faults()
        self._pattern = re.compile(self.faults.pattern)
        self._rules = [(rule, re.compile(rule.pattern)) for rule in self.faults.fail_first]
        self._rule_hits = [0] * len(self._rules)
        self._seen: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def decide(self, method: str, path: str) -> Fault:
        """Return the fault for a request, updating the counters.

        Args:
            method: HTTP method.
            path: request target as sent (path and query string).
        """
        faults = self.faults
        if not faults.active:
            return Fault(None)
        with self._lock:
            for i, (rule, regex) in enumerate(self._rules):
                if rule.method not in (None, method) or not regex.search(path):
                    continue
                if self._rule_hits[i] < rule.count:
                    self._rule_hits[i] += 1
                    self.injected[rule.kind] += 1
                    return Fault(rule.kind, self._latency(path))
            if not self._pattern.search(path):
                return Fault(None)
            n = self._seen[(method, path)]
            self._seen[(method, path)] += 1
            kind = self._draw(method, path, n)
            if kind is not None:
                self.injected[kind] += 1
            return Fault(kind, faults.latency_s)

    def _latency(self, path: str) -> float:
        return self.faults.latency_s if self._pattern.search(path) else 0.0

    def _draw(self, method: str, path: str, n: int) -> str | None:
        faults = self.faults
        rng = random.Random(f"{faults.seed}:{method}:{path}:{n}")
        u = rng.random()
        for kind, rate in (
            ("reset", faults.rate_reset),
            ("429", faults.rate_429),
            ("5xx", faults.rate_5xx),
            ("truncate", faults.rate_truncate if method == "GET" else 0.0),
        ):
            if u < rate:
                return rng.choice(SERVER_ERRORS) if kind == "5xx" else kind
            u -= rate
        return None
