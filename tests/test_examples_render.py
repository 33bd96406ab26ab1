"""Every scene in ``scenes/`` validates and renders at a small size (a few frames, 64x64).

Scenes written for a StyleGAN checkpoint (``model: path/to/...``: layer ranges, noise) render with ``--model``
pointing at the small StyleGAN2 reference network; on the one-latent DCGAN they must fail with a clear error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_render_tinygen import decode

from morphstudio.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCENES = sorted([ROOT / "scenes" / "demo.yaml", *(ROOT / "scenes" / "examples").glob("*.yaml")])


def needs_stylegan(path: Path) -> bool:
    return any(line.startswith("model: path/to/") for line in path.read_text().splitlines())


@pytest.fixture(scope="module")
def sg2(reference_dir: Path) -> str:
    return str(reference_dir / "sg2ada" / "G_ema.safetensors")


@pytest.mark.parametrize("scene", SCENES, ids=[p.stem for p in SCENES])
def test_example_scene_renders(scene: Path, tmp_path: Path, request: pytest.FixtureRequest,
                               capsys: pytest.CaptureFixture) -> None:
    model = ["--model", request.getfixturevalue("sg2")] if needs_stylegan(scene) else []
    out = tmp_path / "out.mkv"
    rc = main(["render", str(scene), "-o", str(out), "--codec", "ffv1", "--size", "64x64", "--frames", ":5",
               "-q", *model])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"wrote {out}" in captured.out
    _, frames = decode(out)
    assert frames.shape == (5, 64, 64, 3)
    assert frames.std() > 1  # an image, not a blank frame


@pytest.mark.parametrize("scene", [p for p in SCENES if needs_stylegan(p) and p.stem != "noise"],
                         ids=lambda p: p.stem)
def test_layer_range_scenes_refuse_the_dcgan(scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["render", str(scene), "-o", str(tmp_path / "x.mp4"), "--model", "builtin:dcgan-faces64", "-q"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and str(scene) in err.splitlines()[0]
    assert not (tmp_path / "x.mp4").exists()


def test_demo_loops_back_to_its_first_frame(tmp_path: Path) -> None:
    """Rendering the demo's last frames and first frames: frame N (one past the end) would equal frame 0, so
    the last frame is close to the first (a seamless loop), at the exact scene fingerprint."""
    out = tmp_path / "ends.mkv"
    assert main(["render", str(ROOT / "scenes" / "demo.yaml"), "-o", str(out), "--codec", "ffv1",
                 "--size", "64x64", "--frames=-1:", "-q"]) == 0
    first = tmp_path / "first.mkv"
    assert main(["render", str(ROOT / "scenes" / "demo.yaml"), "-o", str(first), "--codec", "ffv1",
                 "--size", "64x64", "--frames", ":1", "-q"]) == 0
    a, b = decode(out)[1][0].astype(int), decode(first)[1][0].astype(int)
    assert np.abs(a - b).mean() < 12
