"""Long end-to-end checks (``make test-slow``): what a user does on day one, at full size."""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

import morphstudio
from morphstudio.cli import main

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def decode(path: Path) -> tuple[dict, np.ndarray]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return meta, np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


def test_demo_renders_in_full_and_loops(tmp_path: Path) -> None:
    """The README's demo: 10 s, 30 fps, 512x512 h264 that plays as a seamless loop."""
    out = tmp_path / "demo.mp4"
    assert main(["render", str(ROOT / "scenes" / "demo.yaml"), "-o", str(out), "--quiet"]) == 0
    meta, frames = decode(out)
    assert frames.shape == (300, 512, 512, 3) and meta["fps"] == 30
    # Frame 300 would equal frame 0, so the last frame must be as close to the first as any two neighbours are.
    steps = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    wrap = np.abs(frames[-1].astype(np.int16) - frames[0]).mean()
    assert wrap <= 2 * np.median(steps) + 1.0, f"loop seam {wrap:.2f} vs typical step {np.median(steps):.2f}"
    assert not list(tmp_path.glob(".*parts*")), "the segment work folder is removed after a successful render"


def test_encoder_start_beats_the_average_start_at_equal_steps() -> None:
    """The shipped encoder is worth having: with the same step budget it ends closer on every face."""
    from morphstudio.faces.encoder import resolve_encoder
    from morphstudio.faces.project import ProjectConfig, Projector
    from morphstudio.faces.report import psnr
    from morphstudio.faces.synthetic import generate_faces

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    faces, _ = generate_faces(G, [200, 201, 202, 203])
    cfg = ProjectConfig(space="w", steps=150, patience=0)
    from_avg = Projector(G, cfg, encoder=None, warn=lambda m: None).project(faces)
    from_enc = Projector(G, cfg, encoder=resolve_encoder("auto", G), warn=lambda m: None).project(faces)
    assert from_enc.init == "encoder" and from_avg.init != "encoder"
    for i in range(len(faces)):
        db_avg, db_enc = psnr(faces[i], from_avg.images[i]), psnr(faces[i], from_enc.images[i])
        assert db_enc > db_avg and db_enc >= 30.0, f"face {i}: encoder {db_enc:.1f} dB vs average {db_avg:.1f} dB"
