"""A folder of PNG frames (``frame_000000.png`` ...), built in a temporary folder and renamed on success.

The folder gets a marker file (:data:`MARKER`) so a later render recognises it as its own: an existing folder is
replaced only when it holds nothing but frames and that marker (or nothing at all). Anything else is the user's
and is refused — a mistyped output path must never delete someone's photos.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np

from morphstudio.errors import RenderError
from morphstudio.sinks.base import Sink, StreamInfo
from morphstudio.sinks.ffmpeg import partial_name

MARKER = ".morphstudio-frames"
MARKER_FORMAT = "morphstudio-frames/1"
_FRAME = re.compile(r"frame_\d{6,}\.png")


def _has_marker(folder: Path) -> bool:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == MARKER_FORMAT


def foreign_entries(folder: Path) -> list[str]:
    """What in ``folder`` morphstudio did not write: empty for an empty folder or one of our frame folders
    (frames + marker, nothing else). Names are sorted, sub-folders end with ``/``."""
    names = sorted(os.listdir(folder))
    if not names:
        return []
    ours = _has_marker(folder)
    out = []
    for name in names:
        p = folder / name
        if ours and (name == MARKER or (_FRAME.fullmatch(name) and p.is_file() and not p.is_symlink())):
            continue
        out.append(name + ("/" if p.is_dir() else ""))
    return out


def describe_names(names: list[str], shown: int = 3) -> str:
    """``a.txt, b/ and 4 more``."""
    head = ", ".join(names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")


def remove_frames_folder(folder: Path) -> None:
    """Delete a frame folder morphstudio wrote, file by file (never ``rmtree``): if anything else has appeared in
    it, that is left alone and the removal is refused.

    Raises:
        RenderError: The folder holds files morphstudio did not write.
    """
    foreign = foreign_entries(folder)
    if foreign:
        raise RenderError(f"output.path: {folder} now holds files morphstudio did not write ({describe_names(foreign)}); "
                          "it was left as it is")
    for name in os.listdir(folder):
        (folder / name).unlink()
    folder.rmdir()


class ImageFolderSink(Sink):
    """Write each frame as a PNG named by its scene frame index.

    Args:
        path: The folder to create. An existing one is replaced only when the render succeeds, and only if it is
            empty or an earlier png render wrote it (its marker file says so).
        compression: PNG compression level 0-9 (lower is faster, files larger).
    """

    def __init__(self, path: str | Path, compression: int = 3) -> None:
        self.path = Path(path)
        self.compression = compression
        self.temp = partial_name(self.path)
        self.frames_written = 0
        self._info: StreamInfo | None = None

    def open(self, info: StreamInfo) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise RenderError(f"output.path: {self.path} exists and is not a folder (png output is a folder)")
        foreign = foreign_entries(self.path) if self.path.is_dir() else []
        if foreign:
            raise RenderError(f"output.path: {self.path} is a folder morphstudio did not write (it holds "
                              f"{describe_names(foreign)})")
        if self.temp.is_dir():
            remove_frames_folder(self.temp)  # left by a killed render (it carries the marker from the start)
        elif self.temp.exists():
            raise RenderError(f"output.path: {self.temp} is in the way (not a folder morphstudio wrote)")
        self.temp.mkdir(parents=True)
        self._info = info
        self.frames_written = 0
        self._write_marker()

    def _write_marker(self) -> None:
        info = self._info
        data = {"format": MARKER_FORMAT, "frames": self.frames_written}
        if info is not None:
            data.update(width=info.width, height=info.height, fps=info.fps, first_frame=info.first_frame)
        (self.temp / MARKER).write_text(json.dumps(data) + "\n")

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
        self._write_marker()
        if self.path.exists():
            remove_frames_folder(self.path)  # checked again: the user may have added files during the render
        self.temp.rename(self.path)

    def abort(self) -> None:
        # The temporary folder is this render's own (created in open), so removing it whole is safe.
        shutil.rmtree(self.temp, ignore_errors=True)

    def describe(self) -> str:
        return f"{self.path}/ ({self.frames_written} PNG frames)"
