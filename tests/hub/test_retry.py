"""hub.retry: the waits a policy takes, by an injected sleep and clock (no network)."""

from __future__ import annotations

from hub.retry import RetryPolicy, retry_delay
from tests.hub_helpers import Sleeps


def test_retry_delay_headers():
    assert retry_delay({"RateLimit": '"api";r=0;t=55', "Retry-After": "3"}) == 55
    assert retry_delay({"ratelimit": '"api";r=4;t=55', "retry-after": "3"}) == 3
    assert retry_delay({}) is None
    date = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    at = 1445412480.0  # that date, in epoch seconds
    assert retry_delay(date, clock=lambda: at - 30) == 30
    assert retry_delay(date, clock=lambda: at + 30) == 0  # a date in the past: no wait


def test_policy_waits_what_a_retry_after_date_asks_by_its_clock():
    from importlib import import_module

    from huggingface_hub.errors import HfHubHTTPError

    # the HTTP library this huggingface_hub is built on (httpx for 1.x, httpx2 for 2.x)
    http = import_module(
        next(
            b.__module__.split(".")[0] for b in HfHubHTTPError.__mro__ if b.__name__ == "HTTPError"
        )
    )
    answers = iter([429, 200])
    at = 1445412480.0

    def call():
        status = next(answers)
        if status == 200:
            return "ok"
        headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
        response = http.Response(status, headers=headers, request=http.Request("GET", "http://x"))
        raise HfHubHTTPError("rate limited", response=response)

    sleeps = Sleeps()
    policy = RetryPolicy(attempts=2, sleep=sleeps, clock=lambda: at - 12)
    assert policy.call(call, what="a window") == "ok"
    assert sleeps == [12.0]
