"""hub.hubsource, hub.retry and hub.window_cache through the real huggingface_hub client against
the local Hub server (127.0.0.1 only), with faults injected by the server."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fingerprint.signature import compute_signature
from hub.errors import (
    GatedModelError,
    MalformedFileError,
    ModelNotFoundError,
    NetworkError,
    NoSafetensorsError,
)
from hub.emulator.faults import FailFirst, Faults
from hub.hubsource import (
    EXPAND,
    HubClient,
    children_filter,
    iter_models,
    open_hub_model,
    parse_since,
    record_from_info,
)
from hub.local import open_local_model
from hub.retry import RetryPolicy, retry_delay
from hub.window_cache import WindowCache, default_cache_dir
from tests.factory import llama_tensors, noisy, write_model

TOKEN = "hf_SeCrEtTokenValue0123456789abcdefXYZ"
BASE = "org/base"
FINETUNES = [f"org/ft-{i}" for i in range(1, 5)]
GOOD = [
    BASE,
    *FINETUNES,
    "org/sharded",
    "org/adapter",
    "org/pipe",
    "other/root",
    "org/disguised",
]
BAD = {
    "org/gated": "gated",
    "org/pickle": "no_safetensors",
    "org/bad-header": "malformed",
    "org/disabled": "not_found",
}


def small(seed: int) -> dict[str, torch.Tensor]:
    """A small Llama-shaped model: 64-wide, two layers, every matrix >= 4096 elements."""
    return llama_tensors(seed, layers=2, hidden=64, inter=128, vocab=256)


def card(bases=(), relation=None, license_="apache-2.0") -> str:
    lines = [f"license: {license_}"]
    if bases:
        lines.append("base_model:")
        lines += [f"- {b}" for b in bases]
    if relation:
        lines.append(f"base_model_relation: {relation}")
    return "---\n" + "\n".join(lines) + "\n---\n\n# model\n"


def meta(repo_id: str, i: int, **extra) -> dict:
    return {
        "id": repo_id,
        "author": repo_id.split("/")[0],
        "downloads": 1000 - 10 * i,
        "downloadsAllTime": 5000 - i,
        "likes": i,
        "createdAt": f"2024-01-{i + 1:02d}T10:00:00.000Z",
        "lastModified": f"2024-03-{i + 1:02d}T10:00:00.000Z",
        "tags": ["safetensors", "text-generation"],
        "gated": False,
        "pipeline_tag": "text-generation",
        "library_name": "transformers",
        **extra,
    }


def build_zoo(root: Path) -> Path:
    """The crawl zoo: a base, fine-tunes (one sharded), an adapter, a two-folder pipeline, an
    unrelated root, a fine-tune that declares the wrong base, and four unreadable repos."""
    repos = root / "repos"
    base = small(0)
    write_model(repos / BASE, base, card=card())
    for i, rid in enumerate(FINETUNES, 1):
        write_model(
            repos / rid, noisy(base, 0.01, i), card=card([BASE], "finetune", license_="mit")
        )
    write_model(repos / "org/sharded", noisy(base, 0.01, 9), card=card([BASE]), shards=2)
    write_model(repos / "other/root", small(7), card=card())
    # derived from org/base, but its card names other/root
    write_model(repos / "org/disguised", noisy(base, 0.01, 11), card=card(["other/root"]))
    g = torch.Generator().manual_seed(3)
    adapter = repos / "org/adapter"
    adapter.mkdir(parents=True)
    save_file(
        {
            "base_model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.randn(
                16, 256, generator=g
            ),
            "base_model.model.layers.0.self_attn.q_proj.lora_B.weight": torch.randn(
                256, 16, generator=g
            ),
        },
        str(adapter / "adapter_model.safetensors"),
    )
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": BASE}))
    (adapter / "README.md").write_text(card([BASE], "adapter"))
    pipe = repos / "org/pipe"
    for sub, name, seed in (
        ("text_encoder", "model.safetensors", 21),
        ("unet", "diffusion_pytorch_model.safetensors", 22),
    ):
        (pipe / sub).mkdir(parents=True)
        t = small(seed)
        save_file({n: t[n].contiguous() for n in sorted(t)}, str(pipe / sub / name))
    (pipe / "model_index.json").write_text(json.dumps({"_class_name": "Pipe"}))
    write_model(repos / "org/gated", small(5), card=card())
    pickle = repos / "org/pickle"
    pickle.mkdir(parents=True)
    (pickle / "pytorch_model.bin").write_bytes(b"\x80\x02not really a pickle" * 100)
    (pickle / "config.json").write_text("{}")
    bad = repos / "org/bad-header"
    bad.mkdir(parents=True)
    (bad / "model.safetensors").write_bytes(struct.pack("<Q", 10_000) + b'{"a": 1}' + bytes(64))
    write_model(repos / "org/disabled", small(6), card=card())
    ids = [*GOOD, *BAD]
    extras = {"org/gated": {"gated": "manual"}, "org/disabled": {"disabled": True}}
    manifest = {"models": [meta(rid, i, **extras.get(rid, {})) for i, rid in enumerate(ids)]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="session")
def crawl_zoo(tmp_path_factory) -> Path:
    """The crawl zoo, built once per session; tests that change files copy it first."""
    return build_zoo(tmp_path_factory.mktemp("crawl-zoo"))


class Sleeps(list):
    """A sleep function that records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fast_retry(attempts: int = 6) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay=0.01, max_sleep=60.0, sleep=Sleeps())


