"""Frames: ``--frames A:B`` ranges and segment boundaries."""

from __future__ import annotations

import re
from collections.abc import Sequence

from morphstudio.errors import RenderError

FrameSelection = str | range | slice | tuple[int | None, int | None] | Sequence[int] | None


def parse_frame_range(selection: FrameSelection, frame_count: int) -> range:
    """Turn ``--frames`` into a contiguous range of frame indices, with Python slice semantics.

    ``"10:20"`` is frames 10..19, ``"-30:"`` the last 30, ``":"`` / ``None`` all of them. Unlike a bare slice,
    bounds beyond the scene and empty ranges are errors, because a silent clip would render the wrong thing.

    Args:
        selection: ``"A:B"`` (either side may be empty), a ``range``/``slice`` with step 1, a ``(start, stop)``
            pair, a contiguous sequence of indices, or ``None``.
        frame_count: Number of frames in the scene.

    Returns:
        ``range(start, stop)`` with ``0 <= start < stop <= frame_count``.

    Raises:
        RenderError: Unparseable text, a step, out-of-range bounds or an empty range.
    """
    if frame_count <= 0:
        raise RenderError(f"the scene has no frames to render (frame count {frame_count})")
    start: int | None
    stop: int | None
    text = None
    if selection is None:
        start, stop = None, None
    elif isinstance(selection, str):
        text = selection.strip()
        m = re.fullmatch(r"\s*(-?\d+)?\s*:\s*(-?\d+)?\s*", text)
        if not m:
            raise RenderError(f"--frames: expected A:B (Python slice, e.g. 0:90, 30:, -10:), got {selection!r}")
        start = int(m.group(1)) if m.group(1) is not None else None
        stop = int(m.group(2)) if m.group(2) is not None else None
    elif isinstance(selection, (range, slice)):
        if selection.step not in (None, 1):
            raise RenderError(f"--frames: a step is not supported (got step {selection.step})")
        start, stop = selection.start, selection.stop
    elif isinstance(selection, tuple) and len(selection) == 2:
        start, stop = selection
    else:
        idx = [int(i) for i in selection]
        if not idx or idx != list(range(idx[0], idx[0] + len(idx))):
            raise RenderError("frames: a list of frame indices must be contiguous and increasing")
        start, stop = idx[0], idx[-1] + 1
    shown = text if text is not None else f"{'' if start is None else start}:{'' if stop is None else stop}"
    for name, value in (("start", start), ("stop", stop)):
        if value is not None and not -frame_count <= value <= frame_count:
            raise RenderError(
                f"--frames {shown}: {name} {value} is outside the scene, which has {frame_count} frames "
                f"(0..{frame_count - 1})"
            )
    r = range(frame_count)[slice(start, stop)]
    if len(r) == 0:
        raise RenderError(f"--frames {shown} selects no frames (the scene has {frame_count} frames)")
    return r


def segment_length(segment_seconds: float, fps: float) -> int:
    """Frames per encoded segment (at least 1)."""
    return max(1, round(segment_seconds * fps))


def plan_segments(frames: range, seg_len: int) -> list[tuple[int, int]]:
    """Split ``frames`` at absolute multiples of ``seg_len``, so the same scene always cuts at the same frames
    (whatever sub-range is rendered) and finished segments can be reused by a later, different range.

    Returns:
        ``[(start, stop), ...]`` covering ``frames`` in order.
    """
    out: list[tuple[int, int]] = []
    s = frames.start
    while s < frames.stop:
        e = min(frames.stop, (s // seg_len + 1) * seg_len)
        out.append((s, e))
        s = e
    return out
