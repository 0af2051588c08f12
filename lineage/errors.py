"""Errors raised by lineage/. The CLI turns each into exit code 1 and its one-line message.

    LineageError               catch-all for anything lineage/ could not do
    ├── StoreError             the database cannot be opened, is too new, is busy, or a write failed
    └── UnknownModelError      a model id that is not in the database (carries `model_id`)

`str(err)` is one sentence that says what went wrong and what to do about it.
"""

from __future__ import annotations


class LineageError(Exception):
    """Base class of every error lineage/ raises on purpose."""


class StoreError(LineageError):
    """The store cannot do what was asked: unreadable or too-new database, lock timeout, bad write."""


class UnknownModelError(LineageError):
    """A model id that the store does not hold.

    Attributes:
        model_id: the id that was asked for.
    """

    def __init__(self, model_id: str, message: str | None = None):
        if message is None:
            message = (
                f"unknown model {model_id!r}: it is not in the database; "
                "run `lineage add PATH` or `lineage crawl` first"
            )
        super().__init__(message)
        self.model_id = model_id


def user_errors() -> tuple[type[Exception], ...]:
    """Everything the CLI reports as one line and exit code 1 (light imports: no torch)."""
    from fingerprint.errors import FingerprintError
    from hub.errors import HubError

    return (LineageError, HubError, FingerprintError)
