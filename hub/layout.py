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
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from hub import bounded_json
from hub.errors import HubError, MalformedFileError, NoSafetensorsError

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
# A shard index or adapter config larger than this is not what it claims to be: refused unread.
SMALL_FILE_MAX = 64 * 2**20
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
# A Hub repo id (`namespace/name`): what an adapter's declared base must look like to be kept.
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

ReadSmall = Callable[[str], bytes]


def _first_of(*names: str) -> Callable[[Collection[str]], list[str]]:
    def find(here: Collection[str]) -> list[str]:
        return next(([n] for n in names if n in here), [])

    return find


def _all_ending(suffix: str) -> Callable[[Collection[str]], list[str]]:
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


def _best(choices: Callable[[Collection[str]], list[list[str]]]) -> Callable:
    def find(here: Collection[str]) -> list[str]:
        found = choices(here)
        return found[0] if found else []

    return find


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
    Layout("single", _first_of(*SINGLE_NAMES)),
    Layout("sharded", _first_of(*INDEX_NAMES), indexed=True),
    Layout("adapter", _first_of(ADAPTER_NAME), adapter=True),
    Layout("loose", _all_ending(WEIGHT_SUFFIX)),
    Layout("gguf", _best(gguf_choices), choices=gguf_choices),
    Layout("onnx", _best(onnx_choices), choices=onnx_choices),
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


@dataclass(frozen=True, slots=True)
class Voice:
    """How a source words layout errors: a folder and a Hub repo call for different remedies.

    Templates are `str.format`ted with `model_id`, `root`, and where they apply `where` (the
    index), `shard` (its entry), `folder` (the index's folder under `root`), `shown` (pickles).
    """

    bad_index: str
    bad_shard: str
    pickles: str
    nothing: str


LOCAL_VOICE = Voice(
    bad_index="{where} of {model_id} has no valid weight_map; re-download it or re-save the model.",
    bad_shard=(
        "{where} of {model_id} lists the shard {shard!r}, which is not a file inside {folder}; "
        "download the missing shard or re-save the model."
    ),
    pickles=(
        "{model_id} at {root} has only pickle checkpoints ({shown}), which are never "
        "unpickled; convert them to safetensors (load them yourself in a trusted environment "
        "and save with safetensors.torch.save_file, or use the `convert` Space)."
    ),
    nothing=(
        "{model_id} at {root} holds no *.safetensors, *.gguf or *.onnx weights at its root or one "
        "folder down; add the model's weight files or point at the folder that holds them."
    ),
)
HUB_VOICE = Voice(
    bad_index="{where} of {model_id} has no valid weight_map; re-save the model.",
    bad_shard=(
        "{where} of {model_id} lists the shard {shard!r}, which is not a file of the repo; "
        "upload the missing shard or re-save the model."
    ),
    pickles=(
        "{model_id} has only pickle checkpoints ({shown}), which are never downloaded or "
        "unpickled; ask its authors for safetensors weights (the `convert` Space does it)."
    ),
    nothing=(
        "{model_id} holds no *.safetensors, *.gguf or *.onnx weights at its root or one folder "
        "down."
    ),
)


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _in_folder(names: Iterable[str], folder: str) -> set[str]:
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


def _shallow(names: Iterable[str]) -> list[str]:
    """Files at the root or in a direct, non-hidden subfolder: where weights are looked for.
    A name that would leave the repo (`safe_path`) is never looked at."""
    return [
        n
        for n in names
        if safe_path(n) and (n.count("/") == 0 or (n.count("/") == 1 and n[0] != "."))
    ]


def candidates(names: Iterable[str]) -> list[str]:
    """Files an opener may have to read: weights, shard indexes, adapter configs, one level deep."""
    return sorted(n for n in _shallow(names) if n.endswith(_CANDIDATE_SUFFIXES) or n == CONFIG_NAME)


def has_weights(names: Iterable[str]) -> bool:
    """Whether any weight file lies where `weight_groups` looks (a cheap check before I/O)."""
    return any(n.endswith(WEIGHT_SUFFIXES) for n in _shallow(names))


