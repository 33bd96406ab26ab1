"""The record every checkpoint reader returns and :mod:`morphstudio.generators.loading` builds a generator from.

It lives in its own module so that the readers and the loader both import it and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class CheckpointData:
    """A generator read from a file, before any network is built.

    Attributes:
        family: One of :data:`morphstudio.generators.registry.FAMILIES`.
        init_kwargs: Constructor kwargs as the original code stored them (nested or flat; backends normalise).
        state: Every parameter and buffer under its official ``G_ema`` name (float tensors on the CPU).
        format: What the file was, for ``inspect`` (e.g. ``"nvidia-pkl (stylegan2-ada-pytorch)"``).
        path: Where it came from (``builtin:NAME`` for shipped models).
        extra: Anything else worth reporting (e.g. which other networks the snapshot held).
        fresh: The reader made every tensor of ``state`` in ordinary memory of its own (the pickle readers and
            ``torch.load`` do), so a generator built from it may take them instead of copying. Not safetensors:
            its tensors are slices of a memory map of the file, which a file rewritten in place would change under
            a loaded model.
    """

    family: str
    init_kwargs: dict[str, Any]
    state: dict[str, torch.Tensor]
    format: str
    path: str
    extra: dict[str, Any] = field(default_factory=dict)
    fresh: bool = False
