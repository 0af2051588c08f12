"""A GGUF file as the rest of hub sees a weight file: the opener of the `gguf` layout.

`open_gguf` parses the header from ranged reads (`hub.gguf.header`), names each tensor as the
source model's Hugging Face checkpoint does (`hub.gguf.names`), and lists it as a packed tensor
(`hub.packed.Packed`) under that name and the HF shape, read through a `GGUFCodec` that undoes
the converter's row permutation or transposition. What is left out, and why:

* a tensor the name tables cannot map (converter extras such as `rope_freqs`): left out of
  the model (its name and the reason are kept in the header's `gguf.left_out` metadata), since
  a stray tensor inside a block under its GGUF name would shift which tensors are sampled;
* a tensor whose type cannot be decoded (integer types, a type newer than the `gguf` package):
  listed under its HF name with the ggml type as dtype, so it shows as skipped with that type;
* a permuted tensor whose rows are not whole heads: as above, with the reason in `gguf.left_out`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection

from hub.formats import Opened, ReadAt, SizeOf
from hub.gguf import names as gnames
from hub.gguf.codec import PART, GGUFCodec, dequantizable
from hub.gguf.header import GGUFHeader, TensorSpec, malformed, parse_header
from hub.packed import Packed, Part, Recognized
from hub.safetensors_header import SafetensorsHeader, TensorEntry

_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
_SHOWN = 2000  # characters of `gguf.left_out` kept


def open_gguf(
    rel: str, read_at: ReadAt, size_of: SizeOf, names: Collection[str], model_id: str
) -> Opened:
    """Open one GGUF file of a repo (the `gguf` row of `hub.formats.FILE_FORMATS`).

    Args:
        rel: the file, relative to the repo root.
        read_at: reads bytes of a repo file.
        size_of: a repo file's size.
        names: every file of the repo (a later part of a split file reads the first part's
            metadata).
        model_id: for messages.

    Raises:
        MalformedFileError: the header does not parse, or a tensor lies outside the file.
    """
    import gguf  # the tables and dequantizers of llama.cpp's own package, loaded only here

    where = rel  # messages say "<file> of <model id>"
    size = size_of(rel)
    header = parse_header(rel, read_at, size, where=where, model_id=model_id)
    meta = dict(header.metadata)
    if "general.architecture" not in meta:
        first = _first_split(rel, names)
        if first is not None:  # gguf-split keeps the model's keys in the first part only
            meta = {**parse_header(first, read_at, size_of(first), metadata_only=True,
                                   model_id=model_id).metadata, **meta}  # fmt: skip
    arch = meta.get("general.architecture")
    arch = arch if isinstance(arch, str) else ""
    file_type = _file_type(meta, header)
    entries: list[TensorEntry] = []
    packed: dict[str, Packed] = {}
    left_out: list[str] = []
    taken: set[str] = set()
    for spec in header.tensors:
        qtype = gguf.GGMLQuantizationType._value2member_map_.get(spec.type_id)
        if qtype is None or qtype not in gguf.GGML_QUANT_SIZES:
            left_out.append(f"{spec.name}: unknown ggml type {spec.type_id}")
            continue
        type_name = qtype.name
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        if spec.ne[0] % block:
            raise malformed(where, model_id, f"its tensor {spec.name[:80]!r} has rows of "
                            f"{spec.ne[0]} elements, not whole {type_name} blocks of {block}")  # fmt: skip
        nbytes = math.prod(spec.ne) // block * type_size
        start = header.data_start + spec.offset
        if size is not None and start + nbytes > size:
            raise malformed(where, model_id, f"its tensor {spec.name[:80]!r} ends at byte "
                            f"{start + nbytes}, past the end of the file ({size})")  # fmt: skip
        mapped = gnames.hf_name(arch, spec.name)
        if mapped is None:
            left_out.append(f"{spec.name}: no Hugging Face name for it in {arch or 'this'} models")
            continue
        if mapped.name in taken:
            left_out.append(f"{spec.name}: a second tensor named {mapped.name}")
            continue
        codec = _codec(spec, mapped, arch, meta, type_name, file_type, block, type_size)
        if isinstance(codec, str):
            left_out.append(f"{spec.name}: {codec}")
            continue
        shape = _hf_shape(spec, codec)
        taken.add(mapped.name)
        entries.append(TensorEntry(mapped.name, type_name, shape, start, start + nbytes))
        if dequantizable(type_name):
            part = Part(rel, start, start + nbytes)
            packed[mapped.name] = Packed(mapped.name, shape, {PART: part}, codec)
    entries.sort(key=lambda e: (e.start, e.name))
    metadata = {"format": "gguf", "gguf.version": str(header.version),
                "general.architecture": arch, "gguf.file_type": file_type}  # fmt: skip
    if left_out:
        metadata["gguf.left_out"] = "; ".join(left_out)[:_SHOWN]
    st_header = SafetensorsHeader(
        path=where,
        header_len=header.data_start - 8,
        file_size=size,
        entries=tuple(entries),
        metadata=metadata,
        digest=header.digest,
    )
    found = Recognized(packed=packed, consumed=frozenset(packed), method=f"gguf:{file_type}")
    return Opened(header=st_header, found=found)


def _first_split(rel: str, names: Collection[str]) -> str | None:
    """The first part of a split GGUF file (`x-00001-of-00003.gguf`), when it is in the repo."""
    m = _SPLIT.search(rel)
    if m is None or m.group(1) == "00001":
        return None
    first = f"{rel[: m.start()]}-00001-of-{m.group(2)}.gguf"
    return first if first in names else None


def _file_type(meta: dict, header: GGUFHeader) -> str:
    """`general.file_type` as users name it (`Q4_K_M`), else the type holding most elements."""
    import gguf

    ft = meta.get("general.file_type")
    member = gguf.LlamaFileType._value2member_map_.get(ft) if isinstance(ft, int) else None
    if member is not None and member.name != "GUESSED":
        return member.name.removeprefix("MOSTLY_").removeprefix("ALL_")
    counts: Counter[str] = Counter()
    for spec in header.tensors:
        qtype = gguf.GGMLQuantizationType._value2member_map_.get(spec.type_id)
        if qtype is not None and len(spec.ne) > 1:
            counts[qtype.name] += math.prod(spec.ne)
    return counts.most_common(1)[0][0] if counts else "unknown"


def _heads(meta: dict, arch: str, key: str, block: int | None) -> int:
    """A head count of the metadata (`<arch>.attention.head_count`), per layer when it is an
    array; 0 when absent or not a positive integer."""
    value = meta.get(f"{arch}.attention.{key}")
    if isinstance(value, tuple) and block is not None and block < len(value):
        value = value[block]
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _codec(
    spec: TensorSpec,
    mapped: gnames.Mapped,
    arch: str,
    meta: dict,
    type_name: str,
    file_type: str,
    block: int,
    type_size: int,
) -> GGUFCodec | str:
    """The tensor's codec, or the reason to leave it out."""
    cols = spec.ne[0]
    rows = math.prod(spec.ne[1:])
    heads = 0
    if gnames.permuted(arch, mapped.kind) and len(spec.ne) == 2:
        heads = _heads(meta, arch, "head_count", mapped.block)
        if mapped.kind == "ATTN_K":
            heads = _heads(meta, arch, "head_count_kv", mapped.block) or heads
        if not heads or rows % heads or (rows // heads) % 2:
            return f"its {rows} rows are not whole heads ({arch}.attention.head_count)"
    transposed = gnames.transposed(arch, mapped.kind) and len(spec.ne) == 2
    return GGUFCodec(type_name, file_type, block, type_size, rows, cols, heads, transposed)


def _hf_shape(spec: TensorSpec, codec: GGUFCodec) -> tuple[int, ...]:
    """The HF shape: ne reversed, or ne itself for a transposed matrix."""
    if codec.transposed:
        return tuple(spec.ne)
    return tuple(reversed(spec.ne))
