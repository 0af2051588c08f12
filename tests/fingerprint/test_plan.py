import numpy as np
import pytest

from fingerprint.plan import normalize_name, plan_slots, role_of, window_rows
from fingerprint.protocol import TensorInfo

# What a source says it can decode: fingerprint has no dtype table of its own.
_FLOATS = {"F64", "F32", "F16", "BF16"}


def info(name: str, dtype: str, shape: tuple[int, ...]) -> TensorInfo:
    """A tensor as a source that decodes the usual float dtypes lists it."""
    return TensorInfo(name, dtype, shape, decodable=dtype in _FLOATS)


def _llama(layers: int, dtype: str = "BF16", vocab: int = 32000) -> list[TensorInfo]:
    infos = [info("model.embed_tokens.weight", dtype, (vocab, 256))]
    for i in range(layers):
        p = f"model.layers.{i}."
        infos += [
            info(p + "self_attn.q_proj.weight", dtype, (256, 256)),
            info(p + "self_attn.k_proj.weight", dtype, (256, 256)),
            info(p + "mlp.up_proj.weight", dtype, (1024, 256)),
            info(p + "mlp.down_proj.weight", dtype, (256, 1024)),
            info(p + "input_layernorm.weight", dtype, (256,)),
        ]
    infos.append(info("lm_head.weight", dtype, (vocab, 256)))
    return infos


def test_normalize_strips_wrappers_repeatedly():
    assert (
        normalize_name("module.model.layers.0.mlp.up_proj.weight") == "layers.0.mlp.up_proj.weight"
    )
    assert normalize_name("base_model.model.model.layers.1.x") == "layers.1.x"
    assert normalize_name("transformer.h.0.attn.c_attn.weight") == "h.0.attn.c_attn.weight"
    assert normalize_name("lm_head.weight") == "lm_head.weight"


def test_roles():
    assert role_of("embed_tokens.weight") == "embedding"
    assert role_of("lm_head.weight") == "head"
    assert role_of("layers.3.self_attn.q_proj.weight") == "attention"
    assert role_of("layers.3.mlp.down_proj.weight") == "mlp"


def test_plan_is_capped_spread_over_depth_and_keeps_embedding_and_head():
    slots, skipped = plan_slots(_llama(40), max_slots=32, window=1 << 18, min_elements=4096)
    assert len(slots) == 32
    names = [s.normalized for s in slots]
    assert "embed_tokens.weight" in names and "lm_head.weight" in names
    layers = {int(n.split(".")[1]) for n in names if n.startswith("layers.")}
    assert min(layers) <= 1 and max(layers) >= 38  # spread across depth
    assert {s.role for s in slots} >= {"embedding", "head", "attention", "mlp"}
    assert any("1-D" in reason for _, reason in skipped)


def test_plan_ignores_dtype_and_wrappers():
    a, _ = plan_slots(_llama(12, "F32"), max_slots=20, window=1 << 16, min_elements=4096)
    wrapped = [info("module." + i.name, "BF16", i.shape) for i in _llama(12, "F32")]
    b, _ = plan_slots(wrapped, max_slots=20, window=1 << 16, min_elements=4096)
    assert [s.key for s in a] == [s.key for s in b]


def test_window_survives_vocabulary_extension():
    assert window_rows(32000, 4096, 1 << 20) == window_rows(32016, 4096, 1 << 20) == 256
    assert window_rows(1024, 128, 1 << 18) == window_rows(1032, 128, 1 << 18) == 1024
    a, _ = plan_slots(_llama(2, vocab=1024), max_slots=64, window=1 << 18, min_elements=4096)
    b, _ = plan_slots(_llama(2, vocab=1032), max_slots=64, window=1 << 18, min_elements=4096)
    assert [s.key for s in a] == [s.key for s in b]


def test_window_is_one_contiguous_prefix_within_budget():
    slots, _ = plan_slots(
        [info("w", "F32", (5000, 300)), info("wide", "F16", (2, 1 << 20))],
        max_slots=8,
        window=1 << 16,
        min_elements=4096,
    )
    by_name = {s.tensor: s for s in slots}
    w = by_name["w"]
    assert w.rows == 128 and w.n == 128 * 300
    wide = by_name["wide"]
    assert wide.n == 1 << 16 and wide.rows == 1


