"""``morphstudio preview SCENE [--watch]``: play a scene in a window, re-rendering when the file changes.

Examples::

    morphstudio preview scenes/demo.yaml                 # play once at the scene's size (shown at ~512 px)
    morphstudio preview scenes/demo.yaml --low --watch   # half size; edit the file, the preview restarts
"""

from __future__ import annotations

import argparse
from typing import Any

from morphstudio.commands.scene_args import add_scene_options, load, parse_common
from morphstudio.commands.watch import render_to_window, watch_preview

__all__ = ["register", "run", "watch_preview"]


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
            res = render_to_window(scene, args, common, window, low=args.low)
            if res.stopped or not args.loop:
                break
    finally:
        window.destroy()
    return 0
