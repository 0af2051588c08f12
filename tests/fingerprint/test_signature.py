"""fingerprint.signature through the protocol alone: a source outside hub/ is enough."""

from __future__ import annotations

import numpy as np
import pytest

from fingerprint.protocol import TensorInfo, Window
from fingerprint.signature import Signature, compute_signature
from tests.factory import MemorySource, llama_tensors, noisy


def test_an_in_memory_source_is_fingerprinted_and_round_trips():
    source = MemorySource("mem/a", llama_tensors(0, layers=2, hidden=64, inter=128, vocab=256))
    sig = compute_signature(source, device="cpu")
    assert sig.slots and source.windows_read == len(sig.slots)
    assert sig.bytes_read == sum(4 * s.n for s in sig.slots)  # the raw bytes the source gave
    assert Signature.from_bytes(sig.to_bytes(), "mem/a") == sig
    assert all(
        reason == "1-D tensor (norms and biases carry no lineage signal)"
        for name, reason in sig.skipped
        if name.endswith("norm.weight")
    )


def test_same_values_same_signature_and_noise_changes_it():
    base = llama_tensors(1, layers=2, hidden=64, inter=128, vocab=256)
    a = compute_signature(MemorySource("a", base), device="cpu")
    b = compute_signature(MemorySource("b", base), device="cpu")
    c = compute_signature(MemorySource("c", noisy(base, 0.5, 3)), device="cpu")
    assert a.to_bytes() == b.to_bytes()
    assert a.to_bytes() != c.to_bytes()


class _Undecodable(MemorySource):
    def tensor_infos(self):
        return [TensorInfo(i.name, "Q4", i.shape, decodable=False) for i in super().tensor_infos()]


def test_tensors_the_source_cannot_decode_are_skipped_unread():
    source = _Undecodable("q", llama_tensors(2, layers=1, hidden=64, inter=128, vocab=256))
    sig = compute_signature(source, device="cpu")
    assert sig.slots == () and source.windows_read == 0
    assert ("lm_head.weight", "dtype Q4 is not floating point") in sig.skipped


class _Short(MemorySource):
    def read_window(self, name, n):
        w = super().read_window(name, n)
        return Window(values=w.values[:-1], raw=w.raw)


def test_a_source_that_decodes_too_few_values_is_an_error():
    source = _Short("s", llama_tensors(3, layers=1, hidden=64, inter=128, vocab=256))
    with pytest.raises(ValueError, match="decoded"):
        compute_signature(source, device="cpu")


def test_values_are_used_as_decoded():
    # the digest is over the raw bytes, the positions over the values: a source may store
    # anything as long as it decodes it
    tensors = llama_tensors(4, layers=1, hidden=64, inter=128, vocab=256)
    plain = compute_signature(MemorySource("p", tensors), device="cpu")

    class Doubled(MemorySource):
        def read_window(self, name, n):
            w = super().read_window(name, n)
            return Window(values=w.values * np.float32(2), raw=w.raw)

    doubled = compute_signature(Doubled("d", tensors), device="cpu")
    for p, d in zip(plain.slots, doubled.slots, strict=True):
        assert np.array_equal(p.positions, d.positions) and p.digest == d.digest
        assert d.absmax == pytest.approx(2 * p.absmax)


class _Budgeted(MemorySource):
    """A source that keeps only the planned slots whose windows are smallest (as a source
    whose reads would exceed the byte budget does: `TensorSource.limit_slots`)."""

    parallel_reads = 2

    def limit_slots(self, slots, params):
        smallest = sorted(slots, key=lambda s: (s.n, s.tensor))[:2]
        kept = [s for s in slots if s in smallest]
        return kept, [(s.tensor, "over the read budget") for s in slots if s not in smallest]


def test_a_source_may_keep_fewer_slots_and_the_kept_ones_are_unchanged():
    tensors = llama_tensors(5, layers=2, hidden=64, inter=128, vocab=256)
    full = compute_signature(MemorySource("f", tensors), device="cpu")
    source = _Budgeted("b", tensors)
    kept = compute_signature(source, device="cpu")
    assert len(kept.slots) == 2 and source.windows_read == 2
    assert kept.bytes_read == sum(4 * s.n for s in kept.slots)
    by_key = {s.key: s for s in full.slots}
    assert all(s == by_key[s.key] for s in kept.slots)
    over = {t for t, reason in kept.skipped if reason == "over the read budget"}
    assert over == {s.tensor for s in full.slots} - {s.tensor for s in kept.slots}
    assert list(kept.skipped) == sorted(kept.skipped)
    assert Signature.from_bytes(kept.to_bytes(), "b") == kept
