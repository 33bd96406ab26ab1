"""Live strengths: the display-free controls, what the edits read from them, and the preview window's trackbars
and keys (through a fake cv2 module: there is no display here)."""

from __future__ import annotations

import json
import sys
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import morphstudio
from morphstudio.live.controls import LiveControls
from morphstudio.sinks.base import Sink, StreamInfo

SMILE = Path(morphstudio.__file__).parent / "edit" / "builtin" / "dcgan-faces64" / "smile.npz"


def press(controls: LiveControls, keys: str) -> None:
    for k in keys:
        controls.handle_key(ord(k))


def two() -> LiveControls:
    return LiveControls([("smile", 1.5, (-3.0, 3.0)), ("morph", 0.5, (0.0, 1.0))])


def test_keys_select_nudge_by_a_tenth_and_reset() -> None:
    c = two()
    press(c, "+")
    assert c.get("smile") == pytest.approx(1.6)
    press(c, "=")
    assert c.get("smile") == pytest.approx(1.7)
    press(c, "-_-")
    assert c.get("smile") == pytest.approx(1.4)
    press(c, "2+")
    assert c.get("morph") == pytest.approx(0.6) and c.get("smile") == pytest.approx(1.4)
    press(c, "0")
    assert c.get("morph") == 0.5
    press(c, "10")
    assert c.get("smile") == 1.5
    press(c, "9+")  # no ninth control: the selection stays on smile
    assert c.selected == "smile" and c.get("smile") == pytest.approx(1.6)
    press(c, "+" * 30)
    assert c.get("smile") == 3.0  # clamped to the range
    press(c, "2" + "-" * 30)
    assert c.get("morph") == 0.0


def test_handle_key_names_the_control_it_changed() -> None:
    c = two()
    assert c.handle_key(ord("+")) == "smile"
    assert c.handle_key(ord("2")) is None       # selecting changes no value
    assert c.handle_key(ord("x")) is None       # not a control key
    assert c.handle_key(255) is None            # waitKey's "no key"
    assert c.handle_key(ord("0")) is None       # morph is at its start already
    assert c.handle_key(ord("-")) == "morph"


def test_trackbar_positions_are_tenths_of_the_range() -> None:
    c = two()
    assert c.control("smile").positions == 60 and c.position("smile") == 45  # (1.5 - -3) / 0.1
    assert c.control("morph").positions == 10 and c.position("morph") == 5
    assert c.set_position("smile", 0) == -3.0
    assert c.set_position("smile", 60) == pytest.approx(3.0)
    assert c.set_position("smile", 31) == pytest.approx(0.1)
    wide = LiveControls([("age", 5.0, (-3.0, 3.0))])  # a start outside the range widens it
    assert (wide.control("age").lo, wide.control("age").hi) == (-3.0, 5.0) and wide.get("age") == 5.0


def test_the_trackbar_echo_keeps_a_value_between_positions() -> None:
    c = LiveControls([("smile", 1.55, (-3.0, 3.0))])
    assert c.set_position("smile", c.position("smile")) == 1.55


def test_describe_lists_values_with_the_selected_one_bracketed() -> None:
    c = two()
    assert c.describe() == "[1 smile +1.50]  2 morph 0.50"
    press(c, "2+")
    assert c.describe() == "1 smile +1.50  [2 morph 0.60]"
    same = LiveControls([("smile", 1.0, (-3, 3)), ("smile", -1.0, (-3, 3))])
    assert same.names == ["smile", "smile #2"]


def test_edits_read_the_controls_every_batch() -> None:
    """``set`` semantics make the result checkable from the file alone: after the edit, a latent's signed distance
    to the smile boundary is the control's current value."""
    from morphstudio.live.edits import build_edits

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    edits = build_edits(G, scene=None, attrs=["smile=0.5"], target="seed:3", morph=0.5,
                        model="builtin:dcgan-faces64")
    with np.load(SMILE) as z:
        n = z["direction"].astype(np.float64).reshape(-1)
        prov = json.loads(z["provenance"].tobytes().decode())
    n /= np.linalg.norm(n)
    ws = np.random.RandomState(1).randn(3, 1, G.w_dim).astype(np.float32)

    def smile_of(out: np.ndarray) -> np.ndarray:
        return (out.astype(np.float64).reshape(len(out), -1) @ n + prov["intercept"]) / prov["scale"]

    np.testing.assert_allclose(smile_of(edits.apply(ws, np.zeros(3))), 0.5, atol=1e-4)  # no controls: fixed
    controls = edits.make_controls()
    assert controls.names == ["smile", "morph"]
    controls.set("smile", 1.5)
    np.testing.assert_allclose(smile_of(edits.apply(ws, np.zeros(3))), 1.5, atol=1e-4)
    controls.set("smile", -2.0)
    np.testing.assert_allclose(smile_of(edits.apply(ws, np.zeros(3))), -2.0, atol=1e-4)
    # morph 0 keeps each face (only the smile is set), morph 1 makes every frame the target (smile set on it).
    controls.set("morph", 0.0)
    a = edits.apply(ws, np.zeros(3)).astype(np.float64)
    controls.set("morph", 1.0)
    b = edits.apply(ws, np.zeros(3)).astype(np.float64)
    assert np.abs(a[0] - a[1]).max() > 0.1
    np.testing.assert_allclose(b[0], b[1], atol=1e-5)
    np.testing.assert_allclose(b[2], b[0], atol=1e-5)


