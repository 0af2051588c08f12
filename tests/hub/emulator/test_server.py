"""hub.emulator.server and its routing: start and stop, counters, the hub_env fixture, 404/405."""

from __future__ import annotations

import http.client
import json
import os
import socket
from pathlib import Path

import pytest
from huggingface_hub import get_session

from hub.emulator.repos import RepoStore
from hub.emulator.server import serve

BASE = "org/base"


def test_hub_env_isolates_and_redirects_the_defaults(hub_env, zoo, http_lib):
    import huggingface_hub
    from huggingface_hub import HfApi, constants, get_token

    assert os.environ.get("HF_TOKEN") is None and get_token() is None
    assert constants.HF_HUB_CACHE.startswith(str(hub_env.home))
    with pytest.raises(http_lib.ConnectError):  # forgot endpoint=: refused locally, never online
        HfApi().model_info(BASE)

    server = hub_env.start(zoo, use=True)
    assert HfApi().model_info(BASE).id == BASE
    assert BASE in {m.id for m in huggingface_hub.list_models(author="org")}
    path = huggingface_hub.hf_hub_download(BASE, "config.json")
    assert json.loads(Path(path).read_text())["hidden_size"] == 4
    assert server.counters.requests == 4


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/nothing", 404, None),
        ("GET", "/api/models/org/base/tree", 404, None),  # a tree needs a revision
        ("POST", "/api/models", 405, "GET"),
        ("GET", "/api/models/org/base/paths-info/main", 405, "POST"),
        ("POST", "/org/base/resolve/main/config.json", 405, "GET, HEAD"),
    ],
)
def test_routing_answers_404_and_405(hub_env, zoo, method, path, status, allow):
    server = hub_env.start(zoo)
    response = get_session().request(method, f"{server.url}{path}")
    assert response.status_code == status
    assert response.headers.get("Allow") == allow
    assert server.counters.statuses == {status: 1}


def test_page_size_must_be_positive(zoo):
    with pytest.raises(ValueError, match="page_size must be >= 1"):
        serve(zoo, page_size=0)


def test_hash_cache_is_written_and_read_back(hub_env, zoo, tmp_path):
    cache = tmp_path / "hashes.json"
    server = hub_env.start(zoo, prehash=True, hash_cache=cache)
    files = [p for p in (zoo / "repos").rglob("*") if p.is_file()]
    assert len(json.loads(cache.read_text())["files"]) == len(files)
    assert RepoStore(zoo).load_hashes(cache) == len(files)
    sha = hub_env.api(server).model_info(BASE).sha
    server.stop()
    assert hub_env.api(hub_env.start(zoo, hash_cache=cache)).model_info(BASE).sha == sha


def test_stop_ends_keep_alive_connections(hub_env, zoo):
    server = hub_env.start(zoo)
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("GET", f"/api/models/{BASE}")
    assert connection.getresponse().read()  # HTTP/1.1: the connection stays open
    server.stop()
    server.stop()  # twice is fine
    assert connection.sock.recv(1) == b""  # closed by the server, not left to time out
    connection.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=2)
