"""Reading a signature blob laid out as one read before: one struct unpack instead of a walk.

`fingerprint.records` walks a blob field by field: about fifteen struct calls a slot, a
thousand a blob, most of `Signature.from_bytes`' time. Where the fields lie is decided by a few
numbers only: the slot and skipped-tensor counts in the header, and in each slot the byte
lengths of its key, tensor name and dtype, its dimensions, and its position and identity
counts (in each skipped entry its two name lengths). Every model of one architecture writes
blobs with the same numbers, so the numbers of two walks alike (`remember`) make one
`struct.Struct` of the whole blob, and a later blob of the same size is unpacked by it at once
(`read`; `positions` reads only the slot keys and positions, for the sketch scan).

It is trusted only where it reads what the walk would: every one of those numbers, unpacked
from where the layout puts it, must be the layout's. Then, field after field, the walk would
have read the same lengths at the same places (each field's place is decided by the lengths
before it), and ended at the blob's end (the struct's size is the blob's); so the fields are
the walk's, to the byte. Where any differs, `read` answers None and the caller walks.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TypeVar

import numpy as np

T = TypeVar("T")

# records._HEADER's fields (13 values; the 12th and 13th the slot and skipped counts)
HEAD = "4sHHIIIIIIQQII"
_HEAD_VALUES = 13
_COUNTS_AT = (11, 12)
# Layouts kept a blob size (the last few met), and blob sizes kept (all dropped past it).
_PER_SIZE = 4
_SIZES_KEPT = 256

# One slot's fields in `SlotSignature`'s order: key, tensor, dtype, shape, n, positions,
# identity, mean, std, kurtosis, absmax, distinct, digest.
SlotFields = tuple[
    str, str, str, tuple, int, np.ndarray, np.ndarray, float, float, float, float, float, bytes
]
# A blob's fields: the header's values, each slot's fields, the skipped (tensor, reason) pairs.
BlobFields = tuple[tuple, list[SlotFields], tuple[tuple[str, str], ...]]
# What a reader of positions alone takes (`BlobLayout.positions`): the header's values, the slot
# keys, window sizes and position counts, and every slot's positions one after another.
BlobPositions = tuple[tuple, tuple[str, ...], list[int], list[int], np.ndarray]


@dataclass(frozen=True, slots=True)
class BlobLayout:
    """Where every field of a blob of one layout lies.

    `whole` unpacks the blob (position and identity bytes skipped); `lengths_of` picks from its
    values every number that decides the layout, which must equal `lengths`. `slots`: per slot,
    the index of its first value, its dimensions, and its positions' and identities' count and
    byte offset. `skipped_at`: the index of the first skipped entry's value.

    For `positions`: `keyed` unpacks only the header and, of each slot, its lengths, key and
    window size (the skipped entries after the last slot are compared whole with `tail`
    instead); `keyed_lengths_of` picks the slots' numbers of `lengths` (`keyed_lengths`) from
    its values; `keyed_slots` holds each slot's key and window size indexes there."""

    whole: struct.Struct
    lengths_of: itemgetter
    lengths: tuple[int, ...]
    slots: tuple[tuple[int, int, int, int, int, int], ...]
    skipped_at: int
    n_skipped: int
    keyed: struct.Struct
    keyed_lengths_of: itemgetter
    keyed_lengths: tuple[int, ...]
    keyed_slots: tuple[tuple[int, int], ...]
    tail: bytes

    def fields(self, blob: bytes) -> BlobFields | None:
        """The blob's fields, or None where it is not of this layout (or a name is not UTF-8:
        the walk says so)."""
        values = self.whole.unpack(blob)
        if self.lengths_of(values) != self.lengths:
            return None
        positions = _arrays(blob, [(s[3], s[2]) for s in self.slots], "<u4", np.uint32)
        identities = _arrays(blob, [(s[5], s[4]) for s in self.slots], "<u8", np.uint64)
        slots = []
        try:
            for (first, ndim, *_), pos, ids in zip(self.slots, positions, identities, strict=True):
                end = first + 7 + ndim
                stats = values[end + 3 : end + 8]
                slots.append(
                    (
                        values[first + 1].decode("utf-8"),
                        values[first + 3].decode("utf-8"),
                        values[first + 5].decode("utf-8"),
                        values[first + 7 : end],
                        values[end],
                        pos,
                        ids,
                        *stats,
                        values[end + 8],
                    )
                )
            at = self.skipped_at
            skipped = tuple(
                (values[at + 4 * i + 1].decode("utf-8"), values[at + 4 * i + 3].decode("utf-8"))
                for i in range(self.n_skipped)
            )
        except UnicodeDecodeError:
            return None
        return values[:_HEAD_VALUES], slots, skipped

    def positions(self, blob: bytes) -> BlobPositions | None:
        """The blob's positions and what places them, without its identities, statistics and
        names other than the keys (the sketch scan's pre-check reads no more); None where its
        slots are not laid out as this layout's, a key is not UTF-8, or it does not end with
        the skipped entries of the blob this layout was walked from (`tail`: one comparison;
        models of one architecture skip the same tensors for the same reasons)."""
        if blob[len(blob) - len(self.tail) :] != self.tail:
            return None  # skipped entries other than those walked: the walk checks them
        values = self.keyed.unpack(blob)
        if self.keyed_lengths_of(values) != self.keyed_lengths:
            return None
        try:
            keys = tuple(values[key].decode("utf-8") for key, _ in self.keyed_slots)
        except UnicodeDecodeError:
            return None
        raw = np.frombuffer(blob, np.uint8)
        every = np.concatenate(
            [raw[at : at + 4 * n] for _, _, n, at, _, _ in self.slots] or [raw[:0]]
        )
        return (
            values[:_HEAD_VALUES],
            keys,
            [values[n] for _, n in self.keyed_slots],
            [n for _, _, n, *_ in self.slots],
            every.view("<u4").astype(np.uint32, copy=False),
        )