@pytest.fixture
def by_window(monkeypatch):
    """Read the tiny test files window by window, as files over WHOLE_FILE are read."""
    import hub.hubsource

    monkeypatch.setattr(hub.hubsource, "WHOLE_FILE", 0)


def resolve_bytes(server) -> int:
    """Body bytes of file downloads (weights, indexes), not API calls."""
    return sum(n for p, n in server.counters.bytes_by_path.items() if "/resolve/" in p)


# ---- listing ----------------------------------------------------------------------------------


def test_listing_pages_and_expand_fields(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo, page_size=3)
    client = HubClient(server.url, token=False)
    infos = list(iter_models(client))
    assert sorted(i.id for i in infos) == sorted([*GOOD, *BAD])
    # 14 models in pages of 3: five listing requests, all answered 200
    assert server.counters.statuses == {200: 5}
    # sort=downloads, descending: manifest order here
    assert [i.id for i in infos] == [*GOOD, *BAD]
    rec = record_from_info(next(i for i in infos if i.id == "org/ft-2"))
    assert rec.source == "hub" and rec.path is None
    assert rec.revision and len(rec.revision) == 40
    assert (rec.author, rec.downloads, rec.downloads_all_time, rec.likes) == ("org", 980, 4998, 2)
    assert rec.created_at == "2024-01-03T10:00:00.000Z"
    assert rec.last_modified == "2024-03-03T10:00:00.000Z"
    assert (rec.library, rec.pipeline_tag, rec.license) == (
        "transformers",
        "text-generation",
        "mit",
    )
    assert [(b.id, b.relation) for b in rec.declared_bases] == [(BASE, "finetune")]
    assert "base_model:finetune:org/base" in rec.tags
    assert rec.parameter_count == sum(t.numel() for t in small(0).values())
    assert rec.gated is False and "token" not in json.dumps(rec.extra).lower()
    gated = record_from_info(next(i for i in infos if i.id == "org/gated"))
    assert gated.gated is True and gated.extra["gated_mode"] == "manual"


def test_expand_asks_only_for_the_needed_fields(hub_env, crawl_zoo, monkeypatch):
    from huggingface_hub import HfApi

    calls = []
    real = HfApi.list_models

    def spy(self, **kwargs):
        calls.append(kwargs)
        return real(self, **kwargs)

    monkeypatch.setattr(HfApi, "list_models", spy)
    server = hub_env.start(crawl_zoo)
    list(iter_models(HubClient(server.url, token=False), limit=2))
    assert sorted(calls[0]["expand"]) == sorted(EXPAND)
    assert set(EXPAND) == {
        "author", "createdAt", "lastModified", "downloads", "downloadsAllTime", "likes", "tags",
        "cardData", "library_name", "pipeline_tag", "gated", "sha", "siblings", "safetensors",
    }  # fmt: skip


