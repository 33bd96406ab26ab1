"""``morphstudio render SCENE`` (and ``python render.py SCENE``): a scene file to a video.

Examples::

    python render.py scenes/demo.yaml -o media/demo.mp4
    python render.py scenes/demo.yaml --frames 0:90 --size 256x256 -o /tmp/first3s.mp4
    python render.py scenes/demo.yaml --dry-run
    python render.py scenes/demo.yaml --resume          # continue a render that was killed
    python render.py scenes/demo.yaml --preview         # write the video and watch it being made
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

from morphstudio.commands import DEVICE_HELP
from morphstudio.errors import RenderError
from morphstudio.rendering.plan import add_threads_argument, parse_threads
from morphstudio.scene.schema import MAX_CRF, MAX_FPS, MAX_SIZE, MIN_SIZE

CODEC_CHOICES = ("h264", "h265", "vp9", "prores", "gif", "png", "ffv1")
PRECISIONS = ("fp32", "fp16", "bf16")


def add_scene_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``render`` and ``preview``. Values are parsed in :func:`parse_common` so that a bad
    value gives one ``error:`` line and exit status 2, like every other user mistake."""
    p.add_argument("scene", help="scene file (.yaml)")
    p.add_argument("--frames", metavar="A:B", help="render only frames A..B-1 (Python slice: 0:90, 30:, --frames=-10:)")
    p.add_argument("--batch", metavar="N", help="frames per generator call (default: automatic)")
    p.add_argument("--device", metavar="D", help=DEVICE_HELP)
    p.add_argument("--precision", metavar="P", help="fp32 (default), fp16 or bf16 (half precision: GPU speed)")
    p.add_argument("--model", metavar="M", help="use this model instead of the scene's (path or builtin:NAME)")
    p.add_argument("--size", metavar="WxH", help="output size, e.g. 640x360 or 256 (default: the scene's)")
    p.add_argument("--fps", metavar="F", help="frames per second (default: the scene's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "render",
        help="render a scene file to a video",
        description="Render a scene file to a video (or gif / PNG folder), batched and pipelined.",
    )
    add_scene_options(p)
    p.add_argument("-o", "--output", metavar="OUT", help="output file (.mp4/.mkv/.mov/.webm/.gif) or folder (png)")
    p.add_argument("--codec", metavar="C", help=f"one of {', '.join(CODEC_CHOICES)} (default: the scene's)")
    p.add_argument("--crf", metavar="Q", help="quality (lower is better; default: the codec's)")
    p.add_argument("--jobs", metavar="J", help="segment encoders at once (default: half the CPU cores)")
    add_threads_argument(p)
    p.add_argument("--preview", action="store_true", help="also show the frames in a window")
    p.add_argument("--watch", action="store_true",
                   help="preview in a window and re-render whenever the scene file changes (no video written)")
    p.add_argument("--resume", action="store_true", help="reuse the finished segments of an interrupted render")
    p.add_argument("--dry-run", action="store_true", help="print the scene summary and the plan; render nothing")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="render the segments on Ray workers: a local instance on 127.0.0.1, or the cluster at "
                        "ADDRESS (needs pip install 'morphstudio[ray]')")
    p.add_argument("--workers", metavar="N", help="Ray workers (default: one per GPU, else per core's share)")
    p.set_defaults(func=run)


def _int(value: str | None, flag: str, minimum: int = 1, maximum: int | None = None) -> int | None:
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
    if not (MIN_SIZE <= w <= MAX_SIZE and MIN_SIZE <= h <= MAX_SIZE):
        raise RenderError(f"--size: {w}x{h} is out of range ({MIN_SIZE}..{MAX_SIZE} per side)")
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
        "batch": _int(args.batch, "--batch"),
        "size": parse_size(args.size),
        "fps": fps,
        "precision": args.precision.lower() if args.precision else None,
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


def scene_summary(scene: Any) -> list[str]:
    """A few lines describing a scene (dry runs)."""
    summary = getattr(scene, "summary", None)
    if callable(summary):
        text = summary()
        return text.splitlines() if isinstance(text, str) else list(text)
    loop = " (loops)" if getattr(scene, "is_loop", False) else ""
    return [
        f"scene:     {scene.path or '(built in Python)'}",
        f"model:     {scene.model}",
        f"timing:    {scene.frame_count} frames, {scene.duration:.2f} s at {scene.fps:g} fps{loop}",
    ]


