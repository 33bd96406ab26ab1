"""Write ``morphstudio/edit/labels/reference.json``: each label's mean and spread over the built-in model's faces.

``morphstudio score`` ranks a face's attributes by how far each is from these (in standard deviations), the way
NVIDIA's DIGITS demo lists a face's strongest attributes first. Run: ``.venv/bin/python scripts/label_reference.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

import morphstudio
from morphstudio.edit.labels import get_labeller
from morphstudio.generators import to_uint8
from morphstudio.latent import z_from_seed

SEEDS = range(200)
OUT = Path(__file__).resolve().parents[1] / "morphstudio" / "edit" / "labels" / "reference.json"


def main() -> None:
    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    z = torch.from_numpy(np.stack([z_from_seed(s, G.z_dim) for s in SEEDS])).float()
    with torch.no_grad():
        images = to_uint8(G.synthesis(G.mapping(z), noise_mode="const")).cpu().numpy()
    lab = get_labeller("all")
    scores = lab(images)
    ok = np.all(np.isfinite(scores), axis=1)
    stats = {info.name: {"mean": float(np.mean(scores[ok, k])), "std": float(np.std(scores[ok, k]))}
             for k, info in enumerate(lab.labels)}
    OUT.write_text(json.dumps({"source": f"builtin:dcgan-faces64 seeds {SEEDS.start}-{SEEDS.stop - 1}, psi 1",
                               "faces": int(ok.sum()), "labels": stats}, indent=1) + "\n")
    print(f"{OUT}: {int(ok.sum())} of {len(SEEDS)} faces found")


if __name__ == "__main__":
    main()
