"""`device = auto | cpu | cuda` -> a torch device, with a clear error when CUDA is missing."""

from __future__ import annotations

from fingerprint.errors import DeviceUnavailableError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> str:
    """Map a user's choice to "cpu" or "cuda".

    Raises:
        DeviceUnavailableError: "cuda" was asked for and torch sees no GPU.
        ValueError: not one of auto, cpu, cuda.
    """
    import torch

    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return "cpu"
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise DeviceUnavailableError(
            "--device cuda was asked for but torch sees no CUDA GPU; "
            "use --device auto or --device cpu (or install a CUDA build of torch)"
        )
    return "cuda" if has_cuda else "cpu"
