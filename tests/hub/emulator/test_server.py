"""hub.emulator.server through the real huggingface_hub client (1.x or 2.x), on 127.0.0.1 only."""

from __future__ import annotations

import importlib
import json
import os
import time
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

from hub.emulator.faults import FailFirst, FaultInjector, Faults
from hub.emulator.routes import RangeNotSatisfiable, parse_range

BASE = "org/base"


def _repo(root: Path, repo_id: str, *, seed: int, bases=(), relation=None, shards=0) -> None:
    folder = root / "repos" / repo_id
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    tensors = {
        "embed.weight": rng.standard_normal((8, 4)).astype(np.float32),
        "layer.0.weight": rng.standard_normal((4, 4)).astype(np.float16),
        "layer.0.bias": np.zeros(4, np.float32),
    }
    if shards:
        names = sorted(tensors)
        weight_map = {}
        for i in range(shards):
            shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: tensors[n] for n in names[i::shards]}
            save_file(part, folder / shard)
            weight_map.update(dict.fromkeys(part, shard))
        index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    else:
        save_file(tensors, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"model_type": "tiny", "hidden_size": 4}))
    front = ["license: mit"]
    if bases:
        front.append("base_model:")
        front += [f"- {b}" for b in bases]
    if relation:
        front.append(f"base_model_relation: {relation}")
    (folder / "README.md").write_text("---\n" + "\n".join(front) + "\n---\n\n# Model\n")


def _meta(repo_id: str, i: int, **extra) -> dict:
    meta = {
        "id": repo_id,
        "author": repo_id.split("/")[0],
        "downloads": (i * 37) % 101,
        "downloadsAllTime": 1000 + i,
        "likes": i,
        "createdAt": f"2024-02-{i + 1:02d}T10:00:00.000Z",
        "lastModified": f"2024-03-{i + 1:02d}T10:00:00.000Z",
        "tags": ["safetensors", "tiny"],
        "gated": False,
        "pipeline_tag": "text-generation",
        "library_name": "transformers",
    }
    return {**meta, **extra}


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    """Ten models: a base, eight fine-tunes of it, a sharded one; plus a gated and a private."""
    root = tmp_path / "zoo"
    models = []
    _repo(root, BASE, seed=0)
    models.append(_meta(BASE, 0))
    for i in range(1, 9):
        repo_id = f"team{i % 2}/child-{i}"
        _repo(root, repo_id, seed=i, bases=[BASE], relation="finetune")
        models.append(_meta(repo_id, i))
    _repo(root, "org/sharded", seed=9, shards=2)
    models.append(_meta("org/sharded", 9))
    _repo(root, "org/gated", seed=10)
    models.append(_meta("org/gated", 10, gated="manual"))
    _repo(root, "org/secret", seed=11)
    models.append(_meta("org/secret", 11, private=True))
    (root / "manifest.json").write_text(json.dumps({"models": models}))
    return root


def _httpx():
    """The HTTP library huggingface_hub uses: httpx on 1.x, httpx2 on 2.x."""
    return importlib.import_module(type(get_session()).__module__.split(".")[0])


def _url(server, repo_id: str, filename: str, rev: str = "main") -> str:
    return f"{server.url}/{repo_id}/resolve/{rev}/{filename}"


# -- listing ----------------------------------------------------------------------------------------


def test_list_models_follows_cursor_pages_in_sort_order(hub_env, zoo):
    server = hub_env.start(zoo, page_size=3)
    api = hub_env.api(server)
    models = list(api.list_models(sort="downloads"))
    public = json.loads((zoo / "manifest.json").read_text())["models"][:-1]  # secret is hidden
    expected = [m["id"] for m in sorted(public, key=lambda m: -m["downloads"])]
    assert [m.id for m in models] == expected
    assert len(models) == 11
    assert server.counters.statuses == {200: 4}  # ceil(11 / 3) pages

    server.reset_counters()
    assert len(list(api.list_models(sort="downloads", limit=5))) == 5
    assert server.counters.requests == 2  # `limit` stops the paging early


def test_list_models_expand_fields_are_parsed(hub_env, zoo):
    api = hub_env.api(hub_env.start(zoo))
    fields = ["author", "downloads", "downloadsAllTime", "likes", "createdAt", "lastModified"]
    fields += ["cardData", "safetensors", "sha", "gated", "siblings"]
    infos = {m.id: m for m in api.list_models(expand=fields)}
    child = infos["team1/child-3"]
    assert (child.author, child.downloads, child.downloads_all_time, child.likes) == (
        "team1",
        (3 * 37) % 101,
        1003,
        3,
    )
    assert child.created_at.isoformat() == "2024-02-04T10:00:00+00:00"
    assert child.card_data.base_model == [BASE]
    assert child.safetensors.parameters == {"F32": 36, "F16": 16}
    assert child.safetensors.total == 52
    assert len(child.sha) == 40
    assert child.gated is False and infos["org/gated"].gated == "manual"
    assert {s.rfilename for s in child.siblings} >= {"model.safetensors", "config.json"}
    assert child.tags is None and child.pipeline_tag is None  # not asked for
    assert infos["org/sharded"].safetensors.total == 52


