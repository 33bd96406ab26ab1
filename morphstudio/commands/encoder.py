"""``morphstudio encoder train --model MODEL [--steps N] [-o DIR]``: train a latent encoder for a generator."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from morphstudio.commands import DEVICE_HELP
from morphstudio.errors import EncoderModelError
from morphstudio.rendering.plan import add_threads_argument, parse_threads, plan_torch_threads, torch_threads


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "encoder",
        help="train or describe a latent encoder (the projector's fast starting point)",
        description="A latent encoder is a small torchvision ResNet (random init; nothing downloaded) trained on "
        "(image, latent) pairs the generator makes on the fly.",
    )
    actions = p.add_subparsers(dest="encoder_action", metavar="ACTION")
    t = actions.add_parser("train", help="train an encoder for a model and save it as safetensors + JSON")
    t.add_argument("--model", required=True, help="generator checkpoint or builtin:NAME")
    t.add_argument("--steps", type=int, default=2000, help="optimiser steps (default 2000)")
    t.add_argument("--minutes", type=float, default=None, help="stop after this much training time instead")
    t.add_argument("-o", "--output", type=Path, default=Path("encoders"), metavar="DIR",
                   help="folder for NAME.safetensors + NAME.json (default ./encoders)")
    t.add_argument("--name", default=None, help="file stem (default: from the model name)")
    t.add_argument("--space", choices=("w", "w+", "z"), default=None,
                   help="latent to predict (default z for DCGAN, w for StyleGAN)")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--width", type=int, default=32, help="ResNet stem width (64 = torchvision's ResNet-18)")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--image-loss", type=float, default=0.0,
                   help="weight of an image-space term (renders each prediction: better, ~2x slower)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None, help=DEVICE_HELP)
    add_threads_argument(t)
    t.set_defaults(func=run_train)
    i = actions.add_parser("info", help="print an encoder's config (what it was trained for, loss curve)")
    i.add_argument("path", type=Path, help="NAME.safetensors, NAME.json or their stem")
    i.set_defaults(func=run_info)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def default_name(model: str) -> str:
    """``builtin:dcgan-faces64`` -> ``dcgan-faces64``; ``path/ffhq.pkl`` -> ``ffhq``."""
    base = model.split(":", 1)[1] if model.startswith("builtin:") else Path(model).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base) or "encoder"


def run_train(args: argparse.Namespace) -> int:
    import morphstudio
    from morphstudio.faces.encoder import TrainConfig, save_encoder, train_encoder

    if args.steps < 1 or args.batch_size < 1 or args.width < 4:
        raise EncoderModelError(f"--steps, --batch-size must be >= 1 and --width >= 4 (got {args.steps}, "
                                f"{args.batch_size}, {args.width})")
    gen = morphstudio.load_generator(args.model, device=args.device)
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, width=args.width, space=args.space,
                      image_loss=args.image_loss, seed=args.seed,
                      max_seconds=args.minutes * 60 if args.minutes else None,
                      log_every=max(1, min(100, args.steps // 20)))

    def progress(step: int, loss: float) -> None:
        print(f"step {step:6d}  loss {loss:.4f}", file=sys.stderr, flush=True)

    threads, why = plan_torch_threads(gen, min(args.batch_size, 8), parse_threads(args.threads))
    print(f"threads: {why}", file=sys.stderr)
    with torch_threads(threads):
        enc = train_encoder(gen, cfg, model_name=str(args.model), progress=progress)
    st, js = save_encoder(enc, args.output / (args.name or default_name(str(args.model))))
    c = enc.config
    print(f"trained {c.arch} (width {c.width}, {c.space}) for {c.steps} steps in {c.seconds:.0f} s; final loss "
          f"{c.loss_curve[-1][1] if c.loss_curve else float('nan'):.4f} -> {st} + {js.name}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from morphstudio.faces.encoder import load_encoder

    enc = load_encoder(args.path)
    cfg = asdict(enc.config)
    curve = cfg.pop("loss_curve")
    print(json.dumps(cfg, indent=1))
    if curve:
        print("loss curve: " + ", ".join(f"{s}:{v:.3f}" for s, v in curve[:: max(1, len(curve) // 12)]))
    return 0
