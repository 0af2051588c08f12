import numpy as np
import pytest
import torch

from fingerprint import device, kernels
from fingerprint.comparison import identity_jaccard
from fingerprint.device import resolve_device
from fingerprint.errors import DeviceUnavailableError


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    device.set_threads(None)
    torch.set_num_threads(before)


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


@pytest.mark.parametrize("k", [300, 9_990])
def test_bottom_k_ranks_nan_as_infinity(k):
    # k=300: the threshold is finite and NaN never a candidate; k=9,990: NaN ties with +inf
    g = torch.Generator().manual_seed(9)
    x = torch.randn(10_000, generator=g)
    x[::50] = float("nan")
    x[7::97] = float("inf")
    x[3::101] = -float("inf")
    got = kernels.bottom_k_positions(x, k)
    want = _reference_bottom_k(np.where(np.isnan(x.numpy()), np.inf, x.numpy()), k)
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
    j = identity_jaccard(same, kernels.identity_minhash(nudged, 256, seed=7), 256)
    # Jaccard of two sets sharing half their elements: 0.5 / 1.5 = 1/3
    assert 0.2 < j < 0.47
    other_seed = kernels.identity_minhash(x, 256, seed=8)
    assert not np.array_equal(other_seed, same)


def test_identity_minhash_estimates_the_identical_fraction_at_random_positions():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(1 << 18, generator=g)
    changed = x.clone()
    hit = torch.randperm(x.numel(), generator=g)[: x.numel() // 4]
    changed[hit] += 1.0  # a quarter of the weights differ, scattered
    a = kernels.identity_minhash(x, 256, seed=7, limit=1 << 16)
    b = kernels.identity_minhash(changed, 256, seed=7, limit=1 << 16)
    # three quarters equal: Jaccard 0.75 / 1.25 = 0.6; k=256 gives a standard error near 0.03
    assert abs(identity_jaccard(a, b, 256) - 0.6) < 0.1


def test_identity_positions_are_a_fixed_hashed_subset_shared_by_shorter_spans():
    long, short = kernels.identity_positions(1 << 16, 7), kernels.identity_positions(5000, 7)
    assert np.array_equal(long[: short.size], short)  # a shorter span keeps the same positions
    assert not np.array_equal(kernels.identity_positions(1 << 16, 8), long)  # depends on the seed
    share = long.size / (1 << 16)
    assert abs(share - 1 / kernels.IDENTITY_RATE) < 0.01
    # hashed, not strided: every residue modulo the rate is represented
    assert set((long % kernels.IDENTITY_RATE).tolist()) == set(range(kernels.IDENTITY_RATE))


def test_identity_minhash_bits_are_pinned():
    # a change here changes stored signatures: bump fingerprint.records.FORMAT_VERSION with it
    x = torch.arange(1 << 16, dtype=torch.float32) / 7.0
    got = kernels.identity_minhash(x, 256, seed=0x6C696E65, limit=1 << 16)
    assert got.size == 256
    assert [int(v) for v in got[:3]] == PINNED_IDENTITY


# format v5 (one splitmix64 round; a plain-int transcription of it gives the same three)
PINNED_IDENTITY = [978246255752353, 1606735960849433, 1630545175651211]


def test_kernels_run_on_one_torch_thread_by_default(restore_threads, monkeypatch):
    monkeypatch.delenv(device.THREADS_ENV, raising=False)
    torch.set_num_threads(2)
    kernels.to_torch(np.zeros(8, np.float32), "cpu")
    assert torch.get_num_threads() == 1


def test_cpu_windows_stay_numpy_and_need_no_torch():
    import subprocess
    import sys

    # a fresh interpreter: this one has imported torch for the other tests
    code = (
        "import sys, numpy as np\n"
        "from fingerprint import kernels\n"
        "from fingerprint.signature import compute_signature\n"
        "x = kernels.to_device(np.arange(70000, dtype=np.float32), 'cpu')\n"
        "assert isinstance(x, np.ndarray)\n"
        "kernels.bottom_k_positions(x, 512); kernels.identity_minhash(x, 256, 1)\n"
        "kernels.window_stats(x, x.tobytes(), 700, 1)\n"
        "from fingerprint.protocol import TensorInfo, Window\n"
        "class S:\n"
        "    model_id = 'm'\n"
        "    parallel_reads = 2\n"
        "    def tensor_infos(self): return [TensorInfo('w', 'F32', (100, 700), True)]\n"
        "    def read_window(self, name, n):\n"
        "        v = np.arange(n, dtype=np.float32)\n"
        "        return Window(values=v, raw=v.tobytes())\n"
        "assert len(compute_signature(S(), device='cpu').slots) == 1\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_threads_can_be_chosen_by_call_or_environment(restore_threads, monkeypatch):
    monkeypatch.setenv(device.THREADS_ENV, "3")
    kernels.to_torch(np.zeros(8, np.float32), "cpu")
    assert torch.get_num_threads() == 3
    device.set_threads(2)  # a call wins over the environment
    kernels.to_torch(np.zeros(8, np.float32), "cpu")
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match=">= 1"):
        device.set_threads(0)
    device.set_threads(None)
    monkeypatch.setenv(device.THREADS_ENV, "two")
    with pytest.raises(ValueError, match="LINEAGE_THREADS"):
        device.kernel_threads()


def test_worker_threads_get_the_kernel_thread_count(restore_threads):
    # torch keeps its thread count per OS thread: a worker must end up with it too
    from concurrent.futures import ThreadPoolExecutor

    device.set_threads(1)
    torch.set_num_threads(2)

    def work() -> int:
        kernels.to_torch(np.zeros(8, np.float32), "cpu")
        return torch.get_num_threads()

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda _: work(), range(4))) == [1, 1, 1, 1]


