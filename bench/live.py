"""Live mode's speed: fps, capture-to-sink latency (p50 / p95) and dropped frames.

A clip is assembled from a generated face (upscaled, pasted onto a noisy background, drifting and zooming a little)
at 640x480, 30 fps, stored as h264 (crf 18, yuv420p: what a phone or camera records; ``--clip-codec ffv1`` stores it
lossless, whose noisy background then costs ~30 ms of CPU a frame to decode, more than any stage), and run through
the live pipeline with the command's CPU settings (torch and numpy's BLAS one thread each):

- **file mode** (every frame in order, what ``morphstudio live --input`` does), into a null sink and into a
  recording (h264 through ffmpeg): by default the file is read ahead (fastest), with ``--in-flight 1`` a frame is
  read only when the stages are free (its latency is then its own trip through them, not queueing);
- **real time** (``--realtime``: frames arrive at 30 fps as from a camera, the newest wins, drops counted).

It also times each stage alone, one frame at a time (landmarks + smoothing + crop, encoder, edit + generator,
colour match + blend back), so the pipeline's rate can be compared with its slowest stage (threads overlap the
stages; on 2 cores they also share them).

Usage::

    .venv/bin/python bench/live.py                        # built-in DCGAN + its shipped encoder, CPU
    .venv/bin/python bench/live.py --frames 300 --threads 1
    .venv/bin/python bench/live.py --refine 2                 # with projector steps after the encoder
    .venv/bin/python bench/live.py --device cuda --stylegan2-256   # a 256 px StyleGAN2 (random weights) and an
                                                                   # encoder of the same architecture (random)

The StyleGAN2 case measures speed only: random weights draw no face, so blending is still exercised but the
pictures mean nothing. Figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import morphstudio
from _usage import cpu_seconds  # bench/_usage.py
from morphstudio.faces.align import crop_params_for
from morphstudio.faces.encoder import EncoderConfig, LatentEncoder, resolve_encoder
from morphstudio.faces.synthetic import compose_photo, generate_faces
from morphstudio.live.blend import blend_back, feathered, match_colour
from morphstudio.live.capture import FileSource
from morphstudio.live.edits import LiveEdits, build_edits
from morphstudio.live.pipeline import LivePipeline, VideoFaceMesh
from morphstudio.live.refine import WarmRefiner
from morphstudio.rendering.plan import blas_threads, torch_threads
from morphstudio.sinks.base import StreamInfo
from morphstudio.sinks.ffmpeg import FfmpegSink
from morphstudio.sinks.null import NullSink

W, H, FPS = 640, 480, 30.0


def make_clip(path: Path, frames: int, codec: str = "h264") -> None:
    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    face, _ = generate_faces(G, [3], psi=0.7)
    sink = FfmpegSink(path, codec, 18 if codec == "h264" else None)
    sink.open(StreamInfo(W, H, FPS))
    for i in range(frames):
        u = i / max(frames - 1, 1)
        photo, _ = compose_photo(face[0], scale=3.0 + 0.6 * u, size=(W, H), centre=(280 + 80 * u, 230 + 20 * u),
                                 angle=5 * np.sin(6 * u), seed=1)
        sink.write(i, photo[None])
    sink.close()


def stylegan2_256(device: str) -> tuple[Any, Any]:
    from morphstudio.generators.stylegan2 import StyleGAN2Config, StyleGAN2Generator

    torch.manual_seed(0)
    cfg = StyleGAN2Config(img_resolution=256, channel_base=16384, channel_max=512)
    G = StyleGAN2Generator(cfg).to(device).eval().requires_grad_(False)
    enc = LatentEncoder(EncoderConfig(width=32, input_res=128, space="w", num_ws=G.num_ws, w_dim=G.w_dim,
                                      resolution=256)).to(device).eval().requires_grad_(False)
    return G, enc


def stage_costs(src: FileSource, G: Any, enc: Any, edits: LiveEdits, n: int) -> dict[str, float]:
    """Median seconds per frame of each stage alone."""
    from morphstudio.generators import to_uint8

    pipe = LivePipeline(src, G, enc, edits, [], params=crop_params_for(G), realtime=False)
    mesh = VideoFaceMesh()
    stop = __import__("threading").Event()
    times: dict[str, list[float]] = {"landmarks + smoothing + crop": [], "encoder": [], "edit + generator": [],
                                     "colour match + blend": []}
    for k, frame in enumerate(src.frames(stop)):
        if k >= n:
            break
        t0 = time.perf_counter()
        work = pipe._align_one(frame, mesh)
        t1 = time.perf_counter()
        if work.crop is None:
            continue
        ws = enc.encode_uint8(work.crop[None])
        t2 = time.perf_counter()
        with torch.no_grad():
            ws = edits.apply(ws, np.array([frame.t_media]))
            gen = to_uint8(G.synthesis(torch.from_numpy(ws).to(G.device), noise_mode="const")).cpu().numpy()[0]
        t3 = time.perf_counter()
        if gen.shape[0] != work.crop.shape[0]:
            import cv2

            gen = cv2.resize(gen, work.crop.shape[:2][::-1])
        blend_back(frame.pixels, match_colour(gen, work.crop, work.mask), work.transform, feathered(work.mask))
        t4 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[key].append(dt)
    mesh.close()
    return {k: float(np.median(v[2:] if len(v) > 4 else v)) for k, v in times.items()}


def decode_ms(clip: Path) -> float:
    """CPU milliseconds per frame ffmpeg spends decoding the clip to RGB alone."""
    import resource
    import subprocess

    import imageio_ffmpeg

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(clip), "-f", "rawvideo", "-pix_fmt",
                    "rgb24", "-y", os.devnull], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = FileSource(clip).info.duration * FPS
    return (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / max(n, 1) * 1000


def run(clip: Path, G: Any, enc: Any, edits: LiveEdits, sinks: list[Any], realtime: bool, batch: int,
        refine: int = 0, in_flight: int | None = None) -> Any:
    src = FileSource(clip, realtime=realtime)
    refiner = WarmRefiner(G, refine, warn=lambda m: None) if refine else None
    pipe = LivePipeline(src, G, enc, edits, sinks, params=crop_params_for(G), realtime=realtime, batch=batch,
                        refiner=refiner, in_flight=in_flight,
                        detector=_warm_detector(), say=lambda m: None)
    return pipe.run()


def _warm_detector() -> VideoFaceMesh:
    # mediapipe builds its graph on the first frame (~0.5 s): do that before the clock starts, as a camera session
    # would during its first second.
    det = VideoFaceMesh()
    det(np.zeros((H, W, 3), np.uint8))
    return det


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1, as morphstudio live uses on a CPU: the stages run in parallel)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--refine", type=int, default=0, help="projector steps per face (morphstudio live --refine N)")
    ap.add_argument("--stylegan2-256", action="store_true")
    ap.add_argument("--clip-codec", choices=("h264", "ffv1"), default="h264",
                    help="how the test clip is stored (default h264, as a camera records; ffv1: lossless, costly to "
                         "decode with its noisy background)")
    args = ap.parse_args()
    if args.stylegan2_256:
        G, enc = stylegan2_256(args.device)
        model = "StyleGAN2 256 px (random weights) + slim-resnet18 encoder (random)"
        edits = LiveEdits()
    else:
        G = morphstudio.load_generator("builtin:dcgan-faces64", device=args.device)
        enc = resolve_encoder("auto", G)
        model = "builtin:dcgan-faces64 + its shipped encoder"
        edits = build_edits(G, scene=None, attrs=[str(ROOT / "scenes/directions/dcgan-light.npy=1.5")], target=None,
                            morph=0.5, model="builtin:dcgan-faces64")
    print(f"live bench: {model}, refine {args.refine}, device {args.device}, torch threads {args.threads}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (a shared machine: figures move with it)")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / ("clip.mp4" if args.clip_codec == "h264" else "clip.mkv")
        make_clip(clip, args.frames, args.clip_codec)
        print(f"clip: {args.frames} frames {W}x{H} at {FPS:g} fps, {args.clip_codec} (a generated face, drifting and "
              f"zooming); decoding it alone costs {decode_ms(clip):.1f} ms of CPU a frame")
        with torch_threads(args.threads), blas_threads(1):
            costs = stage_costs(FileSource(clip), G, enc, edits, min(args.frames, 40))
        print("\nstage alone, ms per frame (median):")
        for k, v in costs.items():
            print(f"  {k:30s} {v * 1000:7.1f}")
        serial = sum(costs.values())
        print(f"  {'all stages in series':30s} {serial * 1000:7.1f}  -> {1 / serial:.1f} fps serial bound, "
              f"{1 / max(costs.values()):.1f} fps slowest-stage bound")
        print(f"\n{'mode':36s} {'fps':>6s} {'p50 ms':>7s} {'p95 ms':>7s} {'dropped':>8s} {'frames out':>10s} "
              f"{'CPU ms/frame':>12s}")
        # Each mode's default first (file mode reads ahead; real time admits two frames at a time), then the
        # other in-flight limits: what they cost or save in latency and frames per second on this machine.
        rec = lambda: [FfmpegSink(Path(tmp) / "rec.mp4", "h264")]
        rows = [("file mode -> null sink", [NullSink()], False, None),
                ("file mode -> h264 recording", rec(), False, None),
                ("  same, 1 frame in flight -> null", [NullSink()], False, 1),
                ("  same, 1 frame in flight -> h264", rec(), False, 1),
                ("real time (30 fps in) -> null sink", [NullSink()], True, None),
                ("real time -> h264 recording", rec(), True, None),
                ("  same, 1 frame in flight -> null", [NullSink()], True, 1),
                ("  same, no in-flight limit -> null", [NullSink()], True, 0)]
        for name, sinks, realtime, in_flight in rows:
            c0 = cpu_seconds()
            with torch_threads(args.threads), blas_threads(1):
                st = run(clip, G, enc, edits, sinks, realtime, args.batch, args.refine, in_flight)
            cpu = (cpu_seconds() - c0) / max(st.frames_out, 1) * 1000
            print(f"{name:36s} {st.fps:6.1f} {st.percentile_ms(50):7.1f} {st.percentile_ms(95):7.1f} "
                  f"{st.dropped:8d} {st.frames_out:10d} {cpu:12.1f}")
        print("\nFile mode processes every frame; read ahead, its latency includes queueing behind earlier frames, "
              "with 1 frame in flight it is each frame's own trip. Real time measures what a camera user sees "
              "(frames it had no time for are dropped). Goals on the 2-core CPU: >= 20 fps, p95 <= 100 ms.")


if __name__ == "__main__":
    main()
