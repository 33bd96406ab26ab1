"""A live preview window (OpenCV), paced to the video's frame rate; ``q`` or Esc stops the render."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from typing import Any, Callable

import numpy as np

from morphstudio.errors import DisplayError
from morphstudio.sinks.base import Sink, StreamInfo


class PreviewClosed(Exception):
    """The user closed the preview window (q / Esc / window closed): stop rendering, quietly."""


def display_problem() -> str | None:
    """Why no window can be shown here (Linux without X11/Wayland), or None when one can."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display for a preview window: neither DISPLAY nor WAYLAND_DISPLAY is set"
    return None


def check_display() -> None:
    """Raise :class:`DisplayError` when no window can be shown (Linux without X11/Wayland)."""
    problem = display_problem()
    if problem is not None:
        raise DisplayError(problem, hint="render to a file instead (-o out.mp4), or run where a desktop session "
                                         "is available")


def preview_sinks(scale: float, *, writes_file: bool, log: Callable[[str], None] | None = None) -> list[Sink]:
    """The sinks for ``--preview``: a window, or none (with a note) when there is no display but a file is being
    written anyway, so the render still makes its file. Without a file there is nothing left to do: an error.

    Raises:
        DisplayError: No display, and no file to write instead.
    """
    problem = display_problem()
    if problem is None:
        return [WindowSink(scale=scale)]
    if not writes_file:
        check_display()
    say = log or (lambda msg: print(msg, file=sys.stderr))
    say(f"note: --preview: the preview window is unavailable ({problem}); writing the file only")
    return []


class _GuiThread:
    """Runs every OpenCV window call on one thread that lives as long as the window.

    OpenCV's Qt backend paints a window only from the thread that created it: a window made on the main thread
    and fed from a sink thread stays blank, and one fed from a second thread (the next ``--watch`` render) freezes
    on its last frame. So all highgui calls are handed to this thread and their results handed back.
    """

    def __init__(self) -> None:
        self._calls: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue()
        self._results: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="morphstudio-window", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._calls.get()) is not None:
            fn, args = item
            try:
                self._results.put((True, fn(*args)))
            except Exception as exc:  # handed back to the caller, who re-raises it
                self._results.put((False, exc))

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the GUI thread and return its result (or raise its exception here)."""
        self._calls.put((fn, args))
        ok, value = self._results.get()
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        self._calls.put(None)
        self._thread.join(timeout=5)


class WindowSink(Sink):
    """Show frames in an OpenCV window.

    Args:
        title: Window title.
        scale: Display scale factor (e.g. 2 shows a 256 px render at 512 px).
        pace: Show frames no faster than the video's fps (a preview should play at real speed).
        hold: Keep the last frame up until a key is pressed when the stream ends.
        persistent: Keep the window open after ``close``/``abort`` (``--watch`` reuses it across renders);
            call :meth:`destroy` at the end.
        controls: Live strengths (:class:`morphstudio.live.controls.LiveControls`): one trackbar each, and the
            keys it handles (``1``-``9``, ``+``/``-``, ``0``); None for a plain preview. The trackbars are made and
            moved on the GUI thread like every other highgui call; their callbacks run there too.
    """

    wants_order = True

    def __init__(self, title: str = "morphstudio preview", scale: float = 1.0, pace: bool = True,
                 hold: bool = False, persistent: bool = False, controls: Any = None) -> None:
        self.title = title
        self.controls = controls
        self.scale = scale
        self.pace = pace
        self.hold = hold
        self.persistent = persistent
        self._period = 0.0
        self._next = 0.0
        self._open = False
        self._gui: _GuiThread | None = None

    def _cv(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._gui is None:
            self._gui = _GuiThread()
        return self._gui.call(fn, *args)

    def open(self, info: StreamInfo) -> None:
        check_display()
        self._period = 1.0 / info.fps if self.pace and info.fps > 0 else 0.0
        self._next = time.perf_counter()
        if self._open:
            return
        import cv2

        try:
            self._cv(cv2.namedWindow, self.title, cv2.WINDOW_AUTOSIZE)
        except cv2.error as exc:
            raise DisplayError(f"cannot open a preview window: {str(exc).strip().splitlines()[-1]}") from None
        self._open = True
        if self.controls is not None:
            for name in self.controls.names:
                c = self.controls.control(name)

                def moved(position: int, name: str = name) -> None:
                    self.controls.set_position(name, position)

                self._cv(cv2.createTrackbar, name, self.title, c.position(), c.positions, moved)

    def write(self, first_index: int, frames: np.ndarray) -> None:
        import cv2

        for frame in frames:
            img = frame[:, :, ::-1]
            if self.scale != 1.0:
                h, w = img.shape[:2]
                img = cv2.resize(img, (max(1, round(w * self.scale)), max(1, round(h * self.scale))),
                                 interpolation=cv2.INTER_NEAREST if self.scale > 1 else cv2.INTER_AREA)
            try:
                self._cv(cv2.imshow, self.title, np.ascontiguousarray(img))
            except cv2.error as exc:
                raise DisplayError(f"cannot show the preview window: {str(exc).strip().splitlines()[-1]}") from None
            wait_ms = 1
            if self._period:
                # Never "catch up" after a slow batch: that would fast-forward the preview.
                self._next = max(self._next + self._period, time.perf_counter())
                wait_ms = max(1, int((self._next - time.perf_counter()) * 1000))
            key = self._cv(cv2.waitKey, wait_ms) & 0xFF
            if key in (ord("q"), 27):
                raise PreviewClosed()
            if self.controls is not None and (changed := self.controls.handle_key(key)) is not None:
                # A key moved a value: move its trackbar to match (its callback then sees the same position).
                self._cv(cv2.setTrackbarPos, changed, self.title, self.controls.position(changed))

    def close(self) -> None:
        if self._open and self.hold:
            import cv2

            self._cv(cv2.waitKey, 0)
        if not self.persistent:
            self.destroy()

    def abort(self) -> None:
        if not self.persistent:
            self.destroy()

    def idle(self, seconds: float) -> None:
        """Keep the window responsive for ``seconds`` (between renders); raises PreviewClosed on q / Esc."""
        if not self._open:
            time.sleep(seconds)
            return
        import cv2

        if self._cv(cv2.waitKey, max(1, int(seconds * 1000))) & 0xFF in (ord("q"), 27):
            raise PreviewClosed()

    def destroy(self) -> None:
        """Close the window."""
        if self._open:
            import cv2

            self._open = False
            try:
                self._cv(cv2.destroyWindow, self.title)
                self._cv(cv2.waitKey, 1)
            except cv2.error:
                pass
        if self._gui is not None:
            self._gui.stop()
            self._gui = None

    def describe(self) -> str:
        return "the preview window"
