"""Frame sources: a video file (every frame, in order) or a camera (the newest frame wins).

A file is decoded by the same ffmpeg the sinks use (imageio-ffmpeg's), passing frames through one for one
(``-fps_mode passthrough``: no frame is duplicated or dropped to fit a constant rate), so file mode's output has exactly the
input's frames. A camera is read by OpenCV on its own thread into a one-frame slot: a frame the pipeline was too
busy to take is overwritten by the next one and counted as dropped, so the picture never lags behind the room.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from morphstudio.errors import DisplayError, ImageInputError

# Refuse absurd frame sizes a file header might claim before allocating frame buffers for them.
MAX_PIXELS = 8192 * 8192


@dataclass
class Frame:
    """One captured frame.

    Attributes:
        index: 0-based position in the stream (file: frame number; camera: frames captured so far).
        pixels: ``[H, W, 3]`` uint8 RGB.
        t_capture: ``time.perf_counter()`` when it was captured (latency is measured from here).
        t_media: Its time in seconds on the stream's own clock (file: index / fps), for the smoothing filter.
    """

    index: int
    pixels: np.ndarray
    t_capture: float
    t_media: float


class CameraLost(Exception):
    """The camera stopped delivering frames (unplugged, taken by another program)."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: frame size, rate, and whether it has an audio stream."""

    width: int
    height: int
    fps: float
    has_audio: bool
    duration: float


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video file's header.

    Raises:
        ImageInputError: Missing, not a video, or frames too large.
    """
    import imageio_ffmpeg

    p = Path(path)
    if not p.is_file():
        raise ImageInputError(p, "video file not found" if not p.exists() else "not a regular file")
    gen = imageio_ffmpeg.read_frames(str(p))
    try:
        meta = gen.__next__()
    except (OSError, RuntimeError, StopIteration) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "ffmpeg could not read it"
        raise ImageInputError(p, f"not a readable video ({first})") from None
    finally:
        gen.close()
    w, h = (int(v) for v in meta.get("size", (0, 0)))
    fps = float(meta.get("fps") or 0.0)
    if w <= 0 or h <= 0:
        raise ImageInputError(p, "holds no video stream")
    if w * h > MAX_PIXELS:
        raise ImageInputError(p, f"frames of {w}x{h} are larger than live mode handles ({MAX_PIXELS:,} pixels)")
    if not 0 < fps <= 240:
        raise ImageInputError(p, f"frame rate {fps} is not usable (expected 0 < fps <= 240)")
    return VideoInfo(width=w, height=h, fps=fps, has_audio=bool(meta.get("audio_codec")),
                     duration=float(meta.get("duration") or 0.0))


class FileSource:
    """Every frame of a video file in order (file mode), or paced to its frame rate (``realtime=True``).

    Args:
        path: The video.
        realtime: Deliver frames at the file's frame rate as a camera would (then the pipeline may drop some).
    """

    live = False

    def __init__(self, path: str | Path, *, realtime: bool = False) -> None:
        self.path = Path(path)
        self.info = probe_video(self.path)
        self.realtime = realtime
        self.width, self.height, self.fps = self.info.width, self.info.height, self.info.fps

    def describe(self) -> str:
        return str(self.path)

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        import imageio_ffmpeg

        gen = imageio_ffmpeg.read_frames(str(self.path), output_params=["-fps_mode", "passthrough"])
        try:
            try:
                gen.__next__()
            except (OSError, RuntimeError) as exc:
                lines = [ln for ln in str(exc).splitlines() if ln.strip()]
                raise ImageInputError(self.path, f"ffmpeg cannot decode it ({lines[-1] if lines else exc})") from None
            n = self.width * self.height * 3
            start = time.perf_counter()
            for i, raw in enumerate(gen):
                if stop.is_set():
                    return
                if len(raw) != n:  # a truncated last frame: not a frame
                    return
                if self.realtime:
                    delay = start + i / self.fps - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                pixels = np.frombuffer(raw, np.uint8).reshape(self.height, self.width, 3).copy()
                yield Frame(i, pixels, time.perf_counter(), i / self.fps)
        finally:
            gen.close()


class CameraSource:
    """Frames from a camera through OpenCV (``cv2.VideoCapture(index)``).

    Raises:
        DisplayError: The camera cannot be opened.
    """

    live = True
    realtime = True

    def __init__(self, index: int) -> None:
        import cv2

        self.index = index
        self._cap: Any = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            raise DisplayError(f"--camera {index}: cannot open camera {index} (no such device, or it is in use)",
                               hint="list cameras with `v4l2-ctl --list-devices` on Linux; or use --input VIDEO")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise DisplayError(f"--camera {index}: the camera opened but delivered no frame")
        self._first = first
        self.height, self.width = first.shape[:2]
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps <= 240 else 30.0

    def describe(self) -> str:
        return f"camera {self.index}"

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        t0 = time.perf_counter()
        first, self._first = self._first, None
        i = 0
        try:
            while not stop.is_set():
                if first is not None:
                    bgr, first = first, None
                else:
                    ok, bgr = self._cap.read()
                    if not ok or bgr is None:
                        raise CameraLost(f"camera {self.index} stopped delivering frames after {i} frame(s)")
                now = time.perf_counter()
                yield Frame(i, np.ascontiguousarray(bgr[:, :, ::-1]), now, now - t0)
                i += 1
        finally:
            self._cap.release()


class LatestSlot:
    """A one-frame mailbox: ``put`` overwrites an untaken frame (counted as dropped), ``get`` waits for one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._has = False
        self._closed = False
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if self._has:
                self.dropped += 1
            self._item, self._has = item, True
            self._cond.notify()

    def close(self) -> None:
        """No more frames: ``get`` returns ``None`` once the slot is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(self, timeout: float = 0.1) -> tuple[bool, Any]:
        """``(True, frame)``, ``(True, None)`` at the end, or ``(False, None)`` when nothing came within timeout."""
        with self._cond:
            if not self._has and not self._closed:
                self._cond.wait(timeout)
            if self._has:
                item, self._item, self._has = self._item, None, False
                return True, item
            if self._closed:
                return True, None
            return False, None
