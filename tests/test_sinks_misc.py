"""Image folder, null, tee and window sinks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_render_tinygen import TinyGen, tiny_latents

from morphstudio.errors import DisplayError, RenderError
from morphstudio.rendering.renderer import render_latents
from morphstudio.sinks import ImageFolderSink, NullSink, StreamInfo, TeeSink, WindowSink

INFO = StreamInfo(8, 8, 24.0)


def frames(n: int = 3) -> np.ndarray:
    return np.random.RandomState(0).randint(0, 255, (n, 8, 8, 3), dtype=np.uint8)


def test_image_folder_appears_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "pngs"
    sink = ImageFolderSink(out)
    sink.open(INFO)
    sink.write(7, frames())
    assert not out.exists()  # still under the temporary name
    sink.close()
    assert sorted(p.name for p in out.iterdir()) == [".morphstudio-frames", "frame_000007.png", "frame_000008.png",
                                                     "frame_000009.png"]

    again = ImageFolderSink(out)
    again.open(INFO)
    again.write(0, frames(1))
    again.abort()
    assert len(list(out.iterdir())) == 4 and [p.name for p in tmp_path.iterdir()] == ["pngs"]


def test_image_folder_refuses_a_file(tmp_path: Path) -> None:
    f = tmp_path / "taken"
    f.write_text("x")
    with pytest.raises(RenderError, match="not a folder"):
        ImageFolderSink(f).open(INFO)


def test_tee_and_null() -> None:
    a, b = NullSink(touch=True), NullSink()
    tee = TeeSink([a, b])
    tee.open(INFO)
    tee.write(0, frames(5))
    tee.close()
    assert a.frames_seen == b.frames_seen == 5 and a.checksum > 0


def test_window_without_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    with pytest.raises(DisplayError, match="no display"):
        WindowSink().open(INFO)


def test_preview_render_without_display_fails_cleanly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    from morphstudio.rendering.renderer import OutputSettings

    out = tmp_path / "v.mp4"
    with pytest.raises(DisplayError):
        render_latents(TinyGen().eval(), tiny_latents(8), 8, 24.0, sinks=[WindowSink()], progress=False,
                       output=OutputSettings(path=str(out), fps=24.0))
    assert not out.exists()


def test_null_sink_renders_without_output() -> None:
    null = NullSink()
    res = render_latents(TinyGen().eval(), tiny_latents(20), 20, 24.0, sinks=[null], progress=False)
    assert null.frames_seen == 20 and res.output is None


def test_window_calls_all_happen_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenCV's Qt windows paint only from the thread that made them: the sink is opened on the main thread, fed
    from sink threads, and reused by later --watch renders, so every window call must go through one thread."""
    import threading

    import cv2

    threads: list[tuple[str, int]] = []

    def recorder(name: str, result: object = None):
        def call(*args: object) -> object:
            threads.append((name, threading.get_ident()))
            return result
        return call

    monkeypatch.setenv("DISPLAY", ":0")
    for name in ("namedWindow", "imshow", "destroyWindow"):
        monkeypatch.setattr(cv2, name, recorder(name))
    monkeypatch.setattr(cv2, "waitKey", recorder("waitKey", -1))

    sink = WindowSink(pace=False, persistent=True)
    info = StreamInfo(width=8, height=8, fps=30.0, frame_count=2, first_frame=0)
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    for _ in range(2):  # two renders, as --watch does, each writing from a fresh thread
        sink.open(info)
        writer = threading.Thread(target=sink.write, args=(0, frames))
        writer.start()
        writer.join()
        sink.close()
    sink.destroy()

    assert {name for name, _ in threads} == {"namedWindow", "imshow", "waitKey", "destroyWindow"}
    assert len({ident for _, ident in threads}) == 1
    assert threads[0][1] != threading.get_ident()
