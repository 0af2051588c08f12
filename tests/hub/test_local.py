"""Local model folders: which weights, records, byte ranges, errors, and folder discovery."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import PurePosixPath, PureWindowsPath

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from safetensors.torch import save_file as save_torch

from fingerprint.protocol import TensorSource
from hub.errors import MalformedFileError, ModelNotFoundError, NoSafetensorsError
from hub.folders import path_id
from hub.local import LocalModel, find_model_dirs, open_local_model
from hub.records import DeclaredBase, TensorInfo

README = """---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
base_model: org/base
base_model_relation: finetune
tags:
  - llama
  - base_model:quantized:org/other
---
# A model
"""


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "model.embed_tokens.weight": rng.standard_normal((64, 16)).astype(np.float32),
        "model.layers.0.mlp.weight": rng.standard_normal((32, 16)).astype(np.float16),
        "model.norm.weight": np.ones(16, dtype=np.float32),
    }


def _model(folder, arrays=None, *, readme=README, config=None):
    folder.mkdir(parents=True, exist_ok=True)
    save_file(arrays or _arrays(), str(folder / "model.safetensors"))
    (folder / "README.md").write_text(readme)
    (folder / "config.json").write_text(json.dumps(config or {"transformers_version": "4.50"}))
    return folder


def test_single_file_model_record_and_protocol(tmp_path):
    folder = _model(tmp_path / "tiny")
    m = open_local_model(folder, model_id="org/tiny")
    assert isinstance(m, TensorSource) and isinstance(m, LocalModel)
    assert m.model_id == "org/tiny" and m.files == ("model.safetensors",)
    assert m.tensor_infos() == [
        TensorInfo("model.embed_tokens.weight", "F32", (64, 16), decodable=True),
        TensorInfo("model.layers.0.mlp.weight", "F16", (32, 16), decodable=True),
        TensorInfo("model.norm.weight", "F32", (16,), decodable=True),
    ]
    r = m.record
    assert (r.id, r.status, r.source, r.path) == ("org/tiny", "ok", "local", str(folder.resolve()))
    assert r.author == "org" and r.license == "apache-2.0" and r.library == "transformers"
    assert r.pipeline_tag == "text-generation"
    assert r.tags == ("llama", "base_model:quantized:org/other")
    assert r.declared_bases == (
        DeclaredBase("org/base", "finetune"),
        DeclaredBase("org/other", "quantized"),
    )
    assert r.parameter_count == 64 * 16 + 32 * 16 + 16
    assert r.created_at is None and r.last_modified is None
    assert r.extra["adapter"] is False
    assert m.revision == r.revision and len(m.revision) == 40


def test_read_range_gives_numpys_bytes(tmp_path):
    folder = _model(tmp_path / "tiny")
    m = open_local_model(folder)
    expected = load_file(str(folder / "model.safetensors"))  # the test's reference only
    header_bytes = m.bytes_read
    emb = expected["model.embed_tokens.weight"]
    assert m.read_range("model.embed_tokens.weight", 0, 3 * 16 * 4) == emb[:3].tobytes()
    mlp = expected["model.layers.0.mlp.weight"]
    assert m.read_range("model.layers.0.mlp.weight", 2 * 16 * 2, 5 * 16 * 2) == mlp[2:5].tobytes()
    assert m.read_range("model.norm.weight", 4, 4) == b""
    assert m.bytes_read == header_bytes + 3 * 16 * 4 + 3 * 16 * 2


def test_read_window_decodes_the_first_elements_and_counts_their_bytes(tmp_path):
    folder = _model(tmp_path / "tiny")
    m = open_local_model(folder)
    expected = load_file(str(folder / "model.safetensors"))
    before = m.bytes_read
    mlp = expected["model.layers.0.mlp.weight"]  # F16
    w = m.read_window("model.layers.0.mlp.weight", 40)
    assert w.values.dtype == np.float32 and w.values.shape == (40,)
    assert np.array_equal(w.values, mlp.ravel()[:40].astype(np.float32))
    assert w.raw == mlp.ravel()[:40].tobytes()
    assert m.bytes_read - before == 40 * 2
    with pytest.raises(ValueError, match="outside tensor"):
        m.read_window("model.norm.weight", 17)


def test_a_window_says_its_stored_dtype_and_decodes_once_when_asked(tmp_path):
    from hub.records import TensorWindow

    m = open_local_model(_model(tmp_path / "tiny"))
    w = m.read_window("model.layers.0.mlp.weight", 40)
    assert w.plain == "F16" and w.decoded is None  # nothing decoded until asked
    assert w.values is w.values  # decoded once, then kept
    given = np.arange(3, dtype=np.float32)
    assert TensorWindow(raw=b"xyz", decoded=given).values is given
    with pytest.raises(ValueError, match="decoded values or a plain dtype"):
        _ = TensorWindow(raw=b"").values


def test_integer_tensors_are_listed_but_not_decoded(tmp_path):
    folder = _model(tmp_path / "q", {"q.qweight": np.arange(64, dtype=np.int32).reshape(8, 8)})
    m = open_local_model(folder)
    assert m.tensor_infos() == [TensorInfo("q.qweight", "I32", (8, 8), decodable=False)]
    with pytest.raises(KeyError, match="not decoded"):
        m.read_window("q.qweight", 8)


@pytest.mark.parametrize("rng", [(-1, 4), (0, 16 * 4 + 1), (8, 4)])
def test_read_range_outside_the_tensor(tmp_path, rng):
    m = open_local_model(_model(tmp_path / "tiny"))
    with pytest.raises(ValueError, match="outside tensor"):
        m.read_range("model.norm.weight", *rng)
    with pytest.raises(KeyError):
        m.read_range("nope", 0, 1)


def test_read_range_never_reads_the_whole_file(tmp_path, monkeypatch):
    folder = _model(tmp_path / "tiny")
    m = open_local_model(folder)
    size = (folder / "model.safetensors").stat().st_size
    monkeypatch.setattr("safetensors.numpy.load_file", lambda *a, **k: pytest.fail("load_file"))
    before = m.bytes_read
    m.read_range("model.embed_tokens.weight", 0, 64)
    assert m.bytes_read - before == 64 < size


def test_revision_is_deterministic_and_follows_content(tmp_path):
    a = open_local_model(_model(tmp_path / "a"))
    b = open_local_model(_model(tmp_path / "b"))
    c = open_local_model(_model(tmp_path / "c", {"x": np.zeros((2, 2), dtype=np.float32)}))
    assert a.revision == b.revision != c.revision


def _sharded(folder, arrays):
    folder.mkdir(parents=True)
    names = sorted(arrays)
    halves = {
        "model-00001-of-00002.safetensors": names[:2],
        "model-00002-of-00002.safetensors": names[2:],
    }
    weight_map = {}
    for shard, keys in halves.items():
        save_torch({k: torch.from_numpy(arrays[k]) for k in keys}, str(folder / shard))
        weight_map.update({k: shard for k in keys})
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    return folder


def test_sharded_model(tmp_path):
    arrays = _arrays(1)
    folder = _sharded(tmp_path / "sharded", arrays)
    m = open_local_model(folder, model_id="org/sharded")
    assert m.files == ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    assert [t.name for t in m.tensor_infos()] == sorted(arrays)
    for name, arr in arrays.items():
        assert m.read_range(name, 0, arr.nbytes) == arr.tobytes()
    assert m.record.library is None and m.record.declared_bases == ()


def test_sharded_model_with_a_missing_shard(tmp_path):
    folder = _sharded(tmp_path / "sharded", _arrays())
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(MalformedFileError, match="model-00002-of-00002.safetensors") as info:
        open_local_model(folder, model_id="org/sharded")
    assert info.value.model_id == "org/sharded"


def test_index_that_lies_about_a_shard(tmp_path):
    folder = _sharded(tmp_path / "sharded", _arrays())
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(MalformedFileError, match="model.norm.weight"):
        open_local_model(folder)


def test_malformed_weight_file_names_file_and_model(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 50) + b"{}")
    with pytest.raises(MalformedFileError, match="model.safetensors") as info:
        open_local_model(folder, model_id="org/broken")
    assert "org/broken" in str(info.value)


def test_other_root_files_and_duplicate_names(tmp_path):
    folder = tmp_path / "multi"
    folder.mkdir()
    save_file({"b": np.zeros((2, 2), dtype=np.float32)}, str(folder / "b.safetensors"))
    save_file({"a": np.ones((2, 2), dtype=np.float32)}, str(folder / "a.safetensors"))
    m = open_local_model(folder)
    assert m.files == ("a.safetensors", "b.safetensors")
    assert m.model_id == f"{tmp_path.name}/multi"  # default id: org/name from the path
    save_file({"a": np.ones((2, 2), dtype=np.float32)}, str(folder / "c.safetensors"))
    with pytest.raises(MalformedFileError, match="'a'"):
        open_local_model(folder)


def test_adapter(tmp_path):
    folder = tmp_path / "lora"
    folder.mkdir()
    save_file(
        {"base_model.model.q.lora_A.weight": np.zeros((4, 16), dtype=np.float32)},
        str(folder / "adapter_model.safetensors"),
    )
    (folder / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": "org/base"})
    )
    m = open_local_model(folder)
    assert m.record.extra["adapter"] is True and m.record.extra["adapter_base"] == "org/base"
    assert m.record.library == "peft" and m.files == ("adapter_model.safetensors",)


def test_subfolder_weights(tmp_path):
    folder = tmp_path / "pipe"
    (folder / "transformer").mkdir(parents=True)
    (folder / "text_encoder").mkdir()
    (folder / "text_encoder_2").mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_diffusers_version": "0.30"}))
    save_file(
        {"blocks.0.w": np.ones((4, 4), dtype=np.float32)},
        str(folder / "transformer" / "diffusion_pytorch_model.safetensors"),
    )
    save_file(
        {
            "text_model.emb": np.zeros((3, 4), dtype=np.float32),
            "proj": np.zeros((2, 2), dtype=np.float32),
        },
        str(folder / "text_encoder" / "model.safetensors"),
    )
    save_file(
        {"text_model.emb": np.ones((3, 4), dtype=np.float32)},
        str(folder / "text_encoder_2" / "model.safetensors"),
    )
    m = open_local_model(folder)
    assert m.files == (
        "text_encoder/model.safetensors",
        "text_encoder_2/model.safetensors",
        "transformer/diffusion_pytorch_model.safetensors",
    )
    names = [t.name for t in m.tensor_infos()]
    # Unique names stay as stored; a name two components share is qualified by its folder.
    assert names == [
        "blocks.0.w",
        "proj",
        "text_encoder/text_model.emb",
        "text_encoder_2/text_model.emb",
    ]
    assert (
        m.read_range("text_encoder_2/text_model.emb", 0, 48)
        == np.ones((3, 4), np.float32).tobytes()
    )
    assert m.record.library == "diffusers"


def test_missing_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="nothere"):
        open_local_model(tmp_path / "nothere")


def test_pickle_only_folder_is_never_unpickled(tmp_path, monkeypatch):
    folder = tmp_path / "pickled"
    folder.mkdir()
    marker = tmp_path / "UNPICKLED"
    # Unpickling this would call open(marker, "w") and so create the marker file.
    payload = b"cbuiltins\nopen\n(V" + str(marker).encode() + b"\nVw\ntR."
    for name in ("pytorch_model.bin", "weights.pt", "last.ckpt"):
        (folder / name).write_bytes(payload)
    (folder / "config.json").write_text("{}")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}

    def refuse(*a, **k):
        raise AssertionError("something tried to unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(NoSafetensorsError) as info:
        open_local_model(folder, model_id="org/pickled")
    msg = str(info.value)
    assert "org/pickled" in msg and "pytorch_model.bin" in msg
    assert "safetensors.torch.save_file" in msg and "never unpickled" in msg
    assert not marker.exists()
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before


def test_folder_without_weights(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(NoSafetensorsError, match="no \\*.safetensors"):
        open_local_model(folder)


def test_find_model_dirs_nested(tmp_path):
    repos = tmp_path / "repos"
    _model(repos / "org-a" / "m1")
    _model(repos / "org-b" / "m2")
    (repos / "org-b" / "m3").mkdir()
    (repos / "org-b" / "m3" / "pytorch_model.bin").write_bytes(b"x")
    _model(repos / "deep" / "er" / "still" / "too-deep")
    _model(repos / ".hidden" / "m")
    # A model folder is not entered: its subfolders are its own components.
    (repos / "org-a" / "m1" / "sub").mkdir()
    save_file(
        {"x": np.zeros(2, dtype=np.float32)}, str(repos / "org-a" / "m1" / "sub" / "x.safetensors")
    )
    found = find_model_dirs(repos)
    assert found == [
        ("org-a/m1", repos / "org-a" / "m1"),
        ("org-b/m2", repos / "org-b" / "m2"),
        ("org-b/m3", repos / "org-b" / "m3"),
    ]
    # a folder gets the same id alone as with its siblings: the last two parts of its path
    assert find_model_dirs(repos / "org-a" / "m1") == [("org-a/m1", repos / "org-a" / "m1")]
    assert find_model_dirs(tmp_path / "repos" / "deep") == [
        ("still/too-deep", repos / "deep" / "er" / "still" / "too-deep")
    ]


def test_find_model_dirs_ignores_name_or_path(tmp_path):
    # save_pretrained writes the id the weights came from: a fine-tune named like its base
    # must not take the base's id
    folder = _model(
        tmp_path / "me" / "Llama-2-7b-hf", config={"_name_or_path": "meta-llama/Llama-2-7b-hf"}
    )
    assert find_model_dirs(folder) == [("me/Llama-2-7b-hf", folder)]


@pytest.mark.parametrize(
    "named,expected",
    [
        ("acme/m", "acme/m"),  # the card names this model: used
        ("acme/other", "local/m"),  # another name than the folder's: a renamed copy, ignored
        ("m", "local/m"),  # no org: the path says more
        ("acme/m/extra", "local/m"),  # not an id
        (["acme/m"], "local/m"),  # not a string
    ],
)
def test_the_card_may_name_the_model(tmp_path, named, expected):
    readme = "---\n" + json.dumps({"model_id": named}) + "\n---\n"
    folder = _model(tmp_path / "local" / "m", readme=readme)
    assert find_model_dirs(folder) == [(expected, folder)]
    assert open_local_model(folder).model_id == expected


def test_ids_of_the_demo_zoo_are_org_name(crawl_zoo):
    found = find_model_dirs(crawl_zoo)
    assert found and all(mid.count("/") == 1 for mid, _ in found)
    assert {mid for mid, _ in find_model_dirs(crawl_zoo / "repos")} == {mid for mid, _ in found}
    assert all(mid == f"{f.parent.name}/{f.name}" for mid, f in found)
    assert ("org/base", crawl_zoo / "repos" / "org" / "base") in found


@pytest.mark.parametrize(
    "path,expected",
    [
        (PurePosixPath("/data/org/name"), "org/name"),
        (PurePosixPath("/model"), "model"),
        (PurePosixPath("/"), "root"),
        (PureWindowsPath("D:/models/org/name"), "org/name"),
        (PureWindowsPath("D:/"), "root"),
    ],
)
def test_path_ids_at_the_root_of_a_filesystem(path, expected):
    assert path_id(path) == expected


def test_find_model_dirs_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        find_model_dirs(tmp_path / "nope")
    (tmp_path / "f.safetensors").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        find_model_dirs(tmp_path / "f.safetensors")
    here = f"{tmp_path.parent.name}/{tmp_path.name}"
    assert find_model_dirs(tmp_path / "") == [(here, tmp_path)]  # has a *.safetensors
