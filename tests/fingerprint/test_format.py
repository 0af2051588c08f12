import numpy as np
import pytest

from fingerprint.comparison import compare
from fingerprint.errors import IncompatibleSignaturesError, SignatureFormatError
from fingerprint.signature import Signature, SignatureParams, SlotSignature


def _sig(params=None, seed=0) -> Signature:
    rng = np.random.default_rng(seed)
    slots = tuple(
        SlotSignature(
            key=f"layers.{i}.w|64|8192",
            tensor=f"model.layers.{i}.w",
            dtype="BF16",
            shape=(128, 64),
            n=8192,
            positions=np.sort(rng.choice(8192, 512, replace=False)).astype(np.uint32),
            identity=np.sort(rng.integers(0, 2**63, 256, dtype=np.uint64)),
            mean=0.1,
            std=1.5,
            kurtosis=3.2,
            absmax=7.0,
            distinct=0.9,
            digest=bytes(range(16)),
        )
        for i in range(3)
    )
    return Signature(params or SignatureParams(), slots, (("x", "1-D tensor"),), 12345, "m")


def test_round_trip_is_exact():
    sig = _sig()
    blob = sig.to_bytes()
    assert blob[:4] == b"MLSG"
    back = Signature.from_bytes(blob, "m")
    assert back == sig
    assert back.to_bytes() == blob


def test_corrupt_blobs_are_refused():
    blob = _sig().to_bytes()
    with pytest.raises(SignatureFormatError, match="truncated"):
        Signature.from_bytes(blob[:-5])
    with pytest.raises(SignatureFormatError, match="magic"):
        Signature.from_bytes(b"XXXX" + blob[4:])
    with pytest.raises(SignatureFormatError, match="trailing"):
        Signature.from_bytes(blob + b"\0")
    future = bytearray(blob)
    future[4] = 99
    with pytest.raises(SignatureFormatError, match="v99"):
        Signature.from_bytes(bytes(future))


def test_different_parameters_cannot_be_compared():
    a = _sig()
    b = _sig(SignatureParams(k=256))
    with pytest.raises(IncompatibleSignaturesError, match="different parameters"):
        compare(a, b)
    c = _sig(SignatureParams(seed=1))
    with pytest.raises(IncompatibleSignaturesError):
        compare(a, c)


@pytest.mark.parametrize(
    "change",
    [
        {"tensor": "w" * 70_000},  # over the 2-byte length of a name
        {"key": "a.\ud800"},  # a lone surrogate: not UTF-8
        {"shape": (1,) * 256 + (128, 64)},  # over the 1-byte dimension count
        {"shape": (2**64, 1)},  # over a u64
        {"dtype": "X" * 300},  # over the 1-byte length of a dtype
    ],
    ids=["long-name", "surrogate", "many-dims", "huge-dim", "long-dtype"],
)
def test_what_the_layout_cannot_hold_is_one_clear_error(change):
    from dataclasses import replace

    sig = _sig()
    odd = replace(sig, slots=(replace(sig.slots[0], **change), *sig.slots[1:]))
    with pytest.raises(SignatureFormatError) as info:
        odd.to_bytes()
    msg = str(info.value)
    assert msg.startswith("the signature of m cannot be written") and "\n" not in msg
    assert len(msg) < 400
    assert Signature.from_bytes(sig.to_bytes(), "m") == sig  # the rest is unchanged
