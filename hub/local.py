"""Models in local folders laid out like a Hub repo (config.json, *.safetensors, README.md).

Which weights a folder holds, in this order of preference, first at its root and, when the root
has no safetensors at all, in each direct subfolder (a diffusers pipeline's `transformer/`,
`unet/`, `text_encoder/` ...):

1. `model.safetensors` (or diffusers' `diffusion_pytorch_model.safetensors`);
2. a sharded checkpoint `model.safetensors.index.json` (or the diffusers name): its
   `weight_map` names the shards, and each must exist;
3. `adapter_model.safetensors`, a PEFT/LoRA adapter (`record.extra['adapter']` is True);
4. every other `*.safetensors` of the folder, in name order.

Tensor names are kept as stored. The same name in two files of one folder is an error; the same
name in two subfolders (two text encoders of one pipeline) is resolved by qualifying just those
names as `subfolder/name`. Pickle checkpoints (`.bin`, `.pt`, `.pth`, `.ckpt`) are never opened.
Data is read with seek + read of the asked range only; files are never loaded whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fingerprint.protocol import TensorInfo
from hub.card import declared_bases, split_front_matter
from hub.errors import MalformedFileError, ModelNotFoundError, NoSafetensorsError
from hub.records import ModelRecord
from hub.safetensors_header import SafetensorsHeader, TensorEntry, read_header

_SINGLE_NAMES = ("model.safetensors", "diffusion_pytorch_model.safetensors")
_INDEX_NAMES = ("model.safetensors.index.json", "diffusion_pytorch_model.safetensors.index.json")
ADAPTER_NAME = "adapter_model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Files that make a folder a model folder for `find_model_dirs`.
_MARKERS = ("config.json", "model_index.json", "adapter_config.json")
_MARKER_SUFFIXES = (".safetensors", ".bin")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
MAX_SEARCH_DEPTH = 3


@dataclass(frozen=True, slots=True)
class _Located:
    file: str  # relative to the model folder, POSIX separators
    entry: TensorEntry


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _read_index(index: Path, root: Path, model_id: str) -> dict[str, str]:
    """`weight_map` of a sharded checkpoint: tensor name -> shard path relative to `root`."""
    where = _rel(index, root)
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        doc = None
    wm = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(wm, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in wm.items()
    ):
        raise MalformedFileError(
            f"{where} of {model_id} has no valid weight_map; re-download it or re-save the model.",
            model_id=model_id,
            path=str(index),
        )
    out = {}
    for name, shard in wm.items():
        shard_path = index.parent / shard
        # A shard path leaving the folder (`../x`, `/etc/x`) is never followed.
        if Path(shard).is_absolute() or ".." in Path(shard).parts or not shard_path.is_file():
            raise MalformedFileError(
                f"{where} of {model_id} lists the shard {shard!r}, which is not a file inside "
                f"{index.parent}; download the missing shard or re-save the model.",
                model_id=model_id,
                path=str(shard_path),
            )
        out[name] = _rel(shard_path, root)
    return out


def _select_in(folder: Path, root: Path, model_id: str) -> tuple[list[str], dict[str, str], bool]:
    """Weight files of one folder (relative to root), the index's weight_map, and adapter-ness."""
    for name in _SINGLE_NAMES:
        if (folder / name).is_file():
            return [_rel(folder / name, root)], {}, False
    for name in _INDEX_NAMES:
        if (folder / name).is_file():
            wm = _read_index(folder / name, root, model_id)
            return sorted(set(wm.values())), wm, False
    if (folder / ADAPTER_NAME).is_file():
        return [_rel(folder / ADAPTER_NAME, root)], {}, True
    files = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    return [_rel(p, root) for p in files], {}, False


def _subfolders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _pickles(root: Path) -> list[str]:
    found = [p for p in root.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES]
    for sub in _subfolders(root):
        found += [p for p in sub.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES]
    return sorted(_rel(p, root) for p in found)


