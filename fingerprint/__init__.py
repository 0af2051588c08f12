"""Pure computation on tensors: slot plans, signatures, comparisons, significance.

The public surface is `__all__`; names load lazily, so importing the package costs nothing
until one is used (numpy with the first signature; torch only when a window goes to a GPU).
"""

from importlib import import_module

_EXPORTS = {
    "TensorInfo": "fingerprint.protocol",
    "TensorSource": "fingerprint.protocol",
    "TensorMeta": "fingerprint.protocol",
    "Window": "fingerprint.protocol",
    "WindowData": "fingerprint.protocol",
    "SignatureParams": "fingerprint.records",
    "Signature": "fingerprint.records",
    "SlotSignature": "fingerprint.records",
    "compute_signature": "fingerprint.signature",
    "compare": "fingerprint.comparison",
    "PairResult": "fingerprint.comparison_records",
    "SlotComparison": "fingerprint.comparison_records",
    "resolve_device": "fingerprint.device",
    "set_threads": "fingerprint.device",
    "FingerprintError": "fingerprint.errors",
    "IncompatibleSignaturesError": "fingerprint.errors",
    "SignatureFormatError": "fingerprint.errors",
    "DeviceUnavailableError": "fingerprint.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fingerprint' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
