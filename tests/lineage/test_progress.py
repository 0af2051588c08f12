"""lineage.progress: tqdm on a terminal (a real pty), a plain line every few seconds elsewhere,
nothing when disabled; a total that grows never makes the bar run backwards."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import struct
import termios

import pytest

from lineage.progress import Progress


def test_disabled_is_silent(capsys):
    p = Progress("fingerprint", enabled=False)
    for i in range(1, 4):
        p(i, 3, f"org/m{i}")
    assert capsys.readouterr() == ("", "")


def test_off_a_terminal_a_plain_line_every_few_seconds_and_the_last(capsys):
    p = Progress("fingerprint")  # stderr is captured: not a terminal
    for i in range(1, 101):
        p(i, 100, f"org/m{i}")
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 2  # the first call, then only the final one
    assert lines[0].startswith("fingerprint: 1/100 (")
    assert re.fullmatch(r"fingerprint: 100/100 \([\d.]+/s, ETA 00:00\) org/m100", lines[1])


def test_off_a_terminal_every_call_when_every_is_zero_and_a_growing_total_says_so(capsys):
    p = Progress("crawl", every=0)
    p(1, 2, "org/a")
    p(2, 3, "org/b")  # the listing gave one more
    p(3, 3, "org/c")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("crawl: 1/2 (")
    assert lines[1].startswith("crawl: 2 of 3 listed so far (") and lines[1].endswith("org/b")
    assert lines[2].startswith("crawl: 3 of 3 listed so far (")


def _on_a_pty(calls) -> str:
    """What `Progress` writes to a real terminal (a pty 100 columns wide)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    os.set_blocking(master, False)  # tqdm draws at most every 0.1 s: a call may write nothing
    chunks = []
    with os.fdopen(slave, "w") as tty:
        assert tty.isatty()
        p = Progress("crawl", file=tty)
        for call in calls:
            if call == "close":
                p.close()
            else:
                p(*call)
            tty.flush()
            with contextlib.suppress(BlockingIOError):  # nothing drawn this time
                chunks.append(os.read(master, 65536))
    os.close(master)
    return b"".join(chunks).decode()


def test_on_a_terminal_a_bar_with_rate_and_eta():
    text = _on_a_pty([(i, 4, f"org/m{i}") for i in range(1, 5)])
    frames = [f for f in re.split(r"[\r\n]+", text) if f.strip()]
    assert "100%" in frames[-1] and "4/4" in frames[-1] and "models/s" in frames[-1]
    assert any(re.search(r"<\d\d:\d\d", f) for f in frames)  # the ETA
    assert text.rstrip(" ").endswith("\n")  # closed at the end: the next line starts clean


def test_on_a_terminal_a_growing_total_becomes_a_counter_never_a_shrinking_bar():
    calls = [(1, 2, "a"), (2, 4, "b"), (4, 4, "c"), (5, 6, "d"), (6, 6, "e"), "close"]
    text = _on_a_pty(calls)
    frames = [f for f in re.split(r"[\r\n]+", text) if f.strip()]
    after = frames[next(i for i, f in enumerate(frames) if "so far" in f) :]
    assert after and all("%" not in f for f in after)  # no percentage that could go down
    counts = [int(m[1]) for f in after if (m := re.search(r"crawl: (\d+) models", f))]
    assert counts == sorted(counts) and counts[-1] == 6
    # catching up with the listing (4 of 4) ends nothing: one line, ended by close()
    assert text.count("\n") == 1 and text.rstrip(" ").endswith("\n")


def test_a_growing_total_off_a_terminal_is_not_a_line_per_catch_up(capsys):
    with Progress("crawl", every=60) as p:
        for n in range(1, 50):
            p(n, n, f"org/m{n}")  # the workers keep up with the listing
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2  # the first call, then the last one on leaving
    assert lines[-1].startswith("crawl: 49 of 49 listed so far (")


@pytest.mark.parametrize("enabled", [True, False])
def test_the_default_file_is_stderr_at_call_time(capsys, enabled):
    p = Progress("x", enabled=enabled)
    p(1, 1, "m")
    assert bool(capsys.readouterr().err) is enabled