def _place(root: str | None, rel: str) -> str | None:
    return posixpath.join(root, rel) if root is not None and rel else root


def read_index(
    names: Collection[str],
    read_small: ReadSmall,
    index: str,
    *,
    model_id: str,
    voice: Voice,
    root: str | None = None,
) -> dict[str, str]:
    """`weight_map` of a shard index: tensor name -> shard path relative to the repo root.

    Args:
        names: every file of the repo, relative to its root.
        read_small: reads one file of the repo whole.
        index: the index file, relative to the root.
        model_id, voice, root: how errors name the model and where it lies (`root`: the folder
            of a local model, None for a Hub repo).

    Raises:
        MalformedFileError: no `weight_map` of strings, or a shard that is not a file of the repo
            inside it (`../x`, `/etc/x` are never followed).
    """
    folder = posixpath.dirname(index)
    try:
        doc = bounded_json.loads(read_small(index), max_bytes=SMALL_FILE_MAX)
    except (OSError, bounded_json.JsonBoundError):
        doc = None
    wm = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(wm, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in wm.items()
    ):
        raise MalformedFileError(
            voice.bad_index.format(where=index, model_id=model_id),
            model_id=model_id,
            path=_place(root, index) or index,
        )
    out = {}
    for tensor, shard in wm.items():
        rel = posixpath.normpath(_join(folder, shard))
        if shard.startswith("/") or rel == ".." or rel.startswith("../") or rel not in names:
            raise MalformedFileError(
                voice.bad_shard.format(
                    where=index,
                    model_id=model_id,
                    shard=shard,
                    folder=_place(root, folder),
                ),
                model_id=model_id,
                path=_place(root, rel) or index,
            )
        out[tensor] = rel
    return out


def _group(
    names: Collection[str],
    read_small: ReadSmall,
    folder: str,
    *,
    model_id: str,
    voice: Voice,
    root: str | None,
) -> WeightGroup | None:
    here = _in_folder(names, folder)
    for layout in LAYOUTS:
        found = layout.find(here)
        if not found:
            continue
        if layout.indexed:
            index = _join(folder, found[0])
            wm = read_index(names, read_small, index, model_id=model_id, voice=voice, root=root)
            files = tuple(sorted(set(wm.values())))
            # an empty weight_map holds nothing: look on, as for a folder without weights
            return WeightGroup(folder, layout.name, files, wm, layout.adapter) if files else None
        files = tuple(_join(folder, n) for n in found)
        others = layout.choices(here)[1:] if layout.choices else []
        variants = tuple(_join(folder, n) for names_ in others for n in names_)
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


def no_safetensors(
    names: Iterable[str], *, model_id: str, voice: Voice, root: str | None = None
) -> NoSafetensorsError:
    """The error for a repo without weights, naming its pickle checkpoints when it has some."""
    pickles = sorted(n for n in _shallow(names) if n.endswith(PICKLE_SUFFIXES))
    if pickles:
        shown = ", ".join(pickles[:3]) + (" ..." if len(pickles) > 3 else "")
        msg = voice.pickles.format(model_id=model_id, root=root, shown=shown)
    else:
        msg = voice.nothing.format(model_id=model_id, root=root)
    return NoSafetensorsError(msg, model_id=model_id, path=root)


def adapter_base(names: Collection[str], read_small: ReadSmall) -> str | None:
    """The Hub repo an adapter declares as its base (`adapter_config.json`), when it names one.

    Only a repo id (`namespace/name`) is kept: a local path (`/data/llama`, `./base`) names no
    model another source can find. Never raises: a broken config is no declaration.
    """
    if ADAPTER_CONFIG not in names:
        return None
    try:
        doc = bounded_json.loads(read_small(ADAPTER_CONFIG), max_bytes=SMALL_FILE_MAX)
    except (OSError, bounded_json.JsonBoundError, HubError):
        return None
    base = doc.get("base_model_name_or_path") if isinstance(doc, dict) else None
    return base if isinstance(base, str) and _REPO_ID.match(base) else None
