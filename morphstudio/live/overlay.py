"""The fps / latency line and the live strengths drawn on the live window (never on the recording or the virtual
camera)."""

from __future__ import annotations

import collections
import time
from typing import Any

import cv2
import numpy as np

from morphstudio.sinks.base import Sink, StreamInfo


def draw_status(frame: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``frame`` with ``text`` (one or more lines) in the top-left corner, dark outline under white so
    it reads on any background."""
    out = frame.copy()  # a fresh C-contiguous array, as cv2's drawing needs
    scale = max(0.4, frame.shape[0] / 720)
    for i, line in enumerate(text.splitlines()):
        org = (8, int(22 * scale) + 4 + int(48 * scale) * i)  # lines apart by more than a glyph with its outline
        cv2.putText(out, line, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, line, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class OverlaySink(Sink):
    """Draws the measured output rate and the latest capture-to-here latency on frames before ``inner`` (the
    window) sees them.

    Args:
        inner: The sink to feed (a :class:`~morphstudio.sinks.window.WindowSink`).
        latency: Callable returning the latest latency in seconds (the pipeline's measurement), or None.
        controls: Live strengths (:class:`morphstudio.live.controls.LiveControls`) whose current values are drawn
            on a second line, or None.
    """

    wants_order = True

    def __init__(self, inner: Sink, latency: Any = None, controls: Any = None) -> None:
        self.inner = inner
        self.latency = latency
        self.controls = controls
        self._times: collections.deque[float] = collections.deque(maxlen=30)

    def open(self, info: StreamInfo) -> None:
        self.inner.open(info)

    def write(self, first_index: int, frames: np.ndarray) -> None:
        self._times.append(time.perf_counter())
        fps = (len(self._times) - 1) / (self._times[-1] - self._times[0]) if len(self._times) > 1 else 0.0
        lat = self.latency() if self.latency is not None else None
        text = f"{fps:4.1f} fps" + (f"  {lat * 1000:3.0f} ms" if lat is not None else "")
        if self.controls is not None and len(self.controls):
            text += "\n" + self.controls.describe()
        self.inner.write(first_index, np.stack([draw_status(f, text) for f in frames]))

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()

    def describe(self) -> str:
        return self.inner.describe()
