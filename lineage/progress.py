"""Progress on long work, on stderr, so stdout stays clean for --json."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import IO, Any


class Progress:
    """`Progress("fingerprint")(done, total, item)`: a tqdm bar (rate and ETA) on a terminal,
    else a plain line every `every` seconds (logs stay short). Silent when `enabled` is False.

    A total that grows between calls (a crawl counts what the listing gave so far) turns the
    bar into a counter with its rate, since a bar whose end moves would run backwards; and as
    `done` may catch up with such a total many times, reaching it ends nothing: the line is
    finished by `close()`, leaving a `with` block, or (a bar) when the object goes away. A fixed
    total ends its bar when `done` reaches it.

    Args:
        label: what is counted ("fingerprint", "crawl").
        enabled: False prints nothing (`--json`).
        every: seconds between plain lines when stderr is not a terminal.
        file: where to write (default: sys.stderr at the time of each call).
    """

    def __init__(
        self, label: str, *, enabled: bool = True, every: float = 5.0, file: IO[str] | None = None
    ):
        self.label = label
        self.enabled = enabled
        self.every = every
        self._file = file
        self._bar: Any = None  # the open tqdm bar, on a terminal
        self._total: int | None = None
        self._growing = False
        self._start: float | None = None
        self._last = 0.0
        self._state: tuple[int, int, str] | None = None  # the last call
        self._printed: tuple[int, int, str] | None = None  # the last plain line

    @property
    def file(self) -> IO[str]:
        return self._file if self._file is not None else sys.stderr

    def __call__(self, done: int, total: int, item: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._start is None:
            self._start = now
        elif total != self._total:
            self._growing = True
        self._total = total
        self._state = (done, total, item)
        final = done >= total and not self._growing
        if _isatty(self.file):
            self._draw(done, total, item, final)
        elif final or self._printed is None or now - self._last >= self.every:
            self._print(now)

    def close(self) -> None:
        """Finish the line: close the bar, or print the last state if no line showed it."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self._state not in (None, self._printed) and not _isatty(self.file):
            self._print(time.monotonic())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # an open bar gets its newline; a plain line is not printed this late, where stderr may
        # be another stream by now
        bar, self._bar = self._bar, None
        if bar is not None:
            with contextlib.suppress(Exception):  # at exit the stream may be gone already
                bar.close()

    def _draw(self, done: int, total: int, item: str, final: bool) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(
                total=None if self._growing else total,
                desc=self.label,
                unit=" models",
                file=self.file,
                dynamic_ncols=True,
                leave=True,
            )
        bar = self._bar
        if self._growing and bar.total is not None:
            bar.total = None  # from now on a counter: "N models [elapsed, rate]"
        so_far = f" (of {total} so far)" if self._growing else ""
        bar.set_postfix_str(item[:40] + so_far, refresh=False)
        bar.update(max(0, done - bar.n))
        if final:
            bar.close()
            self._bar = None

    def _print(self, now: float) -> None:
        from tqdm import tqdm

        assert self._state is not None
        done, total, item = self._state
        elapsed = now - (self._start or now)
        rate = done / elapsed if elapsed > 0 else 0.0
        pace = f"{rate:.2f}/s" if rate else "?/s"
        if self._growing:
            line = f"{self.label}: {done} of {total} listed so far ({pace}) {item}"
        else:
            eta = tqdm.format_interval((total - done) / rate) if rate else "?"
            line = f"{self.label}: {done}/{total} ({pace}, ETA {eta}) {item}"
        print(line.rstrip(), file=self.file, flush=True)
        self._printed, self._last = self._state, now


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-less stream
        return False
