import numpy as np
import pytest
import torch

from fingerprint import kernels
from fingerprint.device import resolve_device
from fingerprint.errors import DeviceUnavailableError


def _reference_bottom_k(values: np.ndarray, k: int) -> np.ndarray:
    # stable sort by value, ties by position: what the composite key must reproduce
    order = np.lexsort((np.arange(values.size), values))
    return np.sort(order[:k]).astype(np.uint32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_bottom_k_matches_stable_sort(dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50_000, generator=g).to(dtype).float()
    got = kernels.bottom_k_positions(x, 300)
    want = _reference_bottom_k(x.numpy(), 300)
    assert np.array_equal(got, want)


def test_bottom_k_under_heavy_ties_is_lowest_positions():
    # int8-valued weights: hundreds of exact ties at the minimum
    g = torch.Generator().manual_seed(2)
    x = torch.randint(-3, 4, (20_000,), generator=g).float()
    got = kernels.bottom_k_positions(x, 256)
    minimum_positions = np.nonzero(x.numpy() == -3)[0][:256]
    assert np.array_equal(got, minimum_positions.astype(np.uint32))


def test_order_keys_preserve_float_order_including_signs_and_nan():
    x = torch.tensor([float("nan"), -float("inf"), -2.5, -0.0, 0.0, 1e-38, 3.0, float("inf")])
    keys = kernels.order_keys(x).tolist()
    # NaN is treated as +inf: it ranks last with +inf
    assert keys[1] < keys[2] < keys[3] < keys[4] < keys[5] < keys[6] < keys[7]
    assert keys[0] == keys[7]


def test_identity_minhash_sees_exact_equality_only():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(100_000, generator=g)
    same = kernels.identity_minhash(x.clone(), 256, seed=7)
    assert np.array_equal(kernels.identity_minhash(x, 256, seed=7), same)
    nudged = x.clone()
    nudged[::2] += 1e-3  # half the weights changed
    from fingerprint.comparison import identity_jaccard

    j = identity_jaccard(same, kernels.identity_minhash(nudged, 256, seed=7), 256)
    # Jaccard of two sets sharing half their elements: 0.5 / 1.5 = 1/3
    assert 0.2 < j < 0.47
    other_seed = kernels.identity_minhash(x, 256, seed=8)
    assert not np.array_equal(other_seed, same)


def test_to_device_keeps_the_decoded_values_bit_for_bit():
    # decoding belongs to the source (hub.decode); the kernels take its float32 values as they are
    values = np.frombuffer(np.array([1.5, -0.0, np.inf, 3e-45], np.float32).tobytes(), np.float32)
    assert not values.flags.writeable  # a read-only buffer, as np.frombuffer gives
    x = kernels.to_device(values, "cpu")
    assert x.dtype == torch.float32
    assert x.view(torch.int32).tolist() == values.view(np.int32).tolist()


def test_device_choice():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="--device auto"):
            resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_gpu_give_identical_kernels():
    g = torch.Generator().manual_seed(4)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(300_000, generator=g).to(dtype).float()
        assert np.array_equal(
            kernels.bottom_k_positions(x, 512), kernels.bottom_k_positions(x.cuda(), 512)
        )
        assert np.array_equal(
            kernels.identity_minhash(x, 256, 1), kernels.identity_minhash(x.cuda(), 256, 1)
        )


def test_distinct_fraction_tells_quantized_rows_from_trained_ones():
    g = torch.Generator().manual_seed(5)
    w = torch.randn(64, 512, generator=g) * 0.02
    scale = w.abs().amax(dim=1, keepdim=True) / 127
    int8 = (w / scale).round() * scale
    groups = w.reshape(-1, 64)
    s4 = groups.abs().amax(dim=1, keepdim=True) / 7
    int4 = ((groups / s4).round() * s4).reshape(64, 512)
    f = {
        k: kernels.distinct_fraction(v.numpy().ravel().astype(np.float64), 512)
        for k, v in {"fp32": w, "int8": int8, "int4": int4}.items()
    }
    assert f["fp32"] > 0.99
    assert f["int8"] < 0.5
    assert f["int4"] < 0.2
