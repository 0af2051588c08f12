"""Weight files that are not safetensors (GGUF, ONNX): the table of their openers.

A layout row of `hub.layout` finds the files; the opener named here for that layout parses one
file from byte ranges (`ReadAt`), bounded like the safetensors header parser, and returns an
`Opened`: the file's stored tensors as a header (for the record, the content id and the
index) and the float tensors it packs (`hub.packed`), under the names the Hugging Face model
uses. Openers are imported when first used.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from importlib import import_module

from hub.packed import Recognized
from hub.safetensors_header import SafetensorsHeader

# (file, absolute start, end) -> exactly those bytes; raises MalformedFileError / HubError.
ReadAt = Callable[[str, int, int], bytes]
# file -> its size in bytes (None when the source cannot say).
SizeOf = Callable[[str], "int | None"]


@dataclass(frozen=True, slots=True)
class Opened:
    """One weight file read by a format's opener.

    Attributes:
        header: the file as a header: `entries` are its stored tensors under the float names
            (dtype: the storage code, `Q4_K`; shape: the float shape), `header_len` such that
            `data_start` is where its data begins, `digest` a content id of the header bytes.
        found: the packed float tensors (every entry the opener can read) and the method.
        variants: other files of the repo holding the same model in another format or
            quantization (`model-Q8_0.gguf`), for the record; not read.
    """

    header: SafetensorsHeader
    found: Recognized
    variants: tuple[str, ...] = ()


# layout name -> "module:function"; function(rel, read_at, size_of, names, model_id) -> Opened,
# `names` being every file of the repo (an ONNX file names its external data files).
FILE_FORMATS: dict[str, str] = {
    "gguf": "hub.gguf.opener:open_gguf",
    "onnx": "hub.onnx.opener:open_onnx",
}


def opener(layout: str) -> Callable[[str, ReadAt, SizeOf, Collection[str], str], Opened] | None:
    """The opener of a layout's files, or None for safetensors layouts."""
    target = FILE_FORMATS.get(layout)
    if target is None:
        return None
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)
