"""A sink on its own thread behind a bounded queue: the overlap between generating and encoding.

The renderer's loop ``submit``s batches; the thread writes them to the sink. The queue bound is the
back-pressure that keeps memory flat when the encoder is slower than the generator. An error in the thread is
re-raised in the renderer at its next ``submit``/``finish``, so a dead encoder stops the render at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np

from morphstudio.sinks.base import Sink, StreamInfo

_DONE = object()


class SinkWorker:
    """Feed ``sink`` from a bounded queue on a daemon thread.

    Args:
        sink: The sink; opened on the renderer's thread (so open errors surface immediately).
        info: Stream geometry passed to ``sink.open``.
        depth: Queue size in batches.
        on_closed: Called on the worker thread after ``sink.close()`` succeeded (e.g. record a finished segment).
        name: Thread name (debugging).
    """

    def __init__(self, sink: Sink, info: StreamInfo, depth: int = 4,
                 on_closed: Callable[[], None] | None = None, name: str = "sink") -> None:
        self.sink = sink
        self.on_closed = on_closed
        self.error: BaseException | None = None
        self.closed = False
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        sink.open(info)
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                item = self._q.get()
                if self._stop.is_set():
                    return  # aborted: never close (and so never commit) a partial output
                if item is _DONE:
                    break
                first, frames = item
                self.sink.write(first, frames)
            self.sink.close()
            self.closed = True
            if self.on_closed is not None:
                self.on_closed()
        except BaseException as exc:  # noqa: BLE001 - handed to the renderer thread, which re-raises it
            self.error = exc
            self._stop.set()

    def done(self) -> bool:
        """The worker thread has ended (closed its sink, failed or was aborted)."""
        return not self._thread.is_alive()

    def backlog(self) -> int:
        """Batches waiting in the queue."""
        return self._q.qsize()

    def _put(self, item: object) -> None:
        while True:
            self.check()
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def check(self) -> None:
        """Re-raise an error from the worker thread."""
        if self.error is not None:
            raise self.error

    def submit(self, first: int, frames: np.ndarray) -> None:
        """Queue a batch (blocks while the queue is full)."""
        self._put((first, frames))

    def finish(self) -> None:
        """Ask the worker to close the sink after the queued batches (does not wait)."""
        self._put(_DONE)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker to end; re-raise its error. Returns True when it has ended."""
        self._thread.join(timeout)
        self.check()
        return not self._thread.is_alive()

    def abort(self) -> None:
        """Stop the worker and abort its sink (kills an encoder, deletes partial output)."""
        self._stop.set()
        # Drain so a blocked put/get wakes up, then tell the thread to stop.
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass
        try:
            self._q.put_nowait(_DONE)
        except queue.Full:
            pass
        if self._thread.is_alive() and not self.closed:
            # Abort first: killing ffmpeg unblocks a worker stuck writing to its pipe.
            self.sink.abort()
            self._thread.join(10)
        if not self.closed:
            self.sink.abort()
