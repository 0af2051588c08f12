"""hub.emulator.downloads through the real huggingface_hub client: downloads, ranges, gating."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import get_session, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import hf_raise_for_status, http_backoff
from safetensors.numpy import save_file

from hub.emulator.downloads import RangeNotSatisfiable, parse_range

BASE = "org/base"


def _url(server, repo_id: str, filename: str, rev: str = "main") -> str:
    return f"{server.url}/{repo_id}/resolve/{rev}/{filename}"


def test_hf_hub_download_and_sha_follows_content(hub_env, zoo):
    server = hub_env.start(zoo)
    path = Path(hf_hub_download("team0/child-2", "model.safetensors", endpoint=server.url))
    disk = zoo / "repos/team0/child-2/model.safetensors"
    assert path.read_bytes() == disk.read_bytes()
    assert str(path).startswith(str(hub_env.home))
    api = hub_env.api(server)
    before = api.model_info("team0/child-2").sha
    assert path.parent.name == before

    save_file({"embed.weight": np.ones((8, 4), np.float32)}, disk)  # a new upload
    after = api.model_info("team0/child-2").sha
    assert after != before
    with pytest.raises(RevisionNotFoundError):
        api.model_info("team0/child-2", revision=before)
    fresh = Path(hf_hub_download("team0/child-2", "model.safetensors", endpoint=server.url))
    assert fresh.parent.name == after and fresh.read_bytes() == disk.read_bytes()


def test_range_reads_through_the_library_session(hub_env, zoo):
    server = hub_env.start(zoo)
    data = (zoo / "repos/org/base/model.safetensors").read_bytes()
    url = _url(server, BASE, "model.safetensors")
    for header, expected in [
        ("bytes=8-23", data[8:24]),
        ("bytes=100-", data[100:]),
        ("bytes=-10", data[-10:]),
        ("bytes=0-999999", data),
    ]:
        response = get_session().get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.content == expected, header
        start = (
            len(data) - len(expected) if header == "bytes=-10" else int(header[6:].split("-")[0])
        )
        assert (
            response.headers["Content-Range"]
            == f"bytes {start}-{start + len(expected) - 1}/{len(data)}"
        )
    response = http_backoff("GET", url, headers={"Range": "bytes=0-7"})
    assert response.status_code == 206 and response.content == data[:8]
    assert server.counters.range_requests == 5
    assert server.counters.bytes_by_path[f"/{BASE}/resolve/main/model.safetensors"] == sum(
        [16, len(data) - 100, 10, len(data), 8]
    )

    head = get_session().head(url)
    assert (
        head.headers["X-Linked-Size"] == str(len(data)) and head.headers["Accept-Ranges"] == "bytes"
    )
    assert head.headers["X-Repo-Commit"] == hub_env.api(server).model_info(BASE).sha

    beyond = get_session().get(url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    with pytest.raises(HfHubHTTPError) as raised:
        hf_raise_for_status(http_backoff("GET", url, headers={"Range": f"bytes={len(data) + 5}-"}))
    assert raised.value.response.status_code == 416


def test_errors_map_to_the_library_exceptions(hub_env, zoo):
    server = hub_env.start(zoo, tokens=["hf_good"])
    with pytest.raises(GatedRepoError):
        hf_hub_download("org/gated", "model.safetensors", endpoint=server.url, token=False)
    with pytest.raises(GatedRepoError):
        hub_env.api(server, token="hf_bad").get_safetensors_metadata("org/gated")
    assert hub_env.api(server).model_info("org/gated").gated == "manual"  # metadata stays public
    unlocked = hub_env.api(server, token="hf_good").get_safetensors_metadata("org/gated")
    assert unlocked.parameter_count["F32"] == 36
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("nobody/nothing", "model.safetensors", endpoint=server.url)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(BASE, "pytorch_model.bin", endpoint=server.url)
    assert server.counters.statuses[401] == 1 and server.counters.statuses[403] == 1


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=90-200", 100, (90, 99)),
        ("bytes=-5", 100, (95, 99)),
        ("bytes=-500", 100, (0, 99)),
        ("bytes=5-", 100, (5, 99)),
        ("bytes=9-3", 100, None),
        ("bytes=0-1,4-5", 100, None),
        ("items=0-1", 100, None),
        (None, 100, None),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0)]
)
def test_parse_range_unsatisfiable(header, size):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)
