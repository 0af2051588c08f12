"""A freshly parsed signature is what the code before the cached layouts read and compared.

`Signature.from_bytes` unpacks a blob laid out as one read before in one struct call
(`fingerprint.blob_layouts`); `slot_layouts._layout` shares what depends on the windows and
counts classes in one pass. Here both are held to the code they replaced: the field-by-field
walk (`records._walk`) and `_reference_layout` (the layout as it was made), field for field,
including blobs whose layouts differ from a remembered one only in a byte that decides the
layout, and signatures with odd slots (fewer than k positions, mixed window sizes). Every
layout test runs twice: class counts by numpy, and by the compiled loop (skipped without numba).
"""

import dataclasses
import re
import struct

import numpy as np
import pytest

from fingerprint import blob_layouts, records, slot_layouts
from fingerprint.comparison import compare
from fingerprint.errors import SignatureFormatError
from fingerprint.records import Signature, SignatureParams, SlotSignature
from fingerprint.slot_layouts import _EXACT, DENSE_CLASSES, _hists, _Layout, _offsets
from fingerprint.structure import window_grid
from lineage.lab.synthetic import synthetic_signatures
from tests.fingerprint.compare_reference import reference_compare


def _reference_layout(slots: tuple[SlotSignature, ...]) -> _Layout | None:
    """`slot_layouts._layout` as it was before the shared windows (one slot at a time)."""
    sizes = {s.positions.size for s in slots}
    if not slots or len(sizes) != 1 or 0 in sizes:
        return None
    n = np.array([s.n for s in slots], dtype=np.int64)
    grids = [window_grid(s) for s in slots]
    rows = np.array([g[0] for g in grids], dtype=np.int64)
    cols = np.array([g[1] for g in grids], dtype=np.int64)
    grid = np.stack([s.positions for s in slots])
    if not (
        np.all(rows * cols == n)
        and np.all(grid[:, 1:] > grid[:, :-1])
        and np.all(grid[:, -1] < n)
        and max(int(rows.sum()), int(cols.sum())) <= DENSE_CLASSES
        and int(n.max()) < _EXACT
    ):
        return None
    offsets = _offsets(rows, cols)
    slot = np.repeat(np.arange(len(slots), dtype=np.int64), grid.shape[1])
    row, col = _hists(slot, grid.ravel().astype(np.int64), offsets)
    hists = (row.astype(np.int32), col.astype(np.int32))
    in_row = grid // cols[:, None].astype(np.uint32)
    where = np.stack([in_row, grid - in_row * cols[:, None].astype(np.uint32)]).astype(np.int32)
    return _Layout(
        slots, grid, n, offsets, hists, where,
        windows=np.stack([n, rows, cols]).tobytes(),
        per_class=np.maximum(np.stack([cols, rows]) - 1, 0),
        n_less=np.maximum(n - 1, 1),
        single=np.stack([cols < 2, rows < 2]),
        patterned=n >= 2,
    )  # fmt: skip


def _same(x: object, y: object) -> bool:
    """Equal values of equal types, arrays by dtype, shape and values, tuples element-wise."""
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return (
            type(x) is type(y)
            and x.dtype == y.dtype  # type: ignore[union-attr]
            and np.array_equal(x, y)  # type: ignore[arg-type]
            and x.shape == y.shape  # type: ignore[union-attr]
        )
    if isinstance(x, tuple) and isinstance(y, tuple):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    return type(x) is type(y) and x == y


# (rows, cols) of the windows drawn: square, wide, one row, one column, odd, two columns
GRIDS = ((64, 64), (16, 256), (1, 4096), (4096, 1), (3, 7), (512, 2))


