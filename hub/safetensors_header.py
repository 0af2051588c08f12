"""Parse and strictly validate a safetensors header, without reading any tensor data.

File layout: 8 bytes little-endian u64 `header_len`, then `header_len` bytes of UTF-8 JSON,
then the tensor data. The JSON maps tensor names to `{"dtype", "shape", "data_offsets"}`, with
`data_offsets = [begin, end]` relative to the first byte after the header, plus an optional
`__metadata__` object of strings.

`parse_header` works on bytes already in hand (the HTTP source gets them with range requests);
`read_header` reads exactly `8 + header_len` bytes of a local file. Every problem is a
`MalformedFileError` whose message is one sentence naming the file (and model) and the remedy.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from hub.bounded_json import JsonBoundError, check_depth, loads
from hub.dtypes import DTYPE_BITS, DTYPE_SIZES
from hub.errors import MalformedFileError

# The dtype table lives in hub.dtypes; its mappings stay importable from here.
__all__ = [
    "DTYPE_BITS",
    "DTYPE_SIZES",
    "MAX_DIMS",
    "MAX_HEADER_LEN",
    "MAX_NAME_BYTES",
    "SafetensorsHeader",
    "TensorEntry",
    "header_length",
    "parse_header",
    "read_header",
]

# Bounds on what a header may hold; a file over one is refused with a reason, never read on.
# The safetensors library allows 100 MB headers; the largest real ones are a few MB (a shard of
# tens of thousands of tensors), and 16 MiB keeps a hostile one cheap in memory and time.
MAX_HEADER_LEN = 16 * 2**20
MAX_NAME_BYTES = 1024  # real tensor names are under 300 bytes; signatures store 2-byte lengths
MAX_DIMS = 64  # what torch allows; signatures store a 1-byte dimension count
_U64 = 2**64  # dimensions, offsets and element counts are u64 in the format

_REMEDY = "re-download the file or re-export it with safetensors"


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One tensor of a safetensors file.

    Attributes:
        name: tensor name as stored.
        dtype: safetensors dtype code (`F32`, `BF16`, ...).
        shape: dimensions, outermost first.
        start: absolute file offset of the first data byte (8 + header_len + begin).
        end: absolute file offset one past the last data byte.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    """A parsed, validated header.

    Attributes:
        path: the file as named in messages (a path, or `repo/file` for remote files).
        header_len: length of the JSON header in bytes.
        file_size: size of the whole file when known; None when the caller could not say.
        entries: tensors in data order (by start offset, then name).
        metadata: the `__metadata__` strings, empty when absent.
        digest: sha1 hex of the 8 + header_len header bytes (a cheap content id).
    """

    path: str
    header_len: int
    file_size: int | None
    entries: tuple[TensorEntry, ...]
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    digest: str = ""

    @property
    def data_start(self) -> int:
        """Absolute offset of the first data byte."""
        return 8 + self.header_len

    @property
    def parameter_count(self) -> int:
        return sum(e.numel for e in self.entries)

    def entry(self, name: str) -> TensorEntry:
        """The entry called `name`; KeyError when the file has no such tensor."""
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(f"{self.path} has no tensor named {name!r}")


def _subject(where: str, model_id: str | None) -> str:
    return f"{where} of {model_id}" if model_id else where


def _malformed(
    where: str, model_id: str | None, problem: str, remedy: str = _REMEDY
) -> MalformedFileError:
    return MalformedFileError(
        f"{_subject(where, model_id)} {problem}; {remedy}.", model_id=model_id, path=where
    )


def header_length(
    prefix8: bytes, *, file_size: int | None, where: str, model_id: str | None = None
) -> int:
    """Decode and check the 8-byte length prefix.

    Raises:
        MalformedFileError: fewer than 8 bytes, a length over 100 MB, or one beyond the file.
    """
    if len(prefix8) < 8:
        raise _malformed(
            where,
            model_id,
            f"is truncated ({len(prefix8)} bytes, shorter than the 8-byte header length)",
        )
    (n,) = struct.unpack("<Q", prefix8[:8])
    if n > MAX_HEADER_LEN:
        raise _malformed(
            where, model_id, f"declares a {n}-byte header, over the {MAX_HEADER_LEN}-byte limit"
        )
    if file_size is not None and 8 + n > file_size:
        raise _malformed(
            where, model_id, f"declares a {n}-byte header but the file has only {file_size} bytes"
        )
    return n


def _as_dim(v: object) -> int | None:
    # JSON true/false are ints to Python; a shape of booleans is still malformed.
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < _U64:
        return None
    return v


def shown_name(name: str, limit: int = 80) -> str:
    """A tensor name as messages show it: quoted, and cut to `limit` characters."""
    text = repr(name)
    return text if len(text) <= limit else f"{text[: limit - 20]}...' ({len(name)} characters)"


def _name_problem(name: str) -> str | None:
    """Why a tensor name cannot be kept, or None when it can."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "has a lone UTF-16 surrogate"
    if size > MAX_NAME_BYTES:
        return f"is {size} bytes long, over the {MAX_NAME_BYTES}-byte limit"
    if not name:
        return "is empty"
    return None


