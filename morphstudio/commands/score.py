"""``morphstudio score IMAGE_OR_LATENT [--model M] [--top K]``: a face's attribute scores, strongest first.

As NVIDIA's DIGITS demo lists a face's top attributes, every label of the ``all`` labeller is shown with its value
and how far it is from the built-in model's typical face, in standard deviations (``reference.json``, made by
``scripts/label_reference.py``); the list is sorted by that distance, so the face's most distinctive attributes
come first (face size and position, which describe the framing, come last). A latent file (``.npy``/``.npz``:
W, W+ or z, as a scene's ``latent:``) is rendered with ``--model`` first.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from morphstudio.errors import FaceNotFoundError, ImageInputError, SceneError

LATENT_SUFFIXES = (".npy", ".npz")
# Where the face sits in the picture says more about the photo's framing than about the face: listed last.
FRAMING = ("face_size", "face_x", "face_y")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="a face's attribute scores (smile, mouth, eyes, head pose, age, gender...), strongest first",
        description="Score the largest face of a photo, or of the face a latent file renders to, with the offline "
        "labellers (mediapipe's face mesh for geometry, dlib's networks for age and gender). Each score is shown "
        "with its distance from the built-in model's typical face in standard deviations, sorted by it.",
    )
    p.add_argument("input", type=Path, metavar="IMAGE_OR_LATENT", help="photo, or .npy/.npz latent to render")
    p.add_argument("--model", default="builtin:dcgan-faces64",
                   help="generator that renders a latent file (default builtin:dcgan-faces64)")
    p.add_argument("--top", type=int, default=None, metavar="K", help="show only the K most distinctive scores")
    p.add_argument("--index", type=int, default=None, metavar="N",
                   help="which latent of a file that holds several (0-based)")
    p.add_argument("--space", choices=("w", "z"), default=None,
                   help="read a 1-D latent file as W or z (default: the model's own; z on the built-in model)")
    p.add_argument("--labeller", default="all", help="labeller spec (default all: geometry and age-gender)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("--device", default=None, help="device for --model (auto, cpu, cuda...)")
    p.set_defaults(func=run)


def _reference() -> dict[str, dict[str, float]]:
    text = (resources.files("morphstudio.edit.labels") / "reference.json").read_text(encoding="utf-8")
    return json.loads(text)["labels"]


def render_latent(path: Path, model: str, *, index: int | None, space: str | None, device: str | None) -> Any:
    """The uint8 ``[H, W, 3]`` face a latent file renders to on ``model``."""
    import numpy as np
    import torch

    import morphstudio
    from morphstudio.generators import to_uint8

    gen = morphstudio.load_generator(model, device=device)
    face: dict[str, Any] = {"latent": str(path.resolve())}
    if index is not None:
        face["index"] = index
    if space is not None:
        face["space"] = space
    scene = {"model": model, "faces": {"latent": face}, "timeline": [{"at": 0, "face": "latent"}],
             "output": {"duration": 1, "path": str(path.with_suffix(".score.mp4"))}}
    try:
        ws = morphstudio.load_scene(scene, latent_space=gen.latent_space()).latents([0])
    except SceneError as err:
        # The scene is this command's own; report the problem against the user's file, not a scene field.
        raise ImageInputError(path, err.problem.replace(repr(str(path.resolve())) + " ", "").strip()) from None
    with torch.no_grad():
        w = torch.from_numpy(np.asarray(ws, dtype=np.float32)).to(gen.device)
        return to_uint8(gen.synthesis(w, noise_mode="const"))[0].cpu().numpy()


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from morphstudio.edit.labels import get_labeller
    from morphstudio.faces.images import read_image

    if args.top is not None and args.top < 1:
        raise ImageInputError(None, f"--top must be at least 1, got {args.top}")
    path: Path = args.input
    labeller = get_labeller(args.labeller)
    if path.suffix.lower() in LATENT_SUFFIXES:
        image = render_latent(path, args.model, index=args.index, space=args.space, device=args.device)
        what = f"{path} rendered with {args.model}"
    else:
        image = read_image(path).pixels
        what = str(path)
    scores = labeller(image[None])[0]
    if np.all(np.isnan(scores)):
        raise FaceNotFoundError(path, "no face found" + (" in the rendered image" if path.suffix.lower()
                                                         in LATENT_SUFFIXES else " in the image"))
    ref = _reference()
    rows = []
    for info, value in zip(labeller.labels, scores):
        stat = ref.get(info.name)
        z = (value - stat["mean"]) / stat["std"] if stat and stat["std"] > 0 else math.nan
        rows.append({"name": info.name, "value": float(value), "unit": info.unit, "sigma": float(z),
                     "description": info.description})
    rows.sort(key=lambda r: (r["name"] in FRAMING, -abs(r["sigma"]) if math.isfinite(r["sigma"]) else math.inf))
    if args.top is not None:
        rows = rows[:args.top]
    if args.json:
        print(json.dumps({"input": str(path), "scores": rows}, indent=1))
        return 0
    print(f"{what}:")
    for r in rows:
        sigma = f"{r['sigma']:+6.2f} sd" if math.isfinite(r["sigma"]) else "     n/a"
        print(f"  {r['name']:<11} {r['value']:9.3f} {r['unit']:<11} {sigma}")
    print("(sd: distance from the built-in model's typical face, in standard deviations)", file=sys.stderr)
    return 0
