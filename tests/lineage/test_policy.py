"""lineage.policy: one table says which stored statuses are read again, per context."""

from __future__ import annotations

from hub import errors
from lineage.policy import RETRY, Context, retries


def test_every_hub_status_has_a_row_with_a_reason():
    statuses = {
        cls.status
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.HubError)
    }
    assert statuses | {"ok"} == set(RETRY)
    assert all(rule.why for rule in RETRY.values())


def test_crawl_retries_what_a_new_try_at_the_same_commit_can_fix():
    again = {s for s in RETRY if retries(s, Context.CRAWL)}
    assert again == {"ok", "network"}
    # a token may open a gated repo
    assert retries("gated", Context.CRAWL, token=True)
    assert {s for s in RETRY if retries(s, Context.CRAWL, token=True)} == {"ok", "network", "gated"}


def test_fingerprint_retries_what_needs_no_user_action():
    again = {s for s in RETRY if retries(s, Context.FINGERPRINT, token=True)}
    assert again == {"ok", "network", "malformed", "error"}


def test_the_contexts_differ_only_where_the_table_says_why():
    differ = {
        s
        for s in RETRY
        if retries(s, Context.CRAWL, token=True) != retries(s, Context.FINGERPRINT, token=True)
    }
    assert differ == {"malformed", "gated", "error"}
    assert "local folder" in RETRY["malformed"].why and "token" in RETRY["gated"].why


def test_an_unknown_status_is_retried_by_the_crawl_only():
    assert retries("from-the-future", Context.CRAWL)
    assert not retries("from-the-future", Context.FINGERPRINT)
