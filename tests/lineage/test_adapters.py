"""Adapters and fine-tunes that learnt the same thing score above unrelated ones (trained here)."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from hub.local import open_local_model
from lineage.adapters import adapter_factors, compare_adapters, compare_finetunes, fits_base
from lineage.errors import LineageError
from lineage.lab import adapters as lab
from lineage.lab.zoo_train import TrainSettings

# Shorter than the script's run (docs/adapters.md), same recipe; about 18 s of CPU for the
# three seeds. Measured with these settings over seeds 0-2: sibling - unrelated similarity
# 0.161-0.225 for adapters and 0.456-0.476 for full fine-tunes; random adapters within 0.011 of
# k/d. The margins leave room for that spread: adapters that learnt nothing in common (or a score
# blind to the data: both differences are 0 in expectation) fall under them.
SETTINGS = {
    "base_training": TrainSettings(steps=40, lr=3e-3),
    "adapter_training": TrainSettings(steps=80, lr=3e-3),
    "finetune_training": TrainSettings(steps=30, lr=1e-3),
}
SEEDS = (0, 1, 2)
ADAPTER_MARGIN = 0.1
FINETUNE_MARGIN = 0.25


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    work = tmp_path_factory.mktemp("adapters")
    got = {}
    for seed in SEEDS:
        for s in lab.run_seed(seed, work, **SETTINGS):
            got[(seed, s.kind)] = s.result
    return got


@pytest.mark.parametrize("seed", SEEDS)
def test_sibling_adapters_score_above_unrelated_ones(scores, seed):
    sib, unrel, rnd = (scores[(seed, k)] for k in ("sibling", "unrelated", "random"))
    assert sib.modules_compared == unrel.modules_compared == 4  # q and v of 2 layers
    assert sib.similarity - unrel.similarity > ADAPTER_MARGIN, (sib, unrel)
    # both sides carry it, not just one
    assert sib.left > unrel.left and sib.right > unrel.right
    # learnt directions of one base are not random, but a random update is
    assert abs(rnd.similarity - rnd.baseline) < 0.04
    assert unrel.similarity > rnd.similarity


@pytest.mark.parametrize("seed", SEEDS)
def test_sibling_finetunes_score_above_unrelated_ones(scores, seed):
    sib, unrel = scores[(seed, "ft-sibling")], scores[(seed, "ft-unrelated")]
    assert sib.modules_compared == unrel.modules_compared == 14  # 7 matrices of 2 layers
    assert sib.similarity - unrel.similarity > FINETUNE_MARGIN, (sib, unrel)


def _write(folder, tensors: dict[str, np.ndarray], file: str) -> str:
    folder.mkdir()
    save_file(tensors, str(folder / file))
    return str(folder)


def _adapter(folder, seed: int) -> str:
    r = np.random.default_rng(seed)
    pre = "base_model.model.model.layers.0.q_proj"
    return _write(
        folder,
        {
            f"{pre}.lora_A.weight": r.standard_normal((4, 32)).astype(np.float32),
            f"{pre}.lora_B.weight": r.standard_normal((32, 4)).astype(np.float32),
        },
        "adapter_model.safetensors",
    )


def test_opened_models_and_paths_compare_alike(tmp_path):
    a, b = _adapter(tmp_path / "a", 1), _adapter(tmp_path / "b", 2)
    by_path = compare_adapters(a, b)
    opened = compare_adapters(open_local_model(a), open_local_model(b))
    assert by_path == opened and by_path.modules_compared == 1
    assert compare_adapters(a, a).similarity == pytest.approx(1.0)


def test_a_full_model_is_not_an_adapter(tmp_path):
    full = _write(
        tmp_path / "full",
        {"model.layers.0.q_proj.weight": np.ones((8, 8), np.float32)},
        "model.safetensors",
    )
    with pytest.raises(LineageError, match="not a readable LoRA adapter"):
        compare_adapters(full, _adapter(tmp_path / "a", 1))


def test_finetunes_without_shared_block_matrices_are_refused(tmp_path):
    flat = _write(
        tmp_path / "flat", {"embed.weight": np.ones((8, 8), np.float32)}, "model.safetensors"
    )
    with pytest.raises(LineageError, match="share no block matrix"):
        compare_finetunes(flat, flat, flat, k=2)


def test_an_adapter_fits_the_base_it_was_made_for(tmp_path):
    factors = adapter_factors(_adapter(tmp_path / "a", 1))
    base = {"model.layers.0.q_proj.weight": np.ones((32, 32), np.float32)}
    other = {"model.layers.0.q_proj.weight": np.ones((64, 32), np.float32)}
    assert fits_base(factors, _write(tmp_path / "base", base, "model.safetensors")) == (1, 1)
    assert fits_base(factors, _write(tmp_path / "other", other, "model.safetensors")) == (0, 1)
