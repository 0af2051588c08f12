"""Tree decisions on real weights: copies of all-MiniLM-L6-v2 with dates, a full fine-tune that
leaves the pooler untouched, a vocabulary grown by 100 rows."""

from __future__ import annotations

import dataclasses

import pytest

from fingerprint.comparison import compare
from fingerprint.signature import compute_signature
from hub.local import open_local_model
from lineage.graph import build_graph

ORIGINAL = "sentence-transformers/all-MiniLM-L6-v2"
# (id, how, upload day, downloads): the re-uploads are later and more used than the original
PLAN = (
    (ORIGINAL, "original", "2021-08-30", 1000),
    ("mirror-a/all-MiniLM-L6-v2", "copy", "2025-03-01", 5000),
    ("mirror-b/all-MiniLM-L6-v2", "copy", "2025-09-01", 3000),
    ("u/minilm-ft", "fine_tune_no_pooler", "2025-10-01", 20),
    ("u/minilm-vocab", "vocab_plus_100", "2025-11-01", 20),
)


def _derive(how: str, tensors: dict, seed: int) -> dict:
    import torch

    gen = torch.Generator().manual_seed(seed)
    if how == "fine_tune_no_pooler":  # mean pooling never reaches the pooler: it stays as it was
        return {
            n: t
            if n.startswith("pooler.") or not t.is_floating_point()
            else t + 0.02 * float(t.std()) * torch.randn(t.shape, generator=gen, dtype=t.dtype)
            for n, t in tensors.items()
        }
    if how == "vocab_plus_100":  # new tokens appended, nothing trained yet
        e = tensors["embeddings.word_embeddings.weight"]
        grown = torch.cat([e, 0.02 * torch.randn(100, e.shape[1], generator=gen, dtype=e.dtype)])
        return {**tensors, "embeddings.word_embeddings.weight": grown}
    return tensors


@pytest.fixture(scope="module")
def world(minilm, tmp_path_factory):
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("decisions")
    tensors = load_file(minilm.parent / "model.safetensors")
    config = (minilm.parent / "config.json").read_text()
    records, sigs = {}, {}
    for i, (mid, how, day, downloads) in enumerate(PLAN):
        folder = root / mid
        folder.mkdir(parents=True)
        t = _derive(how, tensors, seed=i)
        save_file({k: v.contiguous() for k, v in t.items()}, folder / "model.safetensors")
        (folder / "config.json").write_text(config)
        model = open_local_model(folder, model_id=mid)
        records[mid] = dataclasses.replace(
            model.record, created_at=f"{day}T00:00:00Z", downloads=downloads, declared_bases=()
        )
        sigs[mid] = compute_signature(model, device="cpu")
    return records, sigs, build_graph(records, sigs, device="cpu")


def test_a_grown_vocabulary_is_no_copy_of_the_real_checkpoint(world):
    _, sigs, graph = world
    pair = compare(sigs[ORIGINAL], sigs["u/minilm-vocab"])
    assert pair.verdict == "derived"
    assert "vocabulary extended, 30522 -> 30622 rows" in " ".join(pair.warnings)
    node = {n.id: n for n in graph.nodes}["u/minilm-vocab"]
    assert (node.parent, node.relation) == (ORIGINAL, "finetune")
    assert "reupload" not in node.anomalies


def test_real_copies_hang_off_the_earliest_upload(world):
    *_, graph = world
    parent = {n.id: n.parent for n in graph.nodes}
    assert parent == {mid: (None if mid == ORIGINAL else ORIGINAL) for mid, *_ in PLAN}


def test_a_real_full_fine_tune_with_an_untouched_pooler_is_no_adapter(world):
    *_, graph = world
    node = {n.id: n for n in graph.nodes}["u/minilm-ft"]
    assert node.relation == "finetune"
