"""A folder of PNG frames (``frame_000000.png`` ...), built in a temporary folder and renamed on success."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from morphstudio.errors import RenderError
from morphstudio.sinks.base import Sink, StreamInfo
from morphstudio.sinks.ffmpeg import partial_name


class ImageFolderSink(Sink):
    """Write each frame as a PNG named by its scene frame index.

    Args:
        path: The folder to create. If it exists it is replaced only when the render succeeds.
        compression: PNG compression level 0-9 (lower is faster, files larger).
    """

    def __init__(self, path: str | Path, compression: int = 3) -> None:
        self.path = Path(path)
        self.compression = compression
        self.temp = partial_name(self.path)
        self.frames_written = 0

    def open(self, info: StreamInfo) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise RenderError(f"output.path: {self.path} exists and is not a folder (png output is a folder)")
        shutil.rmtree(self.temp, ignore_errors=True)
        self.temp.mkdir(parents=True)
        self.frames_written = 0

    def write(self, first_index: int, frames: np.ndarray) -> None:
        params = [cv2.IMWRITE_PNG_COMPRESSION, self.compression]
        for k, frame in enumerate(frames):
            name = self.temp / f"frame_{first_index + k:06d}.png"
            # OpenCV wants BGR; the reversed view is made contiguous by imwrite itself.
            if not cv2.imwrite(str(name), np.ascontiguousarray(frame[:, :, ::-1]), params):
                raise RenderError(f"{name}: could not write the PNG frame (disk full or folder not writable?)")
        self.frames_written += len(frames)

    def close(self) -> None:
        if not self.temp.exists():
            return
        if self.path.exists():
            shutil.rmtree(self.path)
        self.temp.rename(self.path)

    def abort(self) -> None:
        shutil.rmtree(self.temp, ignore_errors=True)

    def describe(self) -> str:
        return f"{self.path}/ ({self.frames_written} PNG frames)"