def test_kernels_give_the_same_bits_whatever_the_thread_count(restore_threads):
    g = torch.Generator().manual_seed(8)
    x = torch.randn(1 << 18, generator=g).to(torch.bfloat16).float()
    out = []
    for threads in (1, 2):
        device.set_threads(threads)
        t = kernels.to_torch(x.numpy(), "cpu")
        out.append((kernels.bottom_k_positions(t, 512), kernels.identity_minhash(t, 256, 5)))
    assert np.array_equal(out[0][0], out[1][0])
    assert np.array_equal(out[0][1], out[1][1])


def test_to_device_keeps_the_decoded_values_bit_for_bit():
    # decoding belongs to the source (hub.decode); the kernels take its float32 values as they are
    values = np.frombuffer(np.array([1.5, -0.0, np.inf, 3e-45], np.float32).tobytes(), np.float32)
    assert not values.flags.writeable  # a read-only buffer, as np.frombuffer gives
    x = kernels.to_device(values, "cpu")
    assert x.dtype == np.float32 and x.base is not None  # no copy on the CPU
    assert x.view(np.int32).tolist() == values.view(np.int32).tolist()
    t = kernels.to_torch(values, "cpu")
    assert t.dtype == torch.float32
    assert t.view(torch.int32).tolist() == values.view(np.int32).tolist()


def test_a_cpu_only_torch_build_is_told_without_importing_it():
    cpu = "__version__ = '2.13.0+cpu'\ncuda: Optional[str] = None\nhip: Optional[str] = None\n"
    assert device.says_cpu_only(cpu)
    assert not device.says_cpu_only(cpu.replace("cuda: Optional[str] = None", "cuda = '12.4'"))
    assert not device.says_cpu_only(cpu.replace("hip: Optional[str] = None", "hip = '6.1'"))
    assert not device.says_cpu_only("")  # an unknown layout: torch is asked


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
        x[::1001] = float("nan")
        x[7::997] = -0.0
        v = kernels.to_device(x.numpy(), "cpu")  # the numpy path, as the CPU runs it
        gpu = kernels.to_device(x.numpy(), "cuda")
        for cpu in (x, v):
            assert np.array_equal(
                kernels.bottom_k_positions(cpu, 512), kernels.bottom_k_positions(gpu, 512)
            )
            assert np.array_equal(
                kernels.identity_minhash(cpu, 256, 1), kernels.identity_minhash(gpu, 256, 1)
            )
        assert kernels.window_stats(v, b"", 1000, 1) == kernels.window_stats(gpu, b"", 1000, 1)


def test_lane_sums_add_each_lane_in_order():
    # the moments' order (format v5): numpy's reduction over the first axis must add a lane's
    # values one after the other, as the compiled pass and the reference do
    rng = np.random.default_rng(9)
    for size in (1, 15, 16, 17, 100, 4099):
        # values whose sum depends on the order: huge and tiny magnitudes mixed
        w = rng.standard_normal(size) * 10.0 ** rng.integers(-12, 12, size)
        lanes = [0.0] * kernels.LANES
        for i, v in enumerate(w.tolist()):
            lanes[i % kernels.LANES] += v
        assert kernels.lane_sums(w).tolist() == lanes
        total = lanes
        while len(total) > 1:
            total = [total[i] + total[i + 1] for i in range(0, len(total), 2)]
        assert kernels.lane_total(kernels.lane_sums(w)) == total[0]


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
