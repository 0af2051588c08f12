"""The file names a repo layout looks for, and where it looks: the weight and config names,
the GGUF and ONNX preference orders (which of several files is read), and the paths of a
listing that stay inside the repo. Pure functions of names; `hub.layout` decides with them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable

SINGLE_NAMES = ("model.safetensors", "diffusion_pytorch_model.safetensors")
INDEX_NAMES = ("model.safetensors.index.json", "diffusion_pytorch_model.safetensors.index.json")
ADAPTER_NAME = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
WEIGHT_SUFFIX = ".safetensors"
GGUF_SUFFIX = ".gguf"
ONNX_SUFFIX = ".onnx"
WEIGHT_SUFFIXES = (WEIGHT_SUFFIX, GGUF_SUFFIX, ONNX_SUFFIX)
CONFIG_NAME = "config.json"
# What an opener may need besides the weights: shard indexes, adapter configs, ONNX external
# data, and config.json (read only when the tensors look quantized: `hub.quant`).
_CANDIDATE_SUFFIXES = (
    *WEIGHT_SUFFIXES,
    ".safetensors.index.json",
    ADAPTER_CONFIG,
    ".onnx_data",
    ".onnx.data",
)
# GGUF quantization tags as file names carry them, most precise first: the file read when a
# repo holds several. A file with no known tag comes after all of these.
GGUF_PREFERENCE = (
    "F32", "BF16", "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_L", "Q5_K_S", "Q5_K", "Q5_1", "Q5_0",
    "Q4_K_M", "Q4_K_L", "Q4_K_S", "Q4_K", "Q4_1", "Q4_0", "IQ4_XS", "IQ4_NL", "Q3_K_L",
    "Q3_K_M", "Q3_K_S", "Q3_K", "IQ3_M", "IQ3_S", "IQ3_XS", "IQ3_XXS", "Q2_K_L", "Q2_K",
    "Q2_K_S", "IQ2_M", "IQ2_S", "IQ2_XS", "IQ2_XXS", "IQ1_M", "IQ1_S", "TQ2_0", "TQ1_0",
)  # fmt: skip
# ONNX exports, most precise first (optimum and transformers.js names).
ONNX_PREFERENCE = (
    "model.onnx", "model_fp16.onnx", "model_quantized.onnx", "model_int8.onnx",
    "model_uint8.onnx", "model_q4.onnx", "model_q4f16.onnx", "model_bnb4.onnx",
)  # fmt: skip
_GGUF_SPLIT = re.compile(r"-\d{5}-of-\d{5}\.gguf$")


def first_of(*names: str) -> Callable[[Collection[str]], list[str]]:
    """A finder taking the first of `names` a folder holds (a layout of one known file)."""

    def find(here: Collection[str]) -> list[str]:
        return next(([n] for n in names if n in here), [])

    return find


def all_ending(suffix: str) -> Callable[[Collection[str]], list[str]]:
    """A finder taking every file of a folder ending in `suffix`, in name order."""

    def find(here: Collection[str]) -> list[str]:
        return sorted(n for n in here if n.endswith(suffix))

    return find


def _gguf_rank(stem: str) -> tuple[int, str]:
    upper = stem.upper()
    for i, tag in enumerate(GGUF_PREFERENCE):
        if re.search(rf"(?:^|[-_.]){tag}(?:$|[-_.])", upper):
            return (i, stem)
    return (len(GGUF_PREFERENCE), stem)


def gguf_choices(here: Collection[str]) -> list[list[str]]:
    """The GGUF models of a folder, most precise first, each the list of its files (the parts
    of a split file together). Vision projectors (`mmproj-*`) are no model of their own."""
    stems: dict[str, list[str]] = {}
    for n in here:
        if n.endswith(GGUF_SUFFIX) and not n.lower().startswith("mmproj"):
            stems.setdefault(_GGUF_SPLIT.sub("", n).removesuffix(GGUF_SUFFIX), []).append(n)
    return [sorted(stems[s]) for s in sorted(stems, key=_gguf_rank)]


def onnx_choices(here: Collection[str]) -> list[list[str]]:
    """The ONNX exports of a folder, most precise first (`ONNX_PREFERENCE`, then by name)."""
    found = [n for n in here if n.endswith(ONNX_SUFFIX)]
    rank = {name: i for i, name in enumerate(ONNX_PREFERENCE)}
    return [[n] for n in sorted(found, key=lambda n: (rank.get(n, len(rank)), n))]


def best(choices: Callable[[Collection[str]], list[list[str]]]) -> Callable:
    """A finder taking the first (most precise) of `choices`; the others are variants."""

    def find(here: Collection[str]) -> list[str]:
        found = choices(here)
        return found[0] if found else []

    return find


def join_path(folder: str, name: str) -> str:
    """`name` inside `folder`, relative to the repo root ("" is the root)."""
    return f"{folder}/{name}" if folder else name


def in_folder(names: Iterable[str], folder: str) -> set[str]:
    """Base names of the files directly in `folder` ("" for the root)."""
    prefix = f"{folder}/" if folder else ""
    return {n[len(prefix) :] for n in names if n.startswith(prefix) and "/" not in n[len(prefix) :]}


def subfolders(names: Iterable[str]) -> list[str]:
    """The direct subfolders of the root that hold files, hidden ones (`.git`) left out."""
    return sorted({n.split("/", 1)[0] for n in names if "/" in n and not n.startswith(".")})


def safe_path(name: str) -> bool:
    """Whether a file name from a listing stays inside the repo when joined to its folder: a
    relative `/`-separated path without empty, `.` or `..` parts, backslashes or NULs."""
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def shallow(names: Iterable[str]) -> list[str]:
    """Files at the root or in a direct, non-hidden subfolder: where weights are looked for.
    A name that would leave the repo (`safe_path`) is never looked at."""
    return [
        n
        for n in names
        if safe_path(n) and (n.count("/") == 0 or (n.count("/") == 1 and n[0] != "."))
    ]


def candidates(names: Iterable[str]) -> list[str]:
    """Files an opener may have to read: weights, shard indexes, adapter configs, one level deep."""
    return sorted(n for n in shallow(names) if n.endswith(_CANDIDATE_SUFFIXES) or n == CONFIG_NAME)


def has_weights(names: Iterable[str]) -> bool:
    """Whether any weight file lies where `weight_groups` looks (a cheap check before I/O)."""
    return any(n.endswith(WEIGHT_SUFFIXES) for n in shallow(names))
