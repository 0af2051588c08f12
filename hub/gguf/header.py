"""A GGUF header parsed from byte ranges, bounded against hostile files.

Layout (little-endian, versions 2 and 3): `GGUF`, u32 version, u64 tensor count, u64 metadata
count; the metadata as (string key, u32 type, value) triples; then per tensor its name, u32
dimension count, u64 dimensions (`ne`, the fastest-varying first), u32 ggml type and u64 offset
from the start of the data; the data starts at the next multiple of `general.alignment` (32 by
default). Strings are a u64 length and UTF-8 bytes.

The header is read from the front of the file in growing ranges (`hub.gguf.cursor`), so a
remote file costs a few requests; the whole of it must be parsed because tensor infos follow the
metadata, which holds tokenizer vocabularies of several megabytes. Every bound below (counts,
string and array lengths, nesting, total header bytes) turns a hostile file into a
`MalformedFileError` naming the file, never into a crash, a hang or a large allocation.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

from hub.errors import MalformedFileError
from hub.gguf.cursor import Cursor, Fail, ReadAt, read_text, read_value

MAGIC = b"GGUF"
VERSIONS = (2, 3)
MAX_TENSORS = 1 << 16  # the largest real files hold a few thousand
MAX_KV = 1 << 16  # real files hold tens of keys
MAX_KEY_BYTES = 1024
MAX_NAME_BYTES = 1024  # ggml itself allows 64
MAX_DIMS = 4  # GGML_MAX_DIMS
DEFAULT_ALIGNMENT = 32

_REMEDY = "re-download it, or convert the model again with llama.cpp's convert_hf_to_gguf.py"


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One tensor info of the header.

    Attributes:
        name: the GGUF name (`blk.0.attn_q.weight`).
        ne: dimensions as GGUF stores them, the fastest-varying (columns) first.
        type_id: the ggml type number.
        offset: bytes from the start of the data section.
    """

    name: str
    ne: tuple[int, ...]
    type_id: int
    offset: int


@dataclass(frozen=True, slots=True)
class GGUFHeader:
    """A parsed, bounded GGUF header.

    Attributes:
        where: the file as messages name it.
        version: 2 or 3.
        metadata: key -> value (ints, floats, bools, strings, tuples of short arrays; a
            `Skipped` for long ones).
        tensors: the tensor infos in file order.
        alignment: of the data section and of every tensor offset.
        info_end: where the tensor infos end (the bytes hashed into `digest`).
        data_start: absolute offset of the data section.
        digest: sha1 of the header bytes [0, info_end).
        file_size: the file's size when known.
    """

    where: str
    version: int
    metadata: Mapping[str, object]
    tensors: tuple[TensorSpec, ...]
    alignment: int
    info_end: int
    data_start: int
    digest: str
    file_size: int | None


def malformed(where: str, model_id: str | None, problem: str) -> MalformedFileError:
    """The error for a GGUF file that cannot be read: names the file, the problem, the remedy."""
    subject = f"{where} of {model_id}" if model_id else where
    return MalformedFileError(
        f"{subject} is not a GGUF file this reader accepts: {problem}; {_REMEDY}",
        model_id=model_id,
        path=where,
    )


def parse_header(
    rel: str,
    read_at: ReadAt,
    file_size: int | None,
    *,
    where: str | None = None,
    model_id: str | None = None,
    metadata_only: bool = False,
) -> GGUFHeader:
    """Parse the header of GGUF file `rel` from ranged reads.

    Args:
        rel: the file, as `read_at` knows it.
        read_at: (file, start, end) -> exactly those bytes.
        file_size: the file's size (None when unknown: reads are then never past what is
            needed, and offsets are not checked against the end).
        where: the file as messages name it (default `rel`).
        model_id: for messages.
        metadata_only: stop after the metadata (a split file's first part, read for its keys).

    Raises:
        MalformedFileError: not GGUF, an unsupported version, a bound exceeded, a truncated
            header, a bad name, type, alignment or offset.
    """
    where = where or rel

    def fail(problem: str) -> MalformedFileError:
        return malformed(where, model_id, problem)

    cur = Cursor(read_at, rel, file_size, fail)
    if cur.raw(4) != MAGIC:
        raise fail("it does not start with the GGUF magic")
    version = cur.u32()
    if version not in VERSIONS:
        if version == 1:
            raise fail("it is GGUF version 1 (2023), which is not read")
        if version & 0xFFFF == 0:
            raise fail("it is a big-endian GGUF file, which is not read")
        raise fail(f"its version is {version}, not 2 or 3")
    n_tensors, n_kv = cur.u64(), cur.u64()
    if n_tensors > MAX_TENSORS:
        raise fail(f"it declares {n_tensors} tensors, over the limit of {MAX_TENSORS}")
    if n_kv > MAX_KV:
        raise fail(f"it declares {n_kv} metadata keys, over the limit of {MAX_KV}")
    metadata: dict[str, object] = {}
    for _ in range(n_kv):
        key = read_text(cur, MAX_KEY_BYTES, "a metadata key", fail)
        if key in metadata:
            raise fail(f"it repeats the metadata key {key[:80]!r}")
        metadata[key] = read_value(cur, cur.u32(), 0, fail)
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or isinstance(alignment, bool):
        raise fail(f"its general.alignment {str(alignment)[:40]} is not an integer")
    if not 0 < alignment <= 2**30 or alignment & (alignment - 1):
        raise fail(f"its general.alignment {alignment} is not a power of two")
    tensors: list[TensorSpec] = []
    if not metadata_only:
        names: set[str] = set()
        for _ in range(n_tensors):
            spec = _tensor(cur, alignment, fail)
            if spec.name in names:
                raise fail(f"it stores the tensor {spec.name[:80]!r} twice")
            names.add(spec.name)
            tensors.append(spec)
    info_end = cur.pos
    data_start = -(-info_end // alignment) * alignment
    if file_size is not None and not metadata_only and data_start > file_size and tensors:
        raise fail(f"its data would start at byte {data_start}, past its end ({file_size})")
    return GGUFHeader(
        where=where,
        version=version,
        metadata=metadata,
        tensors=tuple(tensors),
        alignment=alignment,
        info_end=info_end,
        data_start=data_start,
        digest=hashlib.sha1(bytes(cur.buf[:info_end])).hexdigest(),
        file_size=file_size,
    )


def _tensor(cur: Cursor, alignment: int, fail: Fail) -> TensorSpec:
    name = read_text(cur, MAX_NAME_BYTES, "a tensor name", fail)
    if not name or not name.isprintable():
        raise fail(f"it has a tensor whose name {name[:80]!r} is empty or not printable")
    n_dims = cur.u32()
    if not 1 <= n_dims <= MAX_DIMS:
        raise fail(f"its tensor {name[:80]!r} has {n_dims} dimensions, not 1 to {MAX_DIMS}")
    ne = tuple(cur.u64() for _ in range(n_dims))
    if math.prod(ne) >= 2**62:
        raise fail(f"its tensor {name[:80]!r} has {math.prod(ne)} elements")
    type_id, offset = cur.u32(), cur.u64()
    if offset % alignment:
        raise fail(f"its tensor {name[:80]!r} starts at {offset}, not a multiple of {alignment}")
    return TensorSpec(name, ne, type_id, offset)
