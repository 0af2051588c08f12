"""Tree decisions on real weights: copies of all-MiniLM-L6-v2 with dates, a full fine-tune that
leaves the pooler untouched, a vocabulary grown by 100 rows, layers dropped, and two students
that took only the embeddings."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from fingerprint.comparison import compare
from fingerprint.signature import compute_signature
from hub.local import open_local_model
from hub.records import DeclaredBase
from lineage.graph import build_graph
from tests.realweights.conftest import _bert_init

ORIGINAL = "sentence-transformers/all-MiniLM-L6-v2"
# (id, how, upload day, downloads): the re-uploads are later and more used than the original
PLAN = (
    (ORIGINAL, "original", "2021-08-30", 1000),
    ("mirror-a/all-MiniLM-L6-v2", "copy", "2025-03-01", 5000),
    ("mirror-b/all-MiniLM-L6-v2", "copy", "2025-09-01", 3000),
    ("u/minilm-ft", "fine_tune_no_pooler", "2025-10-01", 20),
    ("u/minilm-vocab", "vocab_plus_100", "2025-11-01", 20),
    ("u/minilm-L3-pruned", "drop_odd_layers", "2025-11-02", 20),
    ("s/student-L3", "embeddings_only_3_layers", "2025-11-03", 500),
    ("t/student-L6", "embeddings_only_6_layers", "2025-11-04", 20),
)
# the student's card names the teacher whose embeddings it took
DECLARED = {"s/student-L3": ORIGINAL}
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.")


def _nudge(t, gen):
    import torch

    return t + 0.02 * float(t.std()) * torch.randn(t.shape, generator=gen, dtype=t.dtype)


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
    if how == "drop_odd_layers":  # keep layers 0, 2, 4 as 0, 1, 2, then a light fine-tune
        out = {}
        for n, t in tensors.items():
            m = _LAYER.match(n)
            if m and int(m.group(1)) % 2:
                continue
            if m:
                n = f"encoder.layer.{int(m.group(1)) // 2}.{n[m.end() :]}"
            out[n] = _nudge(t, gen) if t.is_floating_point() else t
        return out
    if how.startswith("embeddings_only_"):  # a student: the teacher's embeddings, fresh layers
        layers = int(how.split("_")[2])
        out = {
            n: _nudge(t, gen)
            for n, t in tensors.items()
            if n.startswith("embeddings.") and t.is_floating_point()
        }
        out.update({n: t for n, t in tensors.items() if not t.is_floating_point()})
        for n, t in tensors.items():
            m = _LAYER.match(n)
            if (m and int(m.group(1)) < layers) or n.startswith("pooler."):
                out[n] = _bert_init(n, t, gen)
        return out
    if how == "vocab_plus_100":  # new tokens appended, nothing trained yet
        e = tensors["embeddings.word_embeddings.weight"]
        grown = torch.cat([e, 0.02 * torch.randn(100, e.shape[1], generator=gen, dtype=e.dtype)])
        return {**tensors, "embeddings.word_embeddings.weight": grown}
    return tensors


@pytest.fixture(scope="module")
def folders(minilm, tmp_path_factory):
    """model id -> its folder (`<root>/<org>/<name>`), one per PLAN row."""
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("decisions")
    tensors = load_file(minilm.parent / "model.safetensors")
    config = json.loads((minilm.parent / "config.json").read_text())
    out = {}
    for i, (mid, how, *_) in enumerate(PLAN):
        folder = out[mid] = root / mid
        folder.mkdir(parents=True)
        t = _derive(how, tensors, seed=i)
        save_file({k: v.contiguous() for k, v in t.items()}, folder / "model.safetensors")
        layers = len({m.group(1) for m in map(_LAYER.match, t) if m})
        (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": layers}))
    return out


@pytest.fixture(scope="module")
def world(folders):
    records, sigs = {}, {}
    for mid, _, day, downloads in PLAN:
        model = open_local_model(folders[mid], model_id=mid)
        records[mid] = dataclasses.replace(
            model.record,
            created_at=f"{day}T00:00:00Z",
            downloads=downloads,
            declared_bases=tuple(DeclaredBase(d) for d in DECLARED.get(mid, "").split() if d),
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
    edge = next(e for e in graph.edges if e.child == "u/minilm-vocab")
    back = compare(sigs["u/minilm-vocab"], sigs[ORIGINAL])  # read from child to parent ...
    assert "vocabulary shrunk" in " ".join(back.warnings)
    # ... and noted on the edge from parent to child
    assert edge.notes == (
        "embeddings.word_embeddings.weight: vocabulary extended, 30522 -> 30622 rows",
    )


def test_real_copies_hang_off_the_earliest_upload(world):
    *_, graph = world
    parent = {n.id: n.parent for n in graph.nodes}
    for mid, how, *_ in PLAN:
        if how == "copy":
            assert parent[mid] == ORIGINAL


def test_each_derivative_hangs_off_the_original_and_students_off_nothing(world):
    *_, graph = world
    parent = {n.id: n.parent for n in graph.nodes}
    expected = {
        mid: None if mid == ORIGINAL or how.startswith("embeddings_only") else ORIGINAL
        for mid, how, *_ in PLAN
    }
    assert parent == expected


def test_a_pruned_real_model_meets_its_parent_layer_by_layer(world):
    _, sigs, graph = world
    pair = compare(sigs[ORIGINAL], sigs["u/minilm-L3-pruned"])
    assert pair.verdict == "derived"
    assert pair.layer_map == ((0, 0), (2, 1), (4, 2))
    assert pair.overlap_min > 0.3  # every compared slot is its own source's, none at chance
    back = compare(sigs["u/minilm-L3-pruned"], sigs[ORIGINAL])
    assert back.layer_map == ((0, 0), (1, 2), (2, 4))
    edge = next(e for e in graph.edges if e.child == "u/minilm-L3-pruned")
    assert any("layers matched by content" in n for n in edge.notes)


def test_models_sharing_only_their_embeddings_are_cousins(world):
    _, sigs, graph = world
    for a, b in (
        ("s/student-L3", "t/student-L6"),
        (ORIGINAL, "s/student-L3"),
        (ORIGINAL, "t/student-L6"),
    ):
        pair = compare(sigs[a], sigs[b])
        assert pair.verdict == "cousin", (a, b, pair.warnings)
        assert pair.p_value < 1e-100  # the shared embeddings alone are overwhelming
    cousins = {(c.a, c.b): c for c in graph.cousins}
    c = cousins["s/student-L3", "t/student-L6"]
    assert "embeddings.word_embeddings.weight" in c.shared
    assert not any(e.child.endswith("student-L3") or e.child.endswith("L6") for e in graph.edges)
    assert graph.to_json()["cousins"]


def test_a_student_declaring_its_teacher_is_no_mismatch(world):
    *_, graph = world
    assert not [a for a in graph.anomalies if a.model == "s/student-L3"]


def test_a_real_full_fine_tune_with_an_untouched_pooler_is_no_adapter(world):
    *_, graph = world
    node = {n.id: n for n in graph.nodes}["u/minilm-ft"]
    assert node.relation == "finetune"


def test_audit_shows_the_layer_map_and_the_cousins(folders, tmp_path, capsys):
    from lineage.cli.main import main

    db = str(tmp_path / "l.db")
    ids = (ORIGINAL, "u/minilm-L3-pruned", "s/student-L3")
    assert main(["--db", db, "add", *(str(folders[m]) for m in ids)]) == 0
    assert main(["--db", db, "fingerprint"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "audit", "u/minilm-L3-pruned"]) == 0
    out = capsys.readouterr().out
    assert "layer map (this -> other): 0->0, 1->2, 2->4" in out
    # no dates nor downloads here: the edge may point either way, its note reads along it
    assert (
        f"from {ORIGINAL}: layers matched by content (A -> B): 0->0, 2->1, 4->2" in out
        or "children        sentence-transformers/all-MiniLM-L6-v2" in out
    )
    assert main(["--db", db, "audit", ORIGINAL]) == 0
    out = capsys.readouterr().out
    assert "layer map (this -> other): 0->0, 2->1, 4->2" in out
    assert main(["--db", db, "audit", "s/student-L3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["recovered_parents"] == []
    assert {c["model"]: c["verdict"] for c in doc["closest"]}[ORIGINAL] == "cousin"
