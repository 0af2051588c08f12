from fingerprint.plan import normalize_name, plan_slots, role_of, window_rows
from fingerprint.protocol import TensorInfo


def _llama(layers: int, dtype: str = "BF16", vocab: int = 32000) -> list[TensorInfo]:
    infos = [TensorInfo("model.embed_tokens.weight", dtype, (vocab, 256))]
    for i in range(layers):
        p = f"model.layers.{i}."
        infos += [
            TensorInfo(p + "self_attn.q_proj.weight", dtype, (256, 256)),
            TensorInfo(p + "self_attn.k_proj.weight", dtype, (256, 256)),
            TensorInfo(p + "mlp.up_proj.weight", dtype, (1024, 256)),
            TensorInfo(p + "mlp.down_proj.weight", dtype, (256, 1024)),
            TensorInfo(p + "input_layernorm.weight", dtype, (256,)),
        ]
    infos.append(TensorInfo("lm_head.weight", dtype, (vocab, 256)))
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
    wrapped = [TensorInfo("module." + i.name, "BF16", i.shape) for i in _llama(12, "F32")]
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
        [TensorInfo("w", "F32", (5000, 300)), TensorInfo("wide", "F16", (2, 1 << 20))],
        max_slots=8,
        window=1 << 16,
        min_elements=4096,
    )
    by_name = {s.tensor: s for s in slots}
    w = by_name["w"]
    assert w.rows == 128 and w.n == 128 * 300 and (w.start, w.end) == (0, 128 * 300 * 4)
    wide = by_name["wide"]
    assert wide.n == 1 << 16 and wide.end == (1 << 16) * 2


def test_skips_non_float_small_and_1d():
    infos = [
        TensorInfo("q.qweight", "I32", (256, 256)),
        TensorInfo("tiny", "F32", (10, 10)),
        TensorInfo("bias", "F32", (100_000,)),
    ]
    slots, skipped = plan_slots(infos, max_slots=8, window=1 << 16, min_elements=4096)
    assert slots == ()
    assert [name for name, _ in skipped] == ["bias", "q.qweight", "tiny"]
