"""hub.emulator.info through the real huggingface_hub client: model info, trees, paths-info."""

from __future__ import annotations

import numpy as np
import pytest
from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
from safetensors.numpy import save_file

BASE = "org/base"


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
