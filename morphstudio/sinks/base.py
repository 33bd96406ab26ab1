"""The sink protocol: what the renderer hands frames to.

A sink is opened once with the stream's geometry, receives batches of frames (possibly from a worker thread,
never from two threads at once), and is then either closed (success: make the output final) or aborted (failure:
leave nothing half-written behind). ``write`` may block; that back-pressure is what bounds memory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StreamInfo:
    """Geometry and timing of the frames a sink will receive.

    Attributes:
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps: Frames per second of the video.
        frame_count: How many frames this sink will receive in total (for progress/pacing; may be 0 if unknown).
        first_frame: Scene index of the first frame this sink receives.
    """

    width: int
    height: int
    fps: float
    frame_count: int = 0
    first_frame: int = 0


class Sink(ABC):
    """Base class of frame consumers.

    Attributes:
        wants_order: True when the sink must see frames in increasing order (a window); the renderer then
            generates strictly in order instead of interleaving segments.
    """

    wants_order: bool = False

    @abstractmethod
    def open(self, info: StreamInfo) -> None:
        """Prepare for frames of the given geometry (start a process, create a temporary folder...)."""

    @abstractmethod
    def write(self, first_index: int, frames: np.ndarray) -> None:
        """Consume ``frames`` (``uint8 [N, H, W, 3]``, C-contiguous RGB) whose first frame has scene index
        ``first_index``."""

    @abstractmethod
    def close(self) -> None:
        """Finish successfully: flush, check for errors and make the output final (e.g. rename into place).

        Raises:
            RenderError: The output could not be completed (its subclass EncoderError for ffmpeg failures).
        """

    def abort(self) -> None:
        """Stop after a failure elsewhere; delete partial output. Must be safe to call more than once."""

    def describe(self) -> str:
        """One line for messages: where the frames went."""
        return type(self).__name__
