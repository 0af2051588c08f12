"""Progress on long work, on stderr, so stdout stays clean for --json."""

from __future__ import annotations

import sys
import time


class Progress:
    """`Progress("fingerprint")(done, total, item)`: a one-line bar on a terminal, else a line
    every few seconds (logs stay short). Silent when `enabled` is False."""

    def __init__(self, label: str, *, enabled: bool = True, every: float = 5.0):
        self.label = label
        self.enabled = enabled
        self.every = every
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int, item: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        final = done >= total
        if self.tty:
            width = 24
            filled = int(width * done / max(total, 1))
            bar = "#" * filled + "-" * (width - filled)
            sys.stderr.write(f"\r{self.label} [{bar}] {done}/{total} {item[:40]:<40}")
            if final:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif final or now - self._last >= self.every:
            print(f"{self.label}: {done}/{total} {item}", file=sys.stderr, flush=True)
            self._last = now
