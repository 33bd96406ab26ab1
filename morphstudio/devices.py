"""Choosing the compute device and precision: CUDA when present, else CPU; never a hard-coded ``cuda``."""

from __future__ import annotations

import torch

from morphstudio.errors import DeviceError
from morphstudio.formats import PRECISION_ALIASES, PRECISION_DTYPES, PRECISIONS

# Every accepted spelling -> its torch dtype, from the one list of precisions.
_DTYPES = {alias: getattr(torch, PRECISION_DTYPES[name]) for alias, name in PRECISION_ALIASES.items()}


def resolve_device(spec: str | torch.device | None = None) -> torch.device:
    """Turn ``None``/``"auto"``/``"cpu"``/``"cuda"``/``"cuda:1"``/``"mps"`` into a usable device.

    Raises:
        DeviceError: The device is unknown or not available on this machine.
    """
    if isinstance(spec, torch.device):
        return spec
    if spec is None or spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise DeviceError(f"unknown device {spec!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} requested but CUDA is not available on this machine",
                              hint="use --device cpu (or leave --device out to pick automatically)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"device {spec!r} requested but Apple MPS is not available on this machine")
    return device


def resolve_dtype(spec: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Compute precision: ``fp32`` (default), ``fp16``/``half`` or ``bf16``. Half precision needs a GPU."""
    if isinstance(spec, torch.dtype):
        dtype = spec
    elif spec is None:
        return torch.float32
    else:
        if spec.lower() not in _DTYPES:
            raise DeviceError(f"unknown precision {spec!r}: use {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}")
        dtype = _DTYPES[spec.lower()]
    if dtype == torch.float16 and device.type == "cpu":
        raise DeviceError("half precision (fp16) is only supported on a GPU; this run is on the CPU",
                          hint="leave out --precision fp16 (fp32 is the default; precision= / dtype= in Python), or "
                               "use --precision bf16 on the CPU")
    return dtype
