"""Decisions that follow the evidence, on tiny real model folders: shapes, copies with dates,
fine-tunes that leave tensors outside the blocks untouched, quantized models on both sides."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch

from fingerprint.comparison import compare
from fingerprint.signature import compute_signature
from hub.local import open_local_model
from lineage.graph import GraphParams, build_graph, orientation
from tests.factory import llama_tensors, noisy, write_model

Tensors = dict[str, torch.Tensor]


def _zoo(root: Path, models: dict[str, tuple[Tensors, str, int, str | None]]):
    """Write each model (tensors, upload day, downloads, card) and sign it: (records, sigs)."""
    records, sigs = {}, {}
    for mid, (tensors, day, downloads, card) in models.items():
        model = open_local_model(write_model(root / mid, tensors, card=card), model_id=mid)
        records[mid] = dataclasses.replace(
            model.record, created_at=f"{day}T00:00:00Z", downloads=downloads
        )
        sigs[mid] = compute_signature(model, device="cpu")
    return records, sigs


def _card(base: str, relation: str | None = None) -> str:
    rel = f"base_model_relation: {relation}\n" if relation else ""
    return f"---\nbase_model: {base}\n{rel}---\n"


def _nodes(graph):
    return {n.id: n for n in graph.nodes}


# --- shapes: appended rows are never identical --------------------------------------------


def _grow_vocab(t: Tensors, rows: int) -> Tensors:
    g = torch.Generator().manual_seed(99)
    out = dict(t)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        v = t[name]
        out[name] = torch.cat([v, 0.02 * torch.randn(rows, v.shape[1], generator=g)])
    return out


def test_a_vocabulary_extension_is_a_finetune_not_a_copy(tmp_path):
    base = llama_tensors(1, layers=2)
    records, sigs = _zoo(
        tmp_path,
        {
            "org/base": (base, "2024-01-01", 1000, None),
            "u/copy": (base, "2024-02-01", 5, None),
            "u/ext": (_grow_vocab(base, 100), "2024-03-01", 5, _card("org/base")),
        },
    )
    # the windows (first rows) are equal; the shapes are not
    pair = compare(sigs["org/base"], sigs["u/ext"])
    assert pair.verdict == "derived"
    assert any("vocabulary extended, 1024 -> 1124 rows" in w for w in pair.warnings)
    assert compare(sigs["org/base"], sigs["u/copy"]).verdict == "identical"
    graph = build_graph(records, sigs, device="cpu")
    nodes = _nodes(graph)
    assert (nodes["u/ext"].parent, nodes["u/ext"].relation) == ("org/base", "finetune")
    assert (nodes["u/copy"].parent, nodes["u/copy"].relation) == ("org/base", "copy")
    found = {(a.model, a.kind) for a in graph.anomalies}
    assert ("u/copy", "reupload") in found
    assert not [kind for model, kind in found if model == "u/ext"]


def test_a_tensor_on_one_side_only_rules_out_identical(tmp_path):
    base = llama_tensors(3, layers=1)
    head = {**base, "score.weight": 0.02 * torch.randn(64, 128)}  # a task head added
    _, sigs = _zoo(
        tmp_path,
        {"org/base": (base, "2024-01-01", 10, None), "u/cls": (head, "2024-02-01", 1, None)},
    )
    pair = compare(sigs["org/base"], sigs["u/cls"])
    assert pair.verdict == "derived"
    assert "1 slots only in B (a head added or removed, layers dropped)" in pair.warnings


# --- ties among copies: the earliest upload is the parent ----------------------------------


def test_among_identical_copies_the_earliest_upload_is_the_parent(tmp_path):
    original = llama_tensors(2, layers=2)
    records, sigs = _zoo(
        tmp_path,
        {
            "org/original": (original, "2021-06-01", 1000, None),
            # later re-uploads, more used than the original: closeness ties, popularity would pick
            "a/reupload": (original, "2024-01-01", 5000, None),
            "b/reupload": (original, "2024-06-01", 3000, None),
            # derivatives uploaded after the re-uploads: upload time orients every copy first
            "c/ft": (noisy(original, 0.2, seed=1), "2025-01-01", 50, None),
            "d/ft": (noisy(original, 0.3, seed=2), "2025-06-01", 20, None),
            # ... but a card that names one of the copies keeps it
            "e/ft": (noisy(original, 0.2, seed=3), "2025-09-01", 20, _card("b/reupload")),
        },
    )
    nodes = _nodes(build_graph(records, sigs, device="cpu"))
    parent = {m: n.parent for m, n in nodes.items()}
    assert parent == {
        "org/original": None,
        "a/reupload": "org/original",
        "b/reupload": "org/original",
        "c/ft": "org/original",
        "d/ft": "org/original",
        "e/ft": "b/reupload",
    }
    assert {n.family for n in nodes.values()} == {"org/original"}


# --- relations: untouched tensors outside the blocks do not make an adapter ----------------


def _bert_tensors(seed: int, layers: int = 2, hidden: int = 128) -> Tensors:
    """A small BERT-shaped encoder (sentence-transformers layout: no task head, a pooler)."""
    g = torch.Generator().manual_seed(seed)

    def w(*shape: int) -> torch.Tensor:
        x = torch.randn(*shape, generator=g)
        return x * (1 + 0.5 * torch.randn(*shape, generator=g).abs()) * 0.02

    t = {
        "embeddings.word_embeddings.weight": w(1024, hidden),
        "embeddings.position_embeddings.weight": w(256, hidden),
        "pooler.dense.weight": w(hidden, hidden),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value"):
            t[p + name + ".weight"] = w(hidden, hidden)
        t[p + "attention.output.dense.weight"] = w(hidden, hidden)
        t[p + "intermediate.dense.weight"] = w(4 * hidden, hidden)
        t[p + "output.dense.weight"] = w(hidden, 4 * hidden)
    return t


def _move(t: Tensors, which: Callable[[str], bool], seed: int) -> Tensors:
    """The tensors `which` names moved by noise (a fine-tune of them), the rest untouched."""
    moved = noisy(t, 0.2, seed=seed)
    return {n: moved[n] if which(n) else v for n, v in t.items()}


def test_untouched_tensors_outside_the_blocks_do_not_make_an_adapter(tmp_path):
    bert, llama = _bert_tensors(4), llama_tensors(5, layers=2)
    st, lm, qv = "st/encoder", "org/llama", ("q_proj.weight", "v_proj.weight")
    records, sigs = _zoo(
        tmp_path,
        {
            "st/encoder": (bert, "2021-01-01", 9000, None),
            # a full fine-tune: mean pooling never reaches the pooler, so it stays as it was
            "u/st-ft": (_move(bert, lambda n: "pooler" not in n, 1), "2022-01-01", 50, _card(st)),
            "org/llama": (llama, "2024-01-01", 9000, None),
            # a full fine-tune with a frozen (untied) head
            "u/llama-ft": (
                _move(llama, lambda n: "lm_head" not in n, 2),
                "2024-02-01",
                50,
                _card(lm),
            ),
            # a merged LoRA on q and v: the other modules untouched in every layer
            "u/llama-qv": (_move(llama, lambda n: n.endswith(qv), 3), "2024-03-01", 50, _card(lm)),
        },
    )
    nodes = _nodes(build_graph(records, sigs, device="cpu"))
    got = {m: (nodes[m].parent, nodes[m].relation) for m in ("u/st-ft", "u/llama-ft", "u/llama-qv")}
    assert got == {
        "u/st-ft": ("st/encoder", "finetune"),
        "u/llama-ft": ("org/llama", "finetune"),
        "u/llama-qv": ("org/llama", "adapter"),
    }


# --- metadata never contradicts the weights: quantized-is-a-leaf needs a float other -------


def _four_bit(t: Tensors) -> Tensors:
    """Each row of every matrix but the embedding rounded onto 15 levels (a 4-bit grid)."""
    out = {}
    for n, v in t.items():
        if v.ndim == 2 and "embed" not in n:
            scale = v.abs().amax(dim=1, keepdim=True) / 7
            v = (v / scale).round() * scale
        out[n] = v
    return out


def test_quantized_metadata_does_not_orient_two_models_on_a_grid(tmp_path):
    base = llama_tensors(6, layers=2)
    quant = _four_bit(base)
    records, sigs = _zoo(
        tmp_path,
        {
            "org/base": (base, "2024-01-01", 5000, None),
            "q/base-q": (quant, "2024-02-01", 500, _card("org/base", "quantized")),
            # tuned on top of the 4-bit model and saved on its grid; its card says nothing
            "u/tuned": (_four_bit(noisy(quant, 0.05, seed=1)), "2024-03-01", 100, None),
        },
    )
    params = GraphParams()
    # both on a grid: only the upload time speaks, the quantized model first
    assert orientation("q/base-q", "u/tuned", records, sigs, params) > 0
    # a grid on one side still makes the quantized model the leaf
    assert orientation("org/base", "q/base-q", records, sigs, params) > 0
    nodes = _nodes(build_graph(records, sigs, params=params, device="cpu"))
    assert nodes["q/base-q"].parent == "org/base"
    assert nodes["u/tuned"].parent == "q/base-q"


def _int8(t: Tensors) -> Tensors:
    """Each row of every matrix but the embedding rounded onto 255 levels (an 8-bit grid)."""
    out = {}
    for n, v in t.items():
        if v.ndim == 2 and "embed" not in n:
            scale = v.abs().amax(dim=1, keepdim=True) / 127
            v = (v / scale).round() * scale
        out[n] = v
    return out


def test_two_quantizations_of_one_source_are_siblings_not_a_chain(tmp_path):
    base = llama_tensors(7, layers=2)
    q8 = _int8(noisy(base, 0.05, seed=3))  # an 8-bit upload of a lightly tuned base
    records, sigs = _zoo(
        tmp_path,
        {
            # equal downloads: no confidence gap keeps the 4-bit model off the 8-bit one
            "org/base": (base, "2024-01-01", 1000, None),
            "q/base-int8": (q8, "2024-02-01", 1000, _card("org/base", "quantized")),
            # made from the 8-bit upload (so nearer to it than to the source); its card says
            # nothing, its name says 4bit
            "z/base-4bit": (_four_bit(q8), "2024-03-01", 100, None),
        },
    )
    nodes = _nodes(build_graph(records, sigs, params=GraphParams(), device="cpu"))
    assert nodes["q/base-int8"].parent == "org/base"
    assert nodes["z/base-4bit"].parent == "org/base"
    assert nodes["z/base-4bit"].relation == "quantized"
    assert not nodes["q/base-int8"].anomalies
