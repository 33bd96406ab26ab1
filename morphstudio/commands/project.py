"""``morphstudio project IMAGE... --model MODEL -o OUT.npz``: find photos in a generator's latent space."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from morphstudio.commands import DEVICE_HELP
from morphstudio.errors import ImageInputError, ProjectionError
from morphstudio.files import atomic_path
from morphstudio.rendering.plan import add_threads_argument, parse_threads, plan_torch_threads, torch_threads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "project",
        help="project photos into a generator's latent space (saves ws to an .npz)",
        description="Align each photo's face, then optimise a latent (W or W+, plus noise maps on StyleGAN2) until "
        "the generator draws it. A trained encoder (the shipped one for the built-in model, or --encoder PATH) "
        "gives the starting point. OUT.npz holds ws [num_ws, w_dim] ([N, num_ws, w_dim] plus names for several "
        "images) and the settings used. With several photos (or a folder of them), a photo that cannot be used "
        "(no face found, not an image, unreadable) is skipped with a note and counted at the end; the others are "
        "projected and saved (the names in OUT.npz say which). Only when no photo is usable does it fail, "
        "before any projection work.",
    )
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE",
                   help="photos, or folders of them (projected together as a batch)")
    p.add_argument("--model", default="builtin:dcgan-faces64", help="generator (default builtin:dcgan-faces64)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.npz", help="where to save the latents")
    p.add_argument("--no-align", action="store_true", help="images are already aligned crops: only resize them")
    p.add_argument("--face", type=int, default=None, metavar="N", help="which face (0-based, left to right)")
    p.add_argument("--space", choices=("w", "w+"), default="w+", help="one latent for all layers (w) or one per "
                   "layer (w+, default)")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps (default 1000, 300 with an encoder)")
    p.add_argument("--encoder", default="auto", metavar="PATH|none",
                   help="encoder for the starting point: auto (the shipped one for this model), none, or a path")
    p.add_argument("--perceptual", default="auto", choices=("auto", "lpips", "disc", "msssim", "none"),
                   help="perceptual loss (auto: LPIPS-VGG16 if weights exist, else discriminator, else MS-SSIM)")
    p.add_argument("--vgg", default=None, metavar="PATH", help="local VGG16 weights (vgg16-397923af.pth); never "
                   "downloaded")
    p.add_argument("--video", type=Path, default=None, metavar="progress.mp4", help="save a video of the "
                   "projection converging (one per image when several)")
    p.add_argument("--report", type=Path, default=None, metavar="out.png", help="save target | result | "
                   "difference (one per image when several)")
    p.add_argument("--w-avg-weight", type=float, default=0.0, help="pull toward w_avg (keeps W+ latents morphable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the projector's noise")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    add_threads_argument(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="show mediapipe's own log lines (hidden by default)")
    p.set_defaults(func=run)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def expand_images(paths: list[Path]) -> list[Path]:
    """Photos as given, with each folder replaced by its image files (sorted by name)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ImageInputError(p, f"the folder holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            out.extend(found)
        else:
            out.append(p)
    return out


def per_image_path(path: Path, name: str, count: int) -> Path:
    """``out.png`` for one image, ``out-NAME.png`` for several."""
    return path if count == 1 else path.with_name(f"{path.stem}-{name}{path.suffix}")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    import morphstudio
    from morphstudio.faces.pipeline import (
        make_projector,
        prepare_image,
        project_prepared,
        unique_names,
    )
    from morphstudio.faces.project import ProjectConfig
    from morphstudio.faces.report import (
        quality,
        save_side_by_side,
        write_progress_video,
    )

    threads = parse_threads(args.threads)
    if args.steps is not None and args.steps < 1:
        raise ProjectionError(f"--steps must be at least 1, got {args.steps}")
    if args.output.suffix.lower() != ".npz":
        raise ProjectionError(f"-o must name an .npz file, got {args.output}")
    if args.video is not None and args.video.suffix.lower() not in (".mp4", ".mkv", ".mov"):
        raise ProjectionError(f"--video must name an .mp4, .mkv or .mov file (H.264), got {args.video}")

    def warn(msg: str) -> None:
        print(f"warning: {msg}", file=sys.stderr)

    images = expand_images(list(args.images))
    batch = len(images) > 1
    gen = morphstudio.load_generator(args.model, device=args.device)
    names = unique_names(images)
    prepared = []
    skipped: list[tuple[Path, str]] = []
    # Every photo is read and aligned before any projection: a bad one costs nothing and loses nothing.
    for path, name in zip(images, names):
        try:
            im = prepare_image(path, gen, align=not args.no_align, face=args.face, name=name)
        except ImageInputError as exc:
            if not batch:
                raise
            skipped.append((path, exc.message))
            print(f"note: skipped {exc.message}", file=sys.stderr)
            continue
        for note in im.notes:
            print(f"note: {path}: {note}", file=sys.stderr)
        prepared.append(im)
    if not prepared:
        raise ImageInputError(None, f"none of the {len(images)} photos can be projected: "
                              + "; ".join(msg for _, msg in skipped))

    cfg = ProjectConfig(perceptual=args.perceptual, w_avg_weight=args.w_avg_weight, seed=args.seed,
                        snapshot_every=0)
    if args.video is not None:
        cfg.snapshot_every = max(1, (args.steps or 300) // 100)
    projector = make_projector(gen, space=args.space, steps=args.steps, encoder=args.encoder, vgg_path=args.vgg,
                               config=cfg, warn=warn)
    threads, why = plan_torch_threads(gen, len(prepared), threads)
    if not args.quiet:
        print(f"threads: {why}", file=sys.stderr)
    progress = None
    if not args.quiet:
        from morphstudio.faces.progress import ProjectionProgress

        label = prepared[0].name if len(prepared) == 1 else f"{len(prepared)} photos"
        progress = ProjectionProgress(label, projector.default_steps())
    t0 = time.perf_counter()
    with torch_threads(threads):
        result = project_prepared(prepared, projector, callback=progress)
    wall = time.perf_counter() - t0
    if progress is not None:
        progress.close(result.stopped_early)

    vgg = projector.perceptual if projector.perceptual_name == "lpips-vgg16" else None
    reports = []
    for i, im in enumerate(prepared):
        rep = quality(im.name, im.target, result.images[i], seconds=result.seconds, steps=result.steps,
                      init=result.init, distance=float(result.distance[i]), vgg=vgg)
        reports.append(rep)
        print(rep.line())
        if args.report is not None:
            out = save_side_by_side(per_image_path(args.report, im.name, len(prepared)), im.target,
                                    result.images[i], rep)
            print(f"  side-by-side: {out}")
        if args.video is not None and result.snapshots:
            snaps = [(step, imgs[i]) for step, imgs in result.snapshots]
            out = write_progress_video(per_image_path(args.video, im.name, len(prepared)), im.target, snaps)
            print(f"  progress video: {out}")

    settings = {
        "model": str(args.model), "space": args.space, "align": not args.no_align, "face": args.face,
        "encoder": str(args.encoder), "init": result.init, "perceptual": result.perceptual,
        "steps_run": result.steps, "stopped_early": result.stopped_early, "seconds": round(wall, 2),
        "projector": result.settings, "images": [str(im.path) for im in prepared],
        "skipped": [{"image": str(p), "reason": msg} for p, msg in skipped],
        "quality": [r.as_dict() for r in reports],
    }
    ws = result.ws if batch else result.ws[0]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.output) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to the temporary name
            np.savez(f, ws=ws.astype(np.float32), names=np.array([im.name for im in prepared]),
                     settings=json.dumps(settings, default=str))
    print(f"saved ws {list(ws.shape)} -> {args.output}")
    if skipped:
        print(f"note: skipped {len(skipped)} of {len(images)} photos: "
              + ", ".join(str(p) for p, _ in skipped), file=sys.stderr)
    return 0
