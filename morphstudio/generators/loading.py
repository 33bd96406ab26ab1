"""From a source string to a ready generator: the seam between checkpoint readers and backends.

Checkpoint readers (:mod:`morphstudio.generators.checkpoints`) turn any supported file into a
:class:`~morphstudio.generators.checkpoints.data.CheckpointData` whose tensors carry the names of the *official*
NVIDIA ``G_ema`` modules (``mapping.fc0.weight``, ``synthesis.b4.const``, ``synthesis.L0_36_512.weight`` ...),
whatever the file's own layout. Backends only ever see that one naming, through ``Backend.from_state(init_kwargs, state)``; the backend
for a family comes from :mod:`morphstudio.generators.registry`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from morphstudio.devices import resolve_device, resolve_dtype
from morphstudio.generators.base import Generator
from morphstudio.generators.checkpoints.data import CheckpointData
from morphstudio.generators.registry import backend_for

# CheckpointData is re-exported: scripts and tests written before it had its own module import it from here.
__all__ = ["CheckpointData", "build_generator", "load_checkpoint", "load_generator"]


def build_generator(ckpt: CheckpointData, *, adopt: bool = False) -> Generator:
    """Construct the backend for ``ckpt.family`` and load its weights.

    The stored kwargs are checked (keys, types, sane ranges, and the parameter count they imply against the values
    in the file) before any module is built; then every tensor's name and shape. With ``adopt`` the generator
    may take ``ckpt``'s tensors instead of copying them (``ckpt`` must not be used afterwards).
    """
    return backend_for(ckpt.family, ckpt.path).from_state(ckpt.init_kwargs, ckpt.state, source=ckpt.path,
                                                          adopt=adopt)


def load_checkpoint(source: str | Path) -> CheckpointData:
    """Read ``source`` (a file path or ``builtin:NAME``) without building a network."""
    from morphstudio.generators.checkpoints import read_checkpoint

    return read_checkpoint(source)


def load_generator(
    source: str | Path | CheckpointData,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> Generator:
    """Load a generator from a checkpoint file or ``builtin:NAME``, ready for inference.

    Nothing inside the file is ever executed: pickles go through an allow-list unpickler, ``.pt`` files through
    ``torch.load(weights_only=True)``, and morphstudio's own format is safetensors.

    Args:
        source: Path to a ``.pkl`` / ``.pt`` / ``.safetensors`` checkpoint, ``builtin:dcgan-faces64``, or a
            :class:`CheckpointData` already read with :func:`load_checkpoint`.
        device: ``None``/``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda:1"``...
        dtype: ``None``/``"fp32"``, ``"fp16"`` or ``"bf16"``. fp32 reproduces the official images exactly;
            half precision is a GPU speed setting.

    Returns:
        The generator in eval mode, with gradients disabled for its parameters.
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    # A file read here is held by nobody else: the generator takes the reader's tensors instead of copying them when
    # they are the reader's own memory (not a memory map of the file: see CheckpointData.fresh).
    if isinstance(source, CheckpointData):
        gen = build_generator(source)
    else:
        ckpt = load_checkpoint(source)
        gen = build_generator(ckpt, adopt=ckpt.fresh)
    gen = gen.to(dev).eval().requires_grad_(False)
    if dt != torch.float32:
        gen.set_precision(dt)  # a ModelError for a precision the backend does not run
    return gen
