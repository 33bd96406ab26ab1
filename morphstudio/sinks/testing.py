"""A stand-in for :class:`morphstudio.sinks.segmented.SegmentedVideoWriter` that keeps frames in memory.

Renderer tests use it to see which frame ranges the engine asks for, in what order it feeds them and what it
commits, without ffmpeg or files (as manim's ``DummySceneFileWriter`` stands in for its ``SceneFileWriter``).
Pretend an interrupted render left some segments behind with ``done``: :meth:`missing_segments` then leaves
those out (when their latents digest matches) and the engine must render only the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from morphstudio.errors import RenderError
from morphstudio.sinks.base import Sink, StreamInfo
from morphstudio.sinks.segmented import Segment


class _MemorySink(Sink):
    """Collects one segment's batches for :class:`RecordingSegmentWriter`."""

    def __init__(self, owner: RecordingSegmentWriter, seg: Segment) -> None:
        self.owner = owner
        self.seg = seg
        self.batches: list[tuple[int, np.ndarray]] = []
        self.closed = False
        self.aborted = False

    def open(self, info: StreamInfo) -> None:
        if (info.first_frame, info.frame_count) != (self.seg.start, len(self.seg)):
            raise RenderError(f"segment {self.seg.key}: opened for frames {info.first_frame}+{info.frame_count}")

    def write(self, first_index: int, frames: np.ndarray) -> None:
        self.batches.append((first_index, np.array(frames, copy=True)))
        self.owner.writes.append((self.seg.start, first_index, len(frames)))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class RecordingSegmentWriter:
    """An in-memory writer with :class:`SegmentedVideoWriter`'s interface.

    Args:
        segments: ``(start, stop)`` of every segment.
        done: Segments a previous render "committed", with the latents digest it recorded (``None``: reuse
            whatever the latents are).
        fingerprint: Put into every :class:`Segment`.
        fail_commit: Raise from :meth:`commit` of the segment starting at this frame (a failing encoder).

    Attributes:
        frames: ``start -> uint8 [n, H, W, 3]`` of each committed segment, in frame order.
        writes: ``(segment start, first frame, count)`` of every batch, in the order they arrived.
        opened: Segment starts in the order their sinks were asked for.
        committed: Segments committed, in order, with the digest given.
        asked_digest: Segment starts whose latents digest resume asked for.
        finished: :meth:`finish` was called.
        aborted: :meth:`abort` was called.
    """

    segmented = True

    def __init__(self, segments: Sequence[tuple[int, int]], *, done: Mapping[tuple[int, int], str | None] = {},
                 fingerprint: str = "test", fail_commit: int | None = None) -> None:
        self.segments = [Segment(s, e, f"seg_{s:06d}-{e:06d}.mem", "ffv1", None, 0, 0, 1.0, None, fingerprint, 1)
                         for s, e in segments]
        self.done = dict(done)
        self.fail_commit = fail_commit
        self.reused: list[Segment] = []
        self.frames: dict[int, np.ndarray] = {}
        self.writes: list[tuple[int, int, int]] = []
        self.opened: list[int] = []
        self.committed: list[tuple[Segment, str]] = []
        self.asked_digest: list[int] = []
        self.is_open = False
        self.finished = False
        self.aborted = False
        self._sinks: dict[int, _MemorySink] = {}

    def open(self) -> None:
        self.is_open = True

    def missing_segments(self, digest_of: Callable[[Segment], str] | None = None) -> list[Segment]:
        missing = []
        for seg in self.segments:
            if (seg.start, seg.stop) in self.done:
                want = self.done[(seg.start, seg.stop)]
                self.asked_digest.append(seg.start)
                got = digest_of(seg) if digest_of is not None else None
                if want is None or want == got:
                    self.reused.append(seg)
                    continue
            missing.append(seg)
        return missing

    def segment_sink(self, seg: Segment, tag: str | None = None) -> Sink:
        assert self.is_open, "segment_sink() before open()"
        self.opened.append(seg.start)
        sink = _MemorySink(self, seg)
        self._sinks[seg.start] = sink
        return sink

    def commit(self, seg: Segment, digest: str, file: str | Path | None = None, sha256: str | None = None) -> None:
        if seg.start == self.fail_commit:
            raise RenderError(f"segment {seg.key}: commit failed (test)")
        sink = self._sinks[seg.start]
        if not sink.closed:
            raise RenderError(f"segment {seg.key}: committed before its sink was closed")
        got = np.concatenate([f for _, f in sorted(sink.batches, key=lambda b: b[0])])
        if len(got) != len(seg):
            raise RenderError(f"segment {seg.key}: {len(got)} frames, expected {len(seg)}")
        self.frames[seg.start] = got
        self.committed.append((seg, digest))

    def finish(self) -> None:
        have = {s.start for s, _ in self.committed} | {s.start for s in self.reused}
        absent = [s.key for s in self.segments if s.start not in have]
        if absent:
            raise RenderError(f"finish() with segments never committed: {', '.join(absent)}")
        self.finished = True

    def abort(self) -> None:
        self.aborted = True

    def video(self) -> np.ndarray:
        """Every committed segment's frames in order (reused segments are not in memory: leave them out)."""
        return np.concatenate([self.frames[s.start] for s in self.segments if s.start in self.frames])
