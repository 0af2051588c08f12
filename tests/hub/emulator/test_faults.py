"""hub.emulator.faults, alone and through the real huggingface_hub client's retries."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from huggingface_hub import get_session, hf_hub_download
from huggingface_hub.utils import http_backoff

from hub.emulator.faults import FailFirst, FaultInjector, Faults

BASE = "org/base"


def _url(server, repo_id: str, filename: str, rev: str = "main") -> str:
    return f"{server.url}/{repo_id}/resolve/{rev}/{filename}"


def test_http_backoff_waits_out_a_429_then_succeeds(hub_env, zoo):
    # Only the pages after the first go through http_backoff on 1.x (2.x retries the first too).
    faults = Faults(retry_after=0, fail_first=(FailFirst("429", 1, pattern="cursor="),))
    server = hub_env.start(zoo, faults=faults, page_size=2)
    began = time.monotonic()
    assert len(list(hub_env.api(server).list_models(limit=3))) == 3
    assert time.monotonic() - began >= 1.0  # huggingface_hub sleeps Retry-After + 1 s
    assert server.counters.statuses == {200: 2, 429: 1}
    assert server.counters.faults == {"429": 1}


def test_server_errors_and_resets_are_retried(hub_env, zoo):
    rules = (
        FailFirst("503", 1, pattern="config.json"),
        FailFirst("reset", 1, pattern="config.json"),
    )
    server = hub_env.start(zoo, faults=Faults(fail_first=rules))
    url = _url(server, BASE, "config.json")
    response = http_backoff("GET", url, base_wait_time=0.01, max_wait_time=0.02)
    assert response.json() == {"model_type": "tiny", "hidden_size": 4}
    assert server.counters.faults == {"503": 1, "reset": 1}
    assert server.counters.statuses == {503: 1, 0: 1, 200: 1}  # a reset counts under 0


def test_truncated_body_is_detected(hub_env, zoo, http_lib):
    rule = FailFirst("truncate", 2, method="GET")
    server = hub_env.start(zoo, faults=Faults(fail_first=(rule,)))
    url = _url(server, BASE, "model.safetensors")
    data = (zoo / "repos/org/base/model.safetensors").read_bytes()
    with pytest.raises(http_lib.RemoteProtocolError):
        get_session().get(url, headers={"Range": "bytes=0-99"})  # fewer bytes than Content-Length
    response = http_backoff("GET", url, headers={"Range": "bytes=0-99"}, base_wait_time=0.01)
    assert response.content == data[:100]  # http_backoff retried the second truncated answer
    assert server.counters.faults == {"truncate": 2} and server.counters.statuses == {206: 3}


def test_hf_hub_download_retries_a_truncated_body(hub_env, zoo):
    rule = FailFirst("truncate", 1, pattern="model.safetensors", method="GET")
    server = hub_env.start(zoo, faults=Faults(fail_first=(rule,)))
    path = hf_hub_download(BASE, "model.safetensors", endpoint=server.url)
    assert Path(path).read_bytes() == (zoo / "repos/org/base/model.safetensors").read_bytes()
    # huggingface_hub buffers 10 MB before writing, so it restarts a small file from byte 0
    assert server.counters.faults == {"truncate": 1} and server.counters.statuses == {200: 3}


def test_random_faults_are_reproducible():
    faults = Faults(seed=7, rate_429=0.2, rate_5xx=0.2, rate_truncate=0.2, rate_reset=0.1)

    def run() -> list:
        injector = FaultInjector(faults)
        return [injector.decide("GET", f"/f{i % 3}").kind for i in range(60)]

    first = run()
    assert first == run()
    assert {"429", "truncate", "reset"} <= set(first) and None in first
    assert first != [FaultInjector(Faults(seed=8, rate_429=0.5)).decide("GET", "/f0").kind] * 60
    with pytest.raises(ValueError, match="sum to at most 1"):
        Faults(rate_429=0.7, rate_5xx=0.7)
