"""Broken scenes: every kind of mistake gives one line naming file:line, the field and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import morphstudio
from morphstudio.cli import main
from morphstudio.errors import SceneError
from morphstudio.timeline.testing import fake_latent_space

GOOD = """\
model: builtin:dcgan-faces64
output: {duration: 4, fps: 10}
faces:
  a: {seed: 1}
  b: {seed: 2}
timeline:
  - {at: 0, face: a}
  - {at: 2, face: b}
"""


def _with_face(line: str) -> str:
    return GOOD.replace("  b: {seed: 2}\n", "  b: {seed: 2}\n" + line + "\n")


# (name, scene text, expected "line: field: problem" regex, needs the model (a one-latent space))
CASES = [
    ("yaml-syntax", "model: x\nfaces: [a, b\n", r":2: YAML syntax error: .*expected ',' or ']'"),
    ("yaml-tab", "model: x\n\tfaces: 1\n", r":2: YAML syntax error: .*'\\t'"),
    ("empty", "", r":1: the scene file is empty"),
    ("only-comments", "# nothing yet\n", r":1: the scene file is empty"),
    ("not-a-mapping", "- a\n- b\n", r":1: a scene must be a mapping of keys .*got a list"),
    ("duplicate-key", GOOD + "seed: 1\nseed: 2\n", r":10: seed: duplicate key 'seed' \(first given on line 9\)"),
    ("unknown-key", GOOD + "timelne: []\n", r":9: timelne: unknown key 'timelne' \(did you mean 'timeline'\?\)"),
    ("unknown-nested-key", GOOD.replace("fps: 10", "fsp: 10"),
     r":2: output\.fsp: unknown key 'fsp' \(did you mean 'fps'\?\); allowed: path, size"),
    ("unknown-face-key", GOOD.replace("a: {seed: 1}", "a: {sed: 1}"),
     r":4: faces\.a\.sed: unknown key 'sed' \(did you mean 'seed'\?\)"),
    ("wrong-type", GOOD.replace("fps: 10", "fps: fast"), r":2: output\.fps: must be a valid number.*got 'fast'"),
    ("wrong-type-seed", GOOD.replace("{seed: 2}", "{seed: two}"),
     r":5: faces\.b\.seed: must be a valid integer.*'two'"),
    ("wrong-type-face", GOOD.replace("{seed: 2}", "5"), r":5: faces\.b: must be a mapping of keys, got 5"),
    ("wrong-type-timeline", GOOD.replace("timeline:\n  - {at: 0, face: a}\n  - {at: 2, face: b}\n", "timeline: a\n"),
     r":6: timeline: must be a valid list, got 'a'"),
    ("bool-for-number", GOOD.replace("fps: 10", "fps: yes"), r":2: output\.fps: must be a valid number, got True"),
    ("string-for-number", GOOD.replace("duration: 4", "duration: 4s"),
     r":2: output\.duration: must be a valid number, got '4s'"),
    ("out-of-range", GOOD.replace("fps: 10", "fps: -3"), r":2: output\.fps: must be greater than 0, got -3"),
    ("out-of-range-psi", GOOD.replace("{seed: 2}", "{seed: 2, psi: 5}"),
     r":5: faces\.b\.psi: must be less than or equal to 2, got 5"),
    ("bad-choice", GOOD.replace("fps: 10", "fps: 10, codec: mp3"), r":2: output\.codec: must be 'h264', .*got 'mp3'"),
    ("bad-size", GOOD.replace("fps: 10", "fps: 10, size: [640, 361]"), r":2: output\.size: 640x361 is odd: .*even width and height"),
    ("bad-layers", GOOD + "loops:\n  - {layers: corse}\n",
     r":10: loops\[0\]\.layers: must be all, coarse, middle, fine or \[start, stop\), got 'corse'"),
    ("unknown-face", GOOD.replace("face: b", "face: c"), r":8: timeline\[1\]\.face: unknown face 'c'"),
    ("unknown-face-close", GOOD.replace("face: b", "face: bb"),
     r":8: timeline\[1\]\.face: unknown face 'bb' \(did you mean 'b'\?\)"),
    ("unknown-face-in-math", _with_face("  c: {average: [a, x]}"), r":6: faces\.c\.average\.x: unknown face 'x'"),
    ("face-cycle", _with_face("  c: {average: [a, d]}\n  d: {blend: [c, b]}"),
     r":6: faces\.c: faces refer to each other in a cycle: c -> d -> c"),
    ("face-two-kinds", GOOD.replace("{seed: 2}", "{seed: 2, average: [a]}"),
     r":5: faces\.b: a face takes exactly one of .*; got seed and average"),
    ("face-no-kind", GOOD.replace("{seed: 2}", "{psi: 0.5}"), r":5: faces\.b: a face needs one of: seed, latent"),
    ("missing-latent-file", GOOD.replace("{seed: 2}", "{latent: nothere.npy}"),
     r":5: faces\.b\.latent: latent file not found: 'nothere\.npy'"),
    ("missing-image", GOOD.replace("{seed: 2}", "{image: me.jpg}"), r":5: faces\.b\.image: image not found: 'me\.jpg'"),
    ("missing-direction", GOOD + "attributes:\n  smile: {direction: smile.npy}\n",
     r":10: attributes\.smile\.direction: direction file not found: 'smile\.npy'"),
    ("missing-model", GOOD.replace("builtin:dcgan-faces64", "models/ffhq.pkl"),
     r":1: model: model file not found: 'models/ffhq\.pkl'"),
    ("missing-audio", GOOD.replace("fps: 10", "fps: 10, audio: song.mp3"),
     r":2: output\.audio: audio file not found: 'song\.mp3'"),
    ("keys-out-of-order", GOOD.replace("{at: 2, face: b}", "{at: 2, face: b}\n  - {at: 1.5, face: a}"),
     r":9: timeline\[2\]\.at: must be after 2 s, got 1\.5 s"),
    ("key-inside-hold", GOOD.replace("{at: 0, face: a}", "{at: 0, face: a, hold: 2.5}"),
     r":8: timeline\[1\]\.at: must be after 2\.5 s \(the keyframe before holds from 0 s\), got 2 s"),
    ("key-missing-time", GOOD.replace("{at: 2, face: b}", "{face: b}"),
     r":8: timeline\[1\]: give exactly one of 'at' \(seconds\) or 'frame'"),
    ("key-missing-face", GOOD.replace("{at: 2, face: b}", "{at: 2}"),
     r":8: timeline\[1\]\.face: required key is missing"),
    ("loop-without-duration", GOOD.replace("output: {duration: 4, fps: 10}", "loop: true\noutput: {fps: 10}"),
     r":7: timeline: a looping scene needs output\.duration"),
    ("key-after-loop-end", GOOD.replace("output: {duration: 4", "loop: true\noutput: {duration: 2"),
     r":9: timeline\[1\]\.at: must end before the loop closes at 2 s, got 2 s"),
    ("no-path", "output: {duration: 2}\nfaces: {a: {seed: 1}}\n", r"timeline: the scene has no path"),
    ("fades-too-long", GOOD + "loops:\n  - {period: 2, fade_in: 3, fade_out: 2}\n",
     r":10: loops\[0\]\.fade_out: fade_in \+ fade_out \(5 s\) is longer than the loop plays \(4 s\)"),
    # Checks that need the model (a one-latent, DCGAN-like space):
    ("layers-on-one-latent-model", GOOD + "loops:\n  - {layers: coarse}\n",
     r":10: loops\[0\]\.layers: layers coarse cannot be used with this dcgan model: it has a single latent"),
    ("stagger-on-one-latent-model", GOOD.replace("{at: 2, face: b}", "{at: 2, face: b, stagger: {fine: 1}}"),
     r":8: timeline\[1\]\.stagger: staggered keyframes cannot be used with this dcgan model"),
    ("mix-on-one-latent-model", _with_face("  m: {mix: [{face: a}, {face: b, layers: fine}]}"),
     r":6: faces\.m\.mix: style mixing cannot be used with this dcgan model"),
    ("group-psi-on-one-latent-model", GOOD + "truncation: {psi: {coarse: 0.5}}\n",
     r":9: truncation\.psi: per-group truncation cannot be used with this dcgan model"),
]

MODEL_CASES = {"layers-on-one-latent-model", "stagger-on-one-latent-model", "mix-on-one-latent-model",
               "group-psi-on-one-latent-model"}


@pytest.mark.parametrize("name, text, expected", CASES, ids=[c[0] for c in CASES])
def test_broken_scene_names_file_line_and_field(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(SceneError) as info:
        scene = morphstudio.load_scene(path, latent_space=fake_latent_space(1, 100, family="dcgan"))
        scene.latents([0])
    assert name in MODEL_CASES or "cannot be used" not in str(info.value)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    import re

    assert re.search(expected, message), f"{message!r} does not match {expected!r}"


def test_layer_range_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("builtin:dcgan-faces64", "builtin:whatever") + "loops:\n  - {layers: [4, 12]}\n")
    scene = morphstudio.load_scene(path, latent_space=fake_latent_space())
    with pytest.raises(SceneError, match=r"s\.yaml:10: loops\[0\]\.layers: layer range \[4, 12\) is out of range: "
                                         r"this model has 10 latents"):
        scene.latents([0])


def test_direction_of_the_wrong_shape(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", np.ones((3, 5)))
    path = tmp_path / "s.yaml"
    path.write_text(GOOD + "attributes:\n  smile:\n    direction: d.npy\n")
    scene = morphstudio.load_scene(path, latent_space=fake_latent_space())
    with pytest.raises(SceneError, match=r"s\.yaml:11: attributes\.smile\.direction: 'd\.npy' has shape \[3, 5\]; "
                                         r"a direction must be \[16\] or \[10, 16\]"):
        scene.latents([0])


def test_several_problems_are_listed_in_the_hint(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("fps: 10", "fps: -1, crf: 99"))
    with pytest.raises(SceneError) as info:
        morphstudio.load_scene(path)
    assert "output.fps" in str(info.value)
    assert info.value.hint and "output.crf" in info.value.hint


def test_missing_scene_file_and_dict_errors(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match=r"nope\.yaml: scene file not found"):
        morphstudio.load_scene(tmp_path / "nope.yaml")
    with pytest.raises(SceneError, match=r"^timeline\[0\]\.face: unknown face 'zz'$"):
        morphstudio.load_scene({"output": {"duration": 1}, "faces": {"a": {"seed": 1}},
                                "timeline": [{"at": 0, "face": "zz"}]})


def test_cli_prints_one_error_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("face: b", "face: bb"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:8: timeline[1].face: unknown face 'bb' (did you mean 'b'?)")
    assert "Traceback" not in err