def _slots(rng: np.random.Generator) -> tuple[SlotSignature, ...]:
    """A signature's slots: one window for all or mixed sizes, k positions each or fewer,
    now and then an unsorted slot or a window that is not whole rows."""
    mixed = rng.random() < 0.5
    fixed = GRIDS[rng.integers(len(GRIDS))]
    k = int(rng.integers(1, 20))
    out = []
    for j in range(int(rng.integers(1, 9))):
        rows, cols = GRIDS[rng.integers(len(GRIDS))] if mixed else fixed
        n = rows * cols + (5 if rng.random() < 0.05 else 0)
        size = k if rng.random() < 0.9 else int(rng.integers(0, k + 1))
        pos = np.sort(rng.choice(n, min(size, n), replace=False))
        if rng.random() < 0.03 and pos.size > 1:
            pos = pos[::-1]
        out.append(
            SlotSignature(
                f"layers.{j}.w|{rows}|{n}", f"layers.{j}.w", "F32", (rows, cols), n,
                pos.astype(np.uint32), np.zeros(0, np.uint64), 0.0, 1.0, 3.0, 1.0, 0.9, bytes(16),
            )
        )  # fmt: skip
    return tuple(out)


def test_layouts_are_the_layouts_made_one_slot_at_a_time(counting):
    rng = np.random.default_rng(31)
    made = 0
    for _ in range(400):
        slots = _slots(rng)
        got, expected = slot_layouts._layout(slots), _reference_layout(slots)
        assert (got is None) == (expected is None)
        if got is not None:
            made += 1
            for field in dataclasses.fields(_Layout):
                a, b = getattr(got, field.name), getattr(expected, field.name)
                assert _same(a, b), field.name
    assert made > 100  # layouts were compared, not only refusals


def _signature(rng: np.random.Generator, *, odd: bool, skipped: int = 2) -> Signature:
    """A signature with identities and skipped tensors; `odd`: some slots with fewer than k
    positions and windows of several sizes."""
    params = SignatureParams(k=32, window=4096, identity_k=16)
    slots = []
    for j in range(6):
        rows, cols = ((64, 64), (3, 700), (8, 512))[j % 3] if odd else (64, 64)
        n = rows * cols
        size = int(rng.integers(1, 32)) if odd and j % 2 else 32
        slots.append(
            SlotSignature(
                f"layers.{j}.mlp.w|{cols}|{n}", f"layers.{j}.mlp.w", "BF16", (rows, cols), n,
                np.sort(rng.choice(n, size, replace=False)).astype(np.uint32),
                np.sort(rng.choice(1 << 60, 16, replace=False)).astype(np.uint64),
                *rng.random(5).tolist(), rng.bytes(16),
            )
        )  # fmt: skip
    skips = tuple((f"t{i}", "too small") for i in range(skipped))
    return Signature(params, tuple(slots), skips, bytes_read=12345)


def _walked(blob: bytes) -> Signature:
    """The signature the field-by-field walk reads (the code before `blob_layouts`)."""
    head, slots, skipped = records._walk(blob)
    p = SignatureParams(*head[3:10], version=head[1])
    return Signature(p, tuple(SlotSignature(*s) for s in slots), skipped, bytes_read=head[10])


def _assert_read_as_walked(blob: bytes) -> Signature:
    got, expected = Signature.from_bytes(blob), _walked(blob)
    assert got == expected and got.to_bytes() == blob
    for a, b in zip(got.slots, expected.slots, strict=True):
        assert a.positions.dtype == b.positions.dtype == np.uint32
        assert a.identity.dtype == b.identity.dtype == np.uint64
        assert a.shape == b.shape and type(a.n) is type(b.n) is int
    return got


@pytest.mark.parametrize("odd", [False, True])
def test_a_blob_of_a_remembered_layout_is_read_as_walked(odd):
    rng = np.random.default_rng(32 + odd)
    first = _signature(rng, odd=odd)
    assert blob_layouts.read(first.to_bytes()) is None  # not met yet
    for _ in range(2):  # the layout is made at the second walk
        assert _assert_read_as_walked(first.to_bytes()) == first
    # another model of the same architecture: same layout, other positions and numbers
    again = _signature(np.random.default_rng(40 + odd), odd=odd)
    if odd:  # the same position counts as `first`, so the same layout
        again = dataclasses.replace(
            again,
            slots=tuple(
                dataclasses.replace(
                    s, positions=np.sort(rng.choice(s.n, t.positions.size, False)).astype(np.uint32)
                )
                for s, t in zip(again.slots, first.slots, strict=True)
            ),
        )
    blob = again.to_bytes()
    assert blob_layouts.read(blob) is not None  # the remembered layout is used
    assert _assert_read_as_walked(blob) == again


