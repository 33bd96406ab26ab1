"""Outputs never destroy what morphstudio did not create (issue 7, item 1).

Each case runs the real command line, checks the exit status and the one ``error:`` line, and snapshots the
whole test folder (scene, decoy files, inputs) before and after: a refused render must not have touched anything.
The first cases are the issue's repros, literally.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from test_render_tinygen import decode

from morphstudio.cli import main


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root`` (hidden ones too): files by size, mtime and content hash."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = ("dir",)
        for f in filenames:
            p = Path(dirpath, f)
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else "link"
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns, digest)
    return out


def write_scene(folder: Path, output: str, *, name: str = "scene.yaml", extra: str = "") -> Path:
    """A 4-frame scene on the built-in model with ``output: {<output>, ...}``."""
    path = folder / name
    path.write_text(
        "model: builtin:dcgan-faces64\n"
        f"output: {{{output}, size: 32, fps: 4, duration: 1}}\n"
        "faces: {a: {seed: 1}, b: {seed: 2}}\n"
        "timeline: [{at: 0, face: a}, {at: 1, face: b}]\n" + extra
    )
    return path


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def refused(capsys: pytest.CaptureFixture, root: Path, *argv: str) -> str:
    """Run the command, expect exit 2 with one error line, and nothing under ``root`` changed. Returns the line."""
    before = snapshot(root)
    rc, _, err = cli(capsys, *argv)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert snapshot(root) == before
    return lines[0]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """The issue's repro folder: ``photos/me.txt`` beside the scene."""
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "me.txt").write_text("keep\n")
    return tmp_path / "photos"


def test_issue_repro_photos_folder_with_a_video_codec(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                      photos: Path) -> None:
    scene = write_scene(tmp_path, "path: photos, codec: h264")
    msg = refused(capsys, tmp_path, "render", str(scene), "-q")
    assert f"{scene}:2: output.path: '{photos}' has no file extension" in msg
    assert "codec is h264" in msg and "photos.mp4" in msg and "codec png" in msg
    # validate and --dry-run refuse it the same way (they show what the render would do)
    assert refused(capsys, tmp_path, "validate", str(scene)) == msg
    assert refused(capsys, tmp_path, "render", str(scene), "--dry-run") == msg
    assert (photos / "me.txt").read_text() == "keep\n"


def test_photos_folder_as_png_output_is_refused(capsys: pytest.CaptureFixture, tmp_path: Path, photos: Path) -> None:
    scene = write_scene(tmp_path, "path: photos, codec: png")
    msg = refused(capsys, tmp_path, "render", str(scene), "-q")
    assert msg == (f"error: {scene}:2: output.path: {photos} is a folder morphstudio did not write (it holds "
                   "me.txt): png frames go into a new or empty folder, or one an earlier png render wrote")
    assert refused(capsys, tmp_path, "validate", str(scene)) == msg


def test_a_folder_holding_a_photo_input_is_refused(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                   photos: Path) -> None:
    """An image face in photos/ and the output photos/: refused as the input's folder (before any projection)."""
    (photos / "me.txt").unlink()
    (photos / "me.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    scene = write_scene(tmp_path, "path: photos, codec: png").read_text().replace(
        "faces: {a: {seed: 1}", "faces: {a: {image: photos/me.jpg}")
    (tmp_path / "scene.yaml").write_text(scene)
    msg = refused(capsys, tmp_path, "render", str(tmp_path / "scene.yaml"), "-q")
    assert f"output.path: {photos} is a folder that holds the image of faces.a.image (" in msg


@pytest.mark.parametrize("codec", ["h264", "png"])
def test_issue_repro_path_dot(capsys: pytest.CaptureFixture, tmp_path: Path, codec: str) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    scene = write_scene(tmp_path, f"path: ., codec: {codec}")
    msg = refused(capsys, tmp_path, "render", str(scene), "-q")
    if codec == "png":
        assert msg == (f"error: {scene}:2: output.path: {tmp_path} is a folder that holds the scene file ({scene}): "
                       "the output would replace it")
    else:
        assert f"output.path: '{tmp_path}' has no file extension" in msg


