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