def test_skips_non_float_small_and_1d():
    infos = [
        info("q.qweight", "I32", (256, 256)),
        info("tiny", "F32", (10, 10)),
        info("bias", "F32", (100_000,)),
    ]
    slots, skipped = plan_slots(infos, max_slots=8, window=1 << 16, min_elements=4096)
    assert slots == ()
    assert [name for name, _ in skipped] == ["bias", "q.qweight", "tiny"]
    assert dict(skipped)["q.qweight"] == "dtype I32 is not floating point"


def test_the_source_decides_what_is_decodable():
    # the same F32 tensor, once decodable and once not: only the source's word counts
    infos = [
        TensorInfo("a", "F32", (128, 128), decodable=True),
        TensorInfo("b", "F32", (128, 128), False),
    ]
    slots, skipped = plan_slots(infos, max_slots=8, window=1 << 16, min_elements=4096)
    assert [s.tensor for s in slots] == ["a"]
    assert skipped == (("b", "dtype F32 is not floating point"),)


def test_normalize_strips_hf_task_model_prefixes():
    # each: what a task model saves -> what its base model saves
    cases = {
        "bert.encoder.layer.0.attention.self.query.weight": "encoder.layer.0.attention.self.query.weight",
        "roberta.embeddings.word_embeddings.weight": "embeddings.word_embeddings.weight",
        "distilbert.transformer.layer.0.ffn.lin1.weight": "layer.0.ffn.lin1.weight",
        "deberta.encoder.layer.0.attention.self.query_proj.weight": "encoder.layer.0.attention.self.query_proj.weight",
        "electra.encoder.layer.0.output.dense.weight": "encoder.layer.0.output.dense.weight",
        "albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight": "encoder.albert_layer_groups.0.albert_layers.0.ffn.weight",
        "mpnet.encoder.layer.0.attention.attn.q.weight": "encoder.layer.0.attention.attn.q.weight",
        "gpt_neox.layers.0.mlp.dense_h_to_4h.weight": "layers.0.mlp.dense_h_to_4h.weight",
        "model.decoder.layers.0.fc1.weight": "decoder.layers.0.fc1.weight",  # OPT: as OPTModel
        "0.auto_model.encoder.layer.0.output.dense.weight": "encoder.layer.0.output.dense.weight",
    }
    for saved, base in cases.items():
        assert normalize_name(saved) == base
    # the layer names themselves stay: T5/BART hold both an encoder and a decoder
    assert normalize_name("encoder.block.0.layer.0.SelfAttention.q.weight").startswith("encoder.")
    assert normalize_name("decoder.layers.0.fc1.weight") == "decoder.layers.0.fc1.weight"
    assert normalize_name("bert_pooler.weight") == "bert_pooler.weight"
    assert normalize_name("cls.predictions.transform.dense.weight").startswith("cls.")


def test_names_two_tensors_would_share_stay_raw():
    infos = [
        info("pooler.dense.weight", "F32", (64, 64)),
        info("bert.pooler.dense.weight", "F32", (64, 64)),
    ]
    infos.append(info("bert.encoder.layer.0.output.dense.weight", "F32", (64, 64)))
    slots, _ = plan_slots(infos, max_slots=8, window=1 << 16, min_elements=4096)
    assert sorted(s.normalized for s in slots) == [
        "bert.pooler.dense.weight",
        "encoder.layer.0.output.dense.weight",
        "pooler.dense.weight",
    ]
    assert len({s.key for s in slots}) == 3


def test_a_tensor_outside_the_layers_shifts_no_pick():
    base = _llama(40)
    extra = [
        *base,
        info("score.weight", "BF16", (64, 256)),
        info("a_probe.weight", "BF16", (64, 64)),
    ]
    a, _ = plan_slots(base, max_slots=32, window=1 << 18, min_elements=4096)
    b, _ = plan_slots(extra, max_slots=32, window=1 << 18, min_elements=4096)
    assert [s.key for s in a] == [s.key for s in b]