def _tensor_nbytes(dtype: str, shape: tuple[int, ...]) -> int | None:
    """Bytes a tensor of this dtype and shape takes, or None if it does not end on a byte."""
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    return bits // 8 if bits % 8 == 0 else None


def _parse_entry(
    name: str, spec: object, data_start: int, where: str, model_id: str | None
) -> TensorEntry:
    # one rule at a time, so that the first broken one is named (`_plain_entries` decides the
    # well-formed header, nearly every one, in a few passes)
    what = f"tensor {shown_name(name)}"
    problem = _name_problem(name)
    if problem is not None:
        raise _malformed(where, model_id, f"has a tensor whose name {problem}")
    if not isinstance(spec, dict):
        raise _malformed(
            where, model_id, f"describes {what} with a {type(spec).__name__}, not an object"
        )
    missing = [k for k in ("dtype", "shape", "data_offsets") if k not in spec]
    if missing:
        raise _malformed(where, model_id, f"gives {what} no {' or '.join(missing)}")
    dtype = spec["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _malformed(
            where,
            model_id,
            f"gives {what} the unknown dtype {_cut(dtype)}",
            "re-export it with a safetensors dtype (F32, F16, BF16, I8, ...)",
        )
    raw_shape = spec["shape"]
    if isinstance(raw_shape, list) and len(raw_shape) > MAX_DIMS:
        raise _malformed(
            where, model_id, f"gives {what} {len(raw_shape)} dimensions, over the {MAX_DIMS} limit"
        )
    dims = [_as_dim(v) for v in raw_shape] if isinstance(raw_shape, list) else [None]
    if any(d is None for d in dims):
        raise _malformed(
            where,
            model_id,
            f"gives {what} the shape {_cut(raw_shape)}, not a list of integers in [0, 2^64)",
        )
    shape = tuple(d for d in dims if d is not None)
    if math.prod(shape) >= _U64:
        raise _malformed(where, model_id, f"gives {what} 2^64 elements or more")
    offsets = spec["data_offsets"]
    pair = [_as_dim(v) for v in offsets] if isinstance(offsets, list) and len(offsets) == 2 else []
    if len(pair) != 2 or pair[0] is None or pair[1] is None or pair[0] > pair[1]:
        raise _malformed(
            where,
            model_id,
            f"gives {what} the data_offsets {_cut(offsets)}, not [begin, end] with "
            "0 <= begin <= end < 2^64",
        )
    begin, end = pair[0], pair[1]
    expected = _tensor_nbytes(dtype, shape)
    if expected is None or end - begin != expected:
        need = "a fractional number of" if expected is None else str(expected)
        raise _malformed(
            where,
            model_id,
            f"gives {what} {end - begin} data bytes but {dtype}{list(shape)} needs {need} bytes",
        )
    return TensorEntry(
        name=name, dtype=dtype, shape=shape, start=data_start + begin, end=data_start + end
    )


def _plain_entries(items: list[tuple[str, object]], data_start: int) -> list[TensorEntry] | None:
    """Every entry when each one holds just its dtype, shape and data_offsets and passes
    `_parse_entry`'s rules, decided rule by rule over all of them at once (a header holds
    hundreds of entries, nearly always all well formed: a few passes in C instead of a dozen
    checks per entry). Such a header is three levels deep, so `parse_header` skips its depth
    walk. None when any entry is not so; `parse_header` then checks the depth and reads entry
    by entry, naming the first problem. tests/hub/test_safetensors_header.py holds the two to
    the same answer on random entries."""
    names = [name for name, _ in items]
    specs = [spec for _, spec in items]
    if not set(map(type, specs)) <= {dict}:
        return None
    if not set(map(len, specs)) <= {3}:  # type: ignore[arg-type]
        return None  # other keys than the three (read rule by rule, after the depth check)
    dtypes = [spec.get("dtype") for spec in specs]  # type: ignore[attr-defined]
    shapes = [spec.get("shape") for spec in specs]  # type: ignore[attr-defined]
    offsets = [spec.get("data_offsets") for spec in specs]  # type: ignore[attr-defined]
    if (
        not set(map(type, shapes)) <= {list}
        or not set(map(type, offsets)) <= {list}
        or not set(map(len, offsets)) <= {2}
        or max(map(len, shapes), default=0) > MAX_DIMS
        or not set(map(type, dtypes)) <= {str}
        or not set(dtypes) <= DTYPE_BITS.keys()
        or not all(names)
        or max(map(len, names), default=0) > MAX_NAME_BYTES // 4
    ):
        return None
    values = [v for shape in shapes for v in shape]
    values += [v for pair in offsets for v in pair]
    if not set(map(type, values)) <= {int} or min(values, default=0) < 0:
        return None
    if max(values, default=0) >= _U64:
        return None
    numels = list(map(math.prod, shapes))
    if max(numels, default=0) >= _U64:
        return None
    if any(
        begin > end or numel * DTYPE_BITS[dtype] != 8 * (end - begin)
        for numel, dtype, (begin, end) in zip(numels, dtypes, offsets, strict=True)
    ):
        return None
    try:
        "".join(names).encode("utf-8")
    except UnicodeEncodeError:
        return None
    return [
        TensorEntry(name, dtype, tuple(shape), data_start + begin, data_start + end)
        for name, dtype, shape, (begin, end) in zip(names, dtypes, shapes, offsets, strict=True)
    ]


