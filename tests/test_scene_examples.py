"""The shipped scenes: every example validates on a real model, the demo is what the README promises, and the
committed JSON Schema is current."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import morphstudio
from morphstudio.cli import main
from morphstudio.errors import SceneError
from morphstudio.latent import LatentSpace
from morphstudio.scene.schema import json_schema_text

ROOT = Path(__file__).resolve().parents[1]
SCENES = ROOT / "scenes"
EXAMPLES = sorted((SCENES / "examples").glob("*.yaml"))
STYLEGAN_PLACEHOLDER = "path/to/stylegan2.pkl"


@pytest.fixture(scope="module")
def dcgan_space() -> LatentSpace:
    return morphstudio.load_generator("builtin:dcgan-faces64", device="cpu").latent_space()


@pytest.fixture(scope="module")
def sg2_path(reference_dir: Path) -> Path:
    return reference_dir / "sg2ada" / "G_ema.safetensors"


@pytest.fixture(scope="module")
def sg2_space(sg2_path: Path) -> LatentSpace:
    return morphstudio.load_generator(sg2_path, device="cpu").latent_space()


def _fake_projector(space: LatentSpace):
    def project(path: Path, options: dict) -> np.ndarray:
        assert path.exists()
        return np.tile(space.w_avg, (space.num_ws, 1))

    return project


def test_there_is_an_example_per_feature() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"walk", "deform-loops", "attributes", "staggered", "style-mixing", "truncation", "noise",
            "image-faces", "latents-from-file", "face-math", "interpolation"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_validates_and_closes(path: Path, request: pytest.FixtureRequest) -> None:
    stylegan = STYLEGAN_PLACEHOLDER in path.read_text()
    if stylegan:
        space = request.getfixturevalue("sg2_space")
        model = str(request.getfixturevalue("sg2_path"))
    else:
        space = request.getfixturevalue("dcgan_space")
        model = None
    scene = morphstudio.load_scene(path, model=model, latent_space=space, project_image=_fake_projector(space))
    ws = scene.latents(np.arange(0, scene.frame_count + 1, 7))
    assert ws.shape[1:] == (space.num_ws, space.w_dim) and np.all(np.isfinite(ws))
    if scene.is_loop:
        bad = [item for item in scene.closure() if not item.closed]
        assert not bad, bad
    assert scene.frame_count <= 24 * 10  # examples stay small enough to render in tests


@pytest.mark.parametrize("path", [p for p in EXAMPLES if STYLEGAN_PLACEHOLDER in p.read_text()],
                         ids=lambda p: p.stem)
def test_stylegan_examples_say_the_model_is_missing_and_refuse_the_dcgan(path: Path, dcgan_space) -> None:
    with pytest.raises(SceneError, match=r"model: model file not found: 'path/to/stylegan2\.pkl'"):
        morphstudio.load_scene(path)
    scene = morphstudio.load_scene(path, model="builtin:dcgan-faces64", latent_space=dcgan_space)
    if path.stem == "noise":
        return  # animated noise is not a layer feature; the DCGAN simply has no noise inputs
    with pytest.raises(SceneError, match="cannot be used with this dcgan model"):
        scene.latents([0])


def test_demo_scene_is_what_the_readme_promises(dcgan_space: LatentSpace) -> None:
    scene = morphstudio.load_scene(SCENES / "demo.yaml", latent_space=dcgan_space)
    assert scene.model == "builtin:dcgan-faces64"
    assert scene.fps == 30 and scene.duration == 10 and scene.frame_count == 300 and scene.is_loop
    assert scene.output.size == (512, 512)
    assert Path(scene.output.path) == ROOT / "media" / "demo.mp4"
    kinds = {face.kind for face in scene.spec.faces.values()}
    assert {"seed", "average", "analogy"} <= kinds
    assert scene.spec.loops and scene.spec.attributes
    closure = {item.element: item for item in scene.closure()}
    assert all(item.closed for item in closure.values()), closure
    np.testing.assert_array_equal(scene.latents([300]), scene.latents([0]))


def test_validate_command_reports_closure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SCENES / "demo.yaml"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "300 frames (loops)" in out and "faces:      8" in out
    assert "loops[0]" in out and "attributes.light" in out
    assert "all together           max |latent(N) - latent(0)| = 0  closed" in out
    assert out.rstrip().endswith("is valid")


def test_validate_command_fails_on_an_open_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene = tmp_path / "open.yaml"
    scene.write_text("loop: true\noutput: {duration: 4, fps: 10}\nfaces: {a: {seed: 1}}\n"
                     "timeline: [{at: 0, face: a}]\nloops:\n  - {period: 3}\n")
    assert main(["validate", str(scene), "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert "loops[0]" in captured.out and "NOT closed" in captured.out
    assert f"error: {scene}:1: loop: the scene is marked loop: true but does not close: loops[0]" in captured.err


def test_validate_with_model_override_on_a_stylegan(sg2_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = SCENES / "examples" / "staggered.yaml"
    assert main(["validate", str(path), "--model", str(sg2_path), "--device", "cpu", "-q"]) == 0


def test_python_api_example_runs() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(SCENES / "examples" / "python_api.py")], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "latents: (144, 1, 100) float32" in out.stdout and "loop closes: True" in out.stdout


def test_schema_file_is_current() -> None:
    committed = (SCENES / "scene.schema.json").read_text()
    assert committed == json_schema_text(), (
        "scenes/scene.schema.json is out of date: run "
        "`python -m morphstudio.scene.schema > scenes/scene.schema.json`"
    )
    schema = json.loads(committed)
    assert schema["additionalProperties"] is False
    assert "description" in schema["properties"]["timeline"]
    assert set(schema["properties"]) >= {"model", "output", "faces", "timeline", "walks", "loops", "attributes"}
