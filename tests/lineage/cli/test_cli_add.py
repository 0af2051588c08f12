"""`lineage add` / `fingerprint` on real folders: bad input, idempotence, determinism."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from fingerprint.comparison import compare
from fingerprint.signature import Signature, compute_signature
from hub.local import open_local_model
from lineage.cli.main import main
from lineage.store import Store
from tests.factory import llama_tensors, write_model


def _header_file(path: Path, header: dict, data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def _bad_folders(root: Path) -> dict[str, Path]:
    good = {"w": {"dtype": "F32", "shape": [64, 64], "data_offsets": [0, 64 * 64 * 4]}}
    data = bytes(64 * 64 * 4)
    cases = {}
    d = root / "truncated"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"\x10\x00\x00")
    cases["truncated"] = d
    d = root / "header_beyond"
    d.mkdir()
    (d / "model.safetensors").write_bytes(struct.pack("<Q", 10_000) + b"{}")
    cases["header_beyond"] = d
    d = root / "bad_json"
    d.mkdir()
    (d / "model.safetensors").write_bytes(struct.pack("<Q", 9) + b"{not json")
    cases["bad_json"] = d
    _header_file(
        root / "outside/model.safetensors",
        {
            "w": {**good["w"], "data_offsets": [0, 64 * 64 * 4 * 2]},
        },
        data,
    )
    cases["outside"] = root / "outside"
    _header_file(
        root / "overlap/model.safetensors",
        {
            "a": {"dtype": "F32", "shape": [32, 64], "data_offsets": [0, 8192]},
            "b": {"dtype": "F32", "shape": [32, 64], "data_offsets": [4096, 12288]},
        },
        bytes(12288),
    )
    cases["overlap"] = root / "overlap"
    _header_file(
        root / "dtype/model.safetensors",
        {"w": {"dtype": "F13", "shape": [64, 64], "data_offsets": [0, 16384]}},
        data,
    )
    cases["dtype"] = root / "dtype"
    d = root / "pickle"
    d.mkdir()
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    (d / "config.json").write_text("{}")
    cases["pickle"] = d
    return cases


@pytest.mark.parametrize(
    "case,words",
    [
        ("truncated", "model.safetensors"),
        ("header_beyond", "model.safetensors"),
        ("bad_json", "model.safetensors"),
        ("outside", "model.safetensors"),
        ("overlap", "model.safetensors"),
        ("dtype", "F13"),
        ("pickle", "convert"),
    ],
)
def test_bad_input_is_one_clear_error_and_leaves_the_store_untouched(tmp_path, capsys, case, words):
    db = tmp_path / "l.db"
    write_model(tmp_path / "good", llama_tensors(0, layers=1))
    assert main(["--db", str(db), "add", str(tmp_path / "good")]) == 0
    capsys.readouterr()
    with Store(db) as s:
        before = [(m.id, m.revision, m.status) for m in s.models()]
        sig_before = s.get_signature(f"{tmp_path.name}/good")
    folder = _bad_folders(tmp_path / "bad")[case]
    code = main(["--db", str(db), "add", str(folder)])
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and case in lines[0] and words in lines[0]
    with Store(db) as s:
        assert [(m.id, m.revision, m.status) for m in s.models()] == before
        assert s.get_signature(f"{tmp_path.name}/good") == sig_before


def test_pickle_is_never_unpickled(tmp_path, capsys):
    import pickle

    class Boom:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "UNPICKLED",))

    d = tmp_path / "evil"
    d.mkdir()
    (d / "pytorch_model.bin").write_bytes(pickle.dumps(Boom()))
    assert main(["--db", str(tmp_path / "l.db"), "add", str(d)]) == 1
    assert "never unpickled" in capsys.readouterr().err
    assert not (tmp_path / "UNPICKLED").exists()


def test_add_is_idempotent_and_one_bad_model_does_not_stop_the_rest(tmp_path, capsys):
    zoo = tmp_path / "zoo"
    write_model(zoo / "org/a", llama_tensors(0, layers=1))
    write_model(zoo / "org/b", llama_tensors(1, layers=1))
    bad = zoo / "org/broken"
    bad.mkdir(parents=True)
    (bad / "model.safetensors").write_bytes(b"\x01")
    db = str(tmp_path / "l.db")
    assert main(["--db", db, "add", str(zoo), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["new"] == ["org/a", "org/b"] and out["fingerprinted"] == ["org/a", "org/b"]
    assert [f["model"] for f in out["failed"]] == ["org/broken"]
    bad.joinpath("model.safetensors").unlink()
    bad.rmdir()
    assert main(["--db", db, "add", str(zoo), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["new"] == [] and again["unchanged"] == ["org/a", "org/b"]
    assert again["fingerprinted"] == []
    assert main(["--db", db, "fingerprint", "--json"]) == 0
    fp = json.loads(capsys.readouterr().out)
    assert fp["skipped"] == ["org/a", "org/b"] and fp["bytes_read"] == 0
    # a changed model gets a new revision and a new signature
    write_model(zoo / "org/b", llama_tensors(5, layers=1, inter=256))
    assert main(["--db", db, "add", str(zoo), "--json"]) == 0
    changed = json.loads(capsys.readouterr().out)
    assert changed["changed"] == ["org/b"] and changed["fingerprinted"] == ["org/b"]


def test_fingerprint_then_compare_by_id_uses_the_store(tmp_path, capsys):
    zoo = tmp_path / "zoo"
    base = llama_tensors(0, layers=1)
    write_model(zoo / "org/a", base)
    write_model(zoo / "org/b", {n: v.bfloat16() for n, v in base.items()})
    db = str(tmp_path / "l.db")
    assert main(["--db", db, "add", str(zoo), "--no-fingerprint"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "fingerprint", "org/a", "org/b", "--json"]) == 0
    fp = json.loads(capsys.readouterr().out)
    assert fp["fingerprinted"] == ["org/a", "org/b"] and fp["bytes_read"] > 0
    assert main(["--db", db, "compare", "org/a", "org/b", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "derived"


def _int8_valued(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        n: torch.randint(-8, 8, v.shape, generator=g).float() if v.ndim == 2 else v
        for n, v in llama_tensors(seed, layers=1).items()
    }


@pytest.mark.parametrize("kind", ["f32", "bf16", "int8_valued"])
def test_signatures_are_bit_identical_across_runs(tmp_path, kind):
    tensors = llama_tensors(3, layers=1)
    if kind == "bf16":
        tensors = {n: v.bfloat16() for n, v in tensors.items()}
    elif kind == "int8_valued":
        tensors = _int8_valued(3)
    write_model(tmp_path / "m", tensors)
    blobs = {
        compute_signature(open_local_model(tmp_path / "m"), device="cpu").to_bytes()
        for _ in range(3)
    }
    assert len(blobs) == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_signatures_are_bit_identical_on_cpu_and_gpu(tmp_path):
    write_model(tmp_path / "m", {n: v.bfloat16() for n, v in llama_tensors(3).items()})
    write_model(tmp_path / "q", _int8_valued(4))
    for name in ("m", "q"):
        cpu = compute_signature(open_local_model(tmp_path / name), device="cpu").to_bytes()
        gpu = compute_signature(open_local_model(tmp_path / name), device="cuda").to_bytes()
        assert cpu == gpu


def test_p_values_of_real_unrelated_signatures_are_calibrated(tmp_path):
    sigs = []
    for seed in range(30):
        write_model(tmp_path / f"m{seed}", llama_tensors(100 + seed, layers=1, inter=128))
        sigs.append(compute_signature(open_local_model(tmp_path / f"m{seed}"), device="cpu"))
    p = np.array([compare(a, b).p_value for i, a in enumerate(sigs) for b in sigs[i + 1 :]])
    assert p.size == 435
    for alpha in (0.01, 0.05, 0.2):
        frac = float(np.mean(p <= alpha))
        assert frac <= alpha * 1.6 + 0.01, (alpha, frac)
        assert frac >= alpha * 0.3, (alpha, frac)
    assert all(Signature.from_bytes(s.to_bytes()) == s for s in sigs[:3])
