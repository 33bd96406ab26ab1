"""``morphstudio align IMAGE -o OUT.png [--face N] [--size S] [--model MODEL]``: crop a face as the model expects."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from morphstudio.errors import ImageInputError

FRAMINGS = ("auto", "ffhq", "digiface")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align",
        help="detect a face in a photo and crop it the way the generator's training faces were framed",
        description="Find the face with mediapipe's face mesh (nothing is downloaded), build the oriented crop "
        "from the eyes and mouth with the framing of --model's training faces (the same crop `project` uses for "
        "that model: DigiFace for the built-in model, FFHQ for StyleGAN face models), and save it. The "
        "photo->crop transform is saved next to it (OUT.transform.json) so a result can be pasted back into the "
        "photo. Parts of the crop outside the photo are filled with a blur of its edge.",
    )
    p.add_argument("image", type=Path, help="photo (JPEG, PNG, WebP...)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png", help="where to write the crop")
    p.add_argument("--face", type=int, default=None, metavar="N",
                   help="which face, counted from 0 left to right (default: the largest)")
    p.add_argument("--size", type=int, default=None, metavar="S",
                   help="crop side in pixels (default: the model's resolution)")
    p.add_argument("--model", default="builtin:dcgan-faces64",
                   help="generator whose framing and resolution to use (default builtin:dcgan-faces64, as project)")
    p.add_argument("--framing", choices=FRAMINGS, default="auto",
                   help="override the model's framing: ffhq (StyleGAN face models) or digiface (the built-in "
                        "DCGAN); auto (default) is the model's own, the one project uses")
    p.add_argument("--border", choices=("blur", "reflect", "replicate", "constant"), default=None,
                   help="how to fill parts of the crop outside the photo (default blur: the photo's edge, "
                        "blurred; reflect mirrors it, which ghosts a face cut by the edge)")
    p.add_argument("--mask", type=Path, default=None, metavar="MASK.png", help="also save the face mask")
    p.add_argument("--device", default=None, help="device for --model (auto, cpu, cuda...)")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="show mediapipe's own log lines (hidden by default)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import numpy as np
    from PIL import Image

    from morphstudio.faces.align import (
        DIGIFACE,
        FFHQ,
        align_face,
        crop_params_for,
        settings_dict,
    )
    from morphstudio.faces.images import read_image

    import morphstudio

    photo = read_image(args.image)
    # The framing and size come from the model, through the same crop_params_for that project uses.
    gen = morphstudio.load_generator(args.model, device=args.device)
    params = crop_params_for(gen)
    size = args.size or int(gen.resolution)
    if args.framing == "ffhq":
        params = FFHQ
    elif args.framing == "digiface":
        params = DIGIFACE
    if args.border:
        params = replace(params, border=args.border)
    if size < 8 or size > 4096:
        raise ImageInputError(args.image, f"--size must be between 8 and 4096 px, got {size}")
    af = align_face(photo, size, face=args.face, params=params)
    for note in af.notes:
        print(f"note: {note}", file=sys.stderr)
    out = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(af.image).save(out)
    tf = out.with_suffix(".transform.json")
    tf.write_text(json.dumps({
        "image": str(args.image), "photo_size": list(af.photo_size), "crop_size": size,
        "transform": np.asarray(af.transform).tolist(), "face_index": af.face_index, "num_faces": af.num_faces,
        "roll_degrees": round(af.angle, 2), "framing": settings_dict(params),
    }, indent=1) + "\n")
    if args.mask is not None:
        args.mask.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((af.mask * 255).round().astype(np.uint8)).save(args.mask)
    print(f"{args.image}: face {af.face_index} of {af.num_faces}, roll {af.angle:+.1f} deg -> {out} "
          f"({size}x{size}); transform in {tf}")
    return 0
