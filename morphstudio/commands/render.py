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
import sys
import time
from typing import Any

from morphstudio.commands.scene_args import add_scene_options, load, parse_common, parse_int
from morphstudio.errors import RenderError
from morphstudio.formats import CODECS as CODEC_CHOICES
from morphstudio.formats import CRF_MAX as MAX_CRF

# parse_common is re-exported: scripts and tests written before the shared scene arguments had their own module
# import it from here.
__all__ = ["CODEC_CHOICES", "dry_run", "parse_common", "register", "run", "scene_summary"]


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
    p.add_argument("--jobs", metavar="J", help="segment encoders at once (default: half the usable CPU cores)")
    p.add_argument("--recalibrate", action="store_true",
                   help="measure this machine's generator and encoder costs again, even if cached (e.g. after a "
                        "calibration on a busy machine; --dry-run shows when and under what load it was measured)")
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
    crf = parse_int(args.crf, "--crf", minimum=0, maximum=MAX_CRF)
    jobs = parse_int(args.jobs, "--jobs")
    threads = common["threads"]
    if args.watch:
        from morphstudio.commands.watch import watch_preview

        # Options the watch loop would otherwise drop without a word: it renders to a window, on this machine.
        ignored = [flag for flag, given in (("--resume", args.resume), ("--dry-run", args.dry_run),
                                            ("--ray", args.ray is not None), ("--workers", args.workers is not None),
                                            ("--jobs", args.jobs is not None)) if given]
        if ignored:
            raise RenderError(f"--watch: cannot be combined with {', '.join(ignored)} (it previews in a window, "
                              "re-rendering on this machine; drop --watch to write the video)")

        unused = [flag for flag, given in (("-o", args.output), ("--codec", args.codec is not None),
                                           ("--crf", args.crf is not None)) if given]
        if unused:
            print(f"note: --watch previews in a window; no video is written, so {', '.join(unused)} "
                  f"{'is' if len(unused) == 1 else 'are'} not used", file=sys.stderr)
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
            scene, RayExecutor(args.ray or None, workers=parse_int(args.workers, "--workers"), threads=threads),
            output=override, frames=args.frames, batch=common["batch"], precision=common["precision"],
            threads=threads, resume=args.resume, progress=not args.quiet, recalibrate=args.recalibrate)
    else:
        from morphstudio.rendering.renderer import render_scene

        result = render_scene(
            scene, output=override, frames=args.frames, batch=common["batch"], precision=common["precision"],
            preview=args.preview, resume=args.resume, progress=not args.quiet, jobs=jobs, threads=threads,
            recalibrate=args.recalibrate,
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
                       precision=common["precision"], jobs=jobs, cpu_threads=threads,
                       recalibrate=getattr(args, "recalibrate", False))
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