def test_sort_limit_author_search(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo, page_size=4)
    client = HubClient(server.url, token=False)
    created = [i.id for i in iter_models(client, sort="created")]
    assert created == list(reversed([*GOOD, *BAD]))
    likes = [i.id for i in iter_models(client, sort="likes", limit=3)]
    assert likes == list(reversed([*GOOD, *BAD]))[:3]
    assert [i.id for i in iter_models(client, authors=["other"])] == ["other/root"]
    both = [i.id for i in iter_models(client, authors=["other", "org"], search="root")]
    assert both == ["other/root"]
    modified = [i.id for i in iter_models(client, sort="modified", limit=2)]
    assert modified == list(reversed([*GOOD, *BAD]))[:2]
    with pytest.raises(ValueError, match="sort must be one of"):
        list(iter_models(client, sort="trending"))


def test_since_stops_paging_when_sorted_by_created(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo, page_size=2)
    client = HubClient(server.url, token=False)
    # created 2024-01-01 .. 2024-01-14, one per model; keep the last four
    newest = [i.id for i in iter_models(client, sort="created", since="2024-01-11")]
    assert newest == list(reversed([*GOOD, *BAD]))[:4]
    # 4 kept + 1 older seen on page 3: three pages of 2, not seven
    assert server.counters.requests == 3
    server.reset_counters()
    # sorted otherwise, the cut is on the client and every page is read
    others = [i.id for i in iter_models(client, sort="downloads", since="2024-01-11T00:00:00Z")]
    assert sorted(others) == sorted(newest)
    assert server.counters.requests == 7
    with pytest.raises(ValueError, match="not a date"):
        parse_since("last tuesday")


def test_children_of_a_base_through_the_tag_filter(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo)
    client = HubClient(server.url, token=False)
    finetunes = [i.id for i in iter_models(client, filters=[children_filter(BASE, "finetune")])]
    assert finetunes == FINETUNES
    children = {i.id for i in iter_models(client, filters=[children_filter(BASE)])}
    assert children == {*FINETUNES, "org/sharded", "org/adapter"}


class NoSleep:
    """Stands in for the `time` module inside huggingface_hub's backoff: no real waiting."""

    def __getattr__(self, name):
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        pass


def test_listing_first_page_errors_are_retried_then_reported(hub_env, crawl_zoo, monkeypatch):
    from huggingface_hub.utils import _http

    monkeypatch.setattr(_http, "time", NoSleep())  # 2.x retries the listing itself
    rule = FailFirst("503", count=1, pattern="^/api/models\\?", method="GET")
    server = hub_env.start(crawl_zoo, faults=Faults(fail_first=(rule,)))
    client = HubClient(server.url, token=False, retry=fast_retry())
    assert len(list(iter_models(client, limit=3))) == 3
    assert server.counters.faults == {"503": 1}
    hub_env.servers[-1].stop()
    dead = HubClient(server.url, token=False, retry=fast_retry(attempts=2))
    with pytest.raises(NetworkError, match="listing"):
        list(iter_models(dead))


# ---- opening models: signatures identical to local folders ---------------------------------


@pytest.mark.parametrize("repo_id", ["org/base", "org/sharded", "org/adapter", "org/pipe"])
def test_hub_signature_is_bit_identical_to_the_local_folder(hub_env, crawl_zoo, repo_id):
    server = hub_env.start(crawl_zoo)
    model = open_hub_model(repo_id, client=HubClient(server.url, token=False), hf_cache=False)
    local = open_local_model(crawl_zoo / "repos" / repo_id, model_id=repo_id)
    assert model.tensor_infos() == local.tensor_infos()
    hub_sig = compute_signature(model, device="cpu")
    local_sig = compute_signature(local, device="cpu")
    assert hub_sig.to_bytes() == local_sig.to_bytes()
    assert model.record.parameter_count == local.record.parameter_count
    assert model.record.extra["adapter"] is (repo_id == "org/adapter")
    if repo_id == "org/adapter":
        assert model.record.extra["adapter_base"] == BASE
    # accounting: every network byte of the model's files is counted, and nothing else
    assert model.bytes_fetched == resolve_bytes(server)
    assert model.stats.requests == server.counters.range_requests