def _no_safetensors(root: Path, model_id: str) -> NoSafetensorsError:
    pickles = _pickles(root)
    if pickles:
        shown = ", ".join(pickles[:3]) + (" ..." if len(pickles) > 3 else "")
        msg = (
            f"{model_id} at {root} has only pickle checkpoints ({shown}), which are never "
            "unpickled; convert them to safetensors (load them yourself in a trusted environment "
            "and save with safetensors.torch.save_file, or use the `convert` Space)."
        )
    else:
        msg = (
            f"{model_id} at {root} holds no *.safetensors weights at its root or one folder down; "
            "add the model's safetensors files or point at the folder that holds them."
        )
    return NoSafetensorsError(msg, model_id=model_id, path=str(root))


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}  # metadata only: a broken config never stops reading the weights
    return doc if isinstance(doc, dict) else {}


def _index_tensors(
    groups: list[tuple[str, list[str], dict[str, str]]],
    headers: dict[str, SafetensorsHeader],
    model_id: str,
) -> dict[str, _Located]:
    """Tensor name -> where it lives, over the folders (`groups`) that hold weights."""
    per_group: list[tuple[str, dict[str, _Located]]] = []
    for prefix, files, weight_map in groups:
        seen: dict[str, _Located] = {}
        for rel in files:
            for e in headers[rel].entries:
                if e.name in seen:
                    raise MalformedFileError(
                        f"{model_id} stores the tensor {e.name!r} in both {seen[e.name].file} and "
                        f"{rel}; remove the stray file or re-save the model.",
                        model_id=model_id,
                        path=rel,
                    )
                seen[e.name] = _Located(rel, e)
        for name, rel in weight_map.items():
            if name not in seen or seen[name].file != rel:
                raise MalformedFileError(
                    f"the index of {model_id} puts the tensor {name!r} in {rel}, which does not "
                    "hold it; re-download the shards or re-save the model.",
                    model_id=model_id,
                    path=rel,
                )
        per_group.append((prefix, seen))
    counts: dict[str, int] = {}
    for _, seen in per_group:
        for name in seen:
            counts[name] = counts.get(name, 0) + 1
    out: dict[str, _Located] = {}
    for prefix, seen in per_group:
        for name, loc in seen.items():
            out[f"{prefix}/{name}" if counts[name] > 1 else name] = loc
    return out


# samples of the data section hashed into a local revision: catches weights changed in place
REVISION_SAMPLES = 64
REVISION_SAMPLE_BYTES = 1024


def _content_id(root: Path, headers: dict[str, SafetensorsHeader]) -> str:
    """sha1 over each weight file's name, size, header and 64 KiB sampled across its data.

    Deterministic (two copies of a model get the same id) and cheap (64 small reads per
    file), and it changes when weights are rewritten in place with the same shapes, which a
    header-only id would miss.
    """
    h = hashlib.sha1()
    for rel in sorted(headers):
        hd = headers[rel]
        h.update(f"{rel}\0{hd.file_size}\0{hd.digest}\n".encode())
        size = hd.file_size or 0
        start = hd.data_start
        span = max(0, size - start - REVISION_SAMPLE_BYTES)
        with open(root / rel, "rb") as f:
            for i in range(REVISION_SAMPLES):
                f.seek(start + span * i // max(1, REVISION_SAMPLES - 1))
                h.update(f.read(REVISION_SAMPLE_BYTES))
    return h.hexdigest()


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, date):  # YAML turns bare dates into date/datetime
        return value.isoformat()
    return None


def _library(card: dict, root: Path, config: dict, adapter: bool) -> str | None:
    if _text(card.get("library_name")):
        return _text(card.get("library_name"))
    if adapter or (root / "adapter_config.json").is_file():
        return "peft"
    if "_diffusers_version" in config or (root / "model_index.json").is_file():
        return "diffusers"
    if "transformers_version" in config or "architectures" in config:
        return "transformers"
    return None


