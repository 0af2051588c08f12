"""Byte layout of a serialized signature (documented in docs/signature-format.md).

All integers little-endian. Strings are UTF-8 with a length prefix.

    header   magic b"MLSG" | u16 version | u16 flags (0)
             | u32 k | u32 window | u32 max_slots | u32 identity_k | u32 identity_window
             | u32 min_elements | u64 seed
             | u64 bytes_read | u32 n_slots | u32 n_skipped
    slot     str16 key | str16 tensor | str8 dtype | u8 ndim | ndim x u64 shape | u64 n
             | u32 n_pos | n_pos x u32 positions | u32 n_id | n_id x u64 identity
             | 5 x f64 (mean, std, kurtosis, absmax, distinct) | 16 bytes digest
    skipped  str16 tensor | str16 reason
"""

from __future__ import annotations

import struct

import numpy as np

from fingerprint.errors import SignatureFormatError
from fingerprint.signature import FORMAT_VERSION, Signature, SignatureParams, SlotSignature

MAGIC = b"MLSG"
_HEADER = struct.Struct("<4sHHIIIIIIQQII")


def _str(buf: list[bytes], s: str, width: str) -> None:
    data = s.encode("utf-8")
    buf.append(struct.pack("<" + width, len(data)))
    buf.append(data)


def dumps(sig: Signature) -> bytes:
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


class _Reader:
    def __init__(self, blob: bytes):
        self.blob = memoryview(blob)
        self.at = 0

    def take(self, n: int) -> memoryview:
        if self.at + n > len(self.blob):
            raise SignatureFormatError("signature blob is truncated; re-run `lineage fingerprint`")
        out = self.blob[self.at : self.at + n]
        self.at += n
        return out

    def unpack(self, fmt: str) -> tuple:
        st = struct.Struct("<" + fmt)
        return st.unpack(self.take(st.size))

    def string(self, width: str) -> str:
        (n,) = self.unpack(width)
        try:
            return bytes(self.take(n)).decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureFormatError(
                "signature blob is corrupt; re-run `lineage fingerprint --all`"
            ) from None


def loads(blob: bytes, model_id: str = "") -> Signature:
    r = _Reader(blob)
    (
        magic,
        version,
        _flags,
        k,
        window,
        max_slots,
        identity_k,
        identity_window,
        min_elements,
        seed,
        bytes_read,
        n_slots,
        n_skipped,
    ) = r.unpack(_HEADER.format[1:])
    if magic != MAGIC:
        raise SignatureFormatError("not a model-lineage signature (bad magic)")
    if version != FORMAT_VERSION:
        raise SignatureFormatError(
            f"signature format v{version} is not readable by this version (v{FORMAT_VERSION}); "
            "re-run `lineage fingerprint --all`"
        )
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
    slots = []
    for _ in range(n_slots):
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
            SlotSignature(
                key=key,
                tensor=tensor,
                dtype=dtype,
                shape=tuple(shape),
                n=n,
                positions=positions,
                identity=identity,
                mean=mean,
                std=std,
                kurtosis=kurt,
                absmax=absmax,
                distinct=distinct,
                digest=digest,
            )
        )
    skipped = tuple((r.string("H"), r.string("H")) for _ in range(n_skipped))
    if r.at != len(r.blob):
        raise SignatureFormatError(
            "signature blob has trailing bytes; re-run `lineage fingerprint`"
        )
    return Signature(
        params=params,
        slots=tuple(slots),
        skipped=skipped,
        bytes_read=bytes_read,
        model_id=model_id,
    )
