#!/usr/bin/env python3
"""Checkpoint load time: morphstudio's allow-list loader vs NVIDIA's ``legacy.load_network_pkl``, same file.

Run::

    .venv/bin/python bench/load.py --stylegan3-repo PATH [--python PY] [--pkl FILE] [--repeats 5] [--profile]

``PATH`` is a local checkout of NVIDIA's stylegan3 repository (never vendored, never imported by morphstudio: it
runs only in a child process). ``PY`` is a Python that can import that code (torch, numpy, click, requests; the
default is this interpreter). If ``FILE`` (default ``bench/.cache/stylegan2-256.pkl``) is absent, the child builds
it with that code: the ``stylegan2`` config at 256 px (channel_base 16384, channel_max 512, 8 mapping layers,
fp32, random weights), a training snapshot with G, D and G_ema pickled as the training loop does (~300 MB).

Both loaders run alternately in one run, after one untimed load each (the file is in the page cache for both):
the official one in a child process that stays up, morphstudio's here. Timed: from the open file to a generator
on the CPU ready for inference (``load_network_pkl(f)['G_ema']`` vs ``load_generator(path, device='cpu')``), and
morphstudio's file reading alone (``read_checkpoint``). Prints medians and the ratio. Wall-clock on a shared
machine: compare the ratio, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Builds the snapshot with the official code (run in the child, with the repo on sys.path).
BUILD = r"""
import copy, pickle, sys
import torch
import dnnlib
from training.networks_stylegan2 import Discriminator, Generator

torch.manual_seed(0)
common = dict(channel_base=16384, channel_max=512, num_fp16_res=0, conv_clamp=None)
G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
              mapping_kwargs=dnnlib.EasyDict(num_layers=8), fused_modconv_default='inference_only', **common)
D = Discriminator(c_dim=0, img_resolution=256, img_channels=3, block_kwargs=dnnlib.EasyDict(freeze_layers=0),
                  mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=4), **common)
G_ema = copy.deepcopy(G).eval()
snapshot = dict(G=G, D=D, G_ema=G_ema, augment_pipe=None,
                training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path='faces.zip',
                                         use_labels=False, max_size=None, xflip=False, resolution=256))
for key, value in snapshot.items():
    if isinstance(value, torch.nn.Module):  # as training_loop.py does before pickling
        snapshot[key] = copy.deepcopy(value).eval().requires_grad_(False).cpu()
with open(sys.argv[1] + '.part', 'wb') as f:
    pickle.dump(snapshot, f)
import os
os.replace(sys.argv[1] + '.part', sys.argv[1])
"""

#: The official loader as a server: one line in ("load"), one line out (seconds), until stdin closes.
SERVE = r"""
import sys, time
import torch
torch.set_num_threads(int(sys.argv[2]))
import legacy
for line in sys.stdin:
    t = time.perf_counter()
    with open(sys.argv[1], 'rb') as f:
        G = legacy.load_network_pkl(f)['G_ema']
    elapsed = time.perf_counter() - t
    del G
    print(elapsed, flush=True)
"""


def official_env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo)  # the official code only; morphstudio is not importable there
    return env


def build_pickle(python: str, repo: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"building {out} with {repo} ...", flush=True)
    t = time.perf_counter()
    subprocess.run([python, "-c", BUILD, str(out)], cwd=repo, env=official_env(repo), check=True)
    print(f"  built in {time.perf_counter() - t:.1f} s ({out.stat().st_size / 2**20:.0f} MiB)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stylegan3-repo", type=Path, required=True, help="local checkout of NVlabs/stylegan3")
    parser.add_argument("--python", default=sys.executable, help="Python that can run the official code")
    parser.add_argument("--pkl", type=Path, default=ROOT / "bench" / ".cache" / "stylegan2-256.pkl")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides (default 1)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of morphstudio's load")
    args = parser.parse_args()

    repo = args.stylegan3_repo.resolve()
    if not (repo / "legacy.py").is_file():
        parser.error(f"{repo} is not a stylegan3 checkout (no legacy.py)")
    if not args.pkl.is_file():
        build_pickle(args.python, repo, args.pkl)

    import torch

    from morphstudio.generators.checkpoints import read_checkpoint
    from morphstudio.generators.loading import load_generator

    torch.set_num_threads(args.threads)
    server = subprocess.Popen([args.python, "-c", SERVE, str(args.pkl), str(args.threads)], cwd=repo,
                              env=official_env(repo), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def official() -> float:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write("load\n")
        server.stdin.flush()
        line = server.stdout.readline()
        if not line:
            raise SystemExit("the official loader exited (see its error above)")
        return float(line)

    def ours() -> tuple[float, float]:
        # The whole load as a user calls it, then the file reading alone (a second read: the share it takes).
        t = time.perf_counter()
        load_generator(args.pkl, device="cpu")
        total = time.perf_counter() - t
        t = time.perf_counter()
        read_checkpoint(args.pkl)
        return total, time.perf_counter() - t

    try:
        official()
        ours()  # untimed: page cache, lazy imports
        times: dict[str, list[float]] = {"official": [], "ours": [], "read": []}
        for _ in range(args.repeats):
            times["official"].append(official())
            total, read = ours()
            times["ours"].append(total)
            times["read"].append(read)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=60)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"file: {args.pkl} ({args.pkl.stat().st_size / 2**20:.0f} MiB), torch threads {args.threads}, "
          f"{args.repeats} alternating runs")
    print(f"  official legacy.load_network_pkl -> G_ema   median {med['official']:.3f} s   "
          f"({', '.join(f'{t:.3f}' for t in times['official'])})")
    print(f"  morphstudio load_generator (cpu)             median {med['ours']:.3f} s   "
          f"({', '.join(f'{t:.3f}' for t in times['ours'])})")
    print(f"    its read_checkpoint alone                  median {med['read']:.3f} s")
    print(f"  ratio morphstudio / official: {med['ours'] / med['official']:.2f}x  (goal <= 1.5x)")
    print(json.dumps({k: round(v, 4) for k, v in med.items()} | {"ratio": round(med["ours"] / med["official"], 3)}))

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        load_generator(args.pkl, device="cpu")
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
