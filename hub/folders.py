"""Finding model folders below a path: what `lineage add PATH` means."""

from __future__ import annotations

import os
from pathlib import Path

from hub.errors import ModelNotFoundError

# Files that make a folder a model folder.
_MARKERS = ("config.json", "model_index.json", "adapter_config.json")
_MARKER_SUFFIXES = (".safetensors", ".bin")
MAX_SEARCH_DEPTH = 3


def _subfolders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


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
                    found.append((sub.relative_to(root).as_posix(), sub))
                else:
                    below.append(sub)
        frontier = below
    return sorted(found)
