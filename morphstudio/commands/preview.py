"""``morphstudio preview SCENE [--watch]``: play a scene in a window, re-rendering when the file changes.

Examples::

    morphstudio preview scenes/demo.yaml                 # play once at the scene's size (shown at ~512 px)
    morphstudio preview scenes/demo.yaml --low --watch   # half size; edit the file, the preview restarts
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from morphstudio.commands.render import add_scene_options, load, parse_common
from morphstudio.errors import MorphError
from morphstudio.formats import MIN_SIZE


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "preview",
        help="play a scene in a window (optionally re-rendering on every save)",
        description="Render a scene into a preview window; q or Esc closes it.",
    )
    add_scene_options(p)
    p.add_argument("--watch", action="store_true", help="re-render whenever the scene file changes")
    p.add_argument("--low", action="store_true", help="render at half the output size (faster)")
    p.add_argument("--loop", action="store_true", help="play again and again until the window is closed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    common = parse_common(args)
    if args.watch:
        return watch_preview(args, common, low=args.low)
    from morphstudio.sinks.window import WindowSink, check_display

    check_display()
    scene = load(args, common["fps"])
    window = WindowSink(scale=1.0, persistent=True)
    try:
        while True:
            res = _render_once(scene, args, common, window, low=args.low)
            if res.stopped or not args.loop:
                break
    finally:
        window.destroy()
    return 0


def _preview_size(scene: Any, settings: Any, size: tuple[int, int] | None, low: bool) -> tuple[int, int]:
    from morphstudio.rendering.batcher import output_size

    if size is not None:
        w, h = size
    else:
        w, h = output_size(settings.size, scene.generator().resolution)
    if low:
        # Half size, kept inside the one output-size rule (even, at least MIN_SIZE per side).
        w, h = max(MIN_SIZE, w // 4 * 2), max(MIN_SIZE, h // 4 * 2)
    return w, h


def _render_once(scene: Any, args: argparse.Namespace, common: dict[str, Any], window: Any, *, low: bool = False,
                 should_stop: Callable[[], bool] | None = None) -> Any:
    from morphstudio.rendering.renderer import OutputSettings, preview_scale, render_scene

    settings = OutputSettings.from_spec(scene.output)
    w, h = _preview_size(scene, settings, common["size"], low)
    out = _no_file(settings, (w, h))
    window.scale = preview_scale(out, scene.generator().resolution)
    return render_scene(scene, output=out,
                        frames=args.frames, batch=common["batch"], precision=common["precision"], sinks=[window],
                        progress=not args.quiet, should_stop=should_stop)


def _no_file(settings: Any, size: tuple[int, int]) -> Any:
    from dataclasses import replace

    return replace(settings, path=None, size=size)


def watch_preview(args: argparse.Namespace, common: dict[str, Any], *, low: bool = False, poll: float = 0.5,
                  max_cycles: int | None = None) -> int:
    """Preview the scene; whenever its file changes, reload and restart. Errors in the scene are printed and
    the watch goes on (fix the file and save again); q / Esc in the window ends it.

    Args:
        args: Parsed command line (scene, frames, model, device...).
        common: Values from :func:`parse_common` (its ``size`` overrides the preview size).
        low: Half size.
        poll: Seconds between checks of the file's modification time.
        max_cycles: Stop after this many (re)renders (tests); ``None`` = until the window is closed.
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
                res = _render_once(scene, args, common, window, low=low, should_stop=lambda seen=seen: mtime() != seen)
                if res.stopped and mtime() == seen:
                    return 0  # the window was closed
            except MorphError as err:
                print(f"error: {err}", file=sys.stderr)
                if err.hint:
                    print(f"hint: {err.hint}", file=sys.stderr)
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
