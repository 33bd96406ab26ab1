"""The scene arguments ``render`` and ``preview`` share: their options, how their values are checked, and loading
the scene with the command-line overrides.

Values are parsed here rather than by ``argparse`` ``type=`` so that a bad value gives one ``error:`` line and exit
status 2, like every other user mistake (argparse would print its usage and exit 2 with its own wording).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from morphstudio.commands import DEVICE_HELP
from morphstudio.errors import RenderError
from morphstudio.formats import MAX_FPS, PRECISIONS, size_problem
from morphstudio.rendering.plan import add_threads_argument, parse_threads



def add_scene_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``render`` and ``preview``. Values are parsed in :func:`parse_common` so that a bad
    value gives one ``error:`` line and exit status 2, like every other user mistake."""
    p.add_argument("scene", help="scene file (.yaml)")
    p.add_argument("--frames", metavar="A:B", help="render only frames A..B-1 (Python slice: 0:90, 30:, --frames=-10:)")
    p.add_argument("--batch", metavar="N", help="frames per generator call (default: automatic)")
    p.add_argument("--device", metavar="D", help=DEVICE_HELP)
    p.add_argument("--precision", metavar="P",
                   help=f"{', '.join(PRECISIONS)} (default: {PRECISIONS[0]}; half precision: GPU speed)")
    p.add_argument("--model", metavar="M", help="use this model instead of the scene's (path or builtin:NAME)")
    p.add_argument("--size", metavar="WxH", help="output size, e.g. 640x360 or 256 (default: the scene's)")
    p.add_argument("--fps", metavar="F", help="frames per second (default: the scene's)")
    add_threads_argument(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def parse_int(value: str | None, flag: str, minimum: int = 1, maximum: int | None = None) -> int | None:
    """A whole-number option's value (``None`` when not given) within ``minimum..maximum``.

    Raises:
        RenderError: Not a whole number, or out of range (the message names the flag and the value).
    """
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise RenderError(f"{flag}: expected a whole number, got {value!r}") from None
    if n < minimum:
        raise RenderError(f"{flag}: must be at least {minimum}, got {n}")
    if maximum is not None and n > maximum:
        raise RenderError(f"{flag}: must be at most {maximum}, got {n}")
    return n


def parse_size(value: str | None) -> tuple[int, int] | None:
    """``"640x360"`` -> ``(640, 360)``, ``"256"`` -> ``(256, 256)``, within the scene schema's limits."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d{1,9})\s*(?:[xX\u00d7]\s*(\d{1,9}))?\s*", value)
    if not m:
        raise RenderError(f"--size: expected WxH (e.g. 640x360) or one number for a square, got {value!r}")
    w = int(m.group(1))
    h = int(m.group(2)) if m.group(2) else w
    problem = size_problem(w, h)
    if problem:
        raise RenderError(f"--size: {problem}")
    return w, h


def parse_common(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the shared options; returns keyword values for loading and rendering."""
    fps = None
    if args.fps is not None:
        try:
            fps = float(args.fps)
        except ValueError:
            raise RenderError(f"--fps: expected a number, got {args.fps!r}") from None
        if not 0 < fps <= MAX_FPS:
            raise RenderError(f"--fps: must be more than 0 and at most {MAX_FPS}, got {args.fps}")
    if args.precision is not None and args.precision.lower() not in PRECISIONS:
        raise RenderError(f"--precision: expected one of {', '.join(PRECISIONS)}, got {args.precision!r}")
    return {
        "batch": parse_int(args.batch, "--batch"),
        "size": parse_size(args.size),
        "fps": fps,
        "precision": args.precision.lower() if args.precision else None,
        "threads": parse_threads(args.threads),
    }


def load(args: argparse.Namespace, fps: float | None = None) -> Any:
    """Load the scene with the command-line overrides (``--model``, ``--device``, ``--fps``).

    ``--fps`` changes the frame count, so the scene is validated again with ``output.fps`` replaced (from its
    parsed data, relative paths still resolved against the scene's folder).
    """
    from morphstudio.api import load_scene

    path = Path(args.scene)
    if not path.is_file():
        raise RenderError(f"{args.scene}: scene file not found")
    scene = load_scene(path, model=args.model, device=args.device)
    if fps is None or fps == scene.fps:
        return scene
    data = scene.spec.model_dump(mode="json", exclude_unset=True)
    data.setdefault("output", {})["fps"] = fps
    again = load_scene(data, model=args.model, device=args.device, base_dir=scene.base_dir)
    again.path = scene.path
    return again
