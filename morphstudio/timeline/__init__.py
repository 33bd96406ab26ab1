"""Latents over time, from a validated scene (numpy + scipy only: never torch)."""

from morphstudio.timeline.curves import Curve, CurveKey, slerp
from morphstudio.timeline.faces import FaceResolver
from morphstudio.timeline.timeline import ClosureItem, Timeline

__all__ = ["ClosureItem", "Curve", "CurveKey", "FaceResolver", "Timeline", "slerp"]
