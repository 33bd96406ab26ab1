"""Which backend builds which generator family: the one family -> backend table.

Checkpoint readers name a family (``CheckpointData.family``); :func:`backend_for` gives the class that builds it
and :func:`config_for` its config dataclass. Backends are imported on first use, so reading a DCGAN never imports
the StyleGAN3 code, and this module imports no backend (nothing here can form an import circle).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from morphstudio.errors import CheckpointError

if TYPE_CHECKING:
    from morphstudio.generators.base import Generator
    from morphstudio.generators.config import GeneratorConfig

#: family -> (module, class). A new backend is one line here plus its module.
_BACKENDS: dict[str, tuple[str, str]] = {
    "stylegan2": ("morphstudio.generators.stylegan2", "StyleGAN2Generator"),
    "stylegan3": ("morphstudio.generators.stylegan3", "StyleGAN3Generator"),
    "dcgan": ("morphstudio.generators.dcgan", "DCGANGenerator"),
}

#: Every family a checkpoint may name.
FAMILIES: tuple[str, ...] = tuple(_BACKENDS)


def backend_for(family: str, source: str | Path | None = None) -> type[Generator]:
    """The backend class for ``family``.

    Raises:
        CheckpointError: An unknown family (naming the file and the known ones).
    """
    if family not in _BACKENDS:
        raise CheckpointError(source, f"unknown generator family {family!r} (known: {', '.join(FAMILIES)})")
    module, name = _BACKENDS[family]
    return getattr(importlib.import_module(module), name)


def config_for(family: str, source: str | Path | None = None) -> type[GeneratorConfig]:
    """The config dataclass of ``family``'s backend (see :mod:`morphstudio.generators.config`)."""
    return backend_for(family, source).config_class


__all__ = ["FAMILIES", "backend_for", "config_for"]