class FakeCv2(types.ModuleType):
    """The highgui calls WindowSink makes, recorded with the thread each ran on; ``waitKey`` returns scripted keys
    and may move a trackbar first (as the real event loop runs trackbar callbacks inside waitKey)."""

    WINDOW_AUTOSIZE = 1
    INTER_NEAREST = INTER_AREA = 0

    class error(Exception):
        pass

    def __init__(self, script: list[Any]) -> None:
        super().__init__("cv2")
        self.script = list(script)
        self.calls: list[tuple[str, tuple[Any, ...], str]] = []
        self.callbacks: dict[str, Any] = {}
        self.positions: dict[str, int] = {}

    def _log(self, name: str, *args: Any) -> None:
        self.calls.append((name, args, threading.current_thread().name))

    def namedWindow(self, title: str, flags: int) -> None:
        self._log("namedWindow", title)

    def createTrackbar(self, name: str, title: str, pos: int, count: int, cb: Any) -> None:
        self._log("createTrackbar", name, title, pos, count)
        self.callbacks[name], self.positions[name] = cb, pos

    def setTrackbarPos(self, name: str, title: str, pos: int) -> None:
        self._log("setTrackbarPos", name, title, pos)
        self.positions[name] = pos
        self.callbacks[name](pos)  # OpenCV calls the callback on a programmatic move too

    def imshow(self, title: str, img: np.ndarray) -> None:
        self._log("imshow", title)

    def waitKey(self, ms: int) -> int:
        self._log("waitKey", ms)
        step = self.script.pop(0) if self.script else -1
        if isinstance(step, tuple):  # ("drag", name, position): the user moved a trackbar
            _, name, pos = step
            self.positions[name] = pos
            self.callbacks[name](pos)
            return -1
        return ord(step) if isinstance(step, str) else step

    def destroyWindow(self, title: str) -> None:
        self._log("destroyWindow", title)


def _window(monkeypatch: pytest.MonkeyPatch, script: list[Any]) -> tuple[Any, FakeCv2, LiveControls]:
    from morphstudio.sinks.window import WindowSink

    fake = FakeCv2(script)
    monkeypatch.setitem(sys.modules, "cv2", fake)
    monkeypatch.setenv("DISPLAY", ":99")
    controls = two()
    sink = WindowSink(title="live", pace=False, controls=controls)
    sink.open(StreamInfo(32, 24, 30.0))
    return sink, fake, controls


def test_window_makes_a_trackbar_per_control_and_follows_keys_and_drags(monkeypatch: pytest.MonkeyPatch) -> None:
    sink, fake, controls = _window(monkeypatch, ["+", ("drag", "morph", 8), "2", "-", "0", -1])
    assert [c[1] for c in fake.calls if c[0] == "createTrackbar"] == [("smile", "live", 45, 60),
                                                                      ("morph", "live", 5, 10)]
    frames = np.zeros((6, 24, 32, 3), np.uint8)
    sink.write(0, frames[:1])
    assert controls.get("smile") == pytest.approx(1.6) and fake.positions["smile"] == 46  # key -> value -> bar
    sink.write(1, frames[1:2])
    assert controls.get("morph") == pytest.approx(0.8)  # the drag reached the control
    sink.write(2, frames[2:4])  # "2" selects morph, "-" lowers it
    assert controls.get("morph") == pytest.approx(0.7) and fake.positions["morph"] == 7
    sink.write(4, frames[4:6])  # "0" resets morph, then no key
    assert controls.get("morph") == 0.5 and fake.positions["morph"] == 5
    sink.close()
    threads = {c[2] for c in fake.calls}
    assert threads == {"morphstudio-window"}, "every highgui call must run on the one GUI thread"
    assert threading.current_thread().name not in threads


def test_window_keys_still_stop_the_preview(monkeypatch: pytest.MonkeyPatch) -> None:
    from morphstudio.sinks.window import PreviewClosed

    sink, _, controls = _window(monkeypatch, ["+", "q"])
    with pytest.raises(PreviewClosed):
        sink.write(0, np.zeros((2, 24, 32, 3), np.uint8))
    sink.abort()
    assert controls.get("smile") == pytest.approx(1.6)


class Keep(Sink):
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def open(self, info: StreamInfo) -> None:
        pass

    def write(self, first_index: int, frames: np.ndarray) -> None:
        self.frames.extend(frames)

    def close(self) -> None:
        pass


def test_overlay_draws_the_current_values_on_a_second_line() -> None:
    from morphstudio.live.overlay import OverlaySink

    controls = two()
    frame = np.full((1, 240, 320, 3), 128, np.uint8)
    plain, with_controls = Keep(), Keep()
    OverlaySink(plain).write(0, frame)
    sink = OverlaySink(with_controls, controls=controls)
    sink.write(0, frame)
    press(controls, "+")
    sink.write(1, frame)
    second_line = slice(20, 44)  # below the fps line (rows 1-17 at this size)
    assert np.array_equal(plain.frames[0][second_line], frame[0][second_line])
    assert not np.array_equal(with_controls.frames[0][second_line], frame[0][second_line])
    assert not np.array_equal(with_controls.frames[0][second_line], with_controls.frames[1][second_line])


def test_a_direction_file_called_morph_does_not_take_the_morph_control(tmp_path: Path) -> None:
    import shutil

    from morphstudio.live.edits import build_edits

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    shutil.copy(SMILE, tmp_path / "morph.npz")
    edits = build_edits(G, scene=None, attrs=[f"{tmp_path / 'morph.npz'}=0.3"], target="seed:3", morph=0.5,
                        model="builtin:dcgan-faces64")
    controls = edits.make_controls()
    assert controls.names == ["morph", "morph #2"]
    controls.set("morph #2", 1.0)  # all the way to the target: every face becomes the same one
    out = edits.apply(np.random.RandomState(2).randn(3, 1, G.w_dim).astype(np.float32), np.zeros(3))
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)
    np.testing.assert_allclose(out[0], out[2], atol=1e-5)
