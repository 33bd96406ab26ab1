"""A sink that drops frames: measures the renderer without any encoding cost (benchmarks)."""

from __future__ import annotations

import numpy as np

from morphstudio.sinks.base import Sink, StreamInfo


class NullSink(Sink):
    """Counts frames and discards them.

    Attributes:
        frames_seen: Number of frames written so far.
        checksum: Running sum of all bytes (touches the data, so a benchmark cannot skip the transfer).
    """

    def __init__(self, touch: bool = False) -> None:
        self.touch = touch
        self.frames_seen = 0
        self.checksum = 0

    def open(self, info: StreamInfo) -> None:
        self.frames_seen = 0

    def write(self, first_index: int, frames: np.ndarray) -> None:
        self.frames_seen += len(frames)
        if self.touch:
            self.checksum += int(frames[:, ::8, ::8].sum())

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"nowhere ({self.frames_seen} frames dropped)"