def _build_record(
    root: Path,
    model_id: str,
    headers: dict[str, SafetensorsHeader],
    *,
    adapter: bool,
    source: str,
    revision: str | None,
) -> ModelRecord:
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8", errors="replace") if readme.is_file() else ""
    card, _ = split_front_matter(text)
    raw_tags = card.get("tags")
    tags = (
        [raw_tags] if isinstance(raw_tags, str) else raw_tags if isinstance(raw_tags, list) else []
    )
    tags = [t.strip() for t in tags if isinstance(t, str) and t.strip()]
    config = _read_json(root / "config.json")
    extra: dict = {"adapter": adapter}
    adapter_base = _read_json(root / "adapter_config.json").get("base_model_name_or_path")
    if isinstance(adapter_base, str) and _REPO_ID.match(adapter_base):
        extra["adapter_base"] = adapter_base
    return ModelRecord(
        id=model_id,
        revision=revision or _content_id(root, headers),
        author=model_id.split("/", 1)[0] if "/" in model_id else None,
        created_at=_text(card.get("created_at") or card.get("createdAt")),
        last_modified=_text(card.get("last_modified") or card.get("lastModified")),
        library=_library(card, root, config, adapter),
        pipeline_tag=_text(card.get("pipeline_tag")),
        license=_text(card.get("license")),
        tags=tuple(tags),
        declared_bases=declared_bases(card, tags),
        parameter_count=sum(h.parameter_count for h in headers.values()),
        source=source,
        path=str(root),
        extra=extra,
    )


class TensorIndex:
    """Where each tensor of a model lies: what LocalModel and hub.hubsource.HubModel share.

    Subclasses set `record` and `_tensors` and implement `read_range` on top of `locate_range`.
    """

    record: ModelRecord
    _tensors: dict[str, _Located]

    @property
    def model_id(self) -> str:
        return self.record.id

    def tensor_infos(self) -> Sequence[TensorInfo]:
        """Every tensor, sorted by name."""
        return [
            TensorInfo(name=n, dtype=loc.entry.dtype, shape=loc.entry.shape)
            for n, loc in sorted(self._tensors.items())
        ]

    def entry(self, name: str) -> TensorEntry:
        """Where tensor `name` lies in its file (absolute offsets); KeyError if unknown."""
        return self._locate(name).entry

    def _locate(self, name: str) -> _Located:
        try:
            return self._tensors[name]
        except KeyError:
            raise KeyError(f"{self.model_id} has no tensor named {name!r}") from None

    def locate_range(self, name: str, start: int, end: int) -> tuple[str, int, int]:
        """(file, absolute start, absolute end) of bytes [start, end) of tensor `name`.

        Raises:
            KeyError: no such tensor.
            ValueError: the range is not within the tensor.
        """
        loc = self._locate(name)
        size = loc.entry.nbytes
        if not (0 <= start <= end <= size):
            raise ValueError(
                f"range [{start}, {end}) is outside tensor {name!r} of {self.model_id} ({size} bytes)"
            )
        return loc.file, loc.entry.start + start, loc.entry.start + end


