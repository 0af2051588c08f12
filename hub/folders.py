"""Finding model folders below a path, and the id a folder gets: what `lineage add PATH` means.

The id of a model folder (`folder_id`), in order:

1. The card names the model: README.md front matter `model_id: org/name` whose last part is
   the folder's name (a copy renamed on disk no longer claims the id).
2. Otherwise the folder's last two path components, `org/name`, as on the Hub
   (`models/org/name` is `org/name`, `~/a/all-MiniLM-L6-v2` is `a/all-MiniLM-L6-v2`). A folder
   right below the root of a filesystem (`/model`) is its name alone; the root itself is
   `root`.

`_name_or_path` in config.json is never used: save_pretrained writes the id the weights were
loaded from, so a fine-tune saved into a folder named like its base would take the base's id
and every verdict about it would be about the wrong model. Components are taken from the path
as given, made absolute without following symlinks, so a folder linked into `org/name` keeps
that id.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath

from hub.card import read_card
from hub.errors import ModelNotFoundError

# Files that make a folder a model folder.
_MARKERS = ("config.json", "model_index.json", "adapter_config.json")
# weight files (GGUF and ONNX included) and pickles (named, never read) mark a model folder
_MARKER_SUFFIXES = (".safetensors", ".gguf", ".onnx", ".bin")
MAX_SEARCH_DEPTH = 3
ROOT_ID = "root"
# an explicit card id: `name` or `org/name` in the characters the Hub allows
_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")


def _subfolders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_model_dir(p: Path) -> bool:
    if any((p / m).is_file() for m in _MARKERS):
        return True
    return any(c.is_file() and c.suffix in _MARKER_SUFFIXES for c in p.iterdir())


def is_model_id(text: str) -> bool:
    """Whether `text` is shaped like a Hub model id: `name` or `org/name`."""
    return bool(_ID.match(text))


def path_id(folder: PurePath) -> str:
    """The id an absolute folder path gives: its last two components (`org/name`).

    One component (`/model`) gives that name; none (a filesystem root) gives `root`.
    """
    parts = folder.parts[1:] if folder.anchor else folder.parts
    return "/".join(parts[-2:]) or ROOT_ID


def _card_id(folder: Path) -> str | None:
    card = read_card(folder / "README.md")
    named = card.get("model_id")
    if not isinstance(named, str) or "/" not in named or not is_model_id(named.strip()):
        return None
    named = named.strip()
    return named if named.rsplit("/", 1)[1] == folder.name else None


def folder_id(folder: str | os.PathLike[str]) -> str:
    """The id of a model folder: the card's `model_id`, else `org/name` from its path.

    See the module docstring for the rule.
    """
    absolute = Path(os.path.abspath(folder))
    return _card_id(absolute) or path_id(absolute)


def find_model_dirs(path: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """The model folders `lineage add PATH` means, as (id, folder) pairs sorted by id.

    A model folder has a config.json, model_index.json, adapter_config.json, or a *.safetensors
    or *.bin file at its root. If PATH is one, it is the only folder; otherwise model folders
    are searched below PATH, at most 3 levels down, without entering a model folder or a hidden
    one. Each id is `folder_id(folder)`, so a folder gets the same id whether it is added
    alone or with its siblings; two folders may get the same id (the caller decides).

    Raises:
        ModelNotFoundError: PATH does not exist or is a file.
    """
    root = Path(path)
    if not root.is_dir():
        what = "is a file; pass the folder that holds it" if root.exists() else "does not exist"
        raise ModelNotFoundError(f"{root} {what}.", path=str(root))
    if _is_model_dir(root):
        return [(folder_id(root), root)]
    found: list[tuple[str, Path]] = []
    frontier = [root]
    for _ in range(MAX_SEARCH_DEPTH):
        below = []
        for d in frontier:
            for sub in _subfolders(d):
                if _is_model_dir(sub):
                    found.append((folder_id(sub), sub))
                else:
                    below.append(sub)
        frontier = below
    return sorted(found)
