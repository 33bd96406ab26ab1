#!/usr/bin/env python3
"""Generator throughput: images/s per backend at batch 1, 8 and 32.

Run: ``.venv/bin/python bench/generator.py [--device cpu|cuda] [--quick]``

On CPU it measures the built-in DCGAN and the small StyleGAN2/StyleGAN3 reference networks from
``../shared/reference`` (if present). Where CUDA is available it adds a StyleGAN2 of the 1024 px config-f size
(random weights) in fp32, fp16 and bf16. Synthesis includes the uint8 conversion on the device and the copy to
host memory, i.e. everything the renderer asks of a generator. Figures are wall-clock on a shared machine: compare
the ratios printed side by side (batch 32 ÷ batch 1), not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from morphstudio import load_generator  # noqa: E402
from morphstudio.devices import resolve_device  # noqa: E402
from morphstudio.generators import Generator, to_uint8  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference"


@dataclass
class Case:
    name: str
    make: Callable[[torch.device], Generator]
    dtype: torch.dtype = torch.float32


def _config_f(device: torch.device) -> Generator:
    from morphstudio.generators.stylegan2 import StyleGAN2Config, StyleGAN2Generator

    # The released FFHQ config-f shape: 1024 px, 8 mapping layers, channel_base 32768, channel_max 512.
    torch.manual_seed(0)
    cfg = StyleGAN2Config(img_resolution=1024, channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256)
    return StyleGAN2Generator(cfg).to(device).eval().requires_grad_(False)


def cases(device: torch.device) -> list[Case]:
    out = [Case("dcgan-faces64 (builtin)", lambda d: load_generator("builtin:dcgan-faces64", device=d))]
    sg2 = REFERENCE / "sg2ada" / "G_ema.safetensors"
    sg3 = REFERENCE / "sg3_t" / "G_ema.safetensors"
    if sg2.exists():
        out.append(Case("stylegan2 64px (reference)", lambda d: load_generator(sg2, device=d)))
    if sg3.exists():
        out.append(Case("stylegan3-t 64px (reference)", lambda d: load_generator(sg3, device=d)))
    if device.type == "cuda":
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            out.append(Case(f"stylegan2 1024px config-f {str(dtype)[6:]}", _config_f, dtype))
    return out


@torch.no_grad()
def images_per_second(G: Generator, batch: int, min_seconds: float, device: torch.device) -> float:
    z = torch.randn(batch, G.z_dim, device=device)
    ws = G.mapping(z, G.default_c(batch), psi=0.7)

    def step() -> None:
        to_uint8(G.synthesis(ws)).cpu()  # .cpu() synchronises, as the renderer's copy to host does

    step()  # warm-up: allocations, cuDNN autotune
    n, start = 0, time.perf_counter()
    while True:
        step()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and n >= 2:
            return n * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    parser.add_argument("--batches", default="1,8,32", help="batch sizes (default 1,8,32)")
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum timed seconds per figure")
    args = parser.parse_args()
    device = resolve_device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_grad_enabled(False)

    print(f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
                                 f" ({torch.get_num_threads()} torch threads)"))
    header = f"{'backend':<34}" + "".join(f"{'b=' + str(b) + ' img/s':>14}" for b in batches) + f"{'b' + str(batches[-1]) + '/b' + str(batches[0]):>10}"
    print(header)
    print("-" * len(header))
    for case in cases(device):
        G = case.make(device)
        if case.dtype != torch.float32:
            G.set_precision(case.dtype)
        rates = []
        for b in batches:
            try:
                rates.append(images_per_second(G, b, args.seconds, device))
            except torch.cuda.OutOfMemoryError:
                rates.append(float("nan"))
                torch.cuda.empty_cache()
        cells = "".join(f"{r:>14.1f}" for r in rates)
        print(f"{case.name:<34}{cells}{rates[-1] / rates[0]:>9.2f}x", flush=True)
        del G
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