def _arrays(
    blob: bytes, spans: list[tuple[int, int]], dtype: str, native: type
) -> list[np.ndarray]:
    """Each slot's array of its (offset, count) span's values: rows of one array where every slot
    has as many (one copy of every slot's bytes in place of one a slot), else one a slot."""
    counts = {count for _, count in spans}
    if not spans:
        return []
    if len(counts) != 1:
        return [np.frombuffer(blob, dtype, count, at).astype(native) for at, count in spans]
    count = counts.pop()
    size = np.dtype(dtype).itemsize * count
    raw = np.frombuffer(blob, np.uint8)
    every = np.concatenate([raw[at : at + size] for at, _ in spans])
    return list(every.view(dtype).astype(native, copy=False).reshape(len(spans), count))


_LAYOUTS: dict[int, tuple[BlobLayout, ...]] = {}
# The lengths of the last blob walked, by its size (`remember`).
_WALKED: dict[int, tuple] = {}
_LOCK = threading.Lock()


def read(blob: bytes) -> BlobFields | None:
    """The fields of a blob laid out as one `remember`ed (None: none such; walk it)."""
    return _first(blob, BlobLayout.fields)


def positions(blob: bytes) -> BlobPositions | None:
    """The positions of a blob laid out as one `remember`ed (None: none such; walk it)."""
    return _first(blob, BlobLayout.positions)


def _first(blob: bytes, reading: Callable[[BlobLayout, bytes], T | None]) -> T | None:
    """What `reading` gets from the blob through the first kept layout it fits."""
    for layout in _LAYOUTS.get(len(blob), ()):
        found = reading(layout, blob)
        if found is not None:
            return found
    return None