def test_embeddings_come_before_a_head_that_sorts_first():
    layers = [
        info(f"encoder.layer.{i}.w{j}.weight", "F32", (64, 64)) for i in range(12) for j in range(4)
    ]
    embeddings = [info("embeddings.position_embeddings.weight", "F32", (512, 64))]
    embeddings.append(info("embeddings.word_embeddings.weight", "F32", (1000, 64)))
    head = [info("classifier.dense.weight", "F32", (64, 64))]
    a, _ = plan_slots(embeddings + layers, max_slots=16, window=1 << 16, min_elements=4096)
    b, _ = plan_slots(head + embeddings + layers, max_slots=16, window=1 << 16, min_elements=4096)
    assert [s.key for s in a] == [s.key for s in b]
    assert {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"} <= {
        s.normalized for s in b
    }


def test_room_left_after_the_layers_goes_to_the_other_tensors():
    layers = [info(f"h.{i}.mlp.weight", "F32", (64, 64)) for i in range(6)]
    others = [info(f"adapter_{c}.weight", "F32", (64, 64)) for c in "abcd"]
    embed = [info("wte.weight", "F32", (1000, 64))]
    slots, skipped = plan_slots(
        embed + layers + others, max_slots=9, window=1 << 16, min_elements=4096
    )
    assert [s.normalized for s in slots] == [
        "adapter_a.weight",
        "adapter_b.weight",
        *[f"h.{i}.mlp.weight" for i in range(6)],
        "wte.weight",
    ]
    assert [name for name, _ in skipped] == ["adapter_c.weight", "adapter_d.weight"]


def test_a_name_listed_twice_is_planned_once():
    # a source outside hub/ may list a tensor twice; hub's sources refuse such files
    names = ["embed_tokens.weight", "tok_embeddings.weight", "tok_embeddings.weight"]
    names += ["layers.0.mlp.weight", "zzz.weight"]
    infos = [TensorInfo(n, "F32", (64, 64), True) for n in names]
    slots, _ = plan_slots(infos, max_slots=4, window=1 << 12, min_elements=16)
    tensors = [s.tensor for s in slots]
    assert len(tensors) == len(set(tensors)) == 4


def test_a_plan_kept_for_an_index_is_never_given_to_another():
    # plans are kept per index (fine-tunes of one base share theirs); anything a plan reads
    # (names, dtypes, shapes, decodable) or a parameter that differs must plan anew
    def plan(infos, **kw):
        params = {"max_slots": 8, "window": 4096, "min_elements": 4096, **kw}
        return plan_slots(infos, **params)

    base = _llama(4)
    assert plan(base) == plan(list(base))
    as_lists = [TensorInfo(i.name, i.dtype, list(i.shape), i.decodable) for i in base]
    assert plan(as_lists) == plan(base)  # a source may list shapes as lists
    as_numpy = [TensorInfo(i.name, i.dtype, np.array(i.shape), i.decodable) for i in base]
    assert plan(as_numpy) == plan(base)  # or as numpy integers: planned as ints
    assert all(type(d) is int for s in plan(as_numpy)[0] for d in s.shape)
    with pytest.raises(TypeError):  # a dimension that is no integer is the source's bug
        plan([TensorInfo(i.name, i.dtype, (4.0, 4.0), i.decodable) for i in base])
    assert {s.dtype for s in plan(_llama(4, dtype="F16"))[0]} == {"F16"}
    grown = plan(_llama(4, vocab=70000))[0]
    assert [s.shape for s in grown if "embed" in s.tensor] == [(70000, 256)]
    renamed = [TensorInfo("x." + i.name, i.dtype, i.shape, i.decodable) for i in base]
    assert all(s.tensor.startswith("x.") for s in plan(renamed)[0])
    skipped = [TensorInfo(i.name, i.dtype, i.shape, False) for i in base]
    assert plan(skipped)[0] == ()
    assert len(plan(base, max_slots=3)[0]) == 3 and len(plan(base)[0]) == 8
    assert plan(base, window=8192) != plan(base)
