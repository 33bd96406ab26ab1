#!/usr/bin/env python3
"""Renderer throughput: is the pipeline as fast as its slowest stage, and how much faster than a serial loop?

Run: ``.venv/bin/python bench/render.py [--scene scenes/demo.yaml] [--frames 0:300] [--device cuda] [--config-f]``

Prints, on the same latents and output settings (the scene's size, codec and crf):

- generator-only fps: synthesis + resize + uint8 on the device + copy to host, frames dropped (null sink);
- encoder-only fps:   the same segment encoders fed with precomputed frames from memory;
- end-to-end fps:     the real render (generation overlapped with encoding) to a video file;
- end-to-end / min(generator, encoder): 1.0 means the pipeline hides the faster stage completely (goal >= 0.9);
- the speed-up over a serial batch-1 renderer in the style of stylegan3's gen_video.py: one frame at a time,
  synthesise, convert to uint8 and resize on the CPU (the same OpenCV resize as the renderer's CPU path), append to
  a single ffmpeg writer (goal >= 1.5x on a 2-core
  CPU; >= 10x on a GPU with ``--config-f``, a 1024 px StyleGAN2 config-f with random weights).

Wall-clock figures on a shared machine vary run to run; the ratios printed side by side are what to compare.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _usage import cpu_seconds  # bench/_usage.py
from morphstudio.api import load_scene
from morphstudio.generators import Generator, to_uint8
from morphstudio.rendering.batcher import resize_uint8
from morphstudio.rendering.clock import parse_frame_range, plan_segments, segment_length
from morphstudio.rendering.plan import usable_cores
from morphstudio.rendering.renderer import OutputSettings, plan_render, render_latents
from morphstudio.sinks.segmented import Segment, segment_sink
from morphstudio.rendering.worker import SinkWorker
from morphstudio.sinks import NullSink, StreamInfo
from morphstudio.sinks.ffmpeg import codec_args, ffmpeg_exe, fps_arg


def config_f(device: torch.device) -> Generator:
    """StyleGAN2 at the released FFHQ config-f size (1024 px, 18 ws), random weights."""
    from morphstudio.generators.stylegan2 import StyleGAN2Config, StyleGAN2Generator

    torch.manual_seed(0)
    cfg = StyleGAN2Config(img_resolution=1024, channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256)
    return StyleGAN2Generator(cfg).to(device).eval().requires_grad_(False)


def generator_only(gen, latents_fn, n, fps, out, frames, batch, precision, noise,
                   threads: int | None = None) -> float:
    t = time.perf_counter()
    render_latents(gen, latents_fn, n, fps, output=replace(out, path=None), frames=frames, batch=batch,
                   precision=precision, noise=noise, sinks=[NullSink(touch=True)], progress=False,
                   cpu_threads=threads)
    return len(frames) / (time.perf_counter() - t)


def precompute(gen, latents_fn, n, fps, out, frames, batch, precision, noise) -> np.ndarray:
    got: list[np.ndarray] = []

    class Keep(NullSink):
        def write(self, first_index: int, f: np.ndarray) -> None:
            got.append(f)

    render_latents(gen, latents_fn, n, fps, output=replace(out, path=None), frames=frames, batch=batch,
                   precision=precision, noise=noise, sinks=[Keep()], progress=False)
    return np.concatenate(got)


def encoder_only(frames_u8: np.ndarray, rng: range, out: OutputSettings, fps: float, jobs: int,
                 threads: int | None, tmp: Path) -> float:
    """The renderer's segment encoders (same plan, same number at once, same threads each), fed from memory."""
    h, w = frames_u8.shape[1:3]
    segs = plan_segments(rng, segment_length(out.segment_seconds, fps))
    t = time.perf_counter()
    waiting = list(segs)
    active: list[tuple[SinkWorker, int, int, list[int]]] = []
    workers = []
    while waiting or active:
        while len(active) < jobs and waiting:
            s, e = waiting.pop(0)
            seg = Segment(s, e, f"enc_{s:06d}{Path(out.path).suffix}", out.codec, out.crf, w, h, fps, threads, "bench",
                          1)
            wk = SinkWorker(segment_sink(seg, tmp), StreamInfo(w, h, fps, e - s, s), depth=3)
            workers.append(wk)
            active.append((wk, s, e, [s]))
        wk, s, e, pos = min(active, key=lambda a: a[0].backlog())
        k = min(8, e - pos[0])
        wk.submit(pos[0], frames_u8[pos[0] - rng.start : pos[0] - rng.start + k])
        pos[0] += k
        if pos[0] == e:
            wk.finish()
            active.remove((wk, s, e, pos))
    for wk in workers:
        wk.join()
    return len(rng) / (time.perf_counter() - t)


