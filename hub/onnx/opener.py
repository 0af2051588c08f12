"""Open one ONNX file of a repo: its weights as packed tensors under Hugging Face names.

The opener of the `onnx` layout (`hub.formats.FILE_FORMATS`). It parses the graph from byte
ranges (`hub.onnx.proto`), names the weights (`hub.onnx.names`) and places each one's bytes:
inside the .onnx file, or in an external data file, which must be a file of the repo in the
same folder, named plainly (`model.onnx_data`), its span inside that file's size. Nothing a
file says becomes a path without that check.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection

from hub.errors import MalformedFileError
from hub.formats import Opened, ReadAt, SizeOf
from hub.onnx import names
from hub.onnx.codec import OnnxCodec, Values, element_size
from hub.onnx.proto import Initializer, read_graph
from hub.onnx.wire import WireError
from hub.packed import Packed, Part, Recognized
from hub.safetensors_header import SafetensorsHeader, TensorEntry, shown_name

_METHODS = {"F32": "fp32", "F16": "fp16", "BF16": "bf16", "F64": "fp64"}
_METHODS |= {"ONNX_U8": "uint8", "ONNX_I8": "int8"}
_REMEDY = "re-download it or re-export the model (`optimum-cli export onnx`)"
MAX_LOCATION = 255  # a file name, not a path


def open_onnx(
    rel: str, read_at: ReadAt, size_of: SizeOf, repo_files: Collection[str], model_id: str
) -> Opened:
    """Read an ONNX export's graph and place its weights (see the module docstring).

    Args:
        rel: the .onnx file, relative to the repo root.
        read_at: reads bytes of a repo file.
        size_of: a repo file's size (None when the source cannot say).
        repo_files: every file of the repo (external data must be one of them).
        model_id: for messages.

    Raises:
        MalformedFileError: the file does not parse within the bounds of `hub.onnx.proto`, a
            weight's data lies outside its file, or external data names no file of the repo.
    """
    size = size_of(rel)
    if size is None:
        raise _bad(rel, model_id, "has no known size (the source lists no size for it)")
    try:
        graph = read_graph(lambda s, e: read_at(rel, s, e), size)
    except WireError as err:
        raise _bad(rel, model_id, f"is not an ONNX model this reader accepts: it {err}") from None
    packed: dict[str, Packed] = {}
    counts: dict[str, int] = {}  # weights per method
    for w in names.weights(graph):
        p = _packed(w, rel, size, size_of, repo_files, model_id)
        if p is not None:
            packed[w.name] = p
            counts[p.codec.method] = counts.get(p.codec.method, 0) + 1
    entries = sorted(
        (
            TensorEntry(n, p.codec.dtype, p.shape, p.parts["data"].start, p.parts["data"].end)
            for n, p in packed.items()
        ),
        key=lambda e: (e.start, e.end, e.name),
    )
    header = SafetensorsHeader(
        path=rel,
        header_len=max(0, min(graph.first_data, size) - 8),
        file_size=size,
        entries=tuple(entries),
        metadata={"format": "onnx", "producer": graph.producer, "parsed_bytes": str(graph.parsed)},
        digest=graph.digest,
    )
    return Opened(header, Recognized(packed, frozenset(packed), _method(counts)))


def _method(counts: dict[str, int]) -> str:
    """The file's method: its quantization when it has quantized weights, else its float
    type; the one most weights have (a table quantized uint8 beside int8 matrices: int8)."""
    quantized = {m: n for m, n in counts.items() if m.endswith("int8")}
    pool = quantized or counts
    return max(sorted(pool), key=lambda m: pool[m]) if pool else ""


def _bad(rel: str, model_id: str, problem: str, remedy: str = _REMEDY) -> MalformedFileError:
    return MalformedFileError(
        f"{rel} of {model_id} {problem}; {remedy}.", model_id=model_id, path=rel
    )


def _packed(
    w: names.Weight,
    rel: str,
    size: int,
    size_of: SizeOf,
    repo_files: Collection[str],
    model_id: str,
) -> Packed | None:
    """The packed tensor of weight `w`, or None when its data is stored in a way not read."""
    q = w.scale is not None
    code = (names.QUANTIZED if q else names.FLOATS)[w.data.data_type]
    data = _part(w.data, code, rel, size, size_of, repo_files, model_id)
    if data is None:
        return None
    parts = {"data": data}
    scale = zero_point = None
    if w.scale is not None:
        scale, parts["scale"] = _values(w.scale, rel, size, size_of, repo_files, model_id)
        if w.zero_point is not None:
            zero_point, parts["zero_point"] = _values(
                w.zero_point, rel, size, size_of, repo_files, model_id
            )
    shape = w.shape
    rows = shape[0] if shape else 1
    cols = w.data.numel // rows if rows else 0
    codec = OnnxCodec(
        dtype=code,
        method=f"onnx:{_METHODS[code]}",
        rows=rows,
        cols=cols,
        transposed=w.transposed,
        scale=scale,
        zero_point=zero_point,
        axis=w.axis,
    )
    return Packed(w.name, shape, parts, codec)


def _values(
    init: Initializer,
    rel: str,
    size: int,
    size_of: SizeOf,
    repo_files: Collection[str],
    model_id: str,
) -> tuple[Values, Part]:
    """Scales or zero points: read whole, raw or as packed varints."""
    code = {**names.FLOATS, **names.QUANTIZED}[init.data_type]
    varint = init.encoding == "varint" and init.external == {}
    part = _part(init, code, rel, size, size_of, repo_files, model_id, varint_ok=True)
    if part is None:
        raise _bad(rel, model_id, f"stores the scales {shown_name(init.name)} in a way not read")
    return Values(code, init.numel, part.nbytes, varint), part


def _part(
    init: Initializer,
    code: str,
    rel: str,
    size: int,
    size_of: SizeOf,
    repo_files: Collection[str],
    model_id: str,
    *,
    varint_ok: bool = False,
) -> Part | None:
    """Where `init`'s elements lie, checked against the file that holds them."""
    what = f"tensor {shown_name(init.name)}"
    nbytes = init.numel * element_size(code)
    if init.external:
        return _external(init, nbytes, rel, size_of, repo_files, model_id)
    if init.span is None or init.encoding not in ("raw", "varint"):
        return None
    start, end = init.span
    if init.encoding == "varint":
        # packed varints: at most 10 bytes a value
        if not varint_ok or end - start > 10 * init.numel:
            return None
    elif end - start != nbytes:
        raise _bad(
            rel, model_id, f"gives {what} {end - start} data bytes where {code}{list(init.dims)} "
            f"needs {nbytes}"
        )  # fmt: skip
    if end > size:
        raise _bad(rel, model_id, f"places {what} beyond the file's end")
    return Part(rel, start, end)


