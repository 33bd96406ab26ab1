"""A virtual camera (``pyvirtualcam``) that video-call programs can pick as a webcam.

pyvirtualcam is GPLv2, so it is an optional extra (``pip install 'morphstudio[live]'``), imported only when this
sink opens. On Linux it needs the v4l2loopback kernel module (``sudo modprobe v4l2loopback``); on Windows and
macOS, OBS's virtual camera.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from morphstudio.errors import DisplayError
from morphstudio.sinks.base import Sink, StreamInfo

INSTALL_HINT = "install the optional extra: pip install 'morphstudio[live]' (or pip install pyvirtualcam)"


def import_pyvirtualcam() -> Any:
    """The pyvirtualcam module.

    Raises:
        DisplayError: It is not installed (the message says how to install it).
    """
    try:
        import pyvirtualcam
    except ImportError:
        raise DisplayError("--virtual-cam needs pyvirtualcam, which is not installed", hint=INSTALL_HINT) from None
    return pyvirtualcam


class VirtualCameraSink(Sink):
    """Send every frame to a virtual camera.

    Args:
        backend: pyvirtualcam backend name (``None``: the platform's first that works).
        device: Device to use (e.g. ``/dev/video4``), ``None`` for the backend's default.
        pace: Sleep to the stream's frame rate between frames (a real-time stream); off for file mode.
    """

    wants_order = True

    def __init__(self, backend: str | None = None, device: str | None = None, pace: bool = False) -> None:
        self.backend = backend
        self.device = device
        self.pace = pace
        self._cam: Any = None
        self.frames_sent = 0

    def open(self, info: StreamInfo) -> None:
        pvc = import_pyvirtualcam()
        try:
            self._cam = pvc.Camera(width=info.width, height=info.height, fps=info.fps, fmt=pvc.PixelFormat.RGB,
                                   backend=self.backend, device=self.device)
        except RuntimeError as exc:  # pyvirtualcam reports every backend's failure in one RuntimeError
            reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise DisplayError(f"--virtual-cam: no virtual camera could be opened ({reason})",
                               hint="on Linux load v4l2loopback (sudo modprobe v4l2loopback devices=1); on "
                                    "Windows / macOS install OBS and start its virtual camera once") from None

    def write(self, first_index: int, frames: np.ndarray) -> None:
        assert self._cam is not None, "write() before open()"
        for frame in frames:
            self._cam.send(np.ascontiguousarray(frame))
            self.frames_sent += 1
            if self.pace:
                self._cam.sleep_until_next_frame()

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            cam.close()

    def abort(self) -> None:
        self.close()

    def describe(self) -> str:
        dev = None
        if self._cam is not None:
            dev = self._cam.device
        return f"virtual camera {dev or self.device or ''}".strip()
