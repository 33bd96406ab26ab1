#!/usr/bin/env python3
"""Side by side with NVIDIA's own ``gen_video.py`` on a real-size model: wall time, frames, load time.

Run::

    python bench/peer.py --stylegan3 /path/to/stylegan3 --peer-python /path/to/peer-venv/bin/python

``--stylegan3`` is a local checkout of https://github.com/NVlabs/stylegan3 (never vendored, never imported by
morphstudio); ``--peer-python`` a Python with that code's needs (torch, click, imageio, imageio-ffmpeg, tqdm,
scipy, pillow) in its own venv. The bench

1. builds NVIDIA's ``stylegan2`` config at 256 px (channel_base 16384, channel_max 512, 8 mapping layers, fp32,
   random weights) *with that code* and pickles ``G``, ``D``, ``G_ema`` the way its training loop writes a
   snapshot;
2. runs a patched temporary copy of ``gen_video.py`` (``torch.device('cuda')`` -> cpu) and morphstudio's
   ``render.py`` on the equivalent scene (4 seeds, looping cubic walk, 40 frames at 60 fps, h264), alternately,
   ``--pairs`` times, each as a fresh process (start-up, imports, loading and encoding included);
3. decodes both outputs (frame count and size must agree), and times both loaders on the pickle.

morphstudio's calibration (its per-machine, per-model cost measurements, see ``morphstudio/rendering/plan.py``)
is made once by a ``--dry-run`` before the pairs, printed, and reported separately: later renders read it from
the cache. Wall times on a shared machine vary; the ratios of paired runs are what to compare.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUILD = """
import copy, pickle, sys, torch
sys.path.insert(0, {sg3!r})
from training.networks_stylegan2 import Generator, Discriminator
torch.manual_seed(0)
common = dict(c_dim=0, img_resolution=256, img_channels=3)
arch = dict(channel_base=16384, channel_max=512, num_fp16_res=0, conv_clamp=None)
G = Generator(z_dim=512, w_dim=512, mapping_kwargs=dict(num_layers=8), **arch, **common)
D = Discriminator(block_kwargs=dict(), mapping_kwargs=dict(), epilogue_kwargs=dict(mbstd_group_size=4), **arch,
                  **common)
G_ema = copy.deepcopy(G)
snapshot = dict(training_set_kwargs=dict(resolution=256))
for name, module in [("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", None)]:
    if module is not None:
        module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
    snapshot[name] = module
with open({out!r}, "wb") as f:
    pickle.dump(snapshot, f)
"""

PEER_LOAD = """
import sys, time
sys.path.insert(0, {sg3!r})
import legacy, torch
best = 1e9
for _ in range({reps}):
    t = time.perf_counter()
    with open({pkl!r}, "rb") as f:
        G = legacy.load_network_pkl(f)["G_ema"]
    best = min(best, time.perf_counter() - t)
print(best)
"""

OURS_LOAD = """
import sys, time
sys.path.insert(0, {root!r})
import morphstudio, torch
best = 1e9
for _ in range({reps}):
    t = time.perf_counter()
    G = morphstudio.load_generator({pkl!r}, device="cpu")
    best = min(best, time.perf_counter() - t)
print(best)
"""

SCENE = """\
# The job of stylegan3's gen_video.py --seeds 0-3 --grid 1x1 --w-frames 10: a looping cubic walk through seeds
# 0..3, 10 frames apart, 40 frames at 60 fps, the model's 256 px, h264.
model: {pkl}
loop: true
interp: cubic
output: {{path: {out}, size: 256, fps: 60, duration: {duration!r}, codec: h264}}
faces:
  s0: {{seed: 0}}
  s1: {{seed: 1}}
  s2: {{seed: 2}}
  s3: {{seed: 3}}
timeline:
  - {{frame: 0, face: s0}}
  - {{frame: 10, face: s1}}
  - {{frame: 20, face: s2}}
  - {{frame: 30, face: s3}}
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without thread limits (both programs get their defaults) plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONPATH", "MORPHSTUDIO_CACHE")}
    env.update(extra)
    return env


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return wall


