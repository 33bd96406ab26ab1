"""``morphstudio inspect MODEL [--grid out.png]``: what a checkpoint is, and a contact sheet of its faces."""

from __future__ import annotations

import argparse
from pathlib import Path

from morphstudio.commands import DEVICE_HELP, parse_seeds
from morphstudio.errors import RenderError
from morphstudio.files import atomic_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="describe a model checkpoint and optionally save a contact sheet of its faces",
        description="Print a checkpoint's format, family, resolution, latent sizes, layer table (which w index "
        "drives which resolution) and parameter count. Nothing inside the file is executed.",
    )
    p.add_argument("model", help="checkpoint path (.pkl, .pt, .safetensors) or builtin:NAME")
    p.add_argument("--grid", type=Path, metavar="OUT.png", help="save a contact sheet of faces from seeds")
    p.add_argument("--seeds", default="0-15", help="seeds for the sheet: '0-15' or '1,5,9' (default 0-15)")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi for the sheet (default 1)")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from morphstudio.devices import resolve_device
    from morphstudio.generators.loading import load_checkpoint, load_generator
    from morphstudio.generators.sheet import contact_sheet

    seeds = parse_seeds(args.seeds) if args.grid else []
    device = resolve_device(args.device)  # a bad --device fails before the checkpoint is read
    ckpt = load_checkpoint(args.model)
    gen = load_generator(ckpt, device=device)

    n_params = sum(p.numel() for p in gen.parameters())
    print(f"model       {ckpt.path}")
    print(f"format      {ckpt.format}")
    print(f"family      {gen.family}")
    print(f"resolution  {gen.resolution} x {gen.resolution}")
    print(f"z_dim       {gen.z_dim}")
    print(f"w_dim       {gen.w_dim}")
    print(f"c_dim       {gen.c_dim}" + ("  (conditional)" if gen.c_dim else ""))
    print(f"num_ws      {gen.num_ws}")
    print(f"parameters  {n_params:,}")
    for key, value in ckpt.extra.items():
        if value in (None, "", [], {}):
            continue  # readers record what they know; absent facts are not worth a line
        shown = "; ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        print(f"{key:<11} {shown}")
    print("\nlayer table (w index -> layer, resolution, channels, detail: the content scale in px that the")
    print("coarse <= 8 / middle <= 32 / fine layer groups of a scene refer to):")
    print(f"  {'w':>3}  {'layer':<24} {'res':>5} {'ch':>5} {'detail':>6}")
    for layer in gen.layers():
        print(f"  {layer.w_index:>3}  {layer.name:<24} {layer.resolution:>5} {layer.channels:>5} {layer.scale:>6}")

    if args.grid:
        sheet = contact_sheet(gen, seeds, psi=args.psi)
        out: Path = args.grid
        if not out.parent.exists():
            raise RenderError(f"--grid: folder {str(out.parent)!r} does not exist")
        with atomic_path(out) as tmp:  # a failed save never leaves a half-written PNG
            Image.fromarray(sheet).save(tmp, format="PNG")
        print(f"\ncontact sheet of seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} faces, psi {args.psi}) -> {out}")
    return 0