@pytest.mark.parametrize("target", [".", ".."])
@pytest.mark.parametrize("codec", ["h264", "png"])
def test_dash_o_dot_and_dot_dot(capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                target: str, codec: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    scene = write_scene(work, "path: out.mkv, codec: ffv1")
    monkeypatch.chdir(work)
    msg = refused(capsys, tmp_path, "render", "scene.yaml", "-o", target, "--codec", codec, "-q")
    where = work if target == "." else tmp_path
    if codec == "png":
        assert msg == (f"error: -o/--output: {where} is a folder that holds the scene file (scene.yaml): the "
                       "output would replace it")
    else:
        assert msg.startswith(f"error: -o/--output: '{target}' has no file extension, so it would be a folder")
    assert scene.read_text().startswith("model:")


def test_dash_o_current_folder_without_inputs_in_it(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The scene lives elsewhere, the current folder is empty: still never the output (nor a parent of it)."""
    scenes, here = tmp_path / "scenes", tmp_path / "here" / "deeper"
    scenes.mkdir()
    here.mkdir(parents=True)
    scene = write_scene(scenes, "path: out.mkv, codec: ffv1")
    monkeypatch.chdir(here)
    msg = refused(capsys, tmp_path, "render", str(scene), "-o", "..", "--codec", "png", "-q")
    assert msg.startswith(f"error: -o/--output: {here.parent} is the current folder or holds it")


def test_issue_repro_audio_is_the_output(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    (tmp_path / "song.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 the user's song")
    scene = write_scene(tmp_path, "path: song.mp4, codec: h264, audio: song.mp4")
    msg = refused(capsys, tmp_path, "render", str(scene), "-q")
    assert msg == (f"error: {scene}:2: output.path: {tmp_path / 'song.mp4'} is the audio file (output.audio): "
                   "refusing to overwrite an input of the render")
    assert refused(capsys, tmp_path, "validate", str(scene)) == msg
    assert refused(capsys, tmp_path, "render", str(scene), "--dry-run") == msg


def test_issue_repro_scene_file_is_the_output(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    scene = write_scene(tmp_path, "path: scene.mkv, codec: ffv1", name="scene.mkv")
    msg = refused(capsys, tmp_path, "render", str(scene), "-q")
    assert msg == (f"error: {scene}:2: output.path: {scene} is the scene file: refusing to overwrite an input "
                   "of the render")
    # the same through -o, and through a symbolic link or a hard link to the scene
    (tmp_path / "link.mkv").symlink_to(scene)
    os.link(scene, tmp_path / "hard.mkv")
    for other in (str(scene), str(tmp_path / "link.mkv"), str(tmp_path / "hard.mkv")):
        msg = refused(capsys, tmp_path, "render", str(scene), "-o", other, "-q")
        assert msg.startswith(f"error: -o/--output: {other} is the scene file: refusing")


def test_latent_and_direction_files_and_the_model_are_inputs(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    lat = tmp_path / "lat"
    lat.mkdir()
    np.save(lat / "w.npy", np.zeros(100, np.float32))
    np.save(tmp_path / "light.npy", np.ones(100, np.float32))
    scene = write_scene(tmp_path, "path: out.mkv, codec: ffv1", extra=(
        "attributes: {light: {direction: light.npy, keys: [{at: 0, value: 0}, {at: 1, value: 1}]}}\n"))
    scene.write_text(scene.read_text().replace("a: {seed: 1}", "a: {latent: lat/w.npy}"))
    msg = refused(capsys, tmp_path, "render", str(scene), "-o", str(lat), "--codec", "png", "-q")
    assert msg == (f"error: -o/--output: {lat} is a folder that holds the latent file of faces.a.latent "
                   f"({lat / 'w.npy'}): the output would replace it")
    msg = refused(capsys, tmp_path, "render", str(scene), "-o", str(tmp_path / "light.npy"), "--codec", "ffv1", "-q")
    assert "is the direction file of attributes.light.direction: refusing to overwrite" in msg
    model = tmp_path / "model.mkv"  # any file given as --model is an input too (refused before it is read)
    model.write_bytes(b"not a checkpoint")
    msg = refused(capsys, tmp_path, "render", str(scene), "--model", str(model), "-o", str(model), "-q")
    assert f"{model} is the model (--model): refusing to overwrite" in msg


def test_video_output_onto_a_folder_is_refused(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    scene = write_scene(tmp_path, "path: out.mkv, codec: ffv1")
    (tmp_path / "v.mkv").mkdir()
    (tmp_path / "v.mkv" / "inside.txt").write_text("x")
    msg = refused(capsys, tmp_path, "render", str(scene), "-o", str(tmp_path / "v.mkv"), "-q")
    assert msg == f"error: -o/--output: {tmp_path / 'v.mkv'} is a folder; give a file name such as " \
                  f"{tmp_path / 'v.mkv' / 'out.mp4'}"


def test_png_folders_new_empty_or_our_own(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """A new folder, an empty one, and one an earlier png render wrote are fine; the moment it holds anything
    else it is the user's and is refused; the decoy folder beside it is never touched."""
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "keep.txt").write_text("mine")
    work = tmp_path / "work"
    work.mkdir()
    scene = write_scene(work, "path: frames, codec: png")
    frames = work / "frames"
    names = [".morphstudio-frames"] + [f"frame_{i:06d}.png" for i in range(4)]
    before = snapshot(decoy)

    rc, out, _ = cli(capsys, "render", str(scene), "-q")  # new folder
    assert rc == 0 and f"wrote {frames}" in out and sorted(os.listdir(frames)) == names
    rc, _, _ = cli(capsys, "render", str(scene), "-q", "--frames", "1:3")  # our own: replaced
    assert rc == 0 and sorted(os.listdir(frames)) == names[:1] + names[2:4]
    for p in frames.iterdir():
        p.unlink()
    rc, _, _ = cli(capsys, "render", str(scene), "-q")  # empty: used
    assert rc == 0 and sorted(os.listdir(frames)) == names

    (frames / "notes.txt").write_text("mine")  # the user put something in it: no longer ours to delete
    msg = refused(capsys, tmp_path, "render", str(scene), "-q")
    assert msg.endswith(f"output.path: {frames} is a folder morphstudio did not write (it holds notes.txt): png "
                        "frames go into a new or empty folder, or one an earlier png render wrote")
    (frames / "notes.txt").unlink()
    (frames / "sub").mkdir()
    assert "(it holds sub/)" in refused(capsys, tmp_path, "render", str(scene), "-q")
    assert snapshot(decoy) == before
    assert sorted(p.name for p in work.iterdir()) == ["frames", "scene.yaml"]  # no lock or temp left behind


def test_frames_folder_gaining_files_during_the_render_keeps_them(tmp_path: Path) -> None:
    """The folder is checked again when the new frames replace it: a file added meanwhile survives."""
    from morphstudio.errors import RenderError
    from morphstudio.sinks.base import StreamInfo
    from morphstudio.sinks.image_folder import ImageFolderSink

    out = tmp_path / "frames"
    first = ImageFolderSink(out)
    first.open(StreamInfo(8, 8, 4.0))
    first.write(0, np.zeros((2, 8, 8, 3), np.uint8))
    first.close()
    second = ImageFolderSink(out)
    second.open(StreamInfo(8, 8, 4.0))
    second.write(0, np.zeros((2, 8, 8, 3), np.uint8))
    (out / "late.txt").write_text("added while rendering")
    with pytest.raises(RenderError, match=r"now holds files morphstudio did not write \(late.txt\)"):
        second.close()
    second.abort()
    assert (out / "late.txt").read_text() == "added while rendering"
    assert sorted(os.listdir(tmp_path)) == ["frames"]


def test_validate_dry_run_and_render_agree_on_the_output(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """An extension that implies another codec is used, with one note, and all three commands say so."""
    scene = write_scene(tmp_path, "path: clip.webm, codec: h264")
    out = tmp_path / "clip.webm"
    note = f"note: {scene}:2: output.path: clip.webm is a .webm file, so the output is vp9 (not codec h264)"
    rc, text, _ = cli(capsys, "validate", str(scene))
    assert rc == 0 and f"output:     {out} [vp9, 32x32 (fill)]" in text and note in text
    rc, text, _ = cli(capsys, "render", str(scene), "--dry-run")
    assert rc == 0 and f"output:    {out} (vp9)" in text and note in text
    assert "[h264" not in text  # the scene's own codec line is not shown beside the plan's
    rc, _, err = cli(capsys, "render", str(scene), "-q")
    assert rc == 0 and note in err
    meta, frames = decode(out)
    assert meta["codec"] == "vp9" and frames.shape == (4, 32, 32, 3)

    rc, text, _ = cli(capsys, "render", str(scene), "-o", str(tmp_path / "a.gif"), "--dry-run")
    assert rc == 0 and f"output:    {tmp_path / 'a.gif'} (gif)" in text
    assert "note: -o/--output: a.gif is a .gif file, so the output is gif (not codec h264)" in text
    rc, text, _ = cli(capsys, "render", str(scene), "-o", str(tmp_path / "f"), "--codec", "png", "--dry-run")
    assert rc == 0 and f"output:    {tmp_path / 'f'} (png)" in text and "note:" not in text


def test_a_still_codec_with_a_video_name(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    scene = write_scene(tmp_path, "path: frames, codec: png")
    rc, _, err = cli(capsys, "render", str(scene), "-o", str(tmp_path / "v.mp4"), "-q")
    assert rc == 0 and "note: -o/--output: v.mp4 is a .mp4 file, so the output is h264 (not codec png)" in err
    meta, frames = decode(tmp_path / "v.mp4")
    assert meta["codec"] == "h264" and frames.shape[0] == 4
    # An explicit --codec is never overridden: a name that cannot hold it is an error
    msg = refused(capsys, tmp_path, "render", str(scene), "-o", str(tmp_path / "w.mp4"), "--codec", "gif", "-q")
    assert "gif video cannot be written to a .mp4 file" in msg
