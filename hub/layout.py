"""Which files of a repo hold its weights, and how they group: the one place that decides.

A repo (a local folder or a Hub listing) is seen as a list of file paths relative to its root,
POSIX separators, plus a function that reads one small file (a shard index, an adapter config).
The same code then serves every source, so a folder and the same files on the Hub are read
alike.

Which weights a folder holds is the first row of `LAYOUTS` that finds files in it, looked for
first at the root and, when the root has none, in each direct subfolder that is not hidden (a
diffusers pipeline's `transformer/`, `unet/`, `text_encoder/` ...):

1. `single`: `model.safetensors` (or diffusers' `diffusion_pytorch_model.safetensors`);
2. `sharded`: a shard index `model.safetensors.index.json` (or the diffusers name): its
   `weight_map` names the shards, each a file of the repo inside it;
3. `adapter`: `adapter_model.safetensors`, a PEFT/LoRA adapter;
4. `loose`: every other `*.safetensors` of the folder, in name order;
5. `gguf`: a llama.cpp GGUF file (or the parts of a split one, `-00001-of-00003.gguf`). A repo
   holding one GGUF per quantization level is one model: the most precise file is read
   (`GGUF_PREFERENCE`), the others are its `variants`;
6. `onnx`: an ONNX export (`model.onnx`; transformers.js keeps them in `onnx/`), the most
   precise of `ONNX_PREFERENCE` read, the others variants.

Safetensors come first: a repo that holds the original weights and a GGUF of them is read from
the original. A new weight format is a new row, and an opener in `hub.formats`. Pickle
checkpoints (`.bin`, `.pt`, `.pth`, `.ckpt`, `.pkl`) are never opened: they only name what is
missing in the `no_safetensors` message.

The parts live beside it, re-exported here: `hub.layout_names` (file names, preference orders,
paths of a listing), `hub.layout_voice` (how errors are worded), `hub.layout_small` (shard
indexes and adapter configs).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from hub.layout_names import (
    ADAPTER_CONFIG,
    ADAPTER_NAME,
    CONFIG_NAME,
    GGUF_PREFERENCE,
    GGUF_SUFFIX,
    INDEX_NAMES,
    ONNX_PREFERENCE,
    ONNX_SUFFIX,
    PICKLE_SUFFIXES,
    SINGLE_NAMES,
    WEIGHT_SUFFIX,
    WEIGHT_SUFFIXES,
    all_ending,
    best,
    candidates,
    first_of,
    gguf_choices,
    has_weights,
    in_folder,
    join_path,
    onnx_choices,
    safe_path,
    subfolders,
)
from hub.layout_small import SMALL_FILE_MAX, ReadSmall, adapter_base, read_index
from hub.layout_voice import HUB_VOICE, LOCAL_VOICE, Voice, no_safetensors

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_NAME",
    "CONFIG_NAME",
    "GGUF_PREFERENCE",
    "GGUF_SUFFIX",
    "HUB_VOICE",
    "INDEX_NAMES",
    "LAYOUTS",
    "LOCAL_VOICE",
    "ONNX_PREFERENCE",
    "ONNX_SUFFIX",
    "PICKLE_SUFFIXES",
    "SINGLE_NAMES",
    "SMALL_FILE_MAX",
    "WEIGHT_SUFFIX",
    "WEIGHT_SUFFIXES",
    "Layout",
    "ReadSmall",
    "Voice",
    "WeightGroup",
    "adapter_base",
    "candidates",
    "gguf_choices",
    "has_weights",
    "no_safetensors",
    "onnx_choices",
    "read_index",
    "safe_path",
    "subfolders",
    "weight_groups",
]


@dataclass(frozen=True, slots=True)
class Layout:
    """One recognised way a folder stores its weights.

    Attributes:
        name: `single`, `sharded`, `adapter`, `loose`, `gguf`, `onnx`.
        find: the file names of a folder this layout takes ([] when it does not apply).
        indexed: the file found is a shard index whose `weight_map` names the weight files.
        adapter: the weights are an adapter (PEFT/LoRA), not a whole model.
        choices: every file set of the folder this layout could read, the one read first; the
            others are recorded as variants.
    """

    name: str
    find: Callable[[Collection[str]], list[str]]
    indexed: bool = False
    adapter: bool = False
    # the same model in other files, not read (other GGUF quantizations, ONNX variants)
    choices: Callable[[Collection[str]], list[list[str]]] | None = None


# In order of preference: the first row that finds files in a folder decides.
LAYOUTS: tuple[Layout, ...] = (
    Layout("single", first_of(*SINGLE_NAMES)),
    Layout("sharded", first_of(*INDEX_NAMES), indexed=True),
    Layout("adapter", first_of(ADAPTER_NAME), adapter=True),
    Layout("loose", all_ending(WEIGHT_SUFFIX)),
    Layout("gguf", best(gguf_choices), choices=gguf_choices),
    Layout("onnx", best(onnx_choices), choices=onnx_choices),
)


@dataclass(frozen=True, slots=True)
class WeightGroup:
    """The weight files of one folder of a repo.

    Attributes:
        folder: the folder, relative to the repo root ("" for the root itself).
        layout: the `Layout.name` that chose the files.
        files: the weight files, relative to the repo root.
        weight_map: tensor name -> file, from a shard index (empty for other layouts).
        adapter: the files are an adapter's.
        variants: other files of the folder that hold the same model differently (other GGUF
            quantizations, ONNX variants), relative to the repo root; not read.
    """

    folder: str
    layout: str
    files: tuple[str, ...]
    weight_map: Mapping[str, str] = field(default_factory=dict)
    adapter: bool = False
    variants: tuple[str, ...] = ()


def _group(
    names: Collection[str],
    read_small: ReadSmall,
    folder: str,
    *,
    model_id: str,
    voice: Voice,
    root: str | None,
) -> WeightGroup | None:
    here = in_folder(names, folder)
    for layout in LAYOUTS:
        found = layout.find(here)
        if not found:
            continue
        if layout.indexed:
            index = join_path(folder, found[0])
            wm = read_index(names, read_small, index, model_id=model_id, voice=voice, root=root)
            files = tuple(sorted(set(wm.values())))
            # an empty weight_map holds nothing: look on, as for a folder without weights
            return WeightGroup(folder, layout.name, files, wm, layout.adapter) if files else None
        files = tuple(join_path(folder, n) for n in found)
        others = layout.choices(here)[1:] if layout.choices else []
        variants = tuple(join_path(folder, n) for names_ in others for n in names_)
        return WeightGroup(folder, layout.name, files, {}, layout.adapter, variants)
    return None


def weight_groups(
    names: Iterable[str],
    read_small: ReadSmall,
    *,
    model_id: str,
    voice: Voice,
    root: str | None = None,
) -> tuple[WeightGroup, ...]:
    """The weight files of a repo, grouped by folder: the root's, else each subfolder's.

    Args:
        names: every file of the repo, relative to its root, POSIX separators.
        read_small: reads one (small) file of the repo whole, by its relative path.
        model_id: the model, for messages.
        voice: how messages are worded (`LOCAL_VOICE`, `HUB_VOICE`).
        root: the local folder, for messages and error paths; None for a Hub repo.

    Raises:
        NoSafetensorsError: no weights at the root or one folder down (pickles named).
        MalformedFileError: a shard index that does not parse or names a missing shard.
    """
    names = set(names)

    def group(folder: str) -> WeightGroup | None:
        return _group(names, read_small, folder, model_id=model_id, voice=voice, root=root)

    root_group = group("")
    if root_group is not None:
        return (root_group,)
    found = tuple(g for g in map(group, subfolders(names)) if g is not None)
    if not found:
        raise no_safetensors(names, model_id=model_id, voice=voice, root=root)
    return found