def run(args: argparse.Namespace) -> int:
    common = parse_common(args)
    if args.codec is not None and args.codec not in CODEC_CHOICES:
        raise RenderError(f"--codec: expected one of {', '.join(CODEC_CHOICES)}, got {args.codec!r}")
    crf = _int(args.crf, "--crf", minimum=0, maximum=MAX_CRF)
    jobs = _int(args.jobs, "--jobs")
    threads = parse_threads(args.threads)
    if args.watch:
        from morphstudio.commands.preview import watch_preview

        if args.output:
            print("note: --watch previews in a window; the video file is not written", file=sys.stderr)
        return watch_preview(args, common)

    scene = load(args, common["fps"])
    override: dict[str, Any] = {"path": args.output, "size": common["size"], "crf": crf, "label": "-o/--output"}
    if args.codec is not None:
        override["codec"] = args.codec
    if args.dry_run:
        return dry_run(scene, args, common, override, jobs, threads)

    if args.ray is not None:
        if args.preview:
            raise RenderError("--ray: --preview is not available with --ray (the frames are made on the workers)")
        from morphstudio.distributed import RayExecutor, render_distributed
        from morphstudio.distributed.ray_executor import import_ray

        import_ray()  # before the model loads: a missing Ray is one line at once
        result = render_distributed(
            scene, RayExecutor(args.ray or None, workers=_int(args.workers, "--workers"), threads=threads),
            output=override, frames=args.frames, batch=common["batch"], precision=common["precision"],
            threads=threads, resume=args.resume, progress=not args.quiet)
    else:
        from morphstudio.rendering.renderer import render_scene

        result = render_scene(
            scene, output=override, frames=args.frames, batch=common["batch"], precision=common["precision"],
            preview=args.preview, resume=args.resume, progress=not args.quiet, jobs=jobs, threads=threads,
        )
    n = len(result.frames)
    what = f"{n} frames {result.frames.start}..{result.frames.stop - 1}, {result.width}x{result.height}, " \
           f"{result.fps:g} fps"
    reused = f", {result.reused_segments} of {result.segments} segments reused" if result.reused_segments else ""
    speed = f"{result.seconds:.1f} s ({result.frames_per_second:.1f} frames/s{reused})"
    print(f"wrote {result.output} ({what}) in {speed}")
    return 0


def dry_run(scene: Any, args: argparse.Namespace, common: dict[str, Any], override: dict[str, Any],
            jobs: int | None, threads: int | None = None) -> int:
    """Print what a render would do, touching nothing: the same output path and codec, the same refusals."""
    from morphstudio.rendering.outputs import check_output
    from morphstudio.rendering.renderer import plan_render

    out = scene.resolved_output(override)
    check_output(out, scene.input_paths())
    gen = scene.generator()
    plan = plan_render(gen, scene.frame_count, scene.fps, out, frames=args.frames, batch=common["batch"],
                       precision=common["precision"], jobs=jobs, cpu_threads=threads)
    t0 = time.perf_counter()
    # Catches latent errors a real render would hit first, without projecting photos (minutes of work).
    scene.timeline(project=False).latents(list(plan.frames)[:1])
    # The plan's output line is the one the render uses (-o / --codec applied); the scene's own is left out.
    summary = [line for line in scene_summary(scene) if not line.startswith("output:")]
    for line in summary + plan.describe() + list(out.notes):
        print(line)
    from morphstudio.faces.scene_photos import pending_lines

    for line in pending_lines(scene.photos(), gen, what="a dry run"):
        print(line)
    if args.resume and out is not None and out.path is not None and plan.segments:
        from morphstudio.sinks.segmented import parts_dir_for

        parts = parts_dir_for(out.path)
        print(f"resume:    {'parts folder ' + str(parts) if parts.is_dir() else 'nothing to resume'}")
    print(f"dry run: nothing rendered ({time.perf_counter() - t0:.2f} s)")
    return 0