def with_cpu(fn, n_frames: int) -> tuple[float, float]:
    """``(fn()``'s result, CPU milliseconds per frame it used)``."""
    c = cpu_seconds()
    result = fn()
    return result, (cpu_seconds() - c) / n_frames * 1000


def end_to_end(gen, latents_fn, n, fps, out, frames, batch, precision, noise, jobs) -> float:
    t = time.perf_counter()
    render_latents(gen, latents_fn, n, fps, output=out, frames=frames, batch=batch, precision=precision,
                   noise=noise, jobs=jobs, progress=False)
    return len(frames) / (time.perf_counter() - t)


@torch.no_grad()
def serial_gen_video_style(gen: Generator, latents_fn, rng: range, out: OutputSettings, fps: float,
                           width: int, height: int, path: Path) -> float:
    """stylegan3 gen_video.py's loop: per frame synthesise, uint8, .cpu(), append to one ffmpeg writer."""
    import subprocess

    t = time.perf_counter()
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-framerate", fps_arg(fps), "-i", "pipe:0",
           *codec_args(out.codec, out.crf), str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for f in rng:
        ws = torch.from_numpy(latents_fn([f])).to(gen.device)
        img = gen.synthesis(ws, noise_mode="const")
        # Same resize as the renderer's CPU path, so the speed-up measures batching and overlap only.
        frame = resize_uint8(to_uint8(img.float()).cpu().numpy(), width, height, out.fit)[0]
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    assert proc.wait() == 0
    return len(rng) / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scene", default=str(ROOT / "scenes" / "demo.yaml"))
    ap.add_argument("--frames", default=None, help="A:B frame range (default: the whole scene)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--precision", default=None)
    ap.add_argument("--size", type=int, default=None, help="square output size override")
    ap.add_argument("--config-f", action="store_true", help="1024 px StyleGAN2 config-f, random weights (GPU)")
    ap.add_argument("--skip-serial", action="store_true")
    ap.add_argument("--repeat", type=int, default=2, help="measure each stage this many times, keep the best")
    args = ap.parse_args()

    scene = load_scene(args.scene, device=args.device)
    out = OutputSettings.from_spec(scene.output)
    if args.config_f:
        from morphstudio.devices import resolve_device

        gen = config_f(resolve_device(args.device))
        rs = np.random.RandomState(0)
        a, b = (gen.w_avg.cpu().numpy() + rs.randn(2, gen.w_dim).astype(np.float32) * 0.5)
        n_all = scene.frame_count

        def latents_fn(frames):
            t = 2 * np.pi * np.asarray(list(frames)) / n_all
            w = np.cos(t)[:, None] * a + np.sin(t)[:, None] * b
            return np.repeat(w[:, None], gen.num_ws, 1).astype(np.float32)

        out = replace(out, size=args.size or 1024)
        label = "stylegan2 config-f 1024 px (random weights)"
    else:
        gen = scene.generator()
        latents_fn = scene.latents
        label = scene.model
        if args.size:
            out = replace(out, size=args.size)
    n, fps = scene.frame_count, scene.fps
    rng = parse_frame_range(args.frames, n)
    plan = plan_render(gen, n, fps, out, frames=rng, batch=args.batch, precision=args.precision, jobs=args.jobs)
    noise = scene.noise
    print(f"scene {args.scene}: {label} on {gen.device}, {len(rng)} frames -> {plan.width}x{plan.height} "
          f"{out.codec} crf {out.crf}, batch {plan.batch}, {plan.jobs} encoder(s), "
          f"{plan.cpu_threads or '-'} torch threads while encoding, {os.cpu_count()} cores")
    for line in plan.why:  # how threads and batch were planned (measured stage costs, morphstudio/rendering/plan.py)
        print(f"  plan: {line}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out_file = replace(out, path=str(tmp / ("e2e" + Path(out.path).suffix)))
        # warm-up (allocations, cuDNN autotune, ffmpeg start-up cache)
        generator_only(gen, latents_fn, n, fps, out, range(rng.start, rng.start + min(len(rng), plan.batch * 2)),
                       plan.batch, args.precision, noise)
        # Stages are measured in turn, `--repeat` times, keeping each one's best: on a shared machine that is the
        # figure least disturbed by other load, and interleaving keeps the three under similar conditions.
        # The generator alone may use every core; on CPU both that and the renderer's thread count are tried.
        thread_options = sorted({os.cpu_count() or 1, plan.cpu_threads or 1}) if gen.device.type == "cpu" else [None]
        frames_u8 = precompute(gen, latents_fn, n, fps, out, rng, plan.batch, args.precision, noise)
        g = e = x = 0.0
        cpu: dict[str, float] = {}  # CPU ms per frame of each stage's fastest run
        for _ in range(args.repeat):
            for t in thread_options:
                fps_g, ms = with_cpu(lambda: generator_only(gen, latents_fn, n, fps, out, rng, plan.batch,
                                                            args.precision, noise, t), len(rng))
                if fps_g > g:
                    g, cpu["generator"] = fps_g, ms
            fps_e, ms = with_cpu(lambda: encoder_only(frames_u8, rng, out_file, fps, plan.jobs, plan.encoder_threads,
                                                      tmp), len(rng))
            if fps_e > e:
                e, cpu["encoder"] = fps_e, ms
            fps_x, ms = with_cpu(lambda: end_to_end(gen, latents_fn, n, fps, out_file, rng, plan.batch, args.precision,
                                                    noise, plan.jobs), len(rng))
            if fps_x > x:
                x, cpu["end-to-end"] = fps_x, ms
        del frames_u8
        print(f"generator-only   {g:8.1f} frames/s   (synthesis + resize + uint8 + copy, null sink; best of "
              f"{thread_options} torch threads)")
        print(f"encoder-only     {e:8.1f} frames/s   ({plan.jobs} segment encoder(s) fed from memory)")
        print(f"end-to-end       {x:8.1f} frames/s   (render to {Path(out_file.path).name})")
        print(f"end-to-end / min(generator, encoder) = {x / min(g, e):.2f}   (goal >= 0.9)")
        if gen.device.type == "cpu":
            # On a CPU both stages need the same cores, so even perfect overlap gives at most 1 / (1/g + 1/e).
            shared = 1 / (1 / g + 1 / e)
            print(f"end-to-end / shared-CPU bound 1/(1/g + 1/e) = {x / shared:.2f}   (bound {shared:.1f} frames/s: "
                  "generator and encoder compete for the same cores here)")
            cores = usable_cores()
            work = cpu["generator"] + cpu["encoder"]
            print(f"CPU ms per frame: generator {cpu['generator']:.1f}, encoder {cpu['encoder']:.1f}, end-to-end "
                  f"{cpu['end-to-end']:.1f}; {cores} core(s) can do both stages' work at most "
                  f"{cores * 1000 / work:.1f} frames/s = {cores * 1000 / work / min(g, e):.2f} x min(g, e)")
        if not args.skip_serial:
            # As gen_video.py runs (torch's default threads), and tuned (1 torch thread on CPU, which leaves the
            # second core to ffmpeg instead of to OpenMP threads spinning between tiny batch-1 ops).
            old_threads = torch.get_num_threads()
            variants = [("as gen_video.py runs it: default torch threads", old_threads)]
            if gen.device.type == "cpu" and old_threads != 1:
                variants.append(("tuned: 1 torch thread", 1))
            for what, t in variants:
                torch.set_num_threads(t)
                sfps = serial_gen_video_style(gen, latents_fn, rng, out, fps, plan.width, plan.height,
                                              tmp / "serial.mp4")
                print(f"serial batch-1   {sfps:8.1f} frames/s   ({what}) -> speed-up {x / sfps:.2f}x "
                      "(goal >= 1.5x on a 2-core CPU, >= 10x on a GPU)")
            torch.set_num_threads(old_threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
