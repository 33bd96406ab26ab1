"""The timeline's tracks: typed elements of the latent path, each with ``apply(w, t)`` and ``closure(t0, t1)``."""

from morphstudio.timeline.tracks.attribute import AttributeTrack
from morphstudio.timeline.tracks.base import CLOSE_TOL, ClosureItem, Track, TrackContext
from morphstudio.timeline.tracks.deform import DeformLoop
from morphstudio.timeline.tracks.path import PathTrack
from morphstudio.timeline.tracks.truncation import TruncationTrack
from morphstudio.timeline.tracks.walk import MAX_WALK_NUMBERS, WalkTrack

__all__ = ["AttributeTrack", "CLOSE_TOL", "ClosureItem", "DeformLoop", "MAX_WALK_NUMBERS", "PathTrack", "Track",
           "TrackContext", "TruncationTrack", "WalkTrack"]
