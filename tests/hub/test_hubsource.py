"""hub.hubsource (opening models, faults, caches) and hub.window_cache through the real
huggingface_hub client against the local Hub server (127.0.0.1 only), with faults injected by
the server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fingerprint.signature import compute_signature
from hub.emulator.faults import FailFirst, Faults
from hub.errors import (
    GatedModelError,
    MalformedFileError,
    ModelNotFoundError,
    NetworkError,
    NoSafetensorsError,
)
from hub.hubsource import (
    HubClient,
    open_hub_model,
)
from hub.local import open_local_model
from hub.retry import RetryPolicy
from hub.window_cache import WindowCache, default_cache_dir
from tests.factory import write_model
from tests.hub_helpers import (
    BASE,
    TOKEN,
    Sleeps,
    fast_retry,
    resolve_bytes,
    small,
)

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


def test_headers_cost_one_request_per_file_and_windows_one_each(hub_env, crawl_zoo):
    server = hub_env.start(crawl_zoo)
    model = open_hub_model(
        "org/sharded", client=HubClient(server.url, token=False), hf_cache=False, whole_file=0
    )
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


def test_429_with_retry_after_and_5xx_are_retried(hub_env, crawl_zoo, tmp_path):
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
    model = open_hub_model(
        "org/ft-1", client=client, cache=WindowCache(tmp_path / "c"), whole_file=0
    )
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


def test_truncated_body_is_retried_and_never_cached(hub_env, crawl_zoo, tmp_path):
    # the first ranged GET (the header) is cut in half, then every later one passes
    faults = Faults(fail_first=(FailFirst("truncate", count=1, pattern="/resolve/"),))
    server = hub_env.start(crawl_zoo, faults=faults)
    cache = WindowCache(tmp_path / "cache")
    client = HubClient(server.url, token=False, retry=fast_retry())
    model = open_hub_model("org/base", client=client, cache=cache, hf_cache=False, whole_file=0)
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


def test_window_cache_hits_cost_no_network(hub_env, crawl_zoo, tmp_path):
    server = hub_env.start(crawl_zoo)
    cache = WindowCache(tmp_path / "cache")
    client = HubClient(server.url, token=False)
    first = compute_signature(
        open_hub_model("org/sharded", client=client, cache=cache, hf_cache=False, whole_file=0),
        device="cpu",
    )
    server.reset_counters()
    again = open_hub_model("org/sharded", client=client, cache=cache, hf_cache=False, whole_file=0)
    second = compute_signature(again, device="cpu")
    assert second.to_bytes() == first.to_bytes()
    assert resolve_bytes(server) == 0 and server.counters.range_requests == 0
    assert again.bytes_fetched == 0 and again.stats.cached > 0


def test_corrupt_or_short_cache_entries_are_ignored_and_refetched(hub_env, crawl_zoo, tmp_path):
    server = hub_env.start(crawl_zoo)
    cache = WindowCache(tmp_path / "cache")
    client = HubClient(server.url, token=False)
    model = open_hub_model("org/base", client=client, cache=cache, hf_cache=False, whole_file=0)
    first = compute_signature(model, device="cpu")
    entries = sorted(cache.root.rglob("*.bin"))
    entries[1].write_bytes(entries[1].read_bytes()[:-100])  # short
    raw = bytearray(entries[2].read_bytes())
    raw[5] ^= 0xFF
    entries[2].write_bytes(bytes(raw))  # same length, wrong bytes
    server.reset_counters()
    model = open_hub_model("org/base", client=client, cache=cache, hf_cache=False, whole_file=0)
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
