"""The issue's must-show cases, through `lineage compare A B --json` on real safetensors folders."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from lineage.cli.main import main
from tests.factory import llama_tensors, noisy, write_model

K_OVER_WINDOW = 512 / (128 * 128)  # chance overlap of the smallest slots


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    base = llama_tensors(0)
    g = torch.Generator().manual_seed(99)
    paths = {"base": write_model(root / "base", base)}
    paths["bf16"] = write_model(root / "bf16", {n: v.bfloat16() for n, v in base.items()})
    paths["noise10"] = write_model(root / "noise10", noisy(base, 0.10, seed=1))
    paths["noise50"] = write_model(root / "noise50", noisy(base, 0.50, seed=2))

    def lora(v: torch.Tensor) -> torch.Tensor:
        if v.ndim != 2:
            return v
        r = 8
        b = torch.randn(v.shape[0], r, generator=g)
        a = torch.randn(r, v.shape[1], generator=g)
        delta = b @ a
        return v + 0.3 * v.std() * delta / delta.std()

    paths["lora"] = write_model(root / "lora", {n: lora(v) for n, v in base.items()})

    def int8(v: torch.Tensor) -> torch.Tensor:
        if v.ndim != 2:
            return v
        scale = v.abs().amax(dim=1, keepdim=True) / 127
        return (v / scale).round().clamp(-127, 127) * scale

    paths["int8"] = write_model(root / "int8", {n: int8(v) for n, v in base.items()})
    paths["unrelated"] = write_model(root / "unrelated", llama_tensors(7))
    paths["other_arch"] = write_model(
        root / "other_arch", llama_tensors(0, hidden=96, inter=256, vocab=500)
    )
    extended = noisy(base, 0.05, seed=3)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        extended[name] = torch.cat([extended[name], 0.02 * torch.randn(16, 128, generator=g)])
    paths["vocab_ext"] = write_model(root / "vocab_ext", extended)
    paths["sharded"] = write_model(root / "sharded", base, shards=3)
    return paths


def _compare(capsys, tmp_path, a, b) -> dict:
    code = main(["--db", str(tmp_path / "l.db"), "compare", str(a), str(b), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert not (tmp_path / "l.db").exists()  # two folders: no database is created
    return json.loads(out)


def test_model_vs_itself_is_identical(models, capsys, tmp_path):
    r = _compare(capsys, tmp_path, models["base"], models["base"])
    assert r["overlap"] == 1.0 and r["identity"] == 1.0
    assert r["verdict"] == "identical"
    assert set(r) >= {"overlap", "identity", "p_value", "slots_compared", "verdict", "per_slot"}
    assert r["slots_compared"] == 3 * 7 + 2


def test_sharded_copy_is_identical(models, capsys, tmp_path):
    r = _compare(capsys, tmp_path, models["base"], models["sharded"])
    assert r["verdict"] == "identical"


def test_bf16_cast_keeps_overlap_loses_identity(models, capsys, tmp_path):
    r = _compare(capsys, tmp_path, models["base"], models["bf16"])
    assert r["overlap"] > 0.9
    assert r["identity"] < 0.05
    assert r["verdict"] == "derived" and r["p_value"] < 1e-100


@pytest.mark.parametrize("name,min_overlap", [("noise10", 0.6), ("noise50", 0.15)])
def test_noised_derivatives_are_clearly_derived(models, capsys, tmp_path, name, min_overlap):
    r = _compare(capsys, tmp_path, models["base"], models[name])
    assert r["verdict"] == "derived"
    assert r["overlap"] > min_overlap
    assert r["p_value"] < 1e-50


@pytest.mark.parametrize("name", ["lora", "int8"])
def test_lora_and_int8_round_trip_are_derived(models, capsys, tmp_path, name):
    r = _compare(capsys, tmp_path, models["base"], models[name])
    assert r["verdict"] == "derived"
    assert r["overlap"] > 0.3
    assert r["p_value"] < 1e-50


def test_unrelated_same_architecture(models, capsys, tmp_path):
    r = _compare(capsys, tmp_path, models["base"], models["unrelated"])
    assert r["verdict"] == "unrelated"
    assert r["overlap"] < 3 * K_OVER_WINDOW
    assert r["p_value"] > 1e-4
    assert r["identity"] < 0.01


def test_different_architecture_is_incomparable(models, capsys, tmp_path):
    r = _compare(capsys, tmp_path, models["base"], models["other_arch"])
    assert r["verdict"] == "incomparable"
    assert r["slots_compared"] == 0
    assert r["warnings"]


def test_vocabulary_extension_still_matches_on_every_slot(models, capsys, tmp_path):
    r = _compare(capsys, tmp_path, models["base"], models["vocab_ext"])
    assert r["verdict"] == "derived"
    compared = {s["tensor"] for s in r["per_slot"]}
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= compared
    assert r["slots_compared"] == 3 * 7 + 2


def test_human_output_and_module_entry_point(models, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lineage",
            "--db",
            str(tmp_path / "x.db"),
            "compare",
            str(models["base"]),
            str(models["noise10"]),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "verdict   derived" in out and "p-value" in out
    interval = next(line for line in out.splitlines() if line.strip().startswith("interval"))
    low, high = (float(x) for x in interval.split()[1:4:2])
    overlap = float(next(line for line in out.splitlines() if "overlap   " in line).split()[1])
    assert low <= overlap <= high


def test_unknown_reference_is_one_clear_error(capsys, tmp_path):
    # a path that is no folder (a Hub id is looked up on the endpoint: test_cli_compare_hub)
    code = main(["--db", str(tmp_path / "l.db"), "compare", "./nope/missing", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "nope/missing" in err and "lineage add" in err


def test_comparing_folders_creates_no_database(models, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LINEAGE_DB", raising=False)
    assert main(["compare", str(models["base"]), str(models["bf16"])]) == 0
    monkeypatch.setenv("LINEAGE_DB", str(tmp_path / "env.db"))
    assert main(["compare", str(models["base"]), str(models["bf16"])]) == 0
    assert "verdict   derived" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def _peft(folder, b_seed: int, a_seed: int):
    """A PEFT adapter folder on q_proj of two layers (64 wide), factors from two seeds."""
    from lineage.lab.adapters import write_peft_adapter

    gb, ga = torch.Generator().manual_seed(b_seed), torch.Generator().manual_seed(a_seed)
    factors = {
        f"model.layers.{i}.self_attn.q_proj.weight": (
            torch.randn(4, 64, generator=ga),
            torch.randn(64, 4, generator=gb),
        )
        for i in range(2)
    }
    return str(write_peft_adapter(folder, factors, rank=4, alpha=8))


def test_two_adapters_are_compared_by_what_they_learnt(tmp_path, capsys):
    first = _peft(tmp_path / "org" / "first", b_seed=1, a_seed=2)
    # the same output directions (B) and input directions (A) with other coefficients would
    # score 1; these share B's seed only: left side 1, right side near the random baseline
    sibling = _peft(tmp_path / "org" / "sibling", b_seed=1, a_seed=3)
    db = str(tmp_path / "none.db")
    assert main(["--db", db, "compare", first, sibling, "--json"]) == 0
    sub = json.loads(capsys.readouterr().out)["subspace"]
    assert sub["modules_compared"] == 2
    assert sub["left"] > 0.99 and sub["right"] < 0.5
    assert sub["baseline"] == pytest.approx(4 / 64)
    assert main(["--db", db, "compare", first, sibling]) == 0
    assert "subspace  " in capsys.readouterr().out


def test_models_that_are_not_adapters_get_no_subspace_line(models, capsys):
    assert main(["compare", str(models["base"]), str(models["lora"]), "--json"]) == 0
    assert "subspace" not in json.loads(capsys.readouterr().out)
