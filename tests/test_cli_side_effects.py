"""Commands and library calls leave the process as they found it: torch's thread count is set for a render, a
projection or encoder training only while it runs, and restored when it returns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from morphstudio.cli import main


@pytest.fixture()
def thread_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Start at 2 torch threads (restored after the test) and record every later ``torch.set_num_threads``."""
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    calls: list[int] = []
    real = torch.set_num_threads

    def recording(n: int) -> None:
        calls.append(int(n))
        real(n)

    monkeypatch.setattr(torch, "set_num_threads", recording)
    try:
        yield calls
    finally:
        real(old)


def _scene(tmp_path: Path) -> Path:
    scene = tmp_path / "s.yaml"
    scene.write_text("model: builtin:dcgan-faces64\noutput: {size: 32, fps: 4, duration: 1}\n"
                     "faces: {a: {seed: 1}, b: {seed: 2}}\ntimeline: [{at: 0, face: a}, {at: 1, face: b}]\n")
    return scene


def test_render_restores_torch_threads(tmp_path: Path, thread_calls: list[int]) -> None:
    rc = main(["render", str(_scene(tmp_path)), "-o", str(tmp_path / "o.mkv"), "--codec", "ffv1", "--threads", "1",
               "-q"])
    assert rc == 0 and (tmp_path / "o.mkv").is_file()
    assert thread_calls and thread_calls[0] == 1 and thread_calls[-1] == 2  # 1 while rendering, then back
    assert torch.get_num_threads() == 2


def test_render_error_still_restores_torch_threads(tmp_path: Path, thread_calls: list[int],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import morphstudio.rendering.engine as engine

    def boom(*args, **kwargs):
        raise RuntimeError("generator crashed")

    monkeypatch.setattr(engine, "_run_loop", boom)
    with pytest.raises(RuntimeError, match="generator crashed"):
        main(["render", str(_scene(tmp_path)), "-o", str(tmp_path / "o.mkv"), "--codec", "ffv1", "--threads", "1",
              "-q"])
    assert thread_calls[:1] == [1] and torch.get_num_threads() == 2


def test_project_restores_torch_threads(tmp_path: Path, thread_calls: list[int]) -> None:
    from morphstudio.faces.synthetic import generate_faces
    from morphstudio.generators.loading import load_generator

    faces, _ = generate_faces(load_generator("builtin:dcgan-faces64", device="cpu"), [3])
    Image.fromarray(faces[0]).save(tmp_path / "f.png")
    thread_calls.clear()
    rc = main(["project", str(tmp_path / "f.png"), "-o", str(tmp_path / "f.npz"), "--no-align", "--steps", "2",
               "--threads", "1", "-q"])
    assert rc == 0 and np.load(tmp_path / "f.npz")["ws"].shape[0] == 1
    assert thread_calls[:1] == [1] and thread_calls[-1] == 2
    assert torch.get_num_threads() == 2


def test_encoder_training_restores_torch_threads(thread_calls: list[int]) -> None:
    from morphstudio.faces.encoder import TrainConfig, train_encoder
    from morphstudio.generators.loading import load_generator

    G = load_generator("builtin:dcgan-faces64", device="cpu")
    thread_calls.clear()
    train_encoder(G, TrainConfig(steps=2, batch_size=2, width=8, input_res=32, pool_size=4, fresh_per_step=0,
                                 log_every=1, threads=1))
    assert thread_calls == [1, 2] and torch.get_num_threads() == 2
