"""Every validation rule of the scene, one case each, asserting its exact message and field.

``tests/test_scene_errors.py`` checks the common mistakes through files (with line numbers); this file covers the
remaining rules of ``scene/validate.py``, ``scene/schema.py``, ``scene/yamlmap.py`` and the model-time checks of
the timeline, so that disabling any one of them fails a test. Scenes are dicts unless the rule is about files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import morphstudio
from morphstudio.errors import SceneError
from morphstudio.timeline.testing import fake_latent_space

SPACE = fake_latent_space()  # 10 latents of 16: coarse 0-3, middle 4-7, fine 8-9
DCGAN = fake_latent_space(1, 16, family="dcgan")


def _scene(**extra: Any) -> dict:
    spec: dict = {"output": {"fps": 10, "duration": 4}, "faces": {"a": {"seed": 1}, "b": {"seed": 2}},
                  "timeline": [{"at": 0, "face": "a"}, {"at": 2, "face": "b"}]}
    spec.update(extra)
    return spec


def _loop(**extra: Any) -> dict:
    return _scene(loop=True, **extra)


# (id, scene dict, expected message: field and problem, the whole line)
RULES: list[tuple[str, dict, str]] = [
    # --- validate.check_spec / derive_timing ---
    ("unknown-face-no-faces", {"output": {"duration": 1}, "timeline": [{"at": 0, "face": "a"}]},
     r"timeline\[0\]\.face: unknown face 'a'"),
    ("truncation-keys-order", _scene(truncation={"keys": [{"at": 2, "psi": 1}, {"at": 1, "psi": 0.5}]}),
     r"truncation\.keys\[1\]\.at: must be after 2 s, got 1 s"),
    ("attribute-keys-order", _scene(attributes={"x": {"direction": "d.npy", "keys": [
        {"at": 0, "value": 0}, {"frame": 0, "value": 1}]}}),
     r"attributes\.x\.keys\[1\]\.frame: must be after 0 s, got 0 s"),
    ("no-duration-single-key", {"faces": {"a": {"seed": 1}}, "timeline": [{"at": 0, "face": "a"}]},
     r"output: cannot tell how long the scene is: set output\.duration"),
    ("no-duration-no-timeline", {"walks": [{"kind": "random"}]},
     r"output: cannot tell how long the scene is: set output\.duration \(or give a timeline\)"),
    ("shorter-than-a-frame", _scene(output={"fps": 10, "duration": 0.04}),
     r"output\.duration: the scene is shorter than one frame \(0\.04 s at 10 fps\)"),
    ("loop-not-whole-frames", _loop(output={"fps": 10, "duration": 4.05}),
     r"output\.duration: a looping scene must last a whole number of frames: 4\.05 s at 10 fps is 40\.5 frames"),
    ("loop-derived-not-whole-frames", _loop(output={"fps": 10}, timeline=[
        {"at": 0, "face": "a"}, {"at": 1, "face": "b"}, {"at": 2.05, "face": "a"}]),
     r"timeline: a looping scene must last a whole number of frames: 2\.05 s at 10 fps is 20\.5 frames"),
    ("loop-end-before-start", _scene(loops=[{"start": 3, "end": 2}]),
     r"loops\[0\]\.end: must be after start \(3 s\), got 2 s"),
    ("loop-starts-after-the-scene", _scene(loops=[{"start": 5}]),
     r"loops\[0\]\.end: must be after start \(5 s\), got 4 s"),
    ("fade-in-too-long", _scene(loops=[{"fade_in": 4.5}]),
     r"loops\[0\]\.fade_in: fade_in \+ fade_out \(4\.5 s\) is longer than the loop plays \(4 s\)"),
    ("fades-just-fit", _scene(loops=[{"start": 1, "fade_in": 2, "fade_out": 1.5}]),
     r"loops\[0\]\.fade_out: fade_in \+ fade_out \(3\.5 s\) is longer than the loop plays \(3 s\)"),
    ("closing-key-holds", _loop(output={"fps": 10}, timeline=[
        {"at": 0, "face": "a"}, {"at": 1, "face": "b"}, {"at": 2, "face": "a", "hold": 0.5}]),
     r"timeline\[2\]\.hold: the keyframe that closes the loop cannot hold \(hold on the first keyframe instead\)"),
    ("hold-past-loop-end", _loop(timeline=[{"at": 0, "face": "a"}, {"at": 2, "face": "b", "hold": 2.5}]),
     r"timeline\[1\]\.hold: must end before the loop closes at 4 s, got 4\.5 s"),
    ("frame-past-loop-end", _loop(timeline=[{"at": 0, "face": "a"}, {"frame": 40, "face": "b"}]),
     r"timeline\[1\]\.frame: must end before the loop closes at 4 s, got 4 s"),
    ("walk-on-some-layers-is-no-path", {"output": {"duration": 2}, "walks": [{"layers": "coarse"}]},
     r"timeline: the scene has no path: give a timeline of keyframes or a walk over all layers"),
    ("add-walk-is-no-path", {"output": {"duration": 2}, "walks": [{"mode": "add"}]},
     r"timeline: the scene has no path"),
    ("unknown-face-in-blend", _scene(faces={"a": {"seed": 1}, "b": {"blend": ["a", "q"]}}),
     r"faces\.b\.blend\[1\]: unknown face 'q'"),
    ("unknown-face-in-analogy", _scene(faces={"a": {"seed": 1}, "b": {"analogy": {"a": "a", "b": "a", "c": "k"}}}),
     r"faces\.b\.analogy\.c: unknown face 'k'"),
    ("unknown-face-in-mix", _scene(faces={"a": {"seed": 1}, "b": {"mix": [{"face": "a"}, {"face": "x"}]}}),
     r"faces\.b\.mix\[1\]\.face: unknown face 'x'"),
    ("self-reference", _scene(faces={"a": {"seed": 1}, "b": {"average": ["b", "a"]}}),
     r"faces\.b: faces refer to each other in a cycle: b -> b"),
    ("loop-direction-missing", _scene(loops=[{"direction": "nope.npy"}]),
     r"loops\[0\]\.direction: direction file not found: 'nope\.npy'"),
    # --- schema value parsers ---
    ("layer-range-backwards", _scene(loops=[{"layers": [4, 2]}]),
     r"loops\[0\]\.layers: a layer range \[start, stop\) needs 0 <= start < stop, got \[4, 2\]"),
    ("layer-range-empty", _scene(loops=[{"layers": [3, 3]}]),
     r"loops\[0\]\.layers: a layer range \[start, stop\) needs 0 <= start < stop, got \[3, 3\]"),
    ("size-too-small", _scene(output={"duration": 4, "size": [6, 64]}),
     r"output\.size: 6x64 is out of range \(8\.\.16384 per side\)"),
    ("size-too-large", _scene(output={"duration": 4, "size": 16386}),
     r"output\.size: 16386x16386 is out of range \(8\.\.16384 per side\)"),
    ("size-odd-height", _scene(output={"duration": 4, "size": [64, 63]}),
     r"output\.size: 64x63 is odd: every output needs an even width and height \(4:2:0 video encoders refuse "
     r"odd sizes\)"),
    ("size-not-a-size", _scene(output={"duration": 4, "size": "big"}),
     r"output\.size: must be a size in pixels \(512\) or \[width, height\], got 'big'"),
    ("average-weight-not-a-number", _scene(faces={"a": {"seed": 1}, "b": {"average": {"a": "x"}}}),
     r"faces\.b\.average: weight of 'a' must be a number, got 'x'"),
    ("average-weights-sum-to-zero", _scene(faces={"a": {"seed": 1}, "c": {"seed": 3},
                                                  "b": {"average": {"a": 1, "c": -1}}}),
     r"faces\.b\.average: weights must not sum to zero"),
    ("average-not-names", _scene(faces={"a": {"seed": 1}, "b": {"average": 3}}),
     r"faces\.b\.average: must be a list of face names or a mapping face -> weight, got 3"),
    ("psi-out-of-range", _scene(truncation=2.5), r"truncation\.psi: psi must be between -1 and 2, got 2\.5"),
    ("psi-below-range", _scene(truncation={"psi": -1.5}), r"truncation\.psi: psi must be between -1 and 2, got -1\.5"),
    ("psi-unknown-group", _scene(truncation={"psi": {"coarse": 0.5, "face": 1}}),
     r"truncation\.psi: unknown layer group 'face' \(groups: coarse, middle, fine\)"),
    ("psi-group-out-of-range", _scene(truncation={"psi": {"fine": 3}}),
     r"truncation\.psi: psi of fine must be a number between -1 and 2, got 3"),
    ("psi-not-a-number", _scene(truncation={"psi": "half"}),
     r"truncation\.psi: must be a number or \{coarse: \.\., middle: \.\., fine: \.\.\}, got 'half'"),
    ("option-of-another-kind", _scene(faces={"a": {"seed": 1, "t": 0.5}, "b": {"seed": 2}}),
     r"faces\.a: 't' does not apply to a seed face"),
    ("align-on-a-seed-face", _scene(faces={"a": {"seed": 1, "align": False}, "b": {"seed": 2}}),
     r"faces\.a: 'align' does not apply to a seed face"),
    ("at-and-frame", _scene(timeline=[{"at": 0, "frame": 0, "face": "a"}]),
     r"timeline\[0\]: give exactly one of 'at' \(seconds\) or 'frame' \(got both\)"),
    ("not-a-mapping-value", _scene(output=[1, 2]), r"output: must be a mapping of keys, got \[1, 2\]"),
]


@pytest.mark.parametrize("spec, expected", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule_reports_its_field_and_problem(tmp_path: Path, spec: dict, expected: str) -> None:
    np.save(tmp_path / "d.npy", np.ones(16, np.float32))
    with pytest.raises(SceneError) as info:
        morphstudio.load_scene(spec, latent_space=SPACE, base_dir=tmp_path).latents([0])
    message = str(info.value)
    assert re.match(expected, message), f"{message!r} does not start with {expected!r}"


def test_unknown_face_without_faces_hints_how_to_define_one() -> None:
    with pytest.raises(SceneError) as info:
        morphstudio.load_scene({"output": {"duration": 1}, "timeline": [{"at": 0, "face": "a"}]})
    assert info.value.hint == "define faces under faces: (e.g. faces: {alice: {seed: 1}})"


def test_a_folder_where_a_file_belongs(tmp_path: Path) -> None:
    (tmp_path / "lat.npy").mkdir()
    spec = _scene(faces={"a": {"latent": "lat.npy"}, "b": {"seed": 2}})
    with pytest.raises(SceneError, match=r"^faces\.a\.latent: latent file is a folder, not a file: 'lat\.npy'$"):
        morphstudio.load_scene(spec, latent_space=SPACE, base_dir=tmp_path)


def test_the_model_file_is_not_checked_when_overridden(tmp_path: Path) -> None:
    spec = _scene(model="missing.pkl")
    with pytest.raises(SceneError, match=r"^model: model file not found: 'missing\.pkl'"):
        morphstudio.load_scene(spec, base_dir=tmp_path)
    scene = morphstudio.load_scene(spec, base_dir=tmp_path, model="builtin:dcgan-faces64", latent_space=SPACE)
    assert scene.model == "builtin:dcgan-faces64"


# --- timing that the rules derive --------------------------------------------------------------------------------


def test_durations_and_frame_counts() -> None:
    def timing(spec: dict) -> tuple[float, int]:
        scene = morphstudio.load_scene(spec, latent_space=SPACE)
        return scene.duration, scene.frame_count

    # Not looping, no duration: up to the last key (and its hold), both ends rendered: floor(d * fps) + 1 frames.
    assert timing(_scene(output={"fps": 10})) == (2.0, 21)
    assert timing(_scene(output={"fps": 10}, timeline=[{"at": 0, "face": "a"}, {"at": 2, "face": "b", "hold": 1}])) \
        == (3.0, 31)
    # An explicit duration: round(d * fps) frames.
    assert timing(_scene(output={"fps": 10, "duration": 2.5})) == (2.5, 25)
    # Looping with a closing key: the loop lasts from the first key to the closing one; frame N would be frame 0.
    closing = _loop(output={"fps": 10}, timeline=[{"at": 0.5, "face": "a"}, {"at": 1.5, "face": "b"},
                                                  {"at": 3.5, "face": "a"}])
    assert timing(closing) == (3.0, 30)
    # A walk loop alone: its period.
    assert timing({"loop": True, "output": {"fps": 10}, "walks": [{"period": 6}]}) == (6.0, 60)


def test_loop_frames_are_spread_over_the_period() -> None:
    # 4 s at 10 fps loop: frame k is at 0.4 k s... the closing key is excluded, frame 40 = frame 0.
    spec = _loop(output={"fps": 10}, timeline=[{"at": 0, "face": "a"}, {"at": 2, "face": "b"},
                                               {"at": 4, "face": "a"}])
    scene = morphstudio.load_scene(spec, latent_space=SPACE)
    faces = scene.timeline().face_values
    ws = scene.latents([0, 20, 40])
    np.testing.assert_array_equal(ws[1], faces["b"].astype(np.float32))
    np.testing.assert_array_equal(ws[2], ws[0])


# --- model-time checks (timeline and faces) ------------------------------------------------------------------------


def _model_error(tmp_path: Path, spec: dict, space: Any = SPACE) -> str:
    with pytest.raises(SceneError) as info:
        morphstudio.load_scene(spec, latent_space=space, base_dir=tmp_path).latents([0])
    return str(info.value)


def test_direction_files(tmp_path: Path) -> None:
    np.save(tmp_path / "zero.npy", np.zeros(16, np.float32))
    np.save(tmp_path / "nan.npy", np.full(16, np.nan, np.float32))
    np.savez(tmp_path / "two.npz", a=np.ones(16), b=np.ones(16))
    np.savez(tmp_path / "named.npz", a=np.zeros(16), direction=np.ones(16))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    assert _model_error(tmp_path, _scene(loops=[{"direction": "zero.npy"}])) == \
        "loops[0].direction: 'zero.npy' is zero: a direction needs a length"
    assert _model_error(tmp_path, _scene(attributes={"s": {"direction": "nan.npy"}})) == \
        "attributes.s.direction: 'nan.npy' contains NaN or infinite values"
    assert _model_error(tmp_path, _scene(loops=[{"direction": "two.npz"}])) == \
        "loops[0].direction: 'two.npz' holds several arrays (a, b); save the direction alone or as 'direction'"
    assert _model_error(tmp_path, _scene(loops=[{"direction": "junk.npy"}])) == \
        "loops[0].direction: 'junk.npy' is not an .npy or .npz file"
    # A named 'direction' array is taken: it moves the latents.
    scene = morphstudio.load_scene(_scene(attributes={"s": {"direction": "named.npz", "strength": 1}}),
                                   latent_space=SPACE, base_dir=tmp_path)
    plain = morphstudio.load_scene(_scene(), latent_space=SPACE).latents([0])
    moved = scene.latents([0]).astype(np.float64) - plain
    np.testing.assert_allclose(moved[0], np.full((10, 16), scene.timeline().latent_std / 4), rtol=1e-5)


def test_latent_file_rules(tmp_path: Path) -> None:
    np.save(tmp_path / "nan.npy", np.full(16, np.nan, np.float32))
    np.save(tmp_path / "batch.npy", np.zeros((3, 16), np.float32))
    np.save(tmp_path / "single.npy", np.zeros(16, np.float32))
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    np.save(tmp_path / "z8.npy", np.zeros(16, np.float32))
    np.savez(tmp_path / "two.npz", p=np.zeros(16), q=np.zeros(16))

    def err(face: dict) -> str:
        return _model_error(tmp_path, _scene(faces={"a": face, "b": {"seed": 2}}))

    assert err({"latent": "nan.npy"}) == "faces.a.latent: 'nan.npy' contains NaN or infinite values"
    assert err({"latent": "batch.npy", "index": 3}) == \
        "faces.a.index: index 3 is out of range: 'batch.npy' holds 3 latents"
    assert err({"latent": "single.npy", "index": 0}) == \
        "faces.a.index: 'single.npy' holds a single latent [16]; remove index:"
    assert err({"latent": "text.npy"}).startswith("faces.a.latent: 'text.npy' does not hold numbers (dtype")
    assert err({"latent": "two.npz"}) == "faces.a.latent: 'two.npz' holds several arrays (p, q): say which with key:"
    wide = fake_latent_space(w_dim=16, z_dim=8)
    assert _model_error(tmp_path, _scene(faces={"a": {"latent": "z8.npy", "space": "z"}, "b": {"seed": 2}}),
                        wide) == "faces.a.latent: 'z8.npy' has shape [16]; z must be [8]"
    # Row 2 of a batch is taken with index: 2.
    rows = np.arange(48, dtype=np.float32).reshape(3, 16)
    np.save(tmp_path / "rows.npy", rows)
    scene = morphstudio.load_scene(_scene(faces={"a": {"latent": "rows.npy", "index": 2}, "b": {"seed": 2}}),
                                   latent_space=SPACE, base_dir=tmp_path)
    np.testing.assert_array_equal(scene.latents([0])[0], np.tile(rows[2], (10, 1)))


def test_layer_groups_and_ranges(tmp_path: Path) -> None:
    small = fake_latent_space(num_ws=2)  # resolutions 4, 4: only coarse layers
    assert _model_error(tmp_path, _scene(loops=[{"layers": "fine"}]), small) == \
        "loops[0].layers: this model has no fine layers (its latents drive resolutions 4, 4)"
    assert _model_error(tmp_path, _scene(walks=[{"layers": [9, 11]}])) == \
        "walks[0].layers: layer range [9, 11) is out of range: this model has 10 latents (0..9)"
    # [0, 10) is every layer: valid.
    morphstudio.load_scene(_scene(loops=[{"layers": [0, 10]}]), latent_space=SPACE).latents([0])
    np.save(tmp_path / "d.npy", np.ones(16))
    assert _model_error(tmp_path, _scene(attributes={"s": {"direction": "d.npy", "layers": [0, 1]}}), DCGAN) == \
        "attributes.s.layers: layers [0, 1) cannot be used with this dcgan model: it has a single latent " \
        "(num_ws = 1), so there are no layers to choose; use a StyleGAN checkpoint (e.g. --model " \
        "path/to/stylegan2.pkl)"


def test_layer_groups_follow_the_resolutions() -> None:
    # coarse <= 8 px, middle 16-32 px, fine >= 64 px: on the fake StyleGAN (4,4,8,8,16,16,32,32,64,64)
    # a loop on "middle" moves latents 4-7 only.
    plain = morphstudio.load_scene(_scene(), latent_space=SPACE).latents([5])
    for group, rows in (("coarse", [0, 1, 2, 3]), ("middle", [4, 5, 6, 7]), ("fine", [8, 9])):
        moved = morphstudio.load_scene(_scene(loops=[{"layers": group, "period": 4}]),
                                       latent_space=SPACE).latents([5])
        changed = np.flatnonzero(np.abs(moved - plain)[0].max(axis=-1) > 0)
        assert changed.tolist() == rows, group


def test_value_keys_in_a_loop(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", np.ones(16, np.float32))
    late = _loop(attributes={"s": {"direction": "d.npy", "keys": [{"at": 0, "value": 0}, {"at": 4, "value": 1}]}})
    assert _model_error(tmp_path, late) == \
        "attributes.s.keys[1]: must be before the loop closes at 4 s (or equal the first key there), got 4 s"
    late_psi = _loop(truncation={"keys": [{"at": 0, "psi": 1}, {"at": 5, "psi": 0.5}]})
    assert _model_error(tmp_path, late_psi) == \
        "truncation.keys[1]: must be before the loop closes at 4 s (or equal the first key there), got 5 s"
    # An explicit closing key equal to the first is accepted and changes nothing.
    closing = _loop(attributes={"s": {"direction": "d.npy", "keys": [
        {"at": 0, "value": 0}, {"at": 2, "value": 1}, {"at": 4, "value": 0}]}})
    open_ = _loop(attributes={"s": {"direction": "d.npy", "keys": [{"at": 0, "value": 0}, {"at": 2, "value": 1}]}})
    a = morphstudio.load_scene(closing, latent_space=SPACE, base_dir=tmp_path).latents(range(40))
    b = morphstudio.load_scene(open_, latent_space=SPACE, base_dir=tmp_path).latents(range(40))
    np.testing.assert_array_equal(a, b)


def test_stagger_that_ends_after_the_loop_closes(tmp_path: Path) -> None:
    spec = _loop(timeline=[{"at": 0, "face": "a"}, {"at": 3, "face": "b", "stagger": {"fine": 1.2}}])
    assert _model_error(tmp_path, spec) == \
        "timeline[1]: with the stagger, the fine layers would end at 4.2 s, after the loop closes at 4 s"


# --- the YAML reader ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("base: &b {fps: 10}\noutput:\n  <<: *b\n", r":3: .*merge"),  # PyYAML refuses the merge tag first
        ("? [a, b]\n: 1\n", r":1: mapping keys must be plain names"),
        ("output: {fps: 10,\nfaces: {}\n", r":1: YAML syntax error: "),
        ("faces:\n  a: {seed: 1}\n  a: {seed: 2}\n",
         r":3: faces\.a: duplicate key 'a' \(first given on line 2\)"),
    ],
    ids=["merge-key", "list-key", "unclosed-bracket", "duplicate-nested"],
)
def test_yaml_reader_rules(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SceneError) as info:
        morphstudio.load_scene(path, latent_space=SPACE)
    assert re.match(re.escape(str(path)) + expected, str(info.value)), str(info.value)


def test_scene_path_problems(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(SceneError, match=r"dir\.yaml: is a folder, not a scene file$"):
        morphstudio.load_scene(tmp_path / "dir.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"model: caf\xe9\n")
    with pytest.raises(SceneError, match=r"latin1\.yaml: not a UTF-8 text file \(invalid continuation byte at "
                                         r"byte 10\)$"):
        morphstudio.load_scene(tmp_path / "latin1.yaml")


def test_lines_point_at_the_field_or_its_parent(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("output:\n  fps: 10\n  duration: 4\nfaces:\n  a: {seed: 1}\ntimeline:\n  - {at: 0, face: a}\n"
                    "  - {at: 2}\n")
    with pytest.raises(SceneError) as info:
        morphstudio.load_scene(path, latent_space=SPACE)
    # The missing key has no line of its own: the item that lacks it (line 8) is named.
    assert str(info.value) == f"{path}:8: timeline[1].face: required key is missing"


# --- details of the messages and of timing that the mutation run showed untested ------------------------------------


def test_unknown_key_in_a_list_item_lists_the_allowed_keys() -> None:
    spec = _scene(timeline=[{"at": 0, "face": "a", "hodl": 1}])
    with pytest.raises(SceneError, match=r"^timeline\[0\]\.hodl: unknown key 'hodl' \(did you mean 'hold'\?\); "
                                         r"allowed: at, frame, face, hold, interp, ease, stagger$"):
        morphstudio.load_scene(spec, latent_space=SPACE)


def test_long_bad_values_are_shortened_to_60_characters() -> None:
    value = "x" * 100
    with pytest.raises(SceneError) as info:
        morphstudio.load_scene(_scene(output={"duration": 4, "fps": value}), latent_space=SPACE)
    # repr is 102 characters: the first 57, then "...".
    assert str(info.value) == "output.fps: must be a valid number, got '" + "x" * 56 + "..."
    with pytest.raises(SceneError) as info:
        morphstudio.load_scene(_scene(output={"duration": 4, "fps": "x" * 58}), latent_space=SPACE)
    assert str(info.value).endswith("got '" + "x" * 58 + "'")  # exactly 60: kept whole


def test_the_hint_lists_at_most_five_more_problems() -> None:
    faces = {f"f{i}": {"seed": -1} for i in range(8)}
    with pytest.raises(SceneError) as info:
        morphstudio.load_scene(_scene(faces=faces), latent_space=SPACE)
    hint = info.value.hint or ""
    assert hint.startswith("7 more problem(s): faces.f1.seed: must be greater than or equal to 0, got -1; ")
    assert hint.count("faces.f") == 5 and "faces.f5.seed" in hint and "faces.f6" not in hint


def test_sizes_at_the_limits_are_accepted() -> None:
    for size, expected in ((8, (8, 8)), ([16384, 8], (16384, 8)), ([640, 360], (640, 360))):
        scene = morphstudio.load_scene(_scene(output={"duration": 4, "size": size}), latent_space=SPACE)
        assert scene.output.size == expected


def test_one_frame_scenes_and_two_key_loops() -> None:
    one = morphstudio.load_scene(_scene(output={"fps": 10, "duration": 0.1}), latent_space=SPACE)
    assert one.frame_count == 1
    # A loop of two keys on the same face closes at the second: 2 s, 20 frames.
    loop = morphstudio.load_scene(_loop(output={"fps": 10}, timeline=[{"at": 0, "face": "a", "hold": 1},
                                                                      {"at": 2, "face": "a"}]), latent_space=SPACE)
    assert (loop.duration, loop.frame_count) == (2.0, 20)
    # A closing key that matches an explicit duration is accepted (not "after the loop closes").
    explicit = morphstudio.load_scene(_loop(timeline=[{"at": 0, "face": "a"}, {"at": 2, "face": "b"},
                                                      {"at": 4, "face": "a"}]), latent_space=SPACE)
    assert explicit.frame_count == 40


def test_yaml_error_names_the_context_and_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("faces: {a: {seed: 1}\ntimeline: []\n")
    with pytest.raises(SceneError) as info:
        morphstudio.load_scene(path)
    assert str(info.value) == (f"{path}:2: YAML syntax error: while parsing a flow mapping, expected ',' or '}}', "
                               "but got '<scalar>'")


def test_latent_file_details(tmp_path: Path) -> None:
    w = np.arange(16, dtype=np.float32)
    np.savez(tmp_path / "mine.npz", my_latent=w)  # one array, any name: taken
    scene = morphstudio.load_scene(_scene(faces={"a": {"latent": "mine.npz"}, "b": {"seed": 2}}),
                                   latent_space=SPACE, base_dir=tmp_path)
    np.testing.assert_array_equal(scene.latents([0])[0], np.tile(w, (10, 1)))
    # A [z_dim] file on a model whose z_dim differs from w_dim is read as z (mapped), without space: z.
    wide = fake_latent_space(w_dim=16, z_dim=8)
    z = np.linspace(-1, 1, 8)
    np.save(tmp_path / "z.npy", z)
    scene = morphstudio.load_scene(_scene(faces={"a": {"latent": "z.npy"}, "b": {"seed": 2}}),
                                   latent_space=wide, base_dir=tmp_path)
    np.testing.assert_allclose(scene.latents([0])[0], wide.map_z(z[None])[0], rtol=1e-6)
