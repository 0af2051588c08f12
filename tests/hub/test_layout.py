"""hub.layout: which files hold the weights, on a list of names, a local folder and the emulated
Hub (the same rules and the same answers for both sources)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from hub import layout
from hub.errors import MalformedFileError, NoSafetensorsError
from hub.hubsource import HubClient, open_hub_model
from hub.local import open_local_model


def _groups(files: dict[str, bytes]):
    return layout.weight_groups(files, files.__getitem__, model_id="org/m", voice=layout.HUB_VOICE)


def _index(weight_map: dict) -> bytes:
    return json.dumps({"metadata": {}, "weight_map": weight_map}).encode()


# ---- the table, on names alone ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "want"),
    [
        # a single file wins over everything else in its folder
        ({"model.safetensors": b"", "extra.safetensors": b""}, ("single", ("model.safetensors",))),
        (
            {"diffusion_pytorch_model.safetensors": b""},
            ("single", ("diffusion_pytorch_model.safetensors",)),
        ),
        (
            {
                "model.safetensors.index.json": _index(
                    {"a": "s1.safetensors", "b": "s2.safetensors"}
                ),
                "s1.safetensors": b"",
                "s2.safetensors": b"",
                "stray.safetensors": b"",
            },
            ("sharded", ("s1.safetensors", "s2.safetensors")),
        ),
        (
            {"adapter_model.safetensors": b"", "adapter_config.json": b"{}"},
            ("adapter", ("adapter_model.safetensors",)),
        ),
        (
            {"b.safetensors": b"", "a.safetensors": b""},
            ("loose", ("a.safetensors", "b.safetensors")),
        ),
    ],
)
def test_each_layout_row(files, want):
    (group,) = _groups(files)
    assert (group.layout, group.files) == want
    assert group.folder == "" and group.adapter is (want[0] == "adapter")


def test_subfolders_only_when_the_root_has_no_weights():
    files = {
        "unet/diffusion_pytorch_model.safetensors": b"",
        "text_encoder/model.safetensors": b"",
        ".cache/model.safetensors": b"",  # hidden: never a component
        "model_index.json": b"{}",
    }
    groups = _groups(files)
    assert [(g.folder, g.files) for g in groups] == [
        ("text_encoder", ("text_encoder/model.safetensors",)),
        ("unet", ("unet/diffusion_pytorch_model.safetensors",)),
    ]
    assert _groups({**files, "loose.safetensors": b""})[0].files == ("loose.safetensors",)


@pytest.mark.parametrize(
    ("index", "problem"),
    [
        (b"not json", "no valid weight_map"),
        (json.dumps({"weight_map": ["s1.safetensors"]}).encode(), "no valid weight_map"),
        (_index({"a": 3}), "no valid weight_map"),
        (_index({"a": "../outside.safetensors"}), "lists the shard '../outside.safetensors'"),
        (_index({"a": "/etc/passwd"}), "lists the shard '/etc/passwd'"),
        (_index({"a": "missing.safetensors"}), "lists the shard 'missing.safetensors'"),
    ],
)
def test_bad_indexes_are_malformed(index, problem):
    files = {"model.safetensors.index.json": index, "s1.safetensors": b""}
    with pytest.raises(MalformedFileError, match=problem) as info:
        _groups(files)
    assert info.value.model_id == "org/m"


def test_a_shard_path_inside_the_repo_is_normalised():
    files = {
        "sub/model.safetensors.index.json": _index(
            {"a": "./s1.safetensors", "b": "../other/s2.safetensors"}
        ),
        "sub/s1.safetensors": b"",
        "other/s2.safetensors": b"",
    }
    groups = {g.folder: g for g in _groups(files)}
    assert groups["sub"].weight_map == {"a": "sub/s1.safetensors", "b": "other/s2.safetensors"}
    assert groups["other"].layout == "loose"


def test_no_safetensors_names_the_pickles():
    names = ["pytorch_model.bin", "sub/weights.pt", "sub/deeper/x.ckpt", "README.md"]
    with pytest.raises(NoSafetensorsError, match="pytorch_model.bin, sub/weights.pt;?") as info:
        _groups(dict.fromkeys(names, b""))
    assert "x.ckpt" not in str(info.value)  # two folders down is not looked at
    err = layout.no_safetensors(["config.json"], model_id="org/m", voice=layout.HUB_VOICE)
    assert str(err) == (
        "org/m holds no *.safetensors, *.gguf or *.onnx weights at its root or one folder down."
    )


@pytest.mark.parametrize(
    ("declared", "kept"),
    [
        ("org/base", "org/base"),
        ("org/base-v1.5", "org/base-v1.5"),
        # where the two old copies disagreed: a repo id is namespace/name, nothing else
        ("org/", None),
        ("-org/base", None),
        ("my models/base", None),
        ("/data/base", None),
        ("./base", None),
        ("org/base/extra", None),
        (3, None),
    ],
)
def test_adapter_base_is_kept_only_when_it_is_a_repo_id(declared, kept):
    files = {"adapter_config.json": json.dumps({"base_model_name_or_path": declared}).encode()}
    assert layout.adapter_base(files, files.__getitem__) == kept


def test_adapter_base_of_a_broken_or_missing_config_is_none():
    assert layout.adapter_base({"adapter_config.json": b"{"}, lambda p: b"{") is None
    assert layout.adapter_base({}, lambda p: b"") is None


# ---- the same rules on both sources ------------------------------------------------------------


def _save(path, names, value=1.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({n: np.full((4, 4), value, np.float32) for n in names}, str(path))


def _repo(root, kind: str):
    """One repo folder per case, under root/repos/org/<kind>."""
    folder = root / "repos" / "org" / kind
    folder.mkdir(parents=True)
    if kind == "single":
        _save(folder / "model.safetensors", ["a", "b"])
        _save(folder / "other.safetensors", ["c"])
    elif kind in ("sharded", "bad-shard", "bad-index"):
        _save(folder / "s1.safetensors", ["a"])
        _save(folder / "s2.safetensors", ["b"])
        wm = {"a": "s1.safetensors", "b": "s2.safetensors"}
        if kind == "bad-shard":
            wm["b"] = "../s2.safetensors"
        text = json.dumps({"weight_map": wm}) if kind != "bad-index" else "[1, 2]"
        (folder / "model.safetensors.index.json").write_text(text)
    elif kind in ("adapter", "adapter-path"):
        _save(folder / "adapter_model.safetensors", ["lora_A", "lora_B"])
        base = "org/base" if kind == "adapter" else "/home/me/base"
        (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base}))
    elif kind == "full-with-adapter-config":
        _save(folder / "model.safetensors", ["a"])
        (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "o/b"}))
    elif kind == "loose":
        _save(folder / "b.safetensors", ["b"])
        _save(folder / "a.safetensors", ["a"])
    elif kind == "pipe":
        _save(folder / "unet" / "diffusion_pytorch_model.safetensors", ["w", "x"])
        _save(folder / "text_encoder" / "model.safetensors", ["w"], 2.0)
    elif kind == "pickle":
        (folder / "pytorch_model.bin").write_bytes(b"\x80\x02" * 8)
    return folder


GOOD_KINDS = {
    # kind: (files, tensor names, adapter, adapter_base)
    "single": (("model.safetensors",), ["a", "b"], False, None),
    "sharded": (("s1.safetensors", "s2.safetensors"), ["a", "b"], False, None),
    "adapter": (("adapter_model.safetensors",), ["lora_A", "lora_B"], True, "org/base"),
    "adapter-path": (("adapter_model.safetensors",), ["lora_A", "lora_B"], True, None),
    "full-with-adapter-config": (("model.safetensors",), ["a"], False, None),
    "loose": (("a.safetensors", "b.safetensors"), ["a", "b"], False, None),
    "pipe": (
        ("text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors"),
        ["text_encoder/w", "unet/w", "x"],
        False,
        None,
    ),
}
BAD_KINDS = {
    "bad-shard": (MalformedFileError, "lists the shard '../s2.safetensors'"),
    "bad-index": (MalformedFileError, "no valid weight_map"),
    "pickle": (NoSafetensorsError, "only pickle checkpoints \\(pytorch_model.bin\\)"),
}


@pytest.fixture
def both(hub_env, tmp_path):
    """Open a repo of `_repo` as a local folder and from the emulated Hub."""
    root = tmp_path / "zoo"
    server = None

    def opener(kind: str, source: str):
        nonlocal server
        folder = _repo(root, kind) if not (root / "repos/org" / kind).exists() else None
        if source == "local":
            return open_local_model(folder or root / "repos/org" / kind, model_id=f"org/{kind}")
        if server is None:
            server = hub_env.start(root)
        server.store.invalidate()
        client = HubClient(server.url, token=False)
        return open_hub_model(f"org/{kind}", client=client, hf_cache=False)

    return opener


@pytest.mark.parametrize("kind", sorted(GOOD_KINDS))
def test_both_sources_read_the_same_layout(both, kind):
    files, names, adapter, base = GOOD_KINDS[kind]
    local = both(kind, "local")
    hub = both(kind, "hub")
    for m in (local, hub):
        assert m.files == files
        assert [t.name for t in m.tensor_infos()] == names
        assert m.record.extra["adapter"] is adapter
        assert m.record.extra.get("adapter_base") == base
    assert local.tensor_infos() == hub.tensor_infos()
    first = names[0]
    assert local.read_window(first, 16).raw == hub.read_window(first, 16).raw


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
@pytest.mark.parametrize("source", ["local", "hub"])
def test_both_sources_refuse_the_same_repos(both, kind, source):
    error, problem = BAD_KINDS[kind]
    with pytest.raises(error, match=problem) as info:
        both(kind, source)
    assert info.value.model_id == f"org/{kind}"