def decode(path: Path) -> tuple[int, tuple[int, int]]:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    return sum(1 for _ in gen), tuple(meta["size"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stylegan3", type=Path, required=True, help="local checkout of NVlabs/stylegan3")
    ap.add_argument("--peer-python", required=True, help="a Python with stylegan3's needs (its own venv)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None, help="keep the pickle, scene and videos here")
    ap.add_argument("--load-reps", type=int, default=3)
    args = ap.parse_args()
    sg3 = args.stylegan3.resolve()
    if not (sg3 / "gen_video.py").is_file():
        sys.exit(f"{sg3}: not a stylegan3 checkout (no gen_video.py)")
    work = args.work or Path(tempfile.mkdtemp(prefix="morphstudio-peer-"))
    work.mkdir(parents=True, exist_ok=True)
    pkl = work / "stylegan2-256-random.pkl"
    peer_env = clean_env()
    ours_env = clean_env(PYTHONPATH=str(ROOT), MORPHSTUDIO_CACHE=str(work / "cache"))

    if not pkl.is_file():
        t = run([args.peer_python, "-c", BUILD.format(sg3=str(sg3), out=str(pkl))], peer_env, work)
        print(f"built {pkl.name} with NVIDIA's code ({pkl.stat().st_size / 1e6:.0f} MB) in {t:.1f} s")

    # gen_video.py hard-codes torch.device('cuda'): a temporary copy runs it on the CPU, nothing else changed.
    src = (sg3 / "gen_video.py").read_text()
    assert "torch.device('cuda')" in src, "gen_video.py no longer says torch.device('cuda'): update the patch"
    peer_script = work / "gen_video_cpu.py"
    peer_script.write_text(f"import sys; sys.path.insert(0, {str(sg3)!r})\n"
                           + src.replace("torch.device('cuda')", "torch.device('cpu')"))
    scene = work / "peer.yaml"
    scene.write_text(SCENE.format(pkl=pkl, out=work / "ours.mp4", duration=40 / 60))
    peer_cmd = [args.peer_python, str(peer_script), "--network", str(pkl), "--seeds", "0-3", "--grid", "1x1",
                "--w-frames", "10", "--output", str(work / "peer.mp4")]
    ours_cmd = [sys.executable, str(ROOT / "render.py"), str(scene), "-q"]

    t = time.perf_counter()
    plan = subprocess.run([*ours_cmd, "--dry-run"], env=ours_env, cwd=work, capture_output=True, text=True)
    if plan.returncode != 0:
        sys.exit(plan.stderr)
    print(f"morphstudio --dry-run (calibrates once per machine and model: {time.perf_counter() - t:.1f} s):")
    print(textwrap.indent(plan.stdout.rstrip(), "  "))

    peer_t: list[float] = []
    ours_t: list[float] = []
    for i in range(args.pairs):
        # Alternate which goes first, so neither always runs on a machine the other just warmed or loaded.
        order = [("peer", peer_cmd, peer_env), ("ours", ours_cmd, ours_env)]
        for name, cmd, env in order if i % 2 == 0 else order[::-1]:
            (peer_t if name == "peer" else ours_t).append(run(cmd, env, work))
        print(f"pair {i + 1}: gen_video.py {peer_t[-1]:6.2f} s   morphstudio {ours_t[-1]:6.2f} s   "
              f"ratio {ours_t[-1] / peer_t[-1]:.2f}")
    pf, ps = decode(work / "peer.mp4")
    of, os_ = decode(work / "ours.mp4")
    print(f"outputs: gen_video.py {pf} frames {ps[0]}x{ps[1]}, morphstudio {of} frames {os_[0]}x{os_[1]}"
          + ("" if (pf, ps) == (of, os_) else "   MISMATCH"))
    mp, mo = statistics.median(peer_t), statistics.median(ours_t)
    ratios = [o / p for o, p in zip(ours_t, peer_t)]
    print(f"wall time (median of {args.pairs}): gen_video.py {mp:.2f} s, morphstudio {mo:.2f} s -> morphstudio / "
          f"gen_video.py = {mo / mp:.2f} (paired ratios {', '.join(f'{r:.2f}' for r in ratios)}; goal <= 0.67)")

    lp = float(subprocess.run([args.peer_python, "-c", PEER_LOAD.format(sg3=str(sg3), pkl=str(pkl),
                                                                       reps=args.load_reps)],
                              env=peer_env, capture_output=True, text=True, check=True).stdout.split()[-1])
    lo = float(subprocess.run([sys.executable, "-c", OURS_LOAD.format(root=str(ROOT), pkl=str(pkl),
                                                                     reps=args.load_reps)],
                              env=ours_env, capture_output=True, text=True, check=True).stdout.split()[-1])
    print(f"load (best of {args.load_reps}): legacy.load_network_pkl {lp:.2f} s, morphstudio.load_generator "
          f"{lo:.2f} s -> ratio {lo / lp:.2f} (goal <= 1.5)")
    print(f"files in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