def test_small_files_are_read_whole_in_one_request(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo)
    model = open_hub_model("org/sharded", client=HubClient(server.url, token=False), hf_cache=False)
    sig = compute_signature(model, device="cpu")
    # index + two shards, each read once, whole: no window request, no byte fetched twice
    assert server.counters.range_requests == 3 and sig.slots
    files = crawl_zoo / "repos/org/sharded"
    assert model.bytes_fetched == sum(p.stat().st_size for p in files.glob("model*"))


def test_headers_cost_one_request_per_file_and_windows_one_each(hub_env, crawl_zoo, by_window):
    server = hub_env.start(crawl_zoo)
    model = open_hub_model("org/sharded", client=HubClient(server.url, token=False), hf_cache=False)
    # index (one request) + one header request per shard
    assert server.counters.range_requests == 3
    server.reset_counters()
    sig = compute_signature(model, device="cpu")
    assert server.counters.range_requests == len(sig.slots)
    assert resolve_bytes(server) == sig.bytes_read


@pytest.mark.parametrize(
    ("repo_id", "error", "status"),
    [
        ("org/gated", GatedModelError, "gated"),
        ("org/pickle", NoSafetensorsError, "no_safetensors"),
        ("org/bad-header", MalformedFileError, "malformed"),
        ("org/disabled", ModelNotFoundError, "not_found"),
        ("org/does-not-exist", ModelNotFoundError, "not_found"),
    ],
)
def test_unreadable_models_raise_their_error(hub_env, crawl_zoo, repo_id, error, status):
    server = hub_env.start(crawl_zoo)
    with pytest.raises(error) as info:
        open_hub_model(repo_id, client=HubClient(server.url, token=False), hf_cache=False)
    assert info.value.status == status
    assert repo_id in str(info.value) and info.value.model_id == repo_id
    if repo_id == "org/pickle":
        # pickle files are never downloaded
        assert resolve_bytes(server) == 0


def test_gated_with_wrong_token_is_gated_and_with_the_right_one_reads(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo, tokens=[TOKEN])
    with pytest.raises(GatedModelError, match="HTTP 403") as info:
        open_hub_model("org/gated", client=HubClient(server.url, token="hf_wrong"), hf_cache=False)
    assert "hf_wrong" not in str(info.value)
    model = open_hub_model("org/gated", client=HubClient(server.url, token=TOKEN), hf_cache=False)
    assert compute_signature(model, device="cpu").slots
    assert TOKEN not in repr(HubClient(server.url, token=TOKEN))


def test_index_naming_a_missing_shard_is_malformed(hub_env, tmp_path):
    root = tmp_path / "zoo"
    folder = write_model(root / "repos" / "org/broken", small(1), shards=2)
    (folder / "model-00002-of-00002.safetensors").unlink()
    server = hub_env.start(root)
    with pytest.raises(MalformedFileError, match="missing shard"):
        open_hub_model("org/broken", client=HubClient(server.url, token=False), hf_cache=False)


# ---- faults: rate limits, server errors, truncated bodies ------------------------------------


def test_429_with_retry_after_and_5xx_are_retried(hub_env, crawl_zoo, tmp_path, by_window):
    faults = Faults(
        retry_after=7,
        fail_first=(
            FailFirst("429", count=2, pattern="/resolve/", method="GET"),
            FailFirst("502", count=1, pattern="/paths-info/"),
            FailFirst("503", count=2, pattern="/resolve/", method="GET"),
            FailFirst("500", count=1, pattern="^/api/models/org/ft-1\\?"),
        ),
    )
    server = hub_env.start(crawl_zoo, faults=faults)
    retry = fast_retry()
    client = HubClient(server.url, token=False, retry=retry)
    model = open_hub_model("org/ft-1", client=client, cache=WindowCache(tmp_path / "c"))
    sig = compute_signature(model, device="cpu")
    assert server.counters.faults == {"429": 2, "502": 1, "503": 2, "500": 1}
    # Retry-After (7 s, RateLimit t=7) is honoured for 429s; 5xx back off from base_delay
    assert retry.sleep.count(7.0) == 2
    assert len(retry.sleep) == 6
    assert (
        sig.to_bytes()
        == compute_signature(
            open_local_model(crawl_zoo / "repos/org/ft-1", model_id="org/ft-1"), device="cpu"
        ).to_bytes()
    )


