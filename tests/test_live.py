"""``morphstudio live`` in file mode, headless, on a clip assembled from generated faces.

The clip: a face the built-in model generated, upscaled and pasted onto a noisy background, drifting a few pixels
per frame, with two frames of background only and a tone for audio. Output is ffv1 (lossless RGB), so decoded
frames can be compared with the input bit for bit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import morphstudio
from morphstudio.cli import main
from morphstudio.faces.synthetic import compose_photo, generate_faces
from morphstudio.sinks.base import Sink, StreamInfo
from morphstudio.sinks.ffmpeg import FfmpegSink, ffmpeg_exe

W, H, FPS, N = 320, 240, 25.0, 12
NO_FACE = (4, 5)
FACE_SIDE = 64 * 2.5  # the pasted face's side in pixels


def centre(i: int) -> tuple[float, float]:
    return 150.0 + 2 * i, 120.0 + i


def decode(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return meta, np.stack([np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen])


def make_clip(folder: Path, seed: int = 3, n: int = N, no_face: tuple[int, ...] = NO_FACE,
              two_faces: bool = False) -> tuple[Path, np.ndarray]:
    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    faces, _ = generate_faces(G, [seed, seed + 5], psi=0.7)
    frames = []
    for i in range(n):
        if i in no_face:
            photo, _ = compose_photo(faces[0], scale=2.5, size=(W, H), centre=(-1000, -1000), seed=1)
        elif two_faces:
            bg, _ = compose_photo(faces[1], scale=1.6, size=(W, H), centre=(260, 80), seed=1)
            photo, _ = compose_photo(faces[0], scale=2.2, size=(W, H), centre=(110, 130), background=bg)
        else:
            photo, _ = compose_photo(faces[0], scale=2.5, size=(W, H), centre=centre(i), seed=1)
        frames.append(photo)
    video = folder / "video-only.mkv"
    sink = FfmpegSink(video, "ffv1")
    sink.open(StreamInfo(W, H, FPS))
    sink.write(0, np.stack(frames))
    sink.close()
    clip = folder / "clip.mkv"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(video), "-f", "lavfi",
                    "-i", f"sine=frequency=440:duration={n / FPS}", "-map", "0:v", "-map", "1:a", "-c:v", "copy",
                    "-c:a", "flac", "-shortest", str(clip)], check=True)
    return clip, np.stack(frames)


class FakeCamera:
    """A pyvirtualcam backend (the public ``register_backend`` interface) that keeps what it is sent."""

    received: list[np.ndarray] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any) -> None:
        self.width, self.height = width, height
        FakeCamera.received = []

    def close(self) -> None:
        pass

    def send(self, frame: np.ndarray) -> None:
        FakeCamera.received.append(frame.copy())

    def device(self) -> str:
        return "fake-cam"

    def native_fourcc(self) -> int | None:
        return None


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import pyvirtualcam
    import pyvirtualcam.camera

    folder = tmp_path_factory.mktemp("live")
    clip, frames = make_clip(folder)
    out = folder / "edited.mkv"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pyvirtualcam.camera, "BACKENDS", {})  # only the fake: no real device is tried
        pyvirtualcam.register_backend("morphstudio-fake", FakeCamera)
        rc = main(["live", "--input", str(clip), "-o", str(out), "--codec", "ffv1", "--no-window", "--virtual-cam",
                   "--device", "cpu", "--attr", "scenes/directions/dcgan-light.npy=2"])
    return {"rc": rc, "clip": clip, "frames": frames, "out": out, "received": list(FakeCamera.received),
            "folder": folder}


def test_file_mode_keeps_frame_count_rate_and_audio(live_run: dict[str, Any]) -> None:
    from morphstudio.live.capture import probe_video

    assert live_run["rc"] == 0
    meta, got = decode(live_run["out"])
    assert got.shape == (N, H, W, 3)
    assert meta["fps"] == pytest.approx(FPS)
    assert probe_video(live_run["out"]).has_audio
    assert not list(live_run["folder"].glob(".*partial*"))  # nothing half-written left behind


def test_no_face_frames_pass_through_byte_identical(live_run: dict[str, Any]) -> None:
    _, got = decode(live_run["out"])
    _, src = decode(live_run["clip"])
    np.testing.assert_array_equal(src, live_run["frames"])  # the clip itself is lossless
    for i in NO_FACE:
        np.testing.assert_array_equal(got[i], live_run["frames"][i])


def test_faces_change_inside_the_face_and_nothing_outside(live_run: dict[str, Any]) -> None:
    _, got = decode(live_run["out"])
    yy, xx = np.mgrid[0:H, 0:W]
    for i in range(N):
        if i in NO_FACE:
            continue
        cx, cy = centre(i)
        dist = np.hypot(xx - cx, yy - cy)
        diff = np.abs(got[i].astype(np.int16) - live_run["frames"][i]).sum(-1)
        outside = dist > 0.7 * FACE_SIDE  # well past the pasted face's edge (radius about 0.48 of its side)
        assert diff[outside].max() == 0, f"frame {i} changed outside the face"
        inside = dist < 0.15 * FACE_SIDE  # eyes, nose: the middle of the face
        assert diff[inside].mean() > 6, f"frame {i} is not edited inside the face"


def test_virtual_camera_receives_every_frame(live_run: dict[str, Any]) -> None:
    _, got = decode(live_run["out"])
    assert len(live_run["received"]) == N
    # pyvirtualcam hands backends the frame as a flat buffer of RGB bytes.
    np.testing.assert_array_equal(np.stack(live_run["received"]).reshape(got.shape), got)


class ListSink(Sink):
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.closed = False

    def open(self, info: StreamInfo) -> None:
        self.info = info

    def write(self, first_index: int, frames: np.ndarray) -> None:
        self.frames.extend(f.copy() for f in frames)

    def close(self) -> None:
        self.closed = True


def _pipeline(clip: Path, detector: Any, sink: Sink, **kw: Any) -> Any:
    from morphstudio.faces.align import crop_params_for
    from morphstudio.faces.encoder import resolve_encoder
    from morphstudio.live.capture import FileSource
    from morphstudio.live.edits import LiveEdits
    from morphstudio.live.pipeline import LivePipeline

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    return LivePipeline(FileSource(clip), G, resolve_encoder("auto", G), LiveEdits(), [sink],
                        params=crop_params_for(G), realtime=False, detector=detector, **kw)


def test_the_output_at_frame_t_does_not_change_when_later_landmarks_change(live_run: dict[str, Any]) -> None:
    """End to end through the pipeline's smoothing: the landmarks fed in are the same up to frame 6 and differ
    after it; every output frame up to 6 must be identical (no look-ahead anywhere)."""
    from morphstudio.faces.align import detect_faces

    base = detect_faces(live_run["frames"][0])[0].mesh

    def detector_for(offsets: list[tuple[float, float]]) -> Any:
        calls = iter(offsets)

        def detect(pixels: np.ndarray) -> list[np.ndarray]:
            return [base + np.array(next(calls))]
        return detect

    plain = [(2.0 * i, 1.0 * i) for i in range(N)]
    moved = plain[:7] + [(x + 25, y - 15) for x, y in plain[7:]]
    a, b = ListSink(), ListSink()
    _pipeline(live_run["clip"], detector_for(plain), a, batch=1).run()
    _pipeline(live_run["clip"], detector_for(moved), b, batch=1).run()
    assert len(a.frames) == len(b.frames) == N
    for i in range(7):
        np.testing.assert_array_equal(a.frames[i], b.frames[i])
    assert any(not np.array_equal(a.frames[i], b.frames[i]) for i in range(7, N))


def test_a_face_that_leaves_and_comes_back_starts_fresh(live_run: dict[str, Any]) -> None:
    """After frames without a face the smoothing starts again from the new face, so the frames after the gap
    are the same as if the face had never been elsewhere."""
    from morphstudio.faces.align import detect_faces

    base = detect_faces(live_run["frames"][0])[0].mesh

    def detector_for(offsets: list[tuple[float, float] | None]) -> Any:
        calls = iter(offsets)

        def detect(pixels: np.ndarray) -> list[np.ndarray]:
            off = next(calls)
            return [] if off is None else [base + np.array(off)]
        return detect

    came_back: list[tuple[float, float] | None] = [(2.0 * i, 1.0 * i) for i in range(N)]
    elsewhere = [(-30.0, -20.0)] * 4 + [None, None] + came_back[6:]
    fresh = [None] * 6 + came_back[6:]
    a, b = ListSink(), ListSink()
    _pipeline(live_run["clip"], detector_for(elsewhere), a, batch=1).run()
    _pipeline(live_run["clip"], detector_for(fresh), b, batch=1).run()
    for i in range(6, N):
        np.testing.assert_array_equal(a.frames[i], b.frames[i])


def test_two_faces_edit_the_largest_and_say_so_once(tmp_path: Path) -> None:
    clip, frames = make_clip(tmp_path, n=3, no_face=(), two_faces=True)
    notes: list[str] = []
    sink = ListSink()
    stats = _pipeline(clip, None, sink, say=notes.append).run()
    assert stats.frames_out == 3 and sink.closed
    assert len([n for n in notes if "faces" in n]) == 1 and "largest" in notes[0]
    diff = np.abs(sink.frames[0].astype(np.int16) - frames[0]).sum(-1)
    assert diff[130 - 10:130 + 10, 110 - 10:110 + 10].mean() > 6  # the large face (centre 110, 130) is edited
    assert diff[60:100, 240:280].max() == 0                        # the small one (centre 260, 80) is not


def test_a_stage_failure_leaves_no_recording(tmp_path: Path, live_run: dict[str, Any]) -> None:
    from morphstudio.commands.live import RecordingSink

    out = tmp_path / "rec.mkv"

    def broken(pixels: np.ndarray) -> list[np.ndarray]:
        raise RuntimeError("detector exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        _pipeline(live_run["clip"], broken, RecordingSink(out, "ffv1", None, None)).run()
    assert list(tmp_path.iterdir()) == []


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(args)
    return rc, capsys.readouterr().err


SHIPPED = Path(morphstudio.__file__).parent / "edit" / "builtin" / "dcgan-faces64"


def test_a_named_attr_edits_the_face_as_its_library_file_does(tmp_path: Path) -> None:
    """``--attr smile=3`` is the shipped ``smile.npz`` given by path: the same frames; and the strength matters
    inside the face only (``smile=-3`` differs there, never outside)."""
    clip, frames = make_clip(tmp_path, n=3, no_face=())
    outs = {}
    for key, attr in (("name", "smile=3"), ("path", f"{SHIPPED / 'smile.npz'}=3"), ("frown", "smile=-3")):
        outs[key] = tmp_path / f"{key}.mkv"
        assert main(["live", "--input", str(clip), "-o", str(outs[key]), "--codec", "ffv1", "--no-window", "-q",
                     "--device", "cpu", "--attr", attr]) == 0
    got = {k: decode(v)[1] for k, v in outs.items()}
    np.testing.assert_array_equal(got["name"], got["path"])
    yy, xx = np.mgrid[0:H, 0:W]
    for i in range(3):
        dist = np.hypot(xx - centre(i)[0], yy - centre(i)[1])
        diff = np.abs(got["name"][i].astype(np.int16) - got["frown"][i]).sum(-1)
        assert diff[dist > 0.7 * FACE_SIDE].max() == 0
        assert diff[dist < 0.3 * FACE_SIDE].mean() > 3, f"frame {i}: smile=3 and smile=-3 look the same"


def test_a_named_attr_keeps_its_files_set_semantics() -> None:
    """The shipped smile is a fitted boundary (``set``): whatever face comes in, its signed distance to the
    boundary, (w . n + intercept) / scale with the numbers stored in the file, comes out at the given value."""
    import json

    from morphstudio.live.edits import build_edits

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    edits = build_edits(G, scene=None, attrs=["smile=1.5"], target=None, morph=0.5, model="builtin:dcgan-faces64")
    with np.load(SHIPPED / "smile.npz") as z:
        n = z["direction"].astype(np.float64).reshape(-1)
        prov = json.loads(z["provenance"].tobytes().decode())
    assert prov["semantics"] == "set"
    n /= np.linalg.norm(n)
    ws = np.random.RandomState(0).randn(5, 1, G.w_dim).astype(np.float32) * np.array([0.5, 1, 1.5, 2, 3])[:, None,
                                                                                                          None]
    out = edits.apply(ws, np.zeros(5)).astype(np.float64).reshape(5, -1)
    dist = (out @ n + prov["intercept"]) / prov["scale"]
    np.testing.assert_allclose(dist, 1.5, atol=1e-4)


def test_unknown_and_ambiguous_names_get_one_line(live_run: dict[str, Any], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    clip = str(live_run["clip"])
    rc, err = run_cli(["live", "--input", clip, "-o", str(tmp_path / "o.mkv"), "--no-window", "--attr", "smle=1.5"],
                      capsys)
    assert rc == 2 and "Traceback" not in err
    assert "error: --attr smle: no direction named 'smle' for model 'dcgan-faces64'" in err
    assert "library: age, eyes_open, gender, mouth_open, pitch, smile, yaw" in err
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smile").write_bytes(b"")  # a file in the current folder with a library direction's name
    rc, err = run_cli(["live", "--input", clip, "-o", "o.mkv", "--no-window", "--attr", "smile=1"], capsys)
    assert rc == 2 and "Traceback" not in err
    assert "--attr smile: direction 'smile' is ambiguous" in err and "write ./smile for the file" in err
    assert not (tmp_path / "o.mkv").exists()


@pytest.mark.parametrize("attr, says", [("scenes/directions/nope.npy=1", "direction file not found"),
                                        ("scenes/directions/dcgan-light.npy=lots", "is not a number"),
                                        ("scenes/directions/dcgan-light.npy", "expected NAME=VALUE")])
def test_bad_attr_values_get_one_line(attr: str, says: str, live_run: dict[str, Any], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = run_cli(["live", "--input", str(live_run["clip"]), "-o", str(tmp_path / "o.mkv"), "--no-window",
                       "--attr", attr], capsys)
    assert rc == 2 and says in err and "Traceback" not in err


def test_virtual_cam_without_pyvirtualcam_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails as if it were not installed
    rc, err = run_cli(["live", "--input", str(tmp_path / "none.mkv"), "--no-window", "--virtual-cam"], capsys)
    assert rc == 2
    assert "pyvirtualcam" in err and "pip install 'morphstudio[live]'" in err


def test_nothing_to_do_and_missing_input_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = run_cli(["live", "--input", str(tmp_path / "a.mkv"), "--no-window"], capsys)
    assert rc == 2 and "nothing to show or record" in err
    rc, err = run_cli(["live", "--input", str(tmp_path / "a.mkv"), "--no-window", "-o", str(tmp_path / "b.mkv")],
                      capsys)
    assert rc == 2 and "a.mkv: video file not found" in err


def test_target_spec_forms(tmp_path: Path) -> None:
    from morphstudio.errors import MorphError
    from morphstudio.live.edits import target_face_spec

    lat = tmp_path / "w.npy"
    np.save(lat, np.zeros(100, np.float32))
    assert target_face_spec("anna", {"anna"}) == "anna"
    assert target_face_spec("seed:42", set()) == {"seed": 42}
    assert target_face_spec(str(lat), set()) == {"latent": str(lat.resolve())}
    with pytest.raises(MorphError, match="not a scene face, seed:N"):
        target_face_spec("bob", {"anna"})
    with pytest.raises(MorphError, match="integer seed"):
        target_face_spec("seed:x", set())


def test_real_virtual_camera_device(tmp_path: Path) -> None:
    """On a machine with v4l2loopback, frames reach the real device (skipped only when there is none)."""
    import glob

    loopbacks = [p for p in glob.glob("/sys/devices/virtual/video4linux/video*")
                 if "loopback" in Path(p, "name").read_text(errors="replace").lower()] if sys.platform == "linux" else []
    if not loopbacks:
        pytest.skip("no v4l2loopback device")
    from morphstudio.sinks.virtual_camera import VirtualCameraSink

    sink = VirtualCameraSink(backend="v4l2loopback")
    sink.open(StreamInfo(64, 48, 30.0))
    sink.write(0, np.zeros((3, 48, 64, 3), np.uint8))
    sink.close()
    assert sink.frames_sent == 3


class ScriptedCamera:
    """A camera that delivers ``n`` frames and is then unplugged."""

    live = True
    width, height, fps = W, H, FPS

    def __init__(self, frames: np.ndarray, n: int) -> None:
        self._frames, self._n = frames, n

    def describe(self) -> str:
        return "scripted camera"

    def frames(self, stop: Any) -> Any:
        import time

        from morphstudio.live.capture import CameraLost, Frame

        for i in range(self._n):
            now = time.perf_counter()
            yield Frame(i, self._frames[i], now, i / FPS)
            time.sleep(0.2)  # a camera's pace: the pipeline keeps up, so nothing is dropped
        raise CameraLost(f"camera 0 stopped delivering frames after {self._n} frame(s)")


def _camera_pipeline(source: Any, sinks: list[Sink]) -> Any:
    from morphstudio.faces.align import crop_params_for
    from morphstudio.faces.encoder import resolve_encoder
    from morphstudio.live.edits import LiveEdits
    from morphstudio.live.pipeline import LivePipeline

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    return LivePipeline(source, G, resolve_encoder("auto", G), LiveEdits(), sinks, params=crop_params_for(G),
                        realtime=True, detector=lambda pixels: [])


def test_camera_loss_finalises_the_recording(tmp_path: Path, live_run: dict[str, Any]) -> None:
    from morphstudio.commands.live import RecordingSink

    out = tmp_path / "rec.mkv"
    stats = _camera_pipeline(ScriptedCamera(live_run["frames"], 3), [RecordingSink(out, "ffv1", None, None)]).run()
    assert "stopped delivering frames after 3" in stats.stopped_by
    _, got = decode(out)
    assert stats.frames_out + stats.dropped == 3 and len(got) == stats.frames_out >= 1
    np.testing.assert_array_equal(got, live_run["frames"][[f for f in range(3)][:len(got)]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.mkv"]


def test_ctrl_c_finalises_the_recording(tmp_path: Path, live_run: dict[str, Any]) -> None:
    from morphstudio.commands.live import RecordingSink

    class CtrlCAfter(ListSink):
        def write(self, first_index: int, frames: np.ndarray) -> None:
            if len(self.frames) == 2:
                raise KeyboardInterrupt
            super().write(first_index, frames)

    out = tmp_path / "rec.mkv"
    stats = _camera_pipeline(ScriptedCamera(live_run["frames"], 6), [RecordingSink(out, "ffv1", None, None),
                                                                      CtrlCAfter()]).run()
    assert stats.stopped_by == "Ctrl-C"
    _, got = decode(out)
    assert 2 <= len(got) <= 3  # the frames the recording had taken when Ctrl-C came
    np.testing.assert_array_equal(got, live_run["frames"][:len(got)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.mkv"]


def test_real_time_counts_every_frame_it_did_not_show(live_run: dict[str, Any]) -> None:
    """A camera faster than the generator: frames are dropped at the capture slot (and, without an in-flight limit,
    at the generator's slot),
    and every one is counted (in + nothing lost = out + dropped); what is shown stays in capture order."""
    from morphstudio.faces.align import crop_params_for, detect_faces
    from morphstudio.faces.encoder import resolve_encoder
    from morphstudio.live.capture import Frame
    from morphstudio.live.edits import LiveEdits
    from morphstudio.live.pipeline import LivePipeline

    base = detect_faces(live_run["frames"][0])[0].mesh
    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    enc = resolve_encoder("auto", G)

    class SlowEncoder:
        def encode_uint8(self, crops: np.ndarray) -> np.ndarray:
            import time

            time.sleep(0.08)  # far slower than the camera below
            return enc.encode_uint8(crops)

    class FastCamera(ScriptedCamera):
        def frames(self, stop: Any) -> Any:
            import time

            for i in range(self._n):
                yield Frame(i, self._frames[i % len(self._frames)], time.perf_counter(), i / 200)
                time.sleep(0.005)

    sink = ListSink()
    pipe = LivePipeline(FastCamera(live_run["frames"], 40), G, SlowEncoder(), LiveEdits(), [sink],
                        params=crop_params_for(G), realtime=True, detector=lambda pixels: [base])
    order: list[int] = []
    real_write = sink.write
    sink.write = lambda first, frames: (order.append(first), real_write(first, frames))  # type: ignore[method-assign]
    stats = pipe.run()
    assert stats.frames_in == 40 and stats.dropped > 0
    assert stats.frames_out + stats.dropped == 40
    assert order == sorted(order) and len(set(order)) == len(order)


@pytest.mark.parametrize("in_flight", [1, 2])
def test_real_time_admits_at_most_in_flight_frames_into_the_stages(live_run: dict[str, Any],
                                                                   in_flight: int) -> None:
    """Frames between the align stage taking them and the sinks receiving them never exceed ``in_flight`` (a
    second frame in the stages only competes for the same cores); without a limit they do, on the same run."""
    import threading
    import time

    from morphstudio.faces.align import crop_params_for, detect_faces
    from morphstudio.faces.encoder import resolve_encoder
    from morphstudio.live.capture import Frame
    from morphstudio.live.edits import LiveEdits
    from morphstudio.live.pipeline import LivePipeline

    base = detect_faces(live_run["frames"][0])[0].mesh
    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    enc = resolve_encoder("auto", G)

    def count_inside(limit: int | None) -> int:
        lock = threading.Lock()
        inside = [0, 0]  # now, most

        def detector(pixels: np.ndarray) -> list[np.ndarray]:
            with lock:
                inside[0] += 1
                inside[1] = max(inside[1], inside[0])
            time.sleep(0.02)
            return [base]

        class CountingSink(ListSink):
            def write(self, first: int, frames: np.ndarray) -> None:
                with lock:
                    inside[0] -= len(frames)
                time.sleep(0.03)  # a slow display: the next frames are already in the stages meanwhile
                super().write(first, frames)

        class Camera(ScriptedCamera):
            def frames(self, stop: Any) -> Any:
                for i in range(self._n):
                    yield Frame(i, self._frames[i % len(self._frames)], time.perf_counter(), i / 100)
                    time.sleep(0.01)

        pipe = LivePipeline(Camera(live_run["frames"], 30), G, enc, LiveEdits(), [CountingSink()],
                            params=crop_params_for(G), realtime=True, detector=detector, in_flight=limit)
        stats = pipe.run()
        assert stats.frames_out + stats.dropped == 30 and stats.frames_out > 3
        return inside[1]

    assert count_inside(in_flight) <= in_flight
    assert count_inside(0) > in_flight
    if in_flight == 2:
        assert count_inside(None) == 2  # the documented real-time default (``--in-flight``)


@pytest.mark.parametrize("in_flight", [1, 2])
def test_file_mode_reads_a_frame_only_when_it_may_enter_the_stages(live_run: dict[str, Any], in_flight: int) -> None:
    """With ``in_flight`` in file mode, at most that many frames are between being read from the source and the
    sinks receiving them, so a frame's latency is its own trip, not queueing; every frame still comes out, in order.
    The default (no limit) reads ahead: more frames are inside at once on the same run."""
    import threading
    import time

    from morphstudio.faces.align import crop_params_for, detect_faces
    from morphstudio.faces.encoder import resolve_encoder
    from morphstudio.live.capture import Frame
    from morphstudio.live.edits import LiveEdits
    from morphstudio.live.pipeline import LivePipeline

    base = detect_faces(live_run["frames"][0])[0].mesh
    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    enc = resolve_encoder("auto", G)
    n = 12

    def run(limit: int | None) -> tuple[int, list[int], list[float]]:
        lock = threading.Lock()
        inside = [0, 0]  # now, most

        class File:
            live, realtime = False, False
            width, height, fps = W, H, FPS

            def describe(self) -> str:
                return "file"

            def frames(self, stop: Any) -> Any:
                for i in range(n):
                    with lock:
                        inside[0] += 1
                        inside[1] = max(inside[1], inside[0])
                    yield Frame(i, live_run["frames"][i % len(live_run["frames"])], time.perf_counter(), i / FPS)

        class CountingSink(ListSink):
            def __init__(self) -> None:
                super().__init__()
                self.order: list[int] = []

            def write(self, first: int, frames: np.ndarray) -> None:
                with lock:
                    inside[0] -= len(frames)
                self.order.extend(range(first, first + len(frames)))
                time.sleep(0.03)  # a slow sink: an unlimited reader runs ahead meanwhile
                super().write(first, frames)

        sink = CountingSink()
        pipe = LivePipeline(File(), G, enc, LiveEdits(), [sink], params=crop_params_for(G), realtime=False,
                            detector=lambda pixels: [base], in_flight=limit)
        stats = pipe.run()
        assert stats.frames_in == stats.frames_out == n and stats.dropped == 0
        return inside[1], sink.order, stats.latencies

    most, order, _ = run(in_flight)
    assert most <= in_flight and order == list(range(n))
    most_default, order_default, _ = run(None)
    assert most_default > in_flight and order_default == list(range(n))


def test_a_negative_in_flight_is_refused(live_run: dict[str, Any]) -> None:
    from morphstudio.faces.align import crop_params_for
    from morphstudio.live.edits import LiveEdits
    from morphstudio.live.pipeline import LivePipeline

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    with pytest.raises(ValueError, match="in_flight"):
        LivePipeline(ScriptedCamera(live_run["frames"], 1), G, None, LiveEdits(), [], params=crop_params_for(G),
                     realtime=False, in_flight=-1)


@pytest.mark.parametrize("name, audio", [("edited.webm", "opus"), ("edited.gif", None)])
def test_a_recording_in_a_container_that_refuses_the_clips_audio_is_still_written(
        live_run: dict[str, Any], tmp_path: Path, name: str, audio: str | None) -> None:
    """The clip's FLAC cannot be copied into webm (opus / vorbis only) and a gif holds no audio: the recording is
    written anyway, with the container's own audio codec or without audio, and nothing half-written is left."""
    out = tmp_path / name
    assert main(["live", "--input", str(live_run["clip"]), "-o", str(out), "--no-window", "-q",
                 "--device", "cpu"]) == 0
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr
    audio_streams = [line for line in probe.splitlines() if "Audio:" in line]
    assert (audio_streams[0].split("Audio:")[1].split()[0].rstrip(",") if audio_streams else None) == audio
    assert decode(out)[1].shape[0] == N
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_sink_that_fails_to_open_aborts_the_ones_already_open(live_run: dict[str, Any], tmp_path: Path) -> None:
    """The recording opens first; when the next sink (a virtual camera without a device, say) cannot open, the
    recording's encoder is stopped and its temporary file removed: nothing is left in the user's folder."""
    from morphstudio.errors import DisplayError
    from morphstudio.faces.align import crop_params_for
    from morphstudio.faces.encoder import resolve_encoder
    from morphstudio.live.capture import FileSource
    from morphstudio.live.edits import LiveEdits
    from morphstudio.live.pipeline import LivePipeline
    from morphstudio.sinks.ffmpeg import FfmpegSink

    class Unopenable(ListSink):
        def open(self, info: Any) -> None:
            raise DisplayError("no device")

    class Recording(FfmpegSink):
        aborted = False

        def abort(self) -> None:
            type(self).aborted = True
            super().abort()

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    rec = Recording(tmp_path / "rec.mkv", "ffv1")
    pipe = LivePipeline(FileSource(live_run["clip"]), G, resolve_encoder("auto", G), LiveEdits(),
                        [rec, Unopenable()], params=crop_params_for(G), realtime=False)
    with pytest.raises(DisplayError, match="no device"):
        pipe.run()
    assert Recording.aborted  # its encoder stopped
    assert list(tmp_path.iterdir()) == []


def test_in_flight_from_the_command_line_and_the_cpu_threads_while_it_runs(
        live_run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``--in-flight 1`` on a file still writes every frame, byte for byte where there is no face; while the stages
    run, torch and numpy's BLAS have one thread each (side by side on the cores), and both are restored after."""
    import threadpoolctl
    import torch

    from morphstudio.live.pipeline import LivePipeline
    from morphstudio.rendering.plan import torch_threads

    seen: dict[str, Any] = {}
    real_run = LivePipeline.run

    def run(self: LivePipeline) -> Any:
        seen["in_flight"] = self._tokens is not None
        seen["torch"] = torch.get_num_threads()
        seen["blas"] = {d["filepath"]: d["num_threads"] for d in threadpoolctl.threadpool_info()
                        if d["user_api"] == "blas"}
        return real_run(self)

    monkeypatch.setattr(LivePipeline, "run", run)
    out = tmp_path / "one.mkv"
    # The test run may have pinned every pool to one thread already (OMP_NUM_THREADS=1): start from two.
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"), torch_threads(2):
        before_torch = torch.get_num_threads()
        before_blas = {d["filepath"]: d["num_threads"] for d in threadpoolctl.threadpool_info()
                       if d["user_api"] == "blas"}
        assert max(before_blas.values()) == 2
        assert main(["live", "--input", str(live_run["clip"]), "-o", str(out), "--codec", "ffv1", "--no-window",
                     "--device", "cpu", "--in-flight", "1"]) == 0
        after_torch = torch.get_num_threads()
        after_blas = {d["filepath"]: d["num_threads"] for d in threadpoolctl.threadpool_info()
                      if d["user_api"] == "blas"}
    _, got = decode(out)
    assert got.shape == (N, H, W, 3)
    for i in NO_FACE:
        np.testing.assert_array_equal(got[i], live_run["frames"][i])
    assert seen["in_flight"] and seen["torch"] == 1
    assert seen["blas"] and set(seen["blas"].values()) == {1}
    assert after_torch == before_torch == 2 and after_blas == before_blas
    capsys.readouterr()
    rc = main(["live", "--input", str(live_run["clip"]), "-o", str(tmp_path / "x.mkv"), "--no-window",
               "--in-flight", "-1"])
    assert rc == 2 and "error: --in-flight -1: must be 0 (no limit) or more frames" in capsys.readouterr().err
    assert not (tmp_path / "x.mkv").exists()


def test_the_start_line_names_each_attr_as_written_with_its_semantics() -> None:
    from morphstudio.live.edits import build_edits

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    edits = build_edits(G, scene=None, attrs=["smile=1.5", "scenes/directions/dcgan-light.npy=2"], target=None,
                        morph=0.5, model="builtin:dcgan-faces64")
    # A fitted boundary is applied as `set`, a bare file as `add` (the README's live-mode section).
    assert edits.describe() == "smile=1.5 (set), dcgan-light=2 (add)"
