"""What the emulated Hub answered: live, thread-safe counters and their frozen snapshots."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ServerCounters", "Tally"]


@dataclass(frozen=True, slots=True)
class ServerCounters:
    """What a server answered since start (or the last `reset_counters`).

    Attributes:
        requests: requests received, faulted ones included.
        statuses: number of answers per HTTP status (a reset connection counts under 0).
        bytes_by_path: body bytes sent per URL path (unquoted, without query string).
        range_requests: requests that carried a `Range` header.
        faults: injected faults per kind (see `hub.emulator.faults.KINDS`).
    """

    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    bytes_by_path: dict[str, int] = field(default_factory=dict)
    range_requests: int = 0
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def bytes_total(self) -> int:
        """Body bytes sent over all paths."""
        return sum(self.bytes_by_path.values())


class Tally:
    """The live counters of one server, moved by the request handler.

    Args:
        faults: the fault injector's own counts per kind (`FaultInjector.injected`), reported
            in snapshots and cleared with the rest.
    """

    def __init__(self, faults: Counter[str]):
        self._faults = faults
        self._lock = threading.Lock()
        self.reset()

    def request(self, *, ranged: bool) -> None:
        """Count a request as it arrives."""
        with self._lock:
            self._requests += 1
            self._ranges += ranged

    def answered(self, status: int) -> None:
        """Count an answer's status (before it leaves: a client never sees an uncounted one)."""
        with self._lock:
            self._statuses[status] += 1

    def sent(self, path: str, nbytes: int) -> None:
        """Count body bytes sent for `path` (negative to take back bytes that did not leave)."""
        if nbytes:
            with self._lock:
                self._bytes[path] += nbytes

    def snapshot(self) -> ServerCounters:
        """The counters as they are now."""
        with self._lock:
            return ServerCounters(
                requests=self._requests,
                statuses=dict(self._statuses),
                bytes_by_path=dict(self._bytes),
                range_requests=self._ranges,
                faults=dict(self._faults),
            )

    def reset(self) -> None:
        """Zero every counter, the injected-fault counts included."""
        with self._lock:
            self._requests = 0
            self._ranges = 0
            self._statuses: Counter[int] = Counter()
            self._bytes: Counter[str] = Counter()
            self._faults.clear()