def _renamed(sig: Signature, j: int, key: str, tensor: str) -> Signature:
    slots = list(sig.slots)
    slots[j] = dataclasses.replace(slots[j], key=key, tensor=tensor)
    return dataclasses.replace(sig, slots=tuple(slots))


def _variants(sig: Signature) -> list[Signature]:
    """Signatures whose blobs are as long as `sig`'s, laid out differently by one length."""
    s0, s3 = sig.slots[0], sig.slots[3]
    out = [
        _renamed(sig, 0, s0.key + "x", s0.tensor[:-1]),  # a byte from tensor to key
        _renamed(sig, 3, s3.key[:-1], s3.tensor + "y"),  # a byte from key to tensor
        _renamed(sig, 2, sig.slots[2].key + "é", sig.slots[2].tensor[:-2]),  # 2 UTF-8 bytes
    ]
    # two positions more, one identity hash fewer (8 bytes either way)
    more = np.union1d(s0.positions, [s0.n - 1, s0.n - 2])[-(s0.positions.size + 2) :]
    slots = list(sig.slots)
    slots[0] = dataclasses.replace(s0, positions=more.astype(np.uint32), identity=s0.identity[:-1])
    out.append(dataclasses.replace(sig, slots=tuple(slots)))
    # one dimension more (8 bytes), eight key bytes fewer
    slots = list(sig.slots)
    slots[1] = dataclasses.replace(
        sig.slots[1], shape=(*sig.slots[1].shape, 1), key=sig.slots[1].key[:-8]
    )
    out.append(dataclasses.replace(sig, slots=tuple(slots)))
    # a skipped name a byte longer, its reason a byte shorter
    (t, r), rest = sig.skipped[0], sig.skipped[1:]
    out.append(dataclasses.replace(sig, skipped=((t + "z", r[:-1]), *rest)))
    # a dtype a byte longer, a key a byte shorter
    slots = list(sig.slots)
    slots[4] = dataclasses.replace(sig.slots[4], dtype="BF16x", key=sig.slots[4].key[:-1])
    out.append(dataclasses.replace(sig, slots=tuple(slots)))
    return out


def _remembered(blob: bytes) -> None:
    """Read `blob` until its layout is kept (the second walk makes it)."""
    for _ in range(2):
        if blob_layouts.read(blob) is None:
            Signature.from_bytes(blob)
    assert blob_layouts.read(blob) is not None


def test_a_layout_differing_in_one_deciding_byte_is_not_taken_for_the_remembered_one():
    sig = _signature(np.random.default_rng(34), odd=False)
    blob = sig.to_bytes()
    _remembered(blob)
    for variant in _variants(sig):
        other = variant.to_bytes()
        assert len(other) == len(blob) and other != blob
        assert blob_layouts.read(other) is None  # not taken for the remembered layout
        assert _assert_read_as_walked(other) == variant
        _remembered(blob)  # still read by its layout
        for _ in range(2):  # the variant's layout kept too: each read as walked
            assert _assert_read_as_walked(other) == variant
        assert _assert_read_as_walked(blob) == sig