def remember(size: int, fields: BlobFields) -> None:
    """Note the lengths of a walked blob of `size` bytes, from its fields (the lengths the walk
    read: a decoded UTF-8 name encodes back to its bytes); the second blob of that size walked
    with the same lengths has its layout made and kept. Making one costs a fifth of a walk: a
    layout met once (a store whose every blob differs) is not worth it."""
    _, slots, skipped = fields
    lengths = (
        tuple(
            (len(s[0].encode()), len(s[1].encode()), len(s[2].encode()), len(s[3]))
            + (s[5].size, s[6].size)
            for s in slots
        ),
        tuple((len(t.encode()), len(r.encode())) for t, r in skipped),
    )
    with _LOCK:
        if _WALKED.get(size) != lengths:
            if len(_WALKED) >= _SIZES_KEPT:
                _WALKED.clear()
            _WALKED[size] = lengths
            return
    layout = layout_of(*lengths, tail=skipped_bytes(skipped))
    if layout.whole.size != size:  # not what the walk read: keep nothing
        return
    with _LOCK:
        kept = _LAYOUTS.get(size, ())
        if layout.lengths in (k.lengths for k in kept):
            return
        if len(_LAYOUTS) >= _SIZES_KEPT:
            _LAYOUTS.clear()
        _LAYOUTS[size] = (layout, *kept[: _PER_SIZE - 1])


def skipped_bytes(skipped: Sequence[tuple[str, str]]) -> bytes:
    """The skipped entries as a blob ends with them (str16 tensor, str16 reason each)."""
    out = []
    for tensor, reason in skipped:
        for text in (tensor.encode(), reason.encode()):
            out += [struct.pack("<H", len(text)), text]
    return b"".join(out)


def layout_of(
    slots: Sequence[tuple[int, int, int, int, int, int]],
    skipped: Sequence[tuple[int, int]],
    *,
    tail: bytes = b"",
) -> BlobLayout:
    """The layout of a blob whose slots have these (key, tensor, dtype byte lengths,
    dimensions, positions, identities) and whose skipped entries these name lengths; `tail`:
    the skipped entries of the blob walked (`positions` reads a blob whose end is the same)."""
    parts = ["<", HEAD]
    keyed = ["<", HEAD]  # the same bytes, all but lengths, keys and window sizes skipped
    lengths = [len(slots), len(skipped)]
    where = list(_COUNTS_AT)
    keyed_where = list(_COUNTS_AT)
    keyed_slots = []
    value = keyed_value = _HEAD_VALUES
    offset = struct.calcsize("<" + HEAD)
    placed = []
    for key, tensor, dtype, ndim, n_pos, n_id in slots:
        head = f"H{key}sH{tensor}sB{dtype}sB{ndim}QQI"
        pos_at = offset + struct.calcsize("<" + head)
        # values: key (2), tensor (2), dtype (2), ndim, shape, n, n_pos, n_id, 5 stats, digest
        lengths += [key, tensor, dtype, ndim, n_pos, n_id]
        where += [value, value + 2, value + 4, value + 6, value + 8 + ndim, value + 9 + ndim]
        placed.append((value, ndim, n_pos, pos_at, n_id, pos_at + 4 * n_pos + 4))
        parts.append(f"{head}{4 * n_pos}xI{8 * n_id}x5d16s")
        value += 16 + ndim
        # keyed values: key length, key, tensor and dtype lengths, ndim, n, n_pos, n_id
        keyed.append(f"H{key}sH{tensor}xB{dtype}xB{8 * ndim}xQI{4 * n_pos}xI{8 * n_id + 56}x")
        v = keyed_value
        keyed_where += [v, v + 2, v + 3, v + 4, v + 6, v + 7]
        keyed_slots.append((v + 1, v + 5))
        keyed_value += 8
        offset = pos_at + 4 * n_pos + 4 + 8 * n_id + 56
    keyed_lengths = tuple(lengths)
    for i, (tensor, reason) in enumerate(skipped):
        parts.append(f"H{tensor}sH{reason}s")
        lengths += [tensor, reason]
        where += [value + 4 * i, value + 4 * i + 2]
    # the skipped entries come after every position: the keyed read steps over them
    keyed.append(f"{sum(4 + t + r for t, r in skipped)}x")
    return BlobLayout(
        struct.Struct("".join(parts)),
        itemgetter(*where),
        tuple(lengths),
        tuple(placed),
        value,
        len(skipped),
        struct.Struct("".join(keyed)),
        itemgetter(*keyed_where),
        keyed_lengths,
        tuple(keyed_slots),
        tail,
    )
