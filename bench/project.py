"""Projection speed and the encoder's head start.

Prints, for one model:
- seconds per projection step (batch of 1 and of 4);
- for several generated faces with known latents: steps and seconds until the reconstruction reaches a target
  (pixel MSE on [-1, 1] images <= 0.004, i.e. PSNR >= 30 dB on 8-bit images), starting from w_avg and from the
  encoder's guess, with the same optimiser settings and step budget; the ratio is the encoder's speed-up;
- a "photo" projection: a generated face upscaled, rotated and pasted onto a noisy background (saved as
  ``scenes/photos/synthetic-face.jpg``), aligned and projected; its side-by-side PNG path and quality line.

Usage::

    .venv/bin/python bench/project.py                      # built-in DCGAN, CPU
    .venv/bin/python bench/project.py --model PATH.pkl --device cuda --steps 1000

Figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import morphstudio
from morphstudio.faces import losses as L
from morphstudio.faces.encoder import resolve_encoder
from morphstudio.faces.project import ProjectConfig, Projector, to_tensor_images
from morphstudio.faces.report import quality, save_side_by_side
from morphstudio.faces.synthetic import compose_photo, generate_faces

TARGET_MSE = 4 * 10 ** (-30 / 10)  # PSNR 30 dB on [0, 255] == MSE 0.004 on [-1, 1]


def seconds_per_step(G, batch: int, steps: int = 20) -> float:
    faces, _ = generate_faces(G, list(range(100, 100 + batch)))
    Projector(G, ProjectConfig(steps=2, patience=0), warn=lambda m: None).project(faces)  # warm-up
    proj = Projector(G, ProjectConfig(steps=steps, patience=0), warn=lambda m: None)
    t = time.perf_counter()
    proj.project(faces)
    return (time.perf_counter() - t) / steps


def steps_to_target(G, face: np.ndarray, encoder, steps: int, check_every: int) -> tuple[int | None, float, float]:
    """First step (checked every ``check_every``) whose clean reconstruction reaches TARGET_MSE; seconds; best MSE."""
    # Each init with its own default exploration noise (0.05 from w_avg, 0.0125 from the encoder), as users run it.
    proj = Projector(G, ProjectConfig(space="w", steps=steps, patience=0), encoder=encoder,
                     warn=lambda m: None)
    target = to_tensor_images(face, G.device)
    hit: list[tuple[int, float]] = []
    best = [math.inf]
    extra = [0.0]  # time spent in our own checks, excluded from the reported seconds
    t0 = time.perf_counter()

    def cb(step: int, loss: float, w: torch.Tensor) -> None:
        if step % check_every and step != steps - 1:
            return
        t = time.perf_counter()
        with torch.no_grad():
            ws = w if w.shape[1] == G.num_ws else w.expand(-1, G.num_ws, -1)
            mse = float(L.pixel_l2(G.synthesis(ws), target)[0])
        best[0] = min(best[0], mse)
        if mse <= TARGET_MSE and not hit:
            hit.append((step + 1, t - t0 - extra[0]))
        extra[0] += time.perf_counter() - t

    proj.project(face[None], callback=cb)
    return (hit[0][0], hit[0][1], best[0]) if hit else (None, time.perf_counter() - t0 - extra[0], best[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="builtin:dcgan-faces64")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=1000, help="step budget per run (same for both inits)")
    ap.add_argument("--faces", type=int, default=4, help="generated faces to project")
    ap.add_argument("--check-every", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "media")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    G = morphstudio.load_generator(args.model, device=args.device)
    enc = resolve_encoder("auto", G)
    print(f"model {args.model} ({G.family}, {G.resolution} px, ws [{G.num_ws}, {G.w_dim}]) on {G.device}; "
          f"encoder: {'shipped' if enc is not None else 'none for this model'}")
    for b in (1, 4):
        print(f"seconds per step, batch {b}: {seconds_per_step(G, b):.4f}")

    faces, _ = generate_faces(G, list(range(200, 200 + args.faces)), psi=0.8)
    print(f"\nsteps / seconds to reach pixel MSE <= {TARGET_MSE:.4f} (PSNR 30 dB), budget {args.steps} steps:")
    rows = []
    for i, face in enumerate(faces):
        a = steps_to_target(G, face, None, args.steps, args.check_every)
        if enc is None:
            print(f"  face {i}: from w_avg " + (f"{a[0]} steps {a[1]:.1f} s" if a[0] else f"not reached (best MSE {a[2]:.4f})"))
            continue
        b = steps_to_target(G, face, enc, args.steps, args.check_every)
        rows.append((a, b))
        fmt = lambda r: (f"{r[0]:4d} steps {r[1]:6.1f} s" if r[0] else f"not reached (best MSE {r[2]:.4f})")
        print(f"  face {i}: from w_avg {fmt(a)} | from encoder {fmt(b)}")
    if not rows:
        print("  (no encoder for this model: train one with `morphstudio encoder train --model MODEL`)")
    both = [(a[0], b[0]) for a, b in rows if a[0] and b[0]]
    # Unreached runs count as the full budget (a lower bound on the speed-up).
    sa = [a[0] or args.steps for a, _ in rows]
    sb = [b[0] or args.steps for _, b in rows]
    if rows:
        print(f"  mean steps: w_avg {np.mean(sa):.0f}, encoder {np.mean(sb):.0f}; speed-up {np.mean(sa) / np.mean(sb):.1f}x "
              f"(unreached = budget; {len(both)}/{len(rows)} reached by both)")
    if both:
        ma, mb = np.mean([x for x, _ in both]), np.mean([y for _, y in both])
        print(f"  faces reached by both: w_avg {ma:.0f} steps, encoder {mb:.0f} steps; speed-up {ma / mb:.1f}x")

    # A photo-like input end to end.
    photo_dir = ROOT / "scenes" / "photos"
    face, _ = generate_faces(G, [7], psi=0.8)
    photo, _ = compose_photo(face[0], angle=14, scale=5, size=(720, 540), seed=3)
    from PIL import Image

    # The shipped sample photo comes from the built-in model; other models' photos go to --out.
    photo_path = (photo_dir / "synthetic-face.jpg" if args.model == "builtin:dcgan-faces64"
                  else args.out / f"synthetic-face-{Path(str(args.model)).stem}.jpg")
    photo_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(photo_path, quality=92)
    from morphstudio.errors import FaceNotFoundError
    from morphstudio.faces.pipeline import make_projector, prepare_image

    try:
        im = prepare_image(photo_path, G)
    except FaceNotFoundError:  # e.g. a random-weights test model draws no face
        print("\nphoto: this model's faces are not detectable as faces; photo projection skipped")
        return 0
    proj = make_projector(G, space="w+", steps=300, encoder="auto" if enc is not None else "none",
                          warn=lambda m: print("warning:", m))
    res = proj.project(im.target[None], im.mask[None])
    rep = quality("synthetic-face", im.target, res.images[0], seconds=res.seconds, steps=res.steps, init=res.init,
                  distance=float(res.distance[0]))
    out = save_side_by_side(args.out / "project-synthetic-face.png", im.target, res.images[0], rep)
    print(f"\nphoto {photo_path.relative_to(ROOT)} (roll {im.aligned.angle:+.1f} deg): {rep.line()}")
    print(f"side-by-side: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
