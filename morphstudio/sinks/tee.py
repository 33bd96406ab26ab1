"""Send every frame to several sinks at once (e.g. a video file and a preview window)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from morphstudio.sinks.base import Sink, StreamInfo


class TeeSink(Sink):
    """Fan frames out to ``sinks`` in turn; if one fails, all are aborted.

    Args:
        sinks: The sinks to feed; each is opened, written and closed in the given order.
    """

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        self.wants_order = any(s.wants_order for s in self.sinks)

    def open(self, info: StreamInfo) -> None:
        opened: list[Sink] = []
        try:
            for sink in self.sinks:
                sink.open(info)
                opened.append(sink)
        except BaseException:
            for sink in opened:
                sink.abort()
            raise

    def write(self, first_index: int, frames: np.ndarray) -> None:
        for sink in self.sinks:
            sink.write(first_index, frames)

    def close(self) -> None:
        # Close every sink even if one fails, so no process is left running; re-raise the first error.
        first: BaseException | None = None
        for sink in self.sinks:
            try:
                if first is None:
                    sink.close()
                else:
                    sink.abort()
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
                first = exc
        if first is not None:
            raise first

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()

    def describe(self) -> str:
        return ", ".join(s.describe() for s in self.sinks)
