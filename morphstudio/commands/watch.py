"""Rendering a scene into a preview window, and the watch loop that re-renders it whenever its file changes.

``preview`` and ``render --watch`` both use it; it lives apart from either command so that neither imports the
other.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from morphstudio.commands.scene_args import load
from morphstudio.errors import MorphError, report
from morphstudio.formats import MIN_SIZE


def preview_size(scene: Any, settings: Any, size: tuple[int, int] | None, low: bool) -> tuple[int, int]:
    """The size frames are rendered at for the window: ``--size`` if given, else the scene's output size; half of
    it with ``--low``."""
    from morphstudio.rendering.batcher import output_size

    if size is not None:
        w, h = size
    else:
        w, h = output_size(settings.size, scene.generator().resolution)
    if low:
        # Half size, kept inside the one output-size rule (even, at least MIN_SIZE per side).
        w, h = max(MIN_SIZE, w // 4 * 2), max(MIN_SIZE, h // 4 * 2)
    return w, h


def render_to_window(scene: Any, args: argparse.Namespace, common: dict[str, Any], window: Any, *,
                     low: bool = False, should_stop: Callable[[], bool] | None = None) -> Any:
    """Render the scene (``--frames`` of it) into ``window`` only: no file is written.

    Args:
        scene: The loaded scene.
        args: Parsed command line (frames, quiet).
        common: Values from :func:`~morphstudio.commands.scene_args.parse_common`.
        window: The :class:`~morphstudio.sinks.window.WindowSink` to show frames in.
        low: Half size.
        should_stop: Polled between batches; ``True`` ends the render early (the file changed).

    Returns:
        The renderer's result (``stopped`` is true when the window was closed or ``should_stop`` said so).
    """
    from morphstudio.rendering.renderer import OutputSettings, preview_scale, render_scene

    settings = OutputSettings.from_spec(scene.output)
    size = preview_size(scene, settings, common["size"], low)
    out = replace(settings, path=None, size=size)
    window.scale = preview_scale(out, scene.generator().resolution)
    return render_scene(scene, output=out,
                        frames=args.frames, batch=common["batch"], precision=common["precision"], sinks=[window],
                        progress=not args.quiet, should_stop=should_stop, threads=common["threads"],
                        recalibrate=bool(getattr(args, "recalibrate", False)))


def watch_preview(args: argparse.Namespace, common: dict[str, Any], *, low: bool = False, poll: float = 0.5,
                  max_cycles: int | None = None) -> int:
    """Preview the scene; whenever its file changes, reload and restart. Errors in the scene are printed as the
    CLI prints them (:func:`morphstudio.errors.report`) and the watch goes on (fix the file and save again);
    q / Esc in the window ends it.

    Args:
        args: Parsed command line (scene, frames, model, device...).
        common: Values from :func:`~morphstudio.commands.scene_args.parse_common` (its ``size`` overrides the
            preview size).
        low: Half size.
        poll: Seconds between checks of the file's modification time.
        max_cycles: Stop after this many (re)renders (tests); ``None`` = until the window is closed.

    Returns:
        The exit status: 0 (the window was closed).
    """
    from morphstudio.sinks.window import PreviewClosed, WindowSink, check_display

    check_display()
    path = Path(args.scene)
    window = WindowSink(scale=1.0, persistent=True)

    def mtime() -> float:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return -1.0

    cycles = 0
    try:
        while max_cycles is None or cycles < max_cycles:
            cycles += 1
            seen = mtime()
            try:
                scene = load(args, common["fps"])
                res = render_to_window(scene, args, common, window, low=low,
                                       should_stop=lambda seen=seen: mtime() != seen)
                if res.stopped and mtime() == seen:
                    return 0  # the window was closed
            except MorphError as err:
                # The same lines cli.main prints for a user error; the exit code is dropped because the watch
                # goes on until the file is fixed.
                print(report(err)[0], file=sys.stderr)
            print(f"watching {path} for changes (q or Esc in the window to quit)", file=sys.stderr)
            while mtime() == seen:
                try:
                    window.idle(poll)
                except PreviewClosed:
                    return 0
                if max_cycles is not None and cycles >= max_cycles:
                    return 0
            time.sleep(0.05)  # let the editor finish writing
    finally:
        window.destroy()
    return 0
