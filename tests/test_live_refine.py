"""``--refine N``: projector steps after the encoder, warm-started from the previous frame's result."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_live import decode, make_clip

import morphstudio
from morphstudio.cli import main


@pytest.fixture(scope="module")
def model() -> tuple[Any, Any]:
    from morphstudio.faces.encoder import resolve_encoder

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    return G, resolve_encoder("auto", G)


def _pipeline(clip: Path, G: Any, enc: Any, refiner: Any, detector: Any = None) -> Any:
    from morphstudio.faces.align import crop_params_for
    from morphstudio.live.capture import FileSource
    from morphstudio.live.edits import LiveEdits
    from morphstudio.live.pipeline import LivePipeline

    return LivePipeline(FileSource(clip), G, enc, LiveEdits(), [], params=crop_params_for(G),
                        realtime=False, detector=detector, refiner=refiner, batch=4)


def test_refining_lowers_the_crops_reconstruction_error(tmp_path: Path, model: tuple[Any, Any]) -> None:
    """Pixel MSE between the generated face and the aligned crop it reconstructs, frame by frame along a clip of a
    generated face: with refinement it is lower on every frame, and it keeps falling as the warm starts add up."""
    from morphstudio.generators import to_uint8
    from morphstudio.live.pipeline import VideoFaceMesh
    from morphstudio.live.refine import WarmRefiner

    G, enc = model
    clip, _ = make_clip(tmp_path, n=6, no_face=())
    pipe = _pipeline(clip, G, enc, None)
    mesh = VideoFaceMesh()
    works = [pipe._align_one(f, mesh) for f in pipe.source.frames(threading.Event())]
    mesh.close()
    assert all(w.crop is not None for w in works)

    def errors(refiner: WarmRefiner | None) -> np.ndarray:
        out = []
        for w in works:
            ws = enc.encode_uint8(w.crop[None])[0]
            if refiner is not None:
                ws = refiner.refine(w.crop, w.mask, ws, w.continues)
            with torch.no_grad():
                img = to_uint8(G.synthesis(torch.from_numpy(ws[None]), noise_mode="const")).numpy()[0]
            out.append(np.mean((img.astype(np.float64) - w.crop) ** 2))
        return np.array(out)

    plain, refined = errors(None), errors(WarmRefiner(G, 3))
    assert np.all(refined < plain), (plain, refined)
    assert refined[-1] < 0.8 * plain[-1]          # the warm starts accumulate: a clear gain by the last frame
    assert refined[-1] < refined[0]


def test_each_frame_starts_where_the_last_one_ended(tmp_path: Path, model: tuple[Any, Any]) -> None:
    """Through the pipeline: while the face continues a frame's projector start is the previous frame's refined
    latent; the first frame, and the first after frames with no face, start from their own encoder latent."""
    from morphstudio.faces.align import detect_faces
    from morphstudio.live.refine import WarmRefiner

    G, enc = model
    clip, frames = make_clip(tmp_path, n=7, no_face=(3,))
    base = detect_faces(frames[0])[0].mesh
    calls = iter([(0, 0), (2, 1), (4, 2), None, (8, 4), (10, 5), (12, 6)])

    def detect(pixels: np.ndarray) -> list[np.ndarray]:
        off = next(calls)
        return [] if off is None else [base + np.array(off)]

    refiner = WarmRefiner(G, 2)
    seen: list[dict[str, np.ndarray]] = []
    real_project, real_refine = refiner.projector.project, refiner.refine

    def refine(crop: np.ndarray, mask: Any, encoded: np.ndarray, continues: bool) -> np.ndarray:
        seen.append({"encoded": np.array(encoded)})  # what the pipeline's encoder gave for this frame
        return real_refine(crop, mask, encoded, continues)

    def project(targets: np.ndarray, masks: Any = None, *, init_ws: np.ndarray) -> Any:
        res = real_project(targets, masks, init_ws=init_ws)
        seen[-1].update(start=init_ws[0].copy(), result=res.ws[0].copy())
        return res

    refiner.refine = refine  # type: ignore[method-assign]
    refiner.projector.project = project  # type: ignore[method-assign]
    _pipeline(clip, G, enc, refiner, detect).run()
    assert len(seen) == 6  # one per frame with a face
    for k in (0, 3):  # the first frame, and the first after the gap (frame 4)
        np.testing.assert_array_equal(seen[k]["start"], seen[k]["encoded"])
    for k in (1, 2, 4, 5):
        np.testing.assert_array_equal(seen[k]["start"], seen[k - 1]["result"])
        assert not np.array_equal(seen[k]["start"], seen[k]["encoded"])
    assert not np.array_equal(seen[0]["result"], seen[0]["start"])  # the steps did move the latent


def test_refine_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip, frames = make_clip(tmp_path, n=3, no_face=(1,))
    out = tmp_path / "o.mkv"
    assert main(["live", "--input", str(clip), "-o", str(out), "--codec", "ffv1", "--no-window", "--device", "cpu",
                 "--refine", "2"]) == 0
    err = capsys.readouterr().err
    assert "2 projector step(s) per face" in err and "3 frames (2 with a face edited)" in err
    _, got = decode(out)
    np.testing.assert_array_equal(got[1], frames[1])  # no face: untouched, refinement or not
    rc = main(["live", "--input", str(clip), "-o", str(out), "--no-window", "--refine", "101"])
    err = capsys.readouterr().err
    assert rc == 2 and "error: --refine 101: must be between 0 and 100 steps per frame" in err
