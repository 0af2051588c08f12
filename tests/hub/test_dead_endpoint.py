"""A dead endpoint: one line at once (no back-off on a refused connection), naming where, and
the attempts a retried failure counts are the ones that really happened. Real sockets."""

from __future__ import annotations

import socket
import time
from importlib import import_module

import pytest
from huggingface_hub.errors import HfHubHTTPError

from hub.client import HubClient
from hub.errors import NetworkError
from hub.retry import RetryPolicy
from lineage.cli.main import main
from tests.hub_helpers import Sleeps


@pytest.fixture
def closed_url():
    """A local port nobody listens on: bound, then released (the kernel refuses connects)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_refused_connection_fails_at_once_naming_the_endpoint(closed_url, hub_env):
    sleeps = Sleeps()
    client = HubClient(endpoint=closed_url, token=False, retry=RetryPolicy(sleep=sleeps))
    with pytest.raises(NetworkError) as info:
        client.model_info("org/model")
    msg = str(info.value)
    assert msg.startswith("could not read the model info of org/model: the endpoint did not")
    assert "did not answer (connection refused)" in msg
    assert f"at {closed_url};" in msg and "HF_ENDPOINT" in msg
    assert "\n" not in msg and "attempt" not in msg
    assert sleeps == []  # no back-off: a refused connection is not a transient failure
    with pytest.raises(NetworkError, match="connection refused"):
        next(iter(client.list_models(limit=1)))
    assert sleeps == []


def test_crawl_against_a_dead_endpoint_is_one_line_exit_1_and_quick(
    closed_url, hub_env, tmp_path, capsys
):
    started = time.monotonic()
    code = main(["--db", str(tmp_path / "l.db"), "crawl", "--endpoint", closed_url, "--limit", "1"])
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("error: could not read the model listing: the endpoint did not answer")
    assert closed_url in err
    assert took < 10  # the default policy would back off 1+2+4+8+16 s on a retried failure


def test_a_retried_failure_counts_the_attempts_made():
    http = import_module(
        next(
            b.__module__.split(".")[0] for b in HfHubHTTPError.__mro__ if b.__name__ == "HTTPError"
        )
    )
    calls = []

    def flaky():
        calls.append(1)
        raise http.ReadError("connection reset by peer")

    sleeps = Sleeps()
    with pytest.raises(NetworkError) as info:
        RetryPolicy(attempts=3, sleep=sleeps).call(flaky, what="a window", model_id="org/m")
    assert len(calls) == 3 and sleeps == [1.0, 2.0]
    assert "a window of org/m after 3 attempts (last: ReadError" in str(info.value)
    with pytest.raises(NetworkError, match="after 1 attempt \\("):
        RetryPolicy(attempts=1, sleep=sleeps).call(flaky, what="a window")
