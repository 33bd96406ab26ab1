"""Verified resume (issue 7, item 3): a committed segment records its frame count and a content hash, and
``--resume`` reuses it only while the file still has that hash.

The issue's repro: 4000 zeroed bytes inside a finished segment were reused, exit 0, "wrote 1800 frames", and the
video decoded to 75 frames. Here the damaged segment is rendered again and the video equals an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import numpy as np
import pytest
from test_output_safety import cli
from test_render_tinygen import TinyGen, decode, tiny_latents

from morphstudio.rendering.renderer import OutputSettings, render_latents
from morphstudio.sinks.segmented import parts_dir_for

SCENE = (
    "model: builtin:dcgan-faces64\n"
    "output: {path: out.mkv, codec: ffv1, size: 64, fps: 8, duration: 4, segment_seconds: 1}\n"
    "faces: {a: {seed: 1}, b: {seed: 2}, c: {seed: 3}}\n"
    "timeline: [{at: 0, face: a}, {at: 2, face: b}, {at: 4, face: c}]\n"
)
FRAMES = 32  # 4 s at 8 fps: 4 segments of 8 frames


def fake_ffmpeg(tmp_path: Path, concat_body: str) -> Path:
    """The real ffmpeg, except for the join (concat) step, which runs ``concat_body``."""
    import imageio_ffmpeg

    exe = tmp_path / "fake-ffmpeg"
    exe.write_text(f'#!/bin/sh\ncase "$*" in *concat*) {concat_body};; esac\n'
                   f'exec "{imageio_ffmpeg.get_ffmpeg_exe()}" "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


def test_issue_repro_zeroed_bytes_in_a_committed_segment(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    scene = tmp_path / "scene.yaml"
    scene.write_text(SCENE)
    rc, _, _ = cli(capsys, "render", str(scene), "-o", str(tmp_path / "ref.mkv"), "-q")
    assert rc == 0
    reference = decode(tmp_path / "ref.mkv")[1]
    assert reference.shape == (FRAMES, 64, 64, 3)

    # Every segment is encoded and committed, then the join fails: the parts folder stays for --resume.
    monkeypatch.setenv("MORPHSTUDIO_FFMPEG", str(fake_ffmpeg(tmp_path, 'echo "concat: power cut" >&2; exit 1')))
    rc, _, err = cli(capsys, "render", str(scene), "-q")
    assert rc == 2 and "power cut" in err
    monkeypatch.delenv("MORPHSTUDIO_FFMPEG")
    out = tmp_path / "out.mkv"
    parts = parts_dir_for(out)
    manifest = json.loads((parts / "manifest.json").read_text())
    segs = sorted(parts.glob("seg_*.mkv"))
    assert [s.name for s in segs] == [f"seg_{a:06d}-{a + 8:06d}.mkv" for a in range(0, FRAMES, 8)]
    for a in range(0, FRAMES, 8):  # the record: frame count and sha256 of the file (computed here independently)
        entry = manifest["segments"][f"{a}-{a + 8}"]
        data = (parts / entry["file"]).read_bytes()
        assert entry["frames"] == 8 and entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)

    victim = parts / "seg_000008-000016.mkv"
    data = bytearray(victim.read_bytes())
    assert len(data) > 3 * 4000
    data[len(data) // 3 : len(data) // 3 + 4000] = bytes(4000)  # same size, damaged content
    victim.write_bytes(bytes(data))

    rc, text, err = cli(capsys, "render", str(scene), "--resume", "-q")
    assert rc == 0, err
    assert ("resume: segment 8..15 (seg_000008-000016.mkv) changed since it was written (its content hash "
            "differs); rendering it again") in err
    assert "3 of 4 segments reused" in text
    frames = decode(out)[1]
    assert frames.shape == reference.shape
    np.testing.assert_array_equal(frames, reference)


@pytest.fixture(scope="module")
def gen() -> TinyGen:
    return TinyGen(resolution=16).eval()


def interrupted_render(gen: TinyGen, out: Path) -> Path:
    fn = tiny_latents(48)

    def dies(frames):
        if max(frames) >= 36:
            raise KeyboardInterrupt
        return fn(frames)

    with pytest.raises(KeyboardInterrupt):
        render_latents(gen, dies, 48, 24.0, batch=4, fingerprint="fp", progress=False,
                       output=OutputSettings(path=str(out), codec="ffv1", fps=24.0, segment_seconds=0.5))
    return parts_dir_for(out)


def resume(gen: TinyGen, out: Path):
    return render_latents(gen, tiny_latents(48), 48, 24.0, batch=4, fingerprint="fp", resume=True, progress=False,
                          log=lambda m: None,
                          output=OutputSettings(path=str(out), codec="ffv1", fps=24.0, segment_seconds=0.5))


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("frames", "records 11 frames, not 12"),
        ("missing", "is missing"),
        ("hash", "changed since it was written"),
        ("truncated", "changed since it was written"),
    ],
)
def test_a_segment_that_does_not_match_its_record_is_rendered_again(gen: TinyGen, tmp_path: Path, damage: str,
                                                                    why: str) -> None:
    out = tmp_path / "out.mkv"
    parts = interrupted_render(gen, out)
    man_path = parts / "manifest.json"
    manifest = json.loads(man_path.read_text())
    assert set(manifest["segments"]) == {"0-12", "12-24", "24-36"}
    seg = parts / manifest["segments"]["12-24"]["file"]
    if damage == "frames":
        manifest["segments"]["12-24"]["frames"] = 11
        man_path.write_text(json.dumps(manifest))
    elif damage == "missing":
        seg.unlink()
    elif damage == "hash":
        manifest["segments"]["12-24"]["sha256"] = "0" * 64
        man_path.write_text(json.dumps(manifest))
    else:
        seg.write_bytes(seg.read_bytes()[:-10])
    res = resume(gen, out)
    assert res.reused_segments == 2
    assert any(n.startswith("resume: segment 12..23 (seg_000012-000024.mkv) ") and why in n for n in res.notes)
    ref = tmp_path / "ref.mkv"
    render_latents(gen, tiny_latents(48), 48, 24.0, batch=4, fingerprint="fp", progress=False,
                   output=OutputSettings(path=str(ref), codec="ffv1", fps=24.0, segment_seconds=0.5))
    np.testing.assert_array_equal(decode(out)[1], decode(ref)[1])


def test_untouched_segments_are_reused_without_notes(gen: TinyGen, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    interrupted_render(gen, out)
    res = resume(gen, out)
    assert res.reused_segments == 3 and not [n for n in res.notes if "rendering it again" in n]
    assert decode(out)[1].shape[0] == 48


def test_a_foreign_folder_where_the_parts_go_is_not_deleted(gen: TinyGen, tmp_path: Path) -> None:
    """The parts folder is deleted only when morphstudio made it (it holds a manifest, or nothing)."""
    from morphstudio.errors import RenderError

    out = tmp_path / "v.mkv"
    foreign = parts_dir_for(out)
    foreign.mkdir()
    (foreign / "mine.txt").write_text("not morphstudio's")
    with pytest.raises(RenderError, match=r"is in the way: morphstudio keeps its segments there, but it is not"):
        render_latents(gen, tiny_latents(48), 48, 24.0, progress=False,
                       output=OutputSettings(path=str(out), codec="ffv1", fps=24.0, segment_seconds=0.5))
    assert (foreign / "mine.txt").read_text() == "not morphstudio's" and not out.exists()