def test_filter_by_base_model_tag_finds_the_children(hub_env, zoo):
    api = hub_env.api(hub_env.start(zoo, page_size=4))
    children = {m.id for m in api.list_models(filter=f"base_model:finetune:{BASE}")}
    assert children == {f"team{i % 2}/child-{i}" for i in range(1, 9)}
    assert {m.id for m in api.list_models(filter=f"base_model:{BASE}", author="team0")} == {
        "team0/child-2",
        "team0/child-4",
        "team0/child-6",
        "team0/child-8",
    }
    assert [m.id for m in api.list_models(search="shard")] == ["org/sharded"]


def test_private_repo_needs_the_token(hub_env, zoo):
    server = hub_env.start(zoo, tokens=["hf_test"])
    assert "org/secret" not in {m.id for m in hub_env.api(server).list_models()}
    with pytest.raises(RepositoryNotFoundError):
        hub_env.api(server).model_info("org/secret")
    assert hub_env.api(server, token="hf_test").model_info("org/secret").private is True


# -- one repo ---------------------------------------------------------------------------------------


def test_model_info_and_revisions(hub_env, zoo):
    api = hub_env.api(hub_env.start(zoo))
    info = api.model_info("team1/child-1", files_metadata=True)
    assert info.id == "team1/child-1" and info.author == "team1"
    assert info.card_data.base_model == [BASE] and info.card_data.base_model_relation == "finetune"
    assert f"base_model:finetune:{BASE}" in info.tags
    assert info.config == {"model_type": "tiny", "hidden_size": 4}
    assert info.safetensors.total == 52
    weights = next(s for s in info.siblings if s.rfilename == "model.safetensors")
    assert weights.size == (zoo / "repos/team1/child-1/model.safetensors").stat().st_size
    assert len(weights.lfs.sha256) == 64
    assert api.model_info("team1/child-1", revision=info.sha).sha == info.sha
    with pytest.raises(RevisionNotFoundError):
        api.model_info("team1/child-1", revision="v9")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("nobody/nothing")
    only = api.model_info("team1/child-1", expand=["downloads"])
    assert only.downloads == (1 * 37) % 101 and only.sha is None


def test_tree_and_paths_info(hub_env, zoo):
    sub = zoo / "repos/org/sharded/adapter"
    sub.mkdir()
    save_file({"lora_A": np.ones((2, 4), np.float32)}, sub / "adapter_model.safetensors")
    api = hub_env.api(hub_env.start(zoo, page_size=3))
    top = list(api.list_repo_tree("org/sharded"))
    assert [e.path for e in top][0] == "adapter"  # directories first, then files
    assert len(top) == 6  # adapter, README, config, index, 2 shards (over two pages)
    everything = {e.path: e for e in api.list_repo_tree("org/sharded", recursive=True)}
    adapter = everything["adapter/adapter_model.safetensors"]
    assert adapter.lfs.size == adapter.size and len(adapter.lfs.sha256) == 64
    assert [e.path for e in api.list_repo_tree("org/sharded", "adapter")] == [adapter.path]
    info = api.get_paths_info("org/sharded", [adapter.path, "adapter", "missing.bin"])
    assert [type(e).__name__ for e in info] == ["RepoFile", "RepoFolder"]
    assert info[0].blob_id == adapter.blob_id


def test_safetensors_metadata_single_and_sharded(hub_env, zoo):
    api = hub_env.api(hub_env.start(zoo))
    single = api.get_safetensors_metadata("team0/child-2")
    assert not single.sharded
    assert single.parameter_count == {"F32": 36, "F16": 16}
    sharded = api.get_safetensors_metadata("org/sharded")
    assert sharded.sharded and len(sharded.files_metadata) == 2
    assert sharded.weight_map["layer.0.bias"] == "model-00002-of-00002.safetensors"
    assert sharded.parameter_count == {"F32": 36, "F16": 16}
    header = api.parse_safetensors_file_metadata("team0/child-2", "model.safetensors")
    assert header.tensors["embed.weight"].shape == [8, 4]


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
    with pytest.raises(HfHubHTTPError):
        hf_raise_for_status(http_backoff("GET", url, headers={"Range": f"bytes={len(data) + 5}-"}))


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


# -- faults -----------------------------------------------------------------------------------------


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


def test_truncated_body_is_detected(hub_env, zoo):
    rule = FailFirst("truncate", 2, method="GET")
    server = hub_env.start(zoo, faults=Faults(fail_first=(rule,)))
    url = _url(server, BASE, "model.safetensors")
    data = (zoo / "repos/org/base/model.safetensors").read_bytes()
    with pytest.raises(_httpx().RemoteProtocolError):
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
    with pytest.raises(ValueError):
        Faults(rate_429=0.7, rate_5xx=0.7)


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


def test_hub_env_isolates_and_redirects_the_defaults(hub_env, zoo):
    import huggingface_hub
    from huggingface_hub import HfApi, constants, get_token

    assert os.environ.get("HF_TOKEN") is None and get_token() is None
    assert constants.HF_HUB_CACHE.startswith(str(hub_env.home))
    with pytest.raises(_httpx().ConnectError):  # forgot endpoint=: refused locally, never online
        HfApi().model_info(BASE)

    server = hub_env.start(zoo, use=True)
    assert HfApi().model_info(BASE).id == BASE
    assert BASE in {m.id for m in huggingface_hub.list_models(author="org")}
    path = huggingface_hub.hf_hub_download(BASE, "config.json")
    assert json.loads(Path(path).read_text())["hidden_size"] == 4
    assert server.counters.requests == 4
