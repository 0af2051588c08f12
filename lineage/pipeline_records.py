"""The records an add or a fingerprint run returns, and the tally an add keeps on the way.

Frozen summaries, so a caller (the CLI, a notebook) gets the same plain values whatever did the
work; `lineage.pipeline` re-exports them where they were first defined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class Failure:
    """A model that could not be handled: its id (or path), status code and one-line reason."""

    model: str
    status: str
    reason: str


@dataclass(frozen=True, slots=True)
class AddSummary:
    """What an add did, by model id. `skipped`: cached repos without weights to read (a
    tokenizer or a config downloaded alone), left out of a whole-cache add without an error."""

    new: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    failed: tuple[Failure, ...]
    skipped: tuple[Failure, ...] = ()

    def __add__(self, other: AddSummary) -> AddSummary:
        return AddSummary(
            *(getattr(self, f) + getattr(other, f) for f in AddSummary.__dataclass_fields__)
        )


@dataclass(frozen=True, slots=True)
class FingerprintSummary:
    fingerprinted: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[Failure, ...]
    bytes_read: int


@dataclass(slots=True)
class AddTally:
    """What an add did so far, as lists (an `AddSummary` once done)."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    skipped: list[Failure] = field(default_factory=list)

    def summary(self) -> AddSummary:
        return AddSummary(
            tuple(self.new),
            tuple(self.changed),
            tuple(self.unchanged),
            tuple(self.failed),
            tuple(self.skipped),
        )
