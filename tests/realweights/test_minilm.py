"""Verdicts on real weights: all-MiniLM-L6-v2 against the derivations Hub users make of it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fingerprint.comparison import compare
from fingerprint.plan import plan_slots
from fingerprint.protocol import TensorInfo
from fingerprint.records import SignatureParams
from fingerprint.signature import compute_signature
from hub.local import open_local_model

# The parent has 39 fingerprintable matrices: position and word embeddings, 6 per layer, pooler.
PARENT_SLOTS = 39


@pytest.fixture(scope="session")
def signatures(minilm):
    """Signatures of the parent and each derivation, computed once (each reads only windows)."""
    return {
        name: compute_signature(
            open_local_model(getattr(minilm, name), model_id=name), device="cpu"
        )
        for name in ("parent", "copy", "fine_tune", "task_head", "unrelated")
    }


def test_the_checkpoint_is_the_real_minilm(signatures):
    sig = signatures["parent"]
    assert len(sig.slots) == PARENT_SLOTS
    assert {s.tensor for s in sig.slots} >= {
        "embeddings.word_embeddings.weight",
        "encoder.layer.5.output.dense.weight",
        "pooler.dense.weight",
    }


def test_a_copy_is_identical(signatures):
    result = compare(signatures["parent"], signatures["copy"])
    assert result.verdict == "identical"
    assert result.slots_compared == PARENT_SLOTS
    assert result.overlap == result.identity == 1.0


def test_a_light_fine_tune_is_derived(signatures):
    result = compare(signatures["parent"], signatures["fine_tune"])
    assert result.verdict == "derived"
    assert result.slots_compared == PARENT_SLOTS
    assert result.overlap > 0.5 and result.log10_p < -100
    assert result.identity < 0.05  # every weight moved


def test_a_task_head_save_compares_with_its_parent(signatures):
    """`bert.` names, no pooler and an MLM head: every body matrix still meets its parent's."""
    task = signatures["task_head"]
    assert all(s.tensor.startswith(("bert.", "cls.")) for s in task.slots)
    result = compare(signatures["parent"], task)
    assert result.verdict == "derived"
    assert result.slots_compared == PARENT_SLOTS - 1  # all but the pooler
    assert result.overlap > 0.5 and result.log10_p < -100


def test_an_unrelated_init_of_the_same_config_is_unrelated(signatures):
    result = compare(signatures["parent"], signatures["unrelated"])
    assert result.slots_compared == PARENT_SLOTS  # same architecture: comparable ...
    assert result.verdict == "unrelated"  # ... and not alike
    assert result.p_value > 0.01
    assert result.overlap < 0.02 and result.identity == 0.0


def test_the_task_heads_unrelated_init_stays_unrelated(signatures):
    result = compare(signatures["task_head"], signatures["unrelated"])
    assert result.slots_compared == PARENT_SLOTS - 1
    assert result.verdict == "unrelated" and result.p_value > 0.01


def test_a_bert_large_task_save_keeps_its_parents_slots(minilm):
    """Over the slot budget (24 layers), an extra head and a missing pooler shift no pick."""
    real = [
        TensorInfo(i.name, i.dtype, tuple(i.shape), i.decodable)
        for i in open_local_model(minilm.parent).tensor_infos()
    ]
    layer = [i for i in real if ".layer.0." in i.name]
    edges = [i for i in real if not i.name.startswith("encoder.")]
    deep = [
        replace(i, name=i.name.replace(".layer.0.", f".layer.{n}."))
        for n in range(24)
        for i in layer
    ]
    parent = edges + deep
    task = [replace(i, name="bert." + i.name) for i in parent if not i.name.startswith("pooler.")]
    task += [
        TensorInfo("cls.predictions.transform.dense.weight", "F32", (384, 384), True),
        TensorInfo(
            "classifier.dense.weight", "F32", (384, 384), True
        ),  # sorts before `embeddings.`
    ]
    p = SignatureParams()
    budget = {"max_slots": p.max_slots, "window": p.window, "min_elements": p.min_elements}
    a, _ = plan_slots(parent, **budget)
    b, _ = plan_slots(task, **budget)
    assert len(a) == len(b) == p.max_slots
    shared = {s.key for s in a} & {s.key for s in b}
    assert len(shared) == p.max_slots  # the picks are spread over the layers alone


def test_a_sentence_transformers_folder_layout_is_the_same_model(minilm, signatures, tmp_path):
    # the older sentence-transformers layout: the Transformer module in `0_Transformer/`,
    # pooling config in `1_Pooling/`, `modules.json` at the root and no weights there
    import shutil

    root = tmp_path / "sentence-transformers" / "all-MiniLM-L6-v2"
    shutil.copytree(minilm.parent, root / "0_Transformer")
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (root / "modules.json").write_text(
        '[{"idx": 0, "name": "0", "path": "0_Transformer", '
        '"type": "sentence_transformers.models.Transformer"}]'
    )
    sig = compute_signature(open_local_model(root), device="cpu")
    assert sig.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert compare(signatures["parent"], sig).verdict == "identical"


def test_two_real_folders_claiming_one_id_are_refused_never_overwritten(minilm, tmp_path, capsys):
    import json
    import shutil

    from lineage.cli.main import main

    shutil.copytree(minilm.parent, tmp_path / "x" / "sentence-transformers" / "all-MiniLM-L6-v2")
    shutil.copytree(minilm.fine_tune, tmp_path / "y" / "sentence-transformers" / "all-MiniLM-L6-v2")
    shutil.copytree(minilm.parent, tmp_path / "mirror" / "all-MiniLM-L6-v2")
    db = str(tmp_path / "l.db")
    code = main(["--db", db, "add", *(str(tmp_path / d) for d in ("x", "y", "mirror")), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["new"] == ["mirror/all-MiniLM-L6-v2"]
    assert [f["model"] for f in out["failed"]] == ["sentence-transformers/all-MiniLM-L6-v2"]