def _check_depth(doc: object, where: str, model_id: str | None) -> None:
    try:
        check_depth(doc)
    except JsonBoundError as err:
        raise _malformed(where, model_id, f"has a header that {err}") from None


def _cut(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_metadata(value: object) -> bool:
    """Whether a `__metadata__` is what the format allows: an object of strings."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _parse_metadata(value: object, where: str, model_id: str | None) -> dict[str, str]:
    if not _is_metadata(value):
        raise _malformed(where, model_id, "has a __metadata__ that is not an object of strings")
    return dict(value)  # type: ignore[call-overload]


def _check_layout(
    entries: list[TensorEntry],
    data_start: int,
    file_size: int | None,
    where: str,
    model_id: str | None,
) -> None:
    """Tensors tile the data exactly, as the safetensors library checks: no overlap, no gap,
    and (when the size is known) no byte after the last tensor."""
    last: TensorEntry | None = None
    for e in entries:  # sorted by (start, end)
        if file_size is not None and e.end > file_size:
            raise _malformed(
                where,
                model_id,
                f"places tensor {shown_name(e.name)} at bytes [{e.start}, {e.end}) beyond its {file_size}-byte size (the file is truncated or its offsets are wrong)",
            )
        if last is not None and e.start < last.end:
            raise _malformed(
                where,
                model_id,
                f"has overlapping tensors {shown_name(last.name)} and {shown_name(e.name)}",
            )
        expected = last.end if last is not None else data_start
        if e.start > expected:
            raise _malformed(
                where,
                model_id,
                f"leaves bytes [{expected}, {e.start}) before tensor {shown_name(e.name)} "
                "covered by no tensor",
            )
        last = e
    end = last.end if last is not None else data_start
    if file_size is not None and end != file_size:
        raise _malformed(
            where,
            model_id,
            f"has {file_size - end} bytes after its last tensor, covered by no tensor",
        )


def parse_header(
    prefix8: bytes,
    header_json: bytes,
    *,
    file_size: int | None,
    where: str,
    model_id: str | None = None,
) -> SafetensorsHeader:
    """Parse and validate a header from its raw bytes.

    Args:
        prefix8: the first 8 bytes of the file.
        header_json: the next `header_len` bytes (exactly).
        file_size: size of the whole file, or None when unknown (skips the beyond-the-file checks).
        where: how messages name the file.
        model_id: the model the file belongs to, for messages.

    Raises:
        MalformedFileError: any violation of the format (see the module docstring).
    """
    n = header_length(prefix8, file_size=file_size, where=where, model_id=model_id)
    if len(header_json) != n:
        raise _malformed(
            where, model_id, f"is truncated (a {n}-byte header, {len(header_json)} bytes read)"
        )
    try:
        doc = loads(header_json, max_depth=None)  # the depth: below, where it can matter
    except JsonBoundError as err:
        raise _malformed(where, model_id, f"has a header that {err}") from None
    if not isinstance(doc, dict):
        _check_depth(doc, where, model_id)  # a deep list is named as such
        raise _malformed(where, model_id, "has a header that is not a UTF-8 JSON object")
    data_start = 8 + n
    items = [(name, spec) for name, spec in doc.items() if name != "__metadata__"]
    entries = _plain_entries(items, data_start)
    if entries is None or not _is_metadata(doc.get("__metadata__", {})):
        # something is off (or at least not three levels deep): bounded as every JSON document
        # is, then entry by entry, so that the first problem is named
        _check_depth(doc, where, model_id)
    metadata: dict[str, str] = {}
    if "__metadata__" in doc:
        metadata = _parse_metadata(doc["__metadata__"], where, model_id)
    if entries is None:
        entries = [_parse_entry(name, spec, data_start, where, model_id) for name, spec in items]
    entries.sort(key=lambda e: (e.start, e.end, e.name))
    _check_layout(entries, data_start, file_size, where, model_id)
    return SafetensorsHeader(
        path=where,
        header_len=n,
        file_size=file_size,
        entries=tuple(entries),
        metadata=metadata,
        digest=hashlib.sha1(prefix8[:8] + header_json).hexdigest(),
    )


def read_header(path: str | os.PathLike[str], *, model_id: str | None = None) -> SafetensorsHeader:
    """Read and validate the header of a local file, reading only its first 8 + header_len bytes.

    Raises:
        MalformedFileError: the header is malformed, or longer than the file.
        OSError: the file cannot be opened.
    """
    where = str(Path(path))
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        n = header_length(prefix, file_size=size, where=where, model_id=model_id)
        header_json = f.read(n)
    return parse_header(prefix, header_json, file_size=size, where=where, model_id=model_id)
