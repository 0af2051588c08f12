"""Errors raised by hub/ sources. Every one carries the model (and file) it is about.

    HubError                     catch-all for anything a source could not do
    ├── ModelNotFoundError       the repo or folder does not exist          (status: not_found)
    ├── GatedModelError          401/403: gated or private, needs a token   (status: gated)
    ├── NoSafetensorsError       only pickle checkpoints (.bin/.pt/.ckpt)   (status: no_safetensors)
    ├── MalformedFileError       a safetensors file that does not parse     (status: malformed)
    └── NetworkError             retries exhausted, truncated bodies, resets (status: network)
        └── OfflineError         HF_HUB_OFFLINE is set: nothing is sent     (status: network)

`status` is the short code stored in the database; `str(err)` is one sentence that names the
model and says what to do.
"""

from __future__ import annotations


class HubError(Exception):
    status = "error"

    def __init__(self, message: str, *, model_id: str | None = None, path: str | None = None):
        super().__init__(message)
        self.model_id = model_id
        self.path = path


class ModelNotFoundError(HubError):
    status = "not_found"


class GatedModelError(HubError):
    status = "gated"


class NoSafetensorsError(HubError):
    status = "no_safetensors"


class MalformedFileError(HubError):
    status = "malformed"


class NetworkError(HubError):
    status = "network"


class OfflineError(NetworkError):
    """huggingface_hub's offline mode is on (`HF_HUB_OFFLINE=1`): the Hub is not reached."""
