"""Which stored statuses deserve another attempt at reading a model, and why.

One table, one row per status code (`hub.errors`; `error` is `HubError`'s own, for failures
no rule foresaw), one column per context:

- `crawl`: a model listed again at the same commit (a new or changed commit is always read);
- `fingerprint`: `lineage fingerprint` without ids (models named by id are always read).

The two differ on purpose where the row says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["RETRY", "Context", "Retry", "RetryRule", "retries"]


class Context(Enum):
    CRAWL = "crawl"
    FINGERPRINT = "fingerprint"


class Retry(Enum):
    YES = "yes"
    NO = "no"
    WITH_TOKEN = "with_token"  # only when a Hub token is available


@dataclass(frozen=True, slots=True)
class RetryRule:
    """Whether a model with this status is read again, per context, and why."""

    crawl: Retry
    fingerprint: Retry
    why: str


# fmt: off
RETRY: dict[str, RetryRule] = {
    "ok": RetryRule(Retry.YES, Retry.YES,
        "readable: read when its signature is missing or stale"),
    "network": RetryRule(Retry.YES, Retry.YES,
        "a transient failure: the next try may succeed"),
    "malformed": RetryRule(Retry.NO, Retry.YES,
        "a Hub commit keeps its bytes, so the crawl waits for a new commit; a local folder may "
        "have been repaired in place"),
    "gated": RetryRule(Retry.WITH_TOKEN, Retry.NO,
        "a token may open it; `fingerprint` reads with the default token, which already failed"),
    "not_found": RetryRule(Retry.NO, Retry.NO,
        "the repo or folder is gone: the user has to add it again"),
    "no_safetensors": RetryRule(Retry.NO, Retry.NO,
        "only pickle checkpoints: nothing changes without a new commit"),
    "error": RetryRule(Retry.NO, Retry.YES,
        "reading failed in a way no rule foresaw (a file beyond our bounds, a bug): the same "
        "commit fails the same way, so the crawl waits for a new commit; a local folder may "
        "have been repaired in place"),
}
# fmt: on
# A status this table does not know (a newer version wrote it): the crawl tries again, a manual
# `fingerprint` leaves it to the user.
UNKNOWN = RetryRule(Retry.YES, Retry.NO, "a status this version does not know")


def retries(status: str, context: Context, *, token: bool = False) -> bool:
    """Whether a model stored with `status` is read again in `context`.

    Args:
        status: the stored status code (`ok`, `gated`, ...).
        context: who asks.
        token: whether a Hub token is available (for `Retry.WITH_TOKEN`).
    """
    rule = RETRY.get(status, UNKNOWN)
    answer = rule.crawl if context is Context.CRAWL else rule.fingerprint
    return answer is Retry.YES or (answer is Retry.WITH_TOKEN and token)
