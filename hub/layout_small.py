"""The small files a layout reads besides the weights: shard indexes (`weight_map`) and
adapter configs (the declared base), each bounded (`SMALL_FILE_MAX`) and checked so that no
path leaves the repo.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Collection

from hub import bounded_json
from hub.errors import HubError, MalformedFileError
from hub.layout_names import ADAPTER_CONFIG, join_path
from hub.layout_voice import Voice

# A shard index or adapter config larger than this is not what it claims to be: refused unread.
SMALL_FILE_MAX = 64 * 2**20
# A Hub repo id (`namespace/name`): what an adapter's declared base must look like to be kept.
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

ReadSmall = Callable[[str], bytes]


def place(root: str | None, rel: str) -> str | None:
    """`rel` under a local root (for messages and error paths); None for a Hub repo."""
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
            path=place(root, index) or index,
        )
    out = {}
    for tensor, shard in wm.items():
        rel = posixpath.normpath(join_path(folder, shard))
        if shard.startswith("/") or rel == ".." or rel.startswith("../") or rel not in names:
            raise MalformedFileError(
                voice.bad_shard.format(
                    where=index,
                    model_id=model_id,
                    shard=shard,
                    folder=place(root, folder),
                ),
                model_id=model_id,
                path=place(root, rel) or index,
            )
        out[tensor] = rel
    return out


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