def test_retry_after_is_capped_and_attempts_are_bounded(hub_env, crawl_zoo):
    faults = Faults(retry_after=3600, rate_429=1.0, pattern="/resolve/")
    server = hub_env.start(crawl_zoo, faults=faults)
    sleeps = Sleeps()
    retry = RetryPolicy(attempts=3, base_delay=0.01, max_sleep=2.5, sleep=sleeps)
    with pytest.raises(NetworkError, match="after 3 attempts") as info:
        open_hub_model("org/base", client=HubClient(server.url, token=False, retry=retry))
    assert info.value.status == "network"
    assert sleeps == [2.5, 2.5]
    assert server.counters.faults == {"429": 3}


def test_retry_delay_headers():
    assert retry_delay({"RateLimit": '"api";r=0;t=55', "Retry-After": "3"}) == 55
    assert retry_delay({"ratelimit": '"api";r=4;t=55', "retry-after": "3"}) == 3
    assert retry_delay({}) is None
    assert 0 <= retry_delay({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) <= 1


def test_truncated_body_is_retried_and_never_cached(hub_env, crawl_zoo, tmp_path, by_window):
    # the first ranged GET (the header) is cut in half, then every later one passes
    faults = Faults(fail_first=(FailFirst("truncate", count=1, pattern="/resolve/"),))
    server = hub_env.start(crawl_zoo, faults=faults)
    cache = WindowCache(tmp_path / "cache")
    client = HubClient(server.url, token=False, retry=fast_retry())
    model = open_hub_model("org/base", client=client, cache=cache, hf_cache=False)
    sig = compute_signature(model, device="cpu")
    assert server.counters.faults == {"truncate": 1}
    local = open_local_model(crawl_zoo / "repos/org/base", model_id="org/base")
    assert sig.to_bytes() == compute_signature(local, device="cpu").to_bytes()
    # every cache entry holds exactly the file's bytes at its offsets
    data = (crawl_zoo / "repos/org/base/model.safetensors").read_bytes()
    entries = list(cache.root.rglob("*.bin"))
    assert len(entries) == len(sig.slots) + 1  # windows + the header prefix
    for entry in entries:
        start, end = map(int, entry.stem.split("-"))
        assert cache.get(entry.parent.name, start, end) == data[start:end]


def test_always_truncated_bodies_fail_as_network_and_cache_nothing(hub_env, crawl_zoo, tmp_path):
    faults = Faults(rate_truncate=1.0, pattern="/resolve/")
    server = hub_env.start(crawl_zoo, faults=faults)
    cache = WindowCache(tmp_path / "cache")
    with pytest.raises(NetworkError, match="after 3 attempts"):
        open_hub_model(
            "org/base",
            client=HubClient(server.url, token=False, retry=fast_retry(attempts=3)),
            cache=cache,
        )
    assert server.counters.faults == {"truncate": 3}
    assert not list(cache.root.rglob("*.bin"))


# ---- caches: window cache and the local HF cache ---------------------------------------------


def test_window_cache_hits_cost_no_network(hub_env, crawl_zoo, tmp_path, by_window):
    server = hub_env.start(crawl_zoo)
    cache = WindowCache(tmp_path / "cache")
    client = HubClient(server.url, token=False)
    first = compute_signature(
        open_hub_model("org/sharded", client=client, cache=cache, hf_cache=False), device="cpu"
    )
    server.reset_counters()
    again = open_hub_model("org/sharded", client=client, cache=cache, hf_cache=False)
    second = compute_signature(again, device="cpu")
    assert second.to_bytes() == first.to_bytes()
    assert resolve_bytes(server) == 0 and server.counters.range_requests == 0
    assert again.bytes_fetched == 0 and again.stats.cached > 0


def test_corrupt_or_short_cache_entries_are_ignored_and_refetched(
    hub_env, crawl_zoo, tmp_path, by_window
):
    server = hub_env.start(crawl_zoo)
    cache = WindowCache(tmp_path / "cache")
    client = HubClient(server.url, token=False)
    model = open_hub_model("org/base", client=client, cache=cache, hf_cache=False)
    first = compute_signature(model, device="cpu")
    entries = sorted(cache.root.rglob("*.bin"))
    entries[1].write_bytes(entries[1].read_bytes()[:-100])  # short
    raw = bytearray(entries[2].read_bytes())
    raw[5] ^= 0xFF
    entries[2].write_bytes(bytes(raw))  # same length, wrong bytes
    server.reset_counters()
    model = open_hub_model("org/base", client=client, cache=cache, hf_cache=False)
    assert compute_signature(model, device="cpu").to_bytes() == first.to_bytes()
    assert server.counters.range_requests == 2


def test_window_cache_is_atomic_and_refuses_short_data(tmp_path, monkeypatch):
    cache = WindowCache(tmp_path / "c")
    key = "a" * 64
    with pytest.raises(ValueError, match="refusing"):
        cache.put(key, 0, 10, b"short")
    cache.put(key, 0, 4, b"abcd")
    assert cache.get(key, 0, 4) == b"abcd"
    assert cache.get(key, 0, 5) is None
    assert [p.name for p in cache.path(key, 0, 4).parent.iterdir()] == ["0-4.bin"]
    with pytest.raises(ValueError):
        cache.path("../../etc", 0, 1)
    monkeypatch.setenv("LINEAGE_CACHE", str(tmp_path / "lc"))
    assert default_cache_dir() == tmp_path / "lc" / "windows"
    monkeypatch.delenv("LINEAGE_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "model-lineage" / "windows"


def test_snapshot_in_the_hf_cache_is_read_from_disk(hub_env, crawl_zoo):
    from huggingface_hub import snapshot_download

    server = hub_env.start(crawl_zoo)
    client = HubClient(server.url, token=False)
    info = client.model_info("org/sharded")
    snapshot_download("org/sharded", revision=info.sha, endpoint=server.url, token=False)
    server.reset_counters()
    model = open_hub_model(info, client=client, cache=None)  # hf_cache=True: HF_HOME/hub
    sig = compute_signature(model, device="cpu")
    assert resolve_bytes(server) == 0
    assert model.bytes_fetched == 0 and model.stats.local > sig.bytes_read
    local = open_local_model(crawl_zoo / "repos/org/sharded", model_id="org/sharded")
    assert sig.to_bytes() == compute_signature(local, device="cpu").to_bytes()


def test_reads_are_pinned_to_the_listed_commit(hub_env, tmp_path):
    root = tmp_path / "zoo"
    folder = write_model(root / "repos/org/moving", small(1))
    server = hub_env.start(root)
    client = HubClient(server.url, token=False)
    info = client.model_info("org/moving")
    write_model(folder, small(2))  # a new commit lands after the listing
    server.store.invalidate()
    with pytest.raises(ModelNotFoundError, match="changed"):
        open_hub_model(info, client=client, hf_cache=False)


def test_endpoint_from_hf_endpoint(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo, use=True)
    client = HubClient(token=False)
    assert client.endpoint == server.url
    assert [i.id for i in iter_models(client, limit=1)] == [BASE]


def test_pipeline_subfolders_read_the_same_bytes(hub_env, crawl_zoo):
    """The hub and the local reads give the same window bytes, slot by slot."""
    server = hub_env.start(crawl_zoo)
    model = open_hub_model("org/pipe", client=HubClient(server.url, token=False), hf_cache=False)
    local = open_local_model(crawl_zoo / "repos/org/pipe", model_id="org/pipe")
    names = [t.name for t in model.tensor_infos()]
    assert any(n.startswith("text_encoder/") for n in names)  # clashing names are qualified
    for name in names[:5]:
        e = model.entry(name)
        assert np.array_equal(
            np.frombuffer(model.read_range(name, 0, e.nbytes), np.uint8),
            np.frombuffer(local.read_range(name, 0, e.nbytes), np.uint8),
        )
    with pytest.raises(ValueError, match="outside"):
        model.read_range(names[0], 0, model.entry(names[0]).nbytes + 1)
    with pytest.raises(KeyError):
        model.read_range("nope", 0, 1)
