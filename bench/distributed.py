#!/usr/bin/env python3
"""Distributed rendering on this machine: wall time and speed-up of 1 and 2 Ray workers against the
single-process renderer on the same scene, the per-worker start-up cost, and where distributing starts to pay.

Run: ``.venv/bin/python bench/distributed.py [--scene scenes/demo.yaml] [--frames 0:120] [--size 256]``

Every render uses the same batch and threads (``--batch``, ``--threads``), so the three videos are the same
frames. For each Ray run it prints the start-up (from the call to every worker holding the model: Ray's local
instance, the actors, their model loads) apart from the steady part (rendering, commits, the join), and from
those the frame count below which the distributed render is slower than the single-process one:
``start-up / (1 / single fps - 1 / steady fps)``. Figures on a shared machine vary run to run.

No GPU is lent to this project's CI machine: the per-GPU figures the issue asks for need a machine with several
GPUs (``--device cuda``; each worker then asks Ray for one GPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import morphstudio  # noqa: E402
from morphstudio.distributed import RayExecutor, render_distributed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=str(ROOT / "scenes" / "demo.yaml"))
    ap.add_argument("--frames", default="0:120")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default=None)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()

    scene = morphstudio.load_scene(args.scene, device=args.device)
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        common = {"frames": args.frames, "batch": args.batch, "threads": args.threads, "progress": False}
        # Warm-up: the model load and the one-time calibration of this machine are not the renderer's speed.
        morphstudio.render(scene, output={"path": str(Path(tmp) / "warm.mp4"), "size": args.size},
                           **{**common, "frames": "0:8"})
        out = {"path": str(Path(tmp) / "single.mp4"), "size": args.size}
        t0 = time.perf_counter()
        single = morphstudio.render(scene, output=out, **common)
        t_single = time.perf_counter() - t0
        n = len(single.frames)
        fps_single = n / t_single
        print(f"scene {args.scene}: {n} frames at {args.size} px, batch {args.batch}, {args.threads} torch "
              f"thread(s) per process, {os.cpu_count()} cores")
        print(f"single process      {t_single:7.1f} s  {fps_single:6.2f} frames/s")
        for w in (int(x) for x in args.workers.split(",")):
            marks: dict[str, float] = {}

            def ready(ex: RayExecutor, marks: dict[str, float] = marks) -> None:
                marks["ready"] = time.perf_counter()

            out = {"path": str(Path(tmp) / f"ray{w}.mp4"), "size": args.size}
            t0 = time.perf_counter()
            render_distributed(scene, RayExecutor(workers=w, threads=args.threads, on_ready=ready), output=out,
                               log=lambda _m: None, **common)
            t_all = time.perf_counter() - t0
            startup = marks["ready"] - t0
            steady = t_all - startup
            fps_steady = n / steady
            line = (f"ray, {w} worker(s)    {t_all:7.1f} s  speed-up {t_single / t_all:4.2f}x   start-up "
                    f"{startup:5.1f} s ({startup / w:4.1f} s per worker)   steady {fps_steady:6.2f} frames/s")
            gain = 1 / fps_single - 1 / fps_steady
            line += (f"   pays above {startup / gain:,.0f} frames" if gain > 0 else
                     "   never pays here (steady rate not above the single process)")
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