class LocalModel(TensorIndex):
    """A model in a local folder; satisfies `fingerprint.protocol.TensorSource`.

    Attributes:
        path: the model folder.
        record: what the folder says about the model (card, config, headers).
        revision: `record.revision`: the commit for cached Hub snapshots, else a content id
            from the weight files' headers and sizes.
        files: the weight files read, relative to `path`, POSIX separators.
        bytes_read: bytes read from disk so far, headers included.
    """

    def __init__(
        self,
        path: Path,
        record: ModelRecord,
        headers: dict[str, SafetensorsHeader],
        tensors: dict[str, _Located],
    ):
        self.path = path
        self.record = record
        self.headers = headers
        self.files: tuple[str, ...] = tuple(headers)
        self._tensors = tensors
        self._lock = threading.Lock()
        self.bytes_read = sum(8 + h.header_len for h in headers.values())
        # read_range opens the file per call and counts under a lock: safe to call from threads
        self.parallel_reads = 4

    @property
    def revision(self) -> str:
        return self.record.revision or ""

    def read_range(self, name: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of tensor `name`'s data, offsets relative to its first byte.

        Raises:
            KeyError: no such tensor.
            ValueError: the range is not within the tensor.
            MalformedFileError: the file is shorter than its header says (changed on disk).
        """
        file, first, last = self.locate_range(name, start, end)
        with open(self.path / file, "rb") as f:
            f.seek(first)
            data = f.read(last - first)
        with self._lock:
            self.bytes_read += len(data)
        if len(data) != end - start:
            raise MalformedFileError(
                f"{file} of {self.model_id} ended before the data of {name!r}; "
                "re-download the file or re-export it with safetensors.",
                model_id=self.model_id,
                path=str(self.path / file),
            )
        return data

    def __repr__(self) -> str:
        return f"LocalModel({self.model_id!r}, path={str(self.path)!r}, files={len(self.files)})"


def open_local_model(
    path: str | os.PathLike[str],
    *,
    model_id: str | None = None,
    source: str = "local",
    revision: str | None = None,
) -> LocalModel:
    """Open a model folder, reading only its safetensors headers, card and config.

    Args:
        path: the model folder.
        model_id: id to give the model; default the folder's name.
        source: `record.source` ("local"; the cache source passes "cache").
        revision: `record.revision` when known (a cached snapshot's commit); default a content id.

    Raises:
        ModelNotFoundError: no such folder.
        NoSafetensorsError: no safetensors weights (pickle-only folders included).
        MalformedFileError: a weight file or shard index that does not parse, a missing shard,
            or a tensor stored twice.
    """
    root = Path(path)
    mid = model_id or root.resolve().name
    if not root.is_dir():
        raise ModelNotFoundError(
            f"{mid}: no model folder at {root}; check the path.", model_id=mid, path=str(root)
        )
    groups: list[tuple[str, list[str], dict[str, str]]] = []
    files, wm, adapter = _select_in(root, root, mid)
    if files:
        groups.append(("", files, wm))
    else:
        for sub in _subfolders(root):
            sub_files, sub_wm, sub_adapter = _select_in(sub, root, mid)
            if sub_files:
                groups.append((sub.name, sub_files, sub_wm))
                adapter = adapter or sub_adapter
    if not groups:
        raise _no_safetensors(root, mid)
    headers = {rel: read_header(root / rel, model_id=mid) for _, fs, _ in groups for rel in fs}
    tensors = _index_tensors(groups, headers, mid)
    record = _build_record(root, mid, headers, adapter=adapter, source=source, revision=revision)
    model = LocalModel(root, record, headers, tensors)
    if revision is None:  # the content id sampled the data: count those reads too
        model.bytes_read += sum(
            min(REVISION_SAMPLES * REVISION_SAMPLE_BYTES, (h.file_size or 0) - h.data_start)
            for h in headers.values()
        )
    return model


def _is_model_dir(p: Path) -> bool:
    if any((p / m).is_file() for m in _MARKERS):
        return True
    return any(c.is_file() and c.suffix in _MARKER_SUFFIXES for c in p.iterdir())


def find_model_dirs(path: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """The model folders `lineage add PATH` means, as (id, folder) pairs sorted by id.

    A model folder has a config.json, model_index.json, adapter_config.json, or a *.safetensors
    or *.bin file at its root. If PATH is one, its id is the folder's name (`_name_or_path` in
    config.json is not used: fine-tunes usually carry their base's id there). Otherwise model
    folders are searched below PATH, at most 3 levels down, without entering a model folder
    or a hidden one, and each id is the path relative to PATH (`org/name`).

    Raises:
        ModelNotFoundError: PATH does not exist or is a file.
    """
    root = Path(path)
    if not root.is_dir():
        what = "is a file; pass the folder that holds it" if root.exists() else "does not exist"
        raise ModelNotFoundError(f"{root} {what}.", path=str(root))
    if _is_model_dir(root):
        return [(root.resolve().name, root)]
    found: list[tuple[str, Path]] = []
    frontier = [root]
    for _ in range(MAX_SEARCH_DEPTH):
        below = []
        for d in frontier:
            for sub in _subfolders(d):
                if _is_model_dir(sub):
                    found.append((_rel(sub, root), sub))
                else:
                    below.append(sub)
        frontier = below
    return sorted(found)