def _external(
    init: Initializer,
    nbytes: int,
    rel: str,
    size_of: SizeOf,
    repo_files: Collection[str],
    model_id: str,
) -> Part:
    what = f"tensor {shown_name(init.name)}"
    remedy = "keep the export's data file beside it under its name, or re-export the model"
    location = init.external.get("location", "")
    if (
        not location
        or len(location) > MAX_LOCATION
        or location in (".", "..")
        or any(c in location for c in "/\\\0:")
    ):
        raise _bad(
            rel, model_id, f"puts {what} in the external file {location[:80]!r}, which is not a "
            "plain file name beside it", remedy
        )  # fmt: skip
    path = posixpath.join(posixpath.dirname(rel), location)
    ext_size = size_of(path) if path in repo_files else None
    if ext_size is None:
        raise _bad(
            rel, model_id, f"puts {what} in {path}, which is not a readable file of the repo",
            remedy,
        )  # fmt: skip
    offset = _number(init.external.get("offset", "0"))
    length = _number(init.external.get("length", str(nbytes)))
    if offset is None or length is None or length != nbytes or offset + length > ext_size:
        raise _bad(
            rel, model_id, f"gives {what} the external span offset="
            f"{init.external.get('offset')!r} length={init.external.get('length')!r} in {path} "
            f"({ext_size} bytes), not the {nbytes} bytes it needs", remedy
        )  # fmt: skip
    return Part(path, offset, offset + length)


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None
