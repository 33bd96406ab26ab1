"""Generator backends behind one interface, and safe checkpoint loading."""

from morphstudio.generators.base import Generator, LayerInfo, to_uint8, truncate
from morphstudio.generators.loading import CheckpointData, build_generator, load_checkpoint, load_generator

__all__ = [
    "CheckpointData",
    "Generator",
    "LayerInfo",
    "build_generator",
    "load_checkpoint",
    "load_generator",
    "to_uint8",
    "truncate",
]
