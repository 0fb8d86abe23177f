"""Choosing the accelerator for the detector."""

from __future__ import annotations

import torch

from tasks.errors import DeviceUnavailableError


def resolve_device(requested: str) -> str:
    """Turn `auto`, `cpu`, `cuda` or `mps` into a device that exists here.

    `auto` prefers CUDA, then Apple's MPS, then the CPU. An explicit request for an
    accelerator that is not present is an error rather than a silent fallback.
    """
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if requested == "auto":
        return next(name for name, present in available.items() if present)
    if requested not in available:
        raise DeviceUnavailableError(f"Unknown device {requested!r}; use auto, cpu, cuda or mps.")
    if not available[requested]:
        raise DeviceUnavailableError(
            f"Device {requested!r} is not available on this machine; use --device auto or cpu."
        )
    return requested
