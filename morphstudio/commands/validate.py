"""``morphstudio validate SCENE [--model M]``: check a scene and that its loop closes.

Prints a summary (faces, keyframes, duration, frames) and, for a looping scene, how far each periodic element
(timeline, walks, deform loops, attributes, truncation, animated noise) is from closing, as
``max |latent(N) - latent(0)|``. Exit status 0 when valid (and closed), 2 with one clear line when not.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from morphstudio.commands import DEVICE_HELP
from morphstudio.errors import SceneError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a scene file (fields, faces, files, layer ranges) and that its loop closes",
        description="Load and check a scene, build its timeline on the model, and report the loop closure of "
        "every periodic element. Exit status 2 on any problem.",
    )
    p.add_argument("scene", help="scene file (.yaml)")
    p.add_argument("--model", default=None, help="use this model instead of the scene's model: (path or builtin:NAME)")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.add_argument("--quiet", "-q", action="store_true", help="print only problems")
    p.set_defaults(func=run)


def closure_lines(items: list) -> tuple[list[str], bool]:
    """Report lines for :meth:`Scene.closure` items, and whether everything closed."""
    lines = []
    ok = True
    for item in items:
        value = "n/a" if math.isnan(item.max_abs) else f"{item.max_abs:.3g}"
        status = "closed" if item.closed else "NOT closed"
        if item.element == "total":
            continue
        if not getattr(item, "checked", True):
            lines.append(f"  {item.element:<22} {item.note}")
            continue
        lines.append(f"  {item.element:<22} max |x(N) - x(0)| = {value:<10} {status}"
                     + (f"  ({item.note})" if item.note else ""))
        ok = ok and item.closed
    total = next((i for i in items if i.element == "total"), None)
    if total is not None and not getattr(total, "checked", True):
        lines.append(f"  {'all together':<22} {total.note}")
    elif total is not None:
        lines.append(f"  {'all together':<22} max |latent(N) - latent(0)| = {total.max_abs:.3g}"
                     f"  {'closed' if total.closed else 'NOT closed'}")
        ok = ok and total.closed
    return lines, ok


def check_scene_output(scene: Any) -> Any:
    """The output a render of ``scene`` writes, refused here exactly as the render would refuse it (an input
    overwritten, a folder morphstudio did not write, no extension for a video, a codec the name cannot hold)."""
    from morphstudio.rendering.batcher import output_size
    from morphstudio.rendering.outputs import check_output
    from morphstudio.sinks.ffmpeg import container_check, crf_check

    out = scene.resolved_output()
    check_output(out, scene.input_paths())
    if out.path is not None:
        # Only a scene without output.size needs the model (its resolution) for this check.
        width, height = output_size(out.size, 0 if out.size is not None else scene.generator().resolution)
        container_check(out.codec, out.path, width, height)
        crf_check(out.codec, out.crf)
    return out


def run(args: argparse.Namespace) -> int:
    from morphstudio.api import load_scene

    scene = load_scene(args.scene, model=args.model, device=args.device)
    out = check_scene_output(scene)
    # Loads the model; layer ranges and file shapes are checked here. Photos are not projected (that takes
    # minutes): those not in the cache yet are listed with their cost instead.
    scene.timeline(project=False)
    space = scene.latent_space()
    if not args.quiet:
        from morphstudio.faces.scene_photos import pending_lines

        print(scene.summary())  # its output line is `out`: the path and codec a render writes
        for note in out.notes:
            print(note)
        print(f"latents:    [{scene.frame_count}, {space.num_ws}, {space.w_dim}] ({space.family})")
        for line in pending_lines(scene.photos(), scene.generator(), what="validate"):
            print(line)
    items = scene.closure(project=False)
    lines, ok = closure_lines(items)
    if scene.is_loop:
        if not args.quiet:
            print(f"loop closure at frame {scene.frame_count} (= frame 0):")
            print("\n".join(lines))
        if not ok:
            bad = [i.element for i in items if not i.closed and i.element != "total"] or ["total"]
            first = next(i for i in items if i.element == bad[0])
            raise SceneError(
                f"the scene is marked loop: true but does not close: {', '.join(bad)}"
                + (f" ({first.note})" if first.note else ""),
                file=args.scene, line=scene.loc.line(("loop",)), field="loop",
            )
    elif not args.quiet:
        print("loop:       no (loop: false), closure not required")
    if not args.quiet:
        later = scene.unprojected if scene.is_loop else []
        print(f"ok: {args.scene} is valid" + (f" (the loop closure of the timeline is checked once "
                                               f"{len(later)} photo(s) are projected)" if later else ""))
    return 0
