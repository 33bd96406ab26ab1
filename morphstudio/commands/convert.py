"""``morphstudio convert IN OUT``: any readable checkpoint -> morphstudio's safetensors format.

The input is read with the safe loaders (nothing in it is executed), the generator is built once to check every
tensor name and shape, and only then is OUT written -- under a temporary name, renamed at the end, so a failure
never leaves a partial OUT behind.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from morphstudio.errors import CheckpointError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert`` subcommand."""
    p = subparsers.add_parser(
        "convert",
        help="convert a checkpoint (.pkl, .pt, .safetensors) to morphstudio's safetensors format",
        description="Read a StyleGAN2/3 or DCGAN checkpoint safely (NVIDIA PyTorch or TensorFlow .pkl, "
                    "rosinality .pt, safetensors + config) and write OUT (.safetensors with the model "
                    "description embedded) plus a readable OUT-stem .json beside it.",
    )
    p.add_argument("input", metavar="IN", help="checkpoint file or builtin:NAME")
    p.add_argument("output", metavar="OUT", help="output .safetensors file (overwritten if present)")
    p.add_argument("--no-check", action="store_true",
                   help="skip building the generator to verify tensor names and shapes (faster, less safe)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert ``args.input`` to ``args.output``; print what was written."""
    from morphstudio.generators.checkpoints import read_checkpoint, resolve_source, save_native
    from morphstudio.generators.loading import build_generator

    out = Path(args.output).expanduser()
    src = resolve_source(args.input)
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise CheckpointError(out, "the output is the input file; choose another OUT")
    if out.is_dir():
        raise CheckpointError(out, "is a directory; OUT must be a file name such as model.safetensors")
    if not out.parent.is_dir():  # say so before spending time on reading and checking the input
        raise CheckpointError(out, f"output folder {out.parent} does not exist")
    ckpt = read_checkpoint(args.input)
    resolution = ckpt.init_kwargs.get("img_resolution", ckpt.init_kwargs.get("resolution"))
    if not args.no_check:
        gen = build_generator(ckpt)
        resolution = gen.resolution
        del gen
    sidecar = save_native(ckpt, out)
    size = out.stat().st_size
    params = sum(t.numel() for t in ckpt.state.values())
    res = f"{resolution}x{resolution}" if resolution else "unknown resolution"
    print(f"wrote {out} ({_human(size)}): {ckpt.family}, {res}, {len(ckpt.state)} tensors, "
          f"{params:,} values, from {ckpt.format}")
    print(f"wrote {sidecar} (model description, for people; the loader reads the copy inside {out.name})")
    return 0


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
