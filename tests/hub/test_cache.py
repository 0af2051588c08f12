"""The local HF cache as a source, on a real cache layout built in tmp_path."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from safetensors.numpy import save_file

from hub.cache import cached_models, default_cache_dir, open_cached_model
from hub.errors import ModelNotFoundError, NoSafetensorsError
from hub.records import DeclaredBase
from tests.hf_cache import add_snapshot

SHA_OLD = "a" * 40
SHA_MAIN = "b" * 40


def _weights(tmp_path, value: float) -> bytes:
    path = tmp_path / f"w{value}.safetensors"
    save_file({"layer.weight": np.full((4, 8), value, dtype=np.float32)}, str(path))
    return path.read_bytes()


def test_default_cache_dir_follows_the_environment(hf_home, monkeypatch):
    assert default_cache_dir() == hf_home / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home / "elsewhere"))
    assert default_cache_dir() == hf_home / "elsewhere"


def test_missing_cache_is_empty(hf_home):
    assert cached_models() == []
    with pytest.raises(ModelNotFoundError, match="org/none"):
        open_cached_model("org/none")


def test_cached_models_and_open(hf_home, tmp_path):
    cache = hf_home / "hub"
    readme = b"---\nbase_model: org/base\nlicense: mit\n---\nhi\n"
    add_snapshot(cache, "org/model", SHA_OLD, {"model.safetensors": _weights(tmp_path, 1.0)})
    snap = add_snapshot(
        cache,
        "org/model",
        SHA_MAIN,
        {
            "model.safetensors": _weights(tmp_path, 2.0),
            "README.md": readme,
            "config.json": json.dumps({"transformers_version": "4.50"}).encode(),
        },
        ref="main",
    )
    # The older revision is modified last: `main` still wins.
    later = (snap / "model.safetensors").stat().st_mtime + 1000
    os.utime(
        cache / "models--org--model" / "snapshots" / SHA_OLD / "model.safetensors", (later, later)
    )
    other = add_snapshot(
        cache, "zed/other", SHA_OLD, {"model.safetensors": _weights(tmp_path, 3.0)}
    )
    add_snapshot(
        cache, "org/data", SHA_OLD, {"x.safetensors": _weights(tmp_path, 4.0)}, kind="datasets"
    )

    assert cached_models() == [("org/model", SHA_MAIN, snap), ("zed/other", SHA_OLD, other)]

    m = open_cached_model("org/model")
    assert m.model_id == "org/model" and m.revision == SHA_MAIN
    assert m.record.source == "cache" and m.record.path == str(snap)
    assert m.record.declared_bases == (DeclaredBase("org/base"),) and m.record.license == "mit"
    assert m.read_range("layer.weight", 0, 8) == np.full(2, 2.0, dtype=np.float32).tobytes()
    with pytest.raises(ModelNotFoundError):
        open_cached_model("org/data")


def test_explicit_cache_dir(tmp_path, hf_home):
    cache = tmp_path / "custom"
    snap = add_snapshot(
        cache, "org/m", SHA_MAIN, {"model.safetensors": _weights(tmp_path, 1.0)}, ref="main"
    )
    assert cached_models(cache) == [("org/m", SHA_MAIN, snap)]
    assert cached_models() == []
    assert open_cached_model("org/m", cache_dir=cache).revision == SHA_MAIN


def test_snapshot_with_only_metadata(hf_home, tmp_path):
    add_snapshot(hf_home / "hub", "org/meta", SHA_MAIN, {"config.json": b"{}"}, ref="main")
    with pytest.raises(NoSafetensorsError, match="org/meta"):
        open_cached_model("org/meta")
