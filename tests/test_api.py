"""The Python API: the same scene from YAML, a dict or pydantic objects; Scene attributes; fingerprint; render."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

import morphstudio
from morphstudio.errors import CheckpointError
from morphstudio.scene.schema import FaceSpec, Keyframe, LoopSpec, OutputSpec, SceneSpec
from morphstudio.timeline.testing import fake_latent_space

SPACE = fake_latent_space()
YAML = """\
seed: 3
loop: true
output: {path: out/video.mp4, size: [640, 360], fit: letterbox, fps: 12, duration: 3, audio: song.wav}
noise: {mode: animated, seed: 4}
faces:
  a: {seed: 1}
  b: {seed: 2, psi: 0.7}
  m: {average: [a, b]}
timeline:
  - {at: 0, face: a}
  - {at: 1, face: b}
  - {at: 2, face: m}
loops:
  - {amplitude: 0.5, period: 1.5}
"""
DICT = {
    "seed": 3,
    "loop": True,
    "output": {"path": "out/video.mp4", "size": [640, 360], "fit": "letterbox", "fps": 12, "duration": 3,
               "audio": "song.wav"},
    "noise": {"mode": "animated", "seed": 4},
    "faces": {"a": {"seed": 1}, "b": {"seed": 2, "psi": 0.7}, "m": {"average": ["a", "b"]}},
    "timeline": [{"at": 0, "face": "a"}, {"at": 1, "face": "b"}, {"at": 2, "face": "m"}],
    "loops": [{"amplitude": 0.5, "period": 1.5}],
}


@pytest.fixture()
def scene_dir(tmp_path: Path) -> Path:
    (tmp_path / "scene.yaml").write_text(YAML)
    (tmp_path / "song.wav").write_bytes(b"RIFF")
    return tmp_path


def test_yaml_dict_and_pydantic_give_the_same_scene(scene_dir: Path) -> None:
    from_yaml = morphstudio.load_scene(scene_dir / "scene.yaml", latent_space=SPACE)
    from_dict = morphstudio.load_scene(DICT, latent_space=SPACE, base_dir=scene_dir)
    spec = SceneSpec(
        seed=3, loop=True,
        output=OutputSpec(path="out/video.mp4", size=(640, 360), fit="letterbox", fps=12, duration=3, audio="song.wav"),
        noise={"mode": "animated", "seed": 4},
        faces={"a": FaceSpec(seed=1), "b": FaceSpec(seed=2, psi=0.7), "m": FaceSpec(average=["a", "b"])},
        timeline=[Keyframe(at=0, face="a"), Keyframe(at=1, face="b"), Keyframe(at=2, face="m")],
        loops=[LoopSpec(amplitude=0.5, period=1.5)],
    )
    from_objects = morphstudio.load_scene(spec, latent_space=SPACE, base_dir=scene_dir)
    assert from_yaml.spec == from_dict.spec == from_objects.spec
    frames = np.arange(from_yaml.frame_count)
    np.testing.assert_array_equal(from_yaml.latents(frames), from_dict.latents(frames))
    np.testing.assert_array_equal(from_yaml.latents(frames), from_objects.latents(frames))
    assert from_yaml.fingerprint() == from_dict.fingerprint() == from_objects.fingerprint()


def test_scene_attributes(scene_dir: Path) -> None:
    scene = morphstudio.load_scene(scene_dir / "scene.yaml", latent_space=SPACE)
    assert scene.path == scene_dir / "scene.yaml"
    assert scene.model == "builtin:dcgan-faces64" and scene.device is None and scene.seed == 3
    assert (scene.fps, scene.duration, scene.frame_count, scene.is_loop) == (12.0, 3.0, 36, True)
    assert scene.output.path == str(scene_dir / "out" / "video.mp4")       # relative to the scene file
    assert scene.output.audio == str(scene_dir / "song.wav")
    assert scene.output.size == (640, 360) and scene.output.fit == "letterbox" and scene.output.codec == "h264"
    assert scene.noise.mode == "animated" and scene.noise.seed == 4 and scene.noise.period is None
    ws = scene.latents(range(5))
    assert ws.shape == (5, SPACE.num_ws, SPACE.w_dim) and ws.dtype == np.float32
    summary = scene.summary()
    assert "36 frames (loops)" in summary and "640x360 (letterbox)" in summary and "faces:      3" in summary


def test_non_looping_duration_is_derived_from_the_timeline() -> None:
    scene = morphstudio.load_scene({"output": {"fps": 10}, "faces": {"a": {"seed": 1}, "b": {"seed": 2}},
                                    "timeline": [{"at": 0, "face": "a"}, {"at": 2, "face": "b", "hold": 1}]},
                                   latent_space=SPACE)
    assert scene.duration == 3 and scene.frame_count == 31 and not scene.is_loop


def test_loop_closed_by_a_last_keyframe_on_the_first_face() -> None:
    scene = morphstudio.load_scene({"loop": True, "output": {"fps": 10}, "faces": {"a": {"seed": 1}, "b": {"seed": 2}},
                                    "timeline": [{"at": 0, "face": "a"}, {"at": 2, "face": "b"},
                                                 {"at": 5, "face": "a"}]}, latent_space=SPACE)
    assert scene.duration == 5 and scene.frame_count == 50
    np.testing.assert_array_equal(scene.latents([50]), scene.latents([0]))


def test_fingerprint_changes_with_what_decides_the_frames(scene_dir: Path) -> None:
    base = morphstudio.load_scene(scene_dir / "scene.yaml", latent_space=SPACE).fingerprint()
    assert base == morphstudio.load_scene(scene_dir / "scene.yaml", latent_space=SPACE).fingerprint()
    (scene_dir / "scene.yaml").write_text(YAML.replace("{seed: 1}", "{seed: 5}"))
    assert morphstudio.load_scene(scene_dir / "scene.yaml").fingerprint() != base
    (scene_dir / "scene.yaml").write_text(YAML)
    assert morphstudio.load_scene(scene_dir / "scene.yaml", model="builtin:other").fingerprint() != base
    assert morphstudio.load_scene(scene_dir / "scene.yaml", device="cpu").fingerprint() != base
    # Input files count by content; the audio track does not decide any frame.
    (scene_dir / "song.wav").write_bytes(b"RIFF2")
    assert morphstudio.load_scene(scene_dir / "scene.yaml").fingerprint() == base
    np.save(scene_dir / "w.npy", np.zeros(SPACE.w_dim, np.float32))
    spec = {"output": {"duration": 1}, "faces": {"a": {"latent": "w.npy"}}, "timeline": [{"at": 0, "face": "a"}]}
    before = morphstudio.load_scene(spec, base_dir=scene_dir).fingerprint()
    np.save(scene_dir / "w.npy", np.ones(SPACE.w_dim, np.float32))
    assert morphstudio.load_scene(spec, base_dir=scene_dir).fingerprint() != before


def test_model_override_paths(tmp_path: Path, scene_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckpointError, match="model file not found"):
        morphstudio.load_scene(scene_dir / "scene.yaml", model="nothere.pkl")
    (tmp_path / "g.pkl").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    scene = morphstudio.load_scene(scene_dir / "scene.yaml", model="g.pkl")   # relative to the current folder
    assert scene.model == str(tmp_path / "g.pkl")
    (scene_dir / "m.pkl").write_bytes(b"x")
    (scene_dir / "with-model.yaml").write_text("model: m.pkl\n" + YAML)
    scene = morphstudio.load_scene(scene_dir / "with-model.yaml")
    assert scene.model == str(scene_dir / "m.pkl")                              # relative to the scene file


def test_render_calls_the_renderer_lazily(monkeypatch: pytest.MonkeyPatch, scene_dir: Path) -> None:
    calls = []
    fake = types.ModuleType("morphstudio.rendering.renderer")
    fake.render_scene = lambda scene, **kw: calls.append((scene, kw)) or "done"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "morphstudio.rendering.renderer", fake)
    scene = morphstudio.load_scene(scene_dir / "scene.yaml", latent_space=SPACE)
    assert morphstudio.render(scene, batch=4) == "done"
    assert calls == [(scene, {"batch": 4})]
    assert morphstudio.render(scene_dir / "scene.yaml", model="builtin:x") == "done"
    assert calls[-1][0].model == "builtin:x"


def test_scene_packages_do_not_import_torch() -> None:
    import subprocess

    code = ("import sys, morphstudio, morphstudio.api, morphstudio.scene.validate, morphstudio.timeline; "
            "from morphstudio.timeline.testing import fake_latent_space; "
            "s = morphstudio.load_scene({'output': {'duration': 1}, 'faces': {'a': {'seed': 1}}, "
            "'timeline': [{'at': 0, 'face': 'a'}]}, latent_space=fake_latent_space()); s.latents([0]); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_spec_round_trips_through_json_data() -> None:
    """``spec.model_dump(mode="json")`` loads back to the same scene (the renderer's --fps path relies on it)."""
    root = Path(__file__).resolve().parents[1] / "scenes"
    for path in [root / "demo.yaml", *sorted((root / "examples").glob("*.yaml"))]:
        scene = morphstudio.load_scene(path, model="builtin:any")
        data = scene.spec.model_dump(mode="json", exclude_unset=True)
        again = morphstudio.load_scene(data, model="builtin:any", base_dir=scene.base_dir)
        assert again.spec == scene.spec, path.name
        assert again.fingerprint() == scene.fingerprint(), path.name
