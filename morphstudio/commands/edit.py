"""``morphstudio edit --model M (--seed S | --latent F | --image P) --attr smile=1.5 -o OUT.png``: one face, edited.

Each ``--attr NAME=VALUE`` applies in order with its file's semantics: ``set`` (fitted boundaries) puts the
signed distance to the boundary at VALUE; ``add`` (PCA / SeFa / bare files) moves by VALUE (strength units; see
:mod:`morphstudio.edit.directions`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from morphstudio.commands import DEVICE_HELP
from morphstudio.errors import RenderError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edit", help="edit one face along named directions and save it as a PNG")
    p.add_argument("--model", default="builtin:dcgan-faces64")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--seed", type=int, help="the face of a seed")
    src.add_argument("--latent", type=Path, help="a latent file (.npy/.npz: W [w_dim] or W+ [num_ws, w_dim])")
    src.add_argument("--image", type=Path, help="a photo, projected into the model first (cached, as in scenes)")
    p.add_argument("--steps", type=int, default=None, help="projection steps for --image (default: the projector's)")
    p.add_argument("--psi", type=float, default=1.0)
    p.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE",
                   help="a direction (library name or file) and its strength; repeatable, applied in order")
    p.add_argument("--guard", choices=("warn", "clamp", "off"), default="warn")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png")
    p.set_defaults(func=run)


def parse_attr(text: str) -> tuple[str, float]:
    """``"smile=1.5"`` -> ``("smile", 1.5)``."""
    name, sep, value = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        strength = float(value)
    except ValueError:
        raise RenderError(f"--attr: expected NAME=VALUE such as smile=1.5, got {text!r}") from None
    if not np.isfinite(strength) or abs(strength) > 100:  # the bound live mode's --attr has too
        raise RenderError(f"--attr {text}: strength {value} must be a finite number between -100 and 100")
    return name, strength


def apply_edits(w: np.ndarray, edits: list[tuple[np.ndarray, float, float | None, str, float]]) -> np.ndarray:
    """Apply ``(unit rows [num_ws, w_dim], scale, intercept or None, semantics, value)`` edits to ``w``."""
    w = np.array(w, dtype=np.float64)
    for unit, scale, intercept, semantics, value in edits:
        if semantics == "set":
            rows = np.any(unit != 0, axis=-1)
            dist = (w * unit).sum(-1) + (intercept or 0.0)
            w[rows] += ((value * scale - dist)[:, None] * unit)[rows]
        else:
            w += value * scale * unit
    return w


def run(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image

    from morphstudio.devices import resolve_device
    from morphstudio.edit import directions as dirs
    from morphstudio.edit.guard import Guard
    from morphstudio.files import atomic_path
    from morphstudio.generators.base import to_uint8
    from morphstudio.generators.loading import load_generator
    from morphstudio.latent import z_from_seed
    from morphstudio.scene.yamlmap import Locator
    from morphstudio.timeline.arrays import load_array

    attrs = [parse_attr(a) for a in args.attr]
    gen = load_generator(args.model, device=resolve_device(args.device))
    space = gen.latent_space()
    if args.image is not None:
        from morphstudio.faces import project_cached

        w = np.asarray(project_cached(args.image, gen, steps=args.steps, progress=True), np.float64)
    elif args.latent is not None:
        arr = load_array(args.latent, str(args.latent), Locator(), ("--latent",), choose=lambda names: "ws"
                         if "ws" in names else names[0])
        w = np.broadcast_to(arr.reshape(-1, gen.w_dim)[: gen.num_ws], (gen.num_ws, gen.w_dim)).copy()
    else:
        w = space.map_z(z_from_seed(args.seed, gen.z_dim)[None], psi=args.psi)[0].astype(np.float64)
    std = float(np.sqrt(np.mean((space.map_z(np.random.RandomState(20240601).randn(256, gen.z_dim))
                                 - space.w_avg) ** 2)))
    edits = []
    for name, value in attrs:
        d = dirs.load(dirs.resolve(name, args.model, Path.cwd()), shown=name)
        ap = dirs.for_space(d, space, name, Locator(), ("--attr", name))
        # No stored boundary: measure from w_avg, along the first latent row the direction covers.
        row = int(np.argmax(np.any(ap.unit != 0, axis=-1)))
        intercept = float(d.provenance["intercept"]) if "intercept" in d.provenance else -float(
            (ap.unit[row] * space.w_avg).sum())
        edits.append((ap.unit, ap.scale or std, intercept, d.semantics, value))
        print(f"{name}: {d.semantics} {value:g} (strength 1 = {d.unit_strength()})")
    w = apply_edits(w, edits)
    w = Guard(args.guard, space, warn=lambda m: print(f"warning: {m.replace(' at 0.000 s', '')}")).check(
        w[None], np.zeros(1), "the edit")[0]
    with torch.no_grad():
        img = gen.synthesis(torch.from_numpy(w[None]).float().to(gen.device), noise_mode="const")
    with atomic_path(args.output) as tmp:
        Image.fromarray(to_uint8(img).cpu().numpy()[0]).save(tmp)
    print(f"wrote {args.output}")
    return 0
