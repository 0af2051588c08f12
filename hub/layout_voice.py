"""How a source words layout errors (a folder and a Hub repo call for different remedies),
and the error for a repo without weights, naming its pickle checkpoints when it has some.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub.errors import NoSafetensorsError
from hub.layout_names import PICKLE_SUFFIXES, shallow


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


def no_safetensors(
    names: Iterable[str], *, model_id: str, voice: Voice, root: str | None = None
) -> NoSafetensorsError:
    """The error for a repo without weights, naming its pickle checkpoints when it has some."""
    pickles = sorted(n for n in shallow(names) if n.endswith(PICKLE_SUFFIXES))
    if pickles:
        shown = ", ".join(pickles[:3]) + (" ..." if len(pickles) > 3 else "")
        msg = voice.pickles.format(model_id=model_id, root=root, shown=shown)
    else:
        msg = voice.nothing.format(model_id=model_id, root=root)
    return NoSafetensorsError(msg, model_id=model_id, path=root)
