#!/usr/bin/env python3
"""Labelling speed: milliseconds per image for each built-in labeller, and how the time splits.

Run: ``.venv/bin/python bench/labels.py [--faces 64]``

Labels ``--faces`` faces of the built-in model (64 px, upscaled to 256 px before the face mesh) and the astronaut
photo (256 px) with ``geometry``, ``age-gender`` and ``all``, and prints ms per image (wall clock and this
process's CPU time) plus the ratio to the face mesh alone. On a shared machine compare the CPU figures and the
ratios, not wall-clock numbers across runs. The first call of each labeller (mesh and ONNX session creation) is timed apart.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=64)
    args = parser.parse_args()

    import torch

    import morphstudio
    from morphstudio.edit.labels import get_labeller
    from morphstudio.edit.labels.mesh import find_faces
    from morphstudio.faces.images import read_image
    from morphstudio.generators import to_uint8
    from morphstudio.latent import z_from_seed

    torch.set_num_threads(1)
    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    z = torch.from_numpy(np.stack([z_from_seed(s, G.z_dim) for s in range(args.faces)])).float()
    with torch.no_grad():
        generated = to_uint8(G.synthesis(G.mapping(z), noise_mode="const")).numpy()
    photo = read_image(ROOT / "scenes" / "photos" / "astronaut.jpg").pixels
    photos = np.stack([photo] * 16)

    t, c = time.perf_counter(), time.process_time()
    get_labeller("all")(generated[:1])
    print(f"first call (imports, face mesh and ONNX sessions created): {1e3 * (time.perf_counter() - t):.0f} ms "
          f"wall, {1e3 * (time.process_time() - c):.0f} ms CPU")
    print("ms per image, wall clock / CPU time of this process (on a busy machine trust the CPU figure):")
    for name, batch in (("builtin 64 px", generated), ("astronaut 256 px", photos)):
        t, c = time.perf_counter(), time.process_time()
        find_faces(batch)
        mesh = (time.perf_counter() - t) / len(batch)
        mesh_cpu = (time.process_time() - c) / len(batch)
        row = [f"{name:<17} mesh only {1e3 * mesh:5.1f} / {1e3 * mesh_cpu:5.1f}"]
        for spec in ("geometry", "age-gender", "all"):
            lab = get_labeller(spec)
            t, c = time.perf_counter(), time.process_time()
            scores = lab(batch)
            per = (time.perf_counter() - t) / len(batch)
            per_cpu = (time.process_time() - c) / len(batch)
            found = int(np.all(np.isfinite(scores), axis=1).sum())
            row.append(f"{spec} {1e3 * per:5.1f} / {1e3 * per_cpu:5.1f}")
        print("  ".join(row) + f"  ({found}/{len(batch)} faces; 'all' / mesh CPU = {per_cpu / mesh_cpu:.2f})")


if __name__ == "__main__":
    main()
