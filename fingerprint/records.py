"""Signature records and their byte layout (documented in docs/signature-format.md).

A signature is serialized by the record itself (`Signature.to_bytes`, `Signature.from_bytes`),
so records and layout live together: no other module has to know both. Reading walks the blob
field by field (`_walk`); a blob laid out as one walked before (every length the walk reads
equal) is unpacked at once by `fingerprint.blob_layouts`, the same fields.

All integers little-endian. Strings are UTF-8 with a length prefix.

    header   magic b"MLSG" | u16 version | u16 flags (0)
             | u32 k | u32 window | u32 max_slots | u32 identity_k | u32 identity_window
             | u32 min_elements | u64 seed
             | u64 bytes_read | u32 n_slots | u32 n_skipped
    slot     str16 key | str16 tensor | str8 dtype | u8 ndim | ndim x u64 shape | u64 n
             | u32 n_pos | n_pos x u32 positions | u32 n_id | n_id x u64 identity
             | 5 x f64 (mean, std, kurtosis, absmax, distinct)
             | 16 bytes digest (XXH3-128 of the raw window bytes)
    skipped  str16 tensor | str16 reason
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

import numpy as np

from fingerprint import blob_layouts
from fingerprint.errors import SignatureFormatError

# 3: identity MinHash over a hashed 1-in-8 subset; 4: BLAKE3 digest; 5: XXH3-128 digest, one
# identity hash round, moments over the identity sample in fixed lanes (docs/signature-format.md)
FORMAT_VERSION = 5


@dataclass(frozen=True, slots=True)
class SignatureParams:
    """Everything that must match for two signatures to be comparable.

    Attributes:
        k: bottom-k positions kept per slot.
        window: element budget W per slot (the window is the first rows that fit in it).
        max_slots: at most this many slots per model (T).
        identity_k: hashes kept per slot for the identity MinHash.
        identity_window: the identity MinHash covers the first this-many elements of a window.
        min_elements: smaller tensors are skipped.
        seed: identity hash seed.
        version: signature format version.
    """

    k: int = 512
    window: int = 1 << 18
    max_slots: int = 64
    identity_k: int = 256
    identity_window: int = 1 << 16
    min_elements: int = 4096
    seed: int = 0x6C696E65
    version: int = FORMAT_VERSION

    def tag(self) -> str:
        """Short text that differs whenever the parameters do (stored beside the blob)."""
        return (
            f"v{self.version}:k{self.k}:w{self.window}:t{self.max_slots}:"
            f"i{self.identity_k}:iw{self.identity_window}:m{self.min_elements}:s{self.seed}"
        )


@dataclass(frozen=True, slots=True, eq=False)
class SlotSignature:
    """The signature of one slot (one window of one tensor).

    `positions` are the sorted uint32 positions of the k smallest values in the window;
    `identity` the sorted uint64 bottom-k MinHash of (position, value bits).
    """

    key: str
    tensor: str
    dtype: str
    shape: tuple[int, ...]
    n: int
    positions: np.ndarray
    identity: np.ndarray
    mean: float
    std: float
    kurtosis: float
    absmax: float
    distinct: float
    digest: bytes

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SlotSignature):
            return NotImplemented
        return (
            (self.key, self.tensor, self.dtype, self.shape, self.n, self.digest)
            == (other.key, other.tensor, other.dtype, other.shape, other.n, other.digest)
            and np.array_equal(self.positions, other.positions)
            and np.array_equal(self.identity, other.identity)
            and (self.mean, self.std, self.kurtosis, self.absmax, self.distinct)
            == (other.mean, other.std, other.kurtosis, other.absmax, other.distinct)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Signature:
    """A model's fingerprint: its parameters, slots, skipped tensors and bytes read."""

    params: SignatureParams
    slots: tuple[SlotSignature, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    bytes_read: int = 0
    model_id: str = field(default="", compare=False)

    @property
    def arch(self) -> str:
        """Architecture block key: models are only compared within one block."""
        h = hashlib.blake2b(digest_size=8)
        for s in sorted(self.slots, key=lambda s: s.key):
            h.update(s.key.encode() + b"\0")
        return h.hexdigest()

    def to_bytes(self) -> bytes:
        """The documented byte layout (module docstring; docs/signature-format.md)."""
        return dumps(self)

    @staticmethod
    def from_bytes(blob: bytes, model_id: str = "") -> Signature:
        """Read `to_bytes`'s layout back.

        Raises:
            SignatureFormatError: not a signature, a version this code does not read, or
                truncated or trailing bytes.
        """
        return loads(blob, model_id=model_id)


MAGIC = b"MLSG"
_HEADER = struct.Struct("<4sHHIIIIIIQQII")


def _str(buf: list[bytes], s: str, width: str) -> None:
    data = s.encode("utf-8")
    buf.append(struct.pack("<" + width, len(data)))
    buf.append(data)


def dumps(sig: Signature) -> bytes:
    """`sig` in the byte layout of the module docstring.

    Raises:
        SignatureFormatError: a value the layout cannot hold (a name over 65,535 UTF-8 bytes or
            with a lone surrogate, more than 255 dimensions, a number over its field).
    """
    try:
        return _dumps(sig)
    except (struct.error, UnicodeEncodeError, OverflowError, ValueError) as err:
        who = sig.model_id or "a model"
        problem = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise SignatureFormatError(
            f"the signature of {who} cannot be written in the signature format ({problem}); "
            "one of its tensor names or shapes is beyond the format's bounds"
        ) from None


def _dumps(sig: Signature) -> bytes:
    p = sig.params
    buf = [
        _HEADER.pack(
            MAGIC,
            p.version,
            0,
            p.k,
            p.window,
            p.max_slots,
            p.identity_k,
            p.identity_window,
            p.min_elements,
            p.seed,
            sig.bytes_read,
            len(sig.slots),
            len(sig.skipped),
        )
    ]
    for s in sig.slots:
        _str(buf, s.key, "H")
        _str(buf, s.tensor, "H")
        _str(buf, s.dtype, "B")
        buf.append(struct.pack("<B", len(s.shape)))
        buf.append(struct.pack(f"<{len(s.shape)}Q", *s.shape))
        buf.append(struct.pack("<Q", s.n))
        buf.append(struct.pack("<I", len(s.positions)))
        buf.append(np.ascontiguousarray(s.positions, dtype="<u4").tobytes())
        buf.append(struct.pack("<I", len(s.identity)))
        buf.append(np.ascontiguousarray(s.identity, dtype="<u8").tobytes())
        buf.append(struct.pack("<5d", s.mean, s.std, s.kurtosis, s.absmax, s.distinct))
        buf.append(s.digest)
    for tensor, reason in sig.skipped:
        _str(buf, tensor, "H")
        _str(buf, reason, "H")
    return b"".join(buf)


# The compiled struct of each little-endian field format met (a graph build reads every slot
# of thousands of signatures; formats differ only by a shape's dimensions, at most 255).
_STRUCTS: dict[str, struct.Struct] = {}
_TRUNCATED = "signature blob is truncated; re-run `lineage fingerprint`"


class _Reader:
    def __init__(self, blob: bytes):
        self.blob = memoryview(blob)
        self.size = len(self.blob)
        self.at = 0

    def take(self, n: int) -> memoryview:
        end = self.at + n
        if end > self.size:
            raise SignatureFormatError(_TRUNCATED)
        out = self.blob[self.at : end]
        self.at = end
        return out

    def unpack(self, fmt: str) -> tuple:
        st = _STRUCTS.get(fmt)
        if st is None:
            st = _STRUCTS.setdefault(fmt, struct.Struct("<" + fmt))
        end = self.at + st.size
        if end > self.size:
            raise SignatureFormatError(_TRUNCATED)
        out = st.unpack_from(self.blob, self.at)
        self.at = end
        return out

    def string(self, width: str) -> str:
        (n,) = self.unpack(width)
        try:
            return bytes(self.take(n)).decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureFormatError(
                "signature blob is corrupt; re-run `lineage fingerprint --all`"
            ) from None


def loads(blob: bytes, model_id: str = "") -> Signature:
    """A signature from `dumps`'s bytes: a blob laid out as one read before is unpacked at once
    (`fingerprint.blob_layouts`, the same fields), any other walked field by field.

    Raises:
        SignatureFormatError: bad magic, an unreadable version, truncated or trailing bytes.
    """
    fields = blob_layouts.read(blob)
    if fields is None:
        fields = _walk(blob)
        blob_layouts.remember(len(blob), fields)
    else:
        _check_head(fields[0])
    head, slots, skipped = fields
    _, version, _, k, window, max_slots, identity_k, identity_window, min_elements, seed = head[:10]
    params = SignatureParams(
        k=k,
        window=window,
        max_slots=max_slots,
        identity_k=identity_k,
        identity_window=identity_window,
        min_elements=min_elements,
        seed=seed,
        version=version,
    )
    return Signature(
        params=params,
        slots=tuple(SlotSignature(*slot) for slot in slots),
        skipped=skipped,
        bytes_read=head[10],
        model_id=model_id,
    )


def _check_head(head: tuple) -> None:
    if head[0] != MAGIC:
        raise SignatureFormatError("not a model-lineage signature (bad magic)")
    if head[1] != FORMAT_VERSION:
        raise SignatureFormatError(
            f"signature format v{head[1]} is not readable by this version (v{FORMAT_VERSION}); "
            "re-run `lineage fingerprint --all`"
        )


def _walk(blob: bytes) -> blob_layouts.BlobFields:
    """A blob's fields (`blob_layouts.BlobFields`), read one after another.

    Raises:
        SignatureFormatError: as `loads`.
    """
    r = _Reader(blob)
    head = r.unpack(_HEADER.format[1:])
    _check_head(head)
    slots: list[blob_layouts.SlotFields] = []
    for _ in range(head[11]):
        key = r.string("H")
        tensor = r.string("H")
        dtype = r.string("B")
        (ndim,) = r.unpack("B")
        shape = r.unpack(f"{ndim}Q") if ndim else ()
        (n,) = r.unpack("Q")
        (n_pos,) = r.unpack("I")
        positions = np.frombuffer(r.take(4 * n_pos), dtype="<u4").astype(np.uint32)
        (n_id,) = r.unpack("I")
        identity = np.frombuffer(r.take(8 * n_id), dtype="<u8").astype(np.uint64)
        mean, std, kurt, absmax, distinct = r.unpack("5d")
        digest = bytes(r.take(16))
        slots.append(
            (key, tensor, dtype, tuple(shape), n, positions, identity)
            + (mean, std, kurt, absmax, distinct, digest)
        )
    skipped = tuple((r.string("H"), r.string("H")) for _ in range(head[12]))
    if r.at != len(r.blob):
        raise SignatureFormatError(
            "signature blob has trailing bytes; re-run `lineage fingerprint`"
        )
    return head, slots, skipped
