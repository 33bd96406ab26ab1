"""Directions for a latent range (``directions fit --layers A:B``), fitted from a ``csv:`` of labels for seeds, and a
render's resume fingerprint covering directions named from the library (issue 11's loose ends)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest
from test_output_safety import cli
from test_render_tinygen import decode

from morphstudio.edit import directions as dirs
from morphstudio.edit.fit import MIX_OFFSET, FitError, sample_labels
from morphstudio.latent import z_from_seed
from tests.tiny import write_tiny_rosinality

BRIGHTNESS = '''
import numpy as np

def brightness(images):
    return images.reshape(len(images), -1).mean(1)
'''


@pytest.fixture()
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 32 px StyleGAN2 (8 latents) as a rosinality checkpoint, and a ``brightmod:brightness`` labeller."""
    path = tmp_path / "tiny.pt"
    write_tiny_rosinality(path, seed=5)
    (tmp_path / "brightmod.py").write_text(BRIGHTNESS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MORPHSTUDIO_HOME", str(tmp_path / "home"))
    return path


def _generator(path: Path):  # noqa: ANN202
    from morphstudio.generators.loading import load_generator

    return load_generator(str(path), device="cpu")


def test_layer_range_samples_mix_two_seeds(tiny: Path) -> None:
    from morphstudio.edit.labels import get_labeller

    gen = _generator(tiny)
    ws, y, skipped = sample_labels(gen, get_labeller("brightmod:brightness"), 3, seed=10, layers=(2, 4))
    assert ws.shape == (3, 8, 32) and skipped == 0
    space = gen.latent_space()
    own = space.map_z(np.stack([z_from_seed(s, 32) for s in (10, 11, 12)]))
    other = space.map_z(np.stack([z_from_seed(s + MIX_OFFSET, 32) for s in (10, 11, 12)]))
    np.testing.assert_allclose(ws[:, 2:4], own[:, 2:4], atol=1e-5)   # the range: the seed's own latents
    np.testing.assert_allclose(ws[:, :2], other[:, :2], atol=1e-5)   # elsewhere another face's
    np.testing.assert_allclose(ws[:, 4:], other[:, 4:], atol=1e-5)
    with pytest.raises(FitError, match="0 <= START < STOP <= 8"):
        sample_labels(gen, get_labeller("brightmod:brightness"), 3, layers=(4, 9))


def test_fit_for_a_layer_range_is_applied_only_there(tiny: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    import morphstudio
    import torch

    from morphstudio.generators.base import to_uint8

    out = tmp_path / "bright.npz"
    rc, text, err = cli(capsys, "directions", "fit", "--model", str(tiny), "--labeller", "brightmod:brightness",
                        "--label", "brightness", "-n", "60", "--layers", "2:4", "-o", str(out))
    assert rc == 0, err
    d = dirs.load(out)
    assert d.provenance["layers"] == [2, 4] and d.provenance["mixed_seed_offset"] == MIX_OFFSET
    assert d.provenance["n_samples"] == 60 and d.provenance["seeds"] == [0, 60]

    # A scene track moves only latents 2 and 3, by strength x scale along the unit direction.
    spec = {"model": str(tiny), "output": {"fps": 10, "duration": 1}, "faces": {"a": {"seed": 7}},
            "timeline": [{"at": 0, "face": "a"}],
            "attributes": {"b": {"direction": str(out), "strength": 1.5}}}
    scene = morphstudio.load_scene(spec, base_dir=tmp_path)
    gen = _generator(tiny)
    face = gen.latent_space().map_z(z_from_seed(7, 32)[None])[0].astype(np.float64)
    moved = scene.latents([0])[0].astype(np.float64)
    n = d.unit.reshape(-1)
    np.testing.assert_allclose(moved[[0, 1, 4, 5, 6, 7]], face[[0, 1, 4, 5, 6, 7]], atol=1e-6)
    np.testing.assert_allclose(moved[2:4] - face[2:4], np.tile(1.5 * d.provenance["scale"] * n, (2, 1)), atol=1e-4)

    # edit --attr (set semantics): latents 2 and 3 go to signed distance 1 from the boundary, the rest stay.
    png = tmp_path / "edit.png"
    rc, _, err = cli(capsys, "edit", "--model", str(tiny), "--seed", "7", "--attr", f"{out}=1", "-o", str(png),
                     "--guard", "off")
    assert rc == 0, err
    want = face.copy()
    for r in (2, 3):
        want[r] += (1.0 * d.provenance["scale"] - (want[r] @ n + d.provenance["intercept"])) * n
    with torch.no_grad():
        expect = to_uint8(gen.synthesis(torch.from_numpy(want[None]).float(), noise_mode="const")).numpy()[0]
    from PIL import Image

    got = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert np.abs(got - expect.astype(int)).max() <= 1
    with torch.no_grad():
        plain = to_uint8(gen.synthesis(torch.from_numpy(face[None]).float(), noise_mode="const")).numpy()[0]
    assert np.abs(got - plain.astype(int)).max() > 5  # the edit did something visible


def test_layer_range_outside_the_model_is_one_error_line(tiny: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    rc, _, err = cli(capsys, "directions", "fit", "--model", str(tiny), "--labeller", "brightmod:brightness",
                     "--label", "brightness", "-n", "20", "--layers", "6:12", "-o", str(tmp_path / "x.npz"))
    assert rc == 2 and err.strip().count("\n") == 0 and "6:12" in err and "8 latents" in err
    rc, _, err = cli(capsys, "directions", "fit", "--model", str(tiny), "--labeller", "brightmod:brightness",
                     "--label", "brightness", "--layers", "two", "-o", str(tmp_path / "x.npz"))
    assert rc == 2 and "START:STOP" in err
    assert not (tmp_path / "x.npz").exists()


def test_fit_from_a_csv_of_labels_for_seeds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # The built-in DCGAN has w = z: a label that is a known linear function of z(seed) plus a little noise must
    # come back as its direction; empty cells are skipped and counted.
    rng = np.random.RandomState(3)
    v = rng.randn(100)
    v /= np.linalg.norm(v)
    seeds = np.arange(500, 900)
    rows = ["seed,tilt,other"]
    for s in seeds:
        tilt = float(z_from_seed(int(s), 100) @ v) * 3.0 + 10.0 + 0.1 * rng.randn()
        rows.append(f"{s},{'' if s % 40 == 0 else f'{tilt:.6f}'},1")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "tilt.npz"
    rc, text, err = cli(capsys, "directions", "fit", "--labeller", f"csv:{tmp_path / 'labels.csv'}",
                        "--label", "tilt", "-o", str(out))
    assert rc == 0, err
    assert "390 seeds labelled" in text and "10 with an empty cell skipped" in text
    d = dirs.load(out)
    assert float(d.unit.reshape(-1) @ v) >= 0.95
    assert d.provenance["n_samples"] == 390 and d.provenance["n_skipped"] == 10
    assert d.provenance["seeds"] == [500, 900] and d.provenance["label_source"] == f"csv:{tmp_path / 'labels.csv'}"
    # Strength 1 is one label std: 3 latent units of z per 3 label units, so scale ~ the label's std / 3.
    assert d.provenance["scale"] == pytest.approx(d.provenance["label_std"] / 3.0, rel=0.05)

    rc, _, err = cli(capsys, "directions", "fit", "--labeller", f"csv:{tmp_path / 'labels.csv'}",
                     "--label", "age", "-o", str(tmp_path / "y.npz"))
    assert rc == 2 and "no label 'age'" in err and "tilt, other" in err


def test_csv_labels_cannot_be_fitted_for_a_layer_range(tiny: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "l.csv").write_text("seed,x\n1,0.5\n2,0.7\n")
    rc, _, err = cli(capsys, "directions", "fit", "--model", str(tiny), "--labeller", f"csv:{tmp_path / 'l.csv'}",
                     "--label", "x", "--layers", "0:2", "-o", str(tmp_path / "x.npz"))
    assert rc == 2 and "--layers 0:2" in err and "csv" in err


# --- resume and the direction library --------------------------------------------------------------------------

SCENE = (
    "model: builtin:dcgan-faces64\n"
    "output: {path: out.mkv, codec: ffv1, size: 64, fps: 8, duration: 2, segment_seconds: 1}\n"
    "faces: {a: {seed: 1}, b: {seed: 2}}\n"
    "timeline: [{at: 0, face: a}, {at: 2, face: b}]\n"
    "attributes: {look: {direction: mine, strength: 2}}\n"
)


def _library_direction(home: Path, index: int) -> None:
    v = np.zeros(100)
    v[index] = 1.0
    lib = home / "directions" / "dcgan-faces64"
    lib.mkdir(parents=True, exist_ok=True)
    dirs.save(lib / "mine.npz", v, {"scale": 3.0, "semantics": "add"})


def _library_scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A user library (``MORPHSTUDIO_HOME``) holding ``mine`` along latent 0, and the scene that names it."""
    home = tmp_path / "home"
    monkeypatch.setenv("MORPHSTUDIO_HOME", str(home))
    scene = tmp_path / "scene.yaml"
    scene.write_text(SCENE)
    _library_direction(home, 0)
    return home, scene


def test_changing_a_library_direction_makes_resume_render_again(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import imageio_ffmpeg

    from morphstudio.sinks.segmented import parts_dir_for

    home, scene = _library_scene(tmp_path, monkeypatch)
    assert cli(capsys, "render", str(scene), "-o", str(tmp_path / "first.mkv"), "-q")[0] == 0
    first = decode(tmp_path / "first.mkv")[1]

    # Every segment is committed, then the join fails: the parts folder stays for --resume.
    exe = tmp_path / "fake-ffmpeg"
    exe.write_text(f'#!/bin/sh\ncase "$*" in *concat*) echo "concat: power cut" >&2; exit 1;; esac\n'
                   f'exec "{imageio_ffmpeg.get_ffmpeg_exe()}" "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("MORPHSTUDIO_FFMPEG", str(exe))
    rc, _, err = cli(capsys, "render", str(scene), "-q")
    assert rc == 2 and "power cut" in err
    monkeypatch.delenv("MORPHSTUDIO_FFMPEG")
    parts = parts_dir_for(tmp_path / "out.mkv")
    assert json.loads((parts / "manifest.json").read_text())["segments"]

    # The user refits `mine` (same name, another direction): the old segments must not be reused.
    _library_direction(home, 1)
    rc, _, err = cli(capsys, "render", str(scene), "--resume", "-q")
    assert rc == 0, err
    resumed = decode(tmp_path / "out.mkv")[1]
    assert cli(capsys, "render", str(scene), "-o", str(tmp_path / "fresh.mkv"), "-q")[0] == 0
    fresh = decode(tmp_path / "fresh.mkv")[1]
    assert np.abs(first.astype(int) - fresh.astype(int)).max() > 10  # the two directions look different
    np.testing.assert_array_equal(resumed, fresh)


def test_the_scene_fingerprint_covers_a_direction_named_from_the_library(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Each segment's latents digest would also catch the change; the fingerprint says it up front (the whole
    # parts folder is stale), and covers what the digest's sampled frames might miss.
    import morphstudio

    home, scene = _library_scene(tmp_path, monkeypatch)
    first = morphstudio.load_scene(scene).fingerprint()
    assert morphstudio.load_scene(scene).fingerprint() == first
    _library_direction(home, 1)
    assert morphstudio.load_scene(scene).fingerprint() != first


def test_fit_conditioned_on_a_per_latent_reference_file(tiny: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    """``--condition`` with a ``[num_ws, w_dim]`` direction file (the shape most StyleGAN directions have): the
    fitted direction comes out orthogonal to the reference's row the fit is made on (InterFaceGAN's conditional
    boundary), and a reference that does not act on that row is one line."""
    gen = _generator(tiny)
    rng = np.random.RandomState(1)
    rows = ["seed,tilt"] + [f"{s},{rng.randn():.6f}" for s in range(100, 160)]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    ref = rng.randn(gen.num_ws, gen.w_dim)
    dirs.save(tmp_path / "ref.npz", ref, {"scale": 1.0, "semantics": "add"})
    out = tmp_path / "c.npz"
    rc, text, err = cli(capsys, "directions", "fit", "--model", str(tiny), "--labeller", f"csv:{tmp_path / 'l.csv'}",
                        "--label", "tilt", "--condition", str(tmp_path / "ref.npz"), "-o", str(out))
    assert rc == 0, err
    assert "+0.000 after" in text or "-0.000 after" in text
    row0 = ref[0] / np.linalg.norm(ref[0])
    assert abs(float(dirs.load(out).unit.reshape(-1, gen.w_dim)[0] @ row0)) < 1e-6

    dirs.save(tmp_path / "late.npz", ref, {"scale": 1.0, "semantics": "add", "layers": [4, 8]})
    rc, _, err = cli(capsys, "directions", "fit", "--model", str(tiny), "--labeller", f"csv:{tmp_path / 'l.csv'}",
                     "--label", "tilt", "--condition", str(tmp_path / "late.npz"), "-o", str(tmp_path / "d.npz"))
    assert rc == 2 and "does not act on latent 0" in err and "Traceback" not in err
