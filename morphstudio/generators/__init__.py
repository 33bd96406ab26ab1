"""Generator backends behind one interface, and safe checkpoint loading."""

from morphstudio.generators.base import Generator, LayerInfo, to_uint8, truncate
from morphstudio.generators.checkpoints.data import CheckpointData
from morphstudio.generators.config import GeneratorConfig
from morphstudio.generators.loading import build_generator, load_checkpoint, load_generator
from morphstudio.generators.registry import FAMILIES, backend_for, config_for

__all__ = [
    "FAMILIES",
    "CheckpointData",
    "Generator",
    "GeneratorConfig",
    "LayerInfo",
    "backend_for",
    "build_generator",
    "config_for",
    "load_checkpoint",
    "load_generator",
    "to_uint8",
    "truncate",
]
