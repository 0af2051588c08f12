"""The per-model read budget (`TensorIndex.limit_slots`): a transposed layout (GPTQ, AWQ) read
with the Hub's merging keeps the cheapest planned slots that fit the plan's byte budget, each
window unchanged, so the quantized model still compares "derived" with its float parent on the
slots it kept; contiguous layouts and local reads lose nothing.

The budget is made to bite on a tiny model by shrinking the signature's window and slot count
(the budget is `max_slots * window` float32 values), the same arithmetic that makes a 7B GPTQ
model read from the Hub exceed it (scripts/bench_formats.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fingerprint.comparison import compare
from fingerprint.plan import plan_slots
from fingerprint.signature import SignatureParams, compute_signature
from hub.local import open_local_model
from hub.packed import cheapest_within
from lineage.lab.formats_packed import write_packed
from tests.factory import llama_tensors, write_model

HIDDEN, INTER = 256, 512
CONFIG = {"architectures": ["LlamaForCausalLM"], "hidden_size": HIDDEN, "intermediate_size": INTER}
HUB_GAP = 256 * 1024
# 16 slots of 4096 floats: 256 KiB for the model, less than the merged strided windows cost
TIGHT = SignatureParams(window=4096, max_slots=16)


def _plan(model, params: SignatureParams):
    slots, _ = plan_slots(
        model.tensor_infos(),
        max_slots=params.max_slots,
        window=params.window,
        min_elements=params.min_elements,
    )
    return slots


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("budget")
    source = llama_tensors(0, layers=4, hidden=HIDDEN, inter=INTER)
    out = {
        "parent": write_model(root / "parent", source),
        "other": write_model(
            root / "other", llama_tensors(1, layers=4, hidden=HIDDEN, inter=INTER)
        ),
    }
    for method in ("gptq", "awq", "bnb-nf4", "fp8"):
        out[method] = write_packed(source, CONFIG, root / method, method=method)
    return out


def _hub_like(folder: Path):
    model = open_local_model(folder)
    model.read_gap = HUB_GAP  # merge as the Hub source does
    return model


def test_cheapest_within_keeps_the_cheapest_and_spreads_ties():
    kept = cheapest_within([9, 1, 1, 1, 1, 1, 1, 1, 1], budget=3)
    assert len(kept) == 3 and 0 not in kept
    kept = cheapest_within([1] * 16, budget=4)
    assert kept == {0, 4, 8, 12}  # evenly over the positions, not the first four
    assert cheapest_within([5, 2, 9], budget=100) == {0, 1, 2}
    assert cheapest_within([5, 2, 9], budget=1) == set()


@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_strided_windows_over_the_budget_keep_the_cheapest_slots(folders, method):
    model = _hub_like(folders[method])
    slots = _plan(model, TIGHT)
    kept, skipped = model.limit_slots(slots, TIGHT)
    budget = TIGHT.max_slots * TIGHT.window * 4
    cost = {s.tensor: model.window_cost(s.tensor, s.n).nbytes for s in slots}
    assert sum(cost.values()) > budget  # the budget bites
    assert skipped and kept
    assert sum(cost[s.tensor] for s in kept) <= budget
    assert max(cost[s.tensor] for s in kept) <= min(cost[t] for t, _ in skipped)
    assert [s for s in slots if s in kept] == kept  # plan order kept
    assert {t for t, _ in skipped} | {s.tensor for s in kept} == {s.tensor for s in slots}
    assert all(why.startswith("over the read budget: its window would read") for _, why in skipped)
    # the embedding and head (contiguous fp16) always fit
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= {s.tensor for s in kept}


@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_a_kept_window_is_the_same_window(folders, method):
    """Windows are never shortened: the budget only chooses among whole slots."""
    hub, local = _hub_like(folders[method]), open_local_model(folders[method])
    kept, _ = hub.limit_slots(_plan(hub, TIGHT), TIGHT)
    for s in kept:
        a, b = hub.read_window(s.tensor, s.n), local.read_window(s.tensor, s.n)
        assert len(a.values) == s.n
        assert np.array_equal(a.values, b.values) and a.raw == b.raw


@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_the_limited_signature_is_still_derived_from_the_parent(folders, method):
    model = _hub_like(folders[method])
    before = model.bytes_read
    sig = compute_signature(model, params=TIGHT, device="cpu")  # asks model.limit_slots
    over = [t for t, reason in sig.skipped if "over the read budget" in reason]
    assert over and not {s.tensor for s in sig.slots} & set(over)
    assert model.bytes_read - before <= TIGHT.max_slots * TIGHT.window * 4
    parent = compute_signature(open_local_model(folders["parent"]), params=TIGHT, device="cpu")
    other = compute_signature(open_local_model(folders["other"]), params=TIGHT, device="cpu")
    r = compare(parent, sig)
    assert r.verdict == "derived" and r.slots_compared == len(sig.slots)
    assert compare(other, sig).verdict not in ("identical", "derived")


@pytest.mark.parametrize("method", ["gptq", "awq", "bnb-nf4", "fp8"])
def test_within_budget_nothing_is_left_out(folders, method):
    """Local reads (4 KiB holes) of any format, and contiguous formats from the Hub, keep the
    whole plan: the budget changes nothing where it is not exceeded."""
    for model, params in (
        (open_local_model(folders[method]), SignatureParams()),
        (_hub_like(folders[method]), SignatureParams()),
    ):
        slots = _plan(model, params)
        assert model.limit_slots(slots, params) == (list(slots), [])


def test_window_cost_counts_merged_holes_and_requests(folders):
    name, n = "model.layers.0.self_attn.q_proj.weight", 16 * HIDDEN
    local, hub = open_local_model(folders["gptq"]), _hub_like(folders["gptq"])
    local.read_gap = 0
    apart, merged = local.window_cost(name, n), hub.window_cost(name, n)
    assert merged.requests < apart.requests
    assert merged.nbytes > apart.nbytes
    before, reads = hub.bytes_read, hub.reads
    hub.read_window(name, n)
    assert (hub.bytes_read - before, hub.reads - reads) == (merged.nbytes, merged.requests)


def test_the_hub_source_plans_the_same_without_reading(hub_env, folders, tmp_path):
    """Through the Hub emulator: costs come from the headers alone (nothing fetched), and the
    kept slots are those of a local source merging as the Hub does."""
    import json
    import shutil

    from hub.hubsource import HubClient, open_hub_model
    from tests.hub_helpers import card, meta

    root = tmp_path / "zoo"
    shutil.copytree(folders["gptq"], root / "repos" / "quant" / "gptq")
    (root / "repos" / "quant" / "gptq" / "README.md").write_text(card(["org/base"], "quantized"))
    (root / "manifest.json").write_text(json.dumps({"models": [meta("quant/gptq", 0)]}))
    server = hub_env.start(root)
    remote = open_hub_model(
        "quant/gptq", client=HubClient(server.url, token=False), hf_cache=False, whole_file=0
    )
    assert remote.read_gap == HUB_GAP
    before = remote.bytes_fetched
    kept, skipped = remote.limit_slots(_plan(remote, TIGHT), TIGHT)
    assert remote.bytes_fetched == before
    local_kept, local_skipped = _hub_like(folders["gptq"]).limit_slots(_plan(remote, TIGHT), TIGHT)
    assert [s.key for s in kept] == [s.key for s in local_kept] and skipped == local_skipped


@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_window_ranges_are_the_reads_a_window_takes(folders, method):
    # what `prefetch` asks the kernel to read ahead is what `read_window` then reads
    for model in (open_local_model(folders[method]), _hub_like(folders[method])):
        for s in _plan(model, SignatureParams()):
            ranges = model.window_ranges(s.tensor, s.n)
            cost = model.window_cost(s.tensor, s.n)
            assert (sum(e - b for _, b, e in ranges), len(ranges)) == (cost.nbytes, cost.requests)
            before = model.bytes_read
            model.read_window(s.tensor, s.n)
            assert model.bytes_read - before == cost.nbytes


def test_a_local_model_is_signed_on_the_calling_thread_after_a_prefetch(folders):
    """Local files: the kernel is asked to read every planned window ahead, then each window is
    read and signed on the calling thread; the signature is the one worker threads make."""
    import threading

    class Watched(type(open_local_model(folders["gptq"]))):
        def prefetch(self, windows):
            self.asked = list(windows)
            super().prefetch(windows)

        def read_window(self, name, n):
            self.threads.add(threading.get_ident())
            return super().read_window(name, n)

    class Threaded:
        """The same model without `prefetch`: read and signed by 4 worker threads."""

        parallel_reads = 4

        def __init__(self, model):
            self.model, self.model_id = model, model.model_id

        def tensor_infos(self):
            return self.model.tensor_infos()

        def read_window(self, name, n):
            return self.model.read_window(name, n)

    plain = open_local_model(folders["gptq"])
    watched = open_local_model(folders["gptq"])
    watched.__class__ = Watched
    watched.threads = set()
    got = compute_signature(watched, params=SignatureParams())
    assert watched.asked == [(s.tensor, s.n) for s in _plan(plain, SignatureParams())]
    assert watched.threads == {threading.get_ident()}
    assert got == compute_signature(Threaded(plain), params=SignatureParams())