def test_a_corrupt_length_in_a_remembered_layout_is_the_walks_error():
    sig = _signature(np.random.default_rng(35), odd=False)
    blob = sig.to_bytes()
    _remembered(blob)
    head = struct.calcsize("<" + blob_layouts.HEAD)
    for at, value in ((head, 200), (head, 0), (len(blob) - 1, 0), (40, 1)):
        # the first key's length, the last reason's last byte, the slot count's place
        bad = bytearray(blob)
        if at == 40:  # the slot count (u32 after bytes_read): one slot more
            bad[48:52] = struct.pack("<I", len(sig.slots) + 1)
        else:
            bad[at] = value
        if at == head:  # a length the remembered layout does not have: not taken for it
            assert blob_layouts.read(bytes(bad)) is None
        try:
            expected = _walked(bytes(bad))
        except SignatureFormatError as err:
            with pytest.raises(SignatureFormatError, match=re.escape(str(err))):
                Signature.from_bytes(bytes(bad))
        else:
            assert Signature.from_bytes(bytes(bad)) == expected
    bad = bytearray(blob)
    bad[:4] = b"XLSG"
    with pytest.raises(SignatureFormatError, match="bad magic"):
        Signature.from_bytes(bytes(bad))


def test_blobs_without_slots_or_positions_are_read_as_walked():
    params = SignatureParams(k=8, window=64)
    empty = Signature(params, (), (("a", "b"),))
    bare = dataclasses.replace(
        _signature(np.random.default_rng(36), odd=True),
        slots=tuple(
            dataclasses.replace(
                s, positions=np.zeros(0, np.uint32), identity=np.zeros(0, np.uint64)
            )
            for s in _signature(np.random.default_rng(36), odd=True).slots
        ),
    )
    for sig in (empty, bare):
        for _ in range(3):  # walked twice, then from the remembered layout
            assert _assert_read_as_walked(sig.to_bytes()) == sig


def test_compare_of_a_fresh_parse_is_the_slot_by_slot_comparison(counting):
    params = SignatureParams(k=64, window=1 << 14)
    sigs, _ = synthetic_signatures(12, 2, params=params, slots=10, seed=7)
    odd = [_signature(np.random.default_rng(37 + i), odd=True) for i in range(3)]
    ids = sorted(sigs)
    pairs = [(sigs[ids[i]], sigs[ids[j]]) for i in range(0, 12, 3) for j in range(12) if i != j]
    pairs += [(odd[0], odd[1]), (odd[1], odd[2]), (odd[0], odd[0])]
    for a, b in pairs:
        for _ in range(3):  # each parse a new signature: fresh layouts, then remembered blobs
            fresh_a = Signature.from_bytes(a.to_bytes(), model_id=a.model_id)
            fresh_b = Signature.from_bytes(b.to_bytes(), model_id=b.model_id)
            got = compare(fresh_a, fresh_b)
            assert got.to_dict() == reference_compare(a, b).to_dict() == compare(a, b).to_dict()


def test_positions_read_through_a_remembered_layout_are_the_walks():
    # the sketch scan reads only keys and positions (`blob_layouts.positions`): the same as the
    # walk's, and never through a layout whose slots differ in one deciding byte
    blob_layouts._LAYOUTS.clear()  # no variant's layout kept by an earlier test
    blob_layouts._WALKED.clear()
    sig = _signature(np.random.default_rng(36), odd=False)
    blob = sig.to_bytes()
    _remembered(blob)
    head, keys, ns, sizes, positions = blob_layouts.positions(blob)
    assert head == blob_layouts.read(blob)[0]
    assert keys == tuple(s.key for s in sig.slots)
    assert ns == [s.n for s in sig.slots] and sizes == [s.positions.size for s in sig.slots]
    assert np.array_equal(positions, np.concatenate([s.positions for s in sig.slots]))
    for variant in _variants(sig):  # (one changes only a skipped name: the walk reads those)
        assert blob_layouts.positions(variant.to_bytes()) is None
    bad = bytearray(blob)
    bad[-1] ^= 0x01  # the last reason's last byte: the walk reads it, so must this
    assert blob_layouts.positions(bytes(bad)) is None
    bad = bytearray(blob)
    at = struct.calcsize("<" + blob_layouts.HEAD) + 2  # the first key's first byte
    bad[at] = 0xFF  # not UTF-8
    assert blob_layouts.positions(bytes(bad)) is None
