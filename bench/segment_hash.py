#!/usr/bin/env python3
"""What verified resume costs: the sha256 of every committed segment, on the demo render.

Run: ``.venv/bin/python bench/segment_hash.py [--scene scenes/demo.yaml] [--runs 3]``

Renders the scene (its own size, codec and crf) into a temporary folder, timing each content hash the manifest
records as a segment is committed (that hash runs on the segment's encoder thread, overlapped with the rest of the
render, so its sum is an upper bound of what it adds). Then hashes the finished segments again as ``--resume``
does before it reuses them. Prints milliseconds per segment, MB/s, and both as a share of the render's wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from morphstudio.api import load_scene
from morphstudio.sinks import manifest as resume_mod
from morphstudio.sinks import segmented as segments_mod
from morphstudio.rendering.renderer import render_scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=str(ROOT / "scenes" / "demo.yaml"))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    scene = load_scene(args.scene)
    real_hash = resume_mod.file_sha256
    real_remove = segments_mod.remove_parts
    timings: list[tuple[float, int]] = []  # (seconds, bytes) per committed segment

    def timed_hash(path: Path, chunk: int = 1 << 20) -> str:
        t0 = time.perf_counter()
        digest = real_hash(path, chunk)
        timings.append((time.perf_counter() - t0, path.stat().st_size))
        return digest

    kept: dict[str, list[Path]] = {}

    def keep_parts(folder: Path) -> None:  # hash the finished segments again, as --resume would, before removal
        kept["files"] = sorted(folder.glob("seg_*"))
        t0 = time.perf_counter()
        for f in kept["files"]:
            real_hash(f)
        kept["verify_s"] = [time.perf_counter() - t0]  # type: ignore[list-item]
        real_remove(folder)

    resume_mod.file_sha256 = timed_hash  # Manifest.record looks the function up at call time
    segments_mod.remove_parts = keep_parts  # SegmentedVideoWriter.finish looks it up at call time
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            timings.clear()
            out = Path(tmp) / ("demo" + Path(scene.output.path).suffix)
            res = render_scene(scene, output=str(out), progress=False, log=lambda m: None)
            hash_s = sum(t for t, _ in timings)
            mb = sum(b for _, b in timings) / 1e6
            verify_s = kept["verify_s"][0]  # type: ignore[index]
            rows.append((res.seconds, len(timings), hash_s, mb, verify_s))
            print(f"run {run + 1}: render {res.seconds:.2f} s, {len(timings)} segments, {mb:.1f} MB; hashing at "
                  f"commit {hash_s * 1e3:.1f} ms ({hash_s * 1e3 / max(1, len(timings)):.2f} ms/segment, "
                  f"{mb / max(hash_s, 1e-9):.0f} MB/s, {100 * hash_s / res.seconds:.2f} % of the render); "
                  f"resume check {verify_s * 1e3:.1f} ms ({100 * verify_s / res.seconds:.2f} %)")
    render_s = statistics.median(r[0] for r in rows)
    hash_s = statistics.median(r[2] for r in rows)
    n = rows[0][1]
    print(f"median: render {render_s:.2f} s; hashing {hash_s * 1e3:.1f} ms for {n} segments "
          f"= {hash_s * 1e3 / max(1, n):.2f} ms per segment = {100 * hash_s / render_s:.2f} % of the render time")


if __name__ == "__main__":
    main()
