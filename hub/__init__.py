"""Where weights and metadata come from: local folders, the HF cache, the Hub.

The public surface is `__all__`; names load lazily (huggingface_hub only with the Hub source).
"""

from importlib import import_module

_EXPORTS = {
    "ModelRecord": "hub.records",
    "DeclaredBase": "hub.records",
    "open_local_model": "hub.local",
    "find_model_dirs": "hub.folders",
    "LocalModel": "hub.local",
    "open_cached_model": "hub.cache",
    "cached_models": "hub.cache",
    "HubClient": "hub.client",
    "HubModel": "hub.hubsource",
    "open_hub_model": "hub.hubsource",
    "iter_models": "hub.listing",
    "read_header": "hub.safetensors_header",
    "TensorInfo": "hub.records",
    "TensorWindow": "hub.records",
    "HubError": "hub.errors",
    "ModelNotFoundError": "hub.errors",
    "GatedModelError": "hub.errors",
    "NoSafetensorsError": "hub.errors",
    "MalformedFileError": "hub.errors",
    "NetworkError": "hub.errors",
    "OfflineError": "hub.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hub' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
