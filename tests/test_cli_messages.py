"""Messages that point somewhere: the fp16 hint, Ctrl-C during a render, native log chatter on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from morphstudio.cli import main
from morphstudio.devices import resolve_dtype
from morphstudio.errors import DeviceError

ROOT = Path(__file__).resolve().parents[1]
# Two lines mediapipe 0.10.21 writes to fd 2 on every face detection, copied from a real run.
ABSL_LINE = (b"W0000 00:00:1796119831.706534    9569 inference_feedback_manager.cc:114] Feedback manager requires "
             b"a model with a single signature inference. Disabling support for feedback tensors.\n")
TFLITE_LINE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"


def test_fp16_on_cpu_hint_names_real_options() -> None:
    with pytest.raises(DeviceError) as info:
        resolve_dtype("fp16", torch.device("cpu"))
    hint = info.value.hint or ""
    assert "--half" not in hint  # there is no such option
    assert "--precision" in hint


def test_interrupted_render_mentions_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    scene = tmp_path / "s.yaml"
    scene.write_text("model: builtin:dcgan-faces64\noutput: {path: o.mp4, fps: 4, duration: 1}\n"
                     "faces: {a: {seed: 1}}\ntimeline: [{at: 0, face: a}]\n")

    def ctrl_c(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("morphstudio.rendering.renderer.render_scene", ctrl_c)
    assert main(["render", str(scene), "--device", "cpu"]) == 130
    assert "--resume" in capsys.readouterr().err


def test_native_log_lines_are_filtered_from_fd_2(capfd: pytest.CaptureFixture[str]) -> None:
    from morphstudio.commands.native_logs import NativeLogFilter

    with NativeLogFilter():
        os.write(2, ABSL_LINE)
        os.write(2, b"note: this one stays\n")
        os.write(2, TFLITE_LINE)
        os.write(2, b"\r 50%|#####     | 1/2")  # a progress bar redraw: passed on without waiting for a newline
    err = capfd.readouterr().err
    assert "note: this one stays" in err and "50%|" in err
    assert "W0000" not in err and "TensorFlow Lite" not in err
    with NativeLogFilter(enabled=False):  # --verbose
        os.write(2, ABSL_LINE)
    assert "W0000" in capfd.readouterr().err


def test_align_prints_no_mediapipe_chatter_unless_verbose(tmp_path: Path) -> None:
    photo = ROOT / "scenes" / "photos" / "astronaut.jpg"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "morphstudio", "align", str(photo), "-o", str(tmp_path / "a.png")]
    quiet = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert "W0000" not in quiet.stderr and "TensorFlow Lite" not in quiet.stderr, quiet.stderr
    loud = subprocess.run(cmd[:3] + ["--verbose"] + cmd[3:], capture_output=True, text=True, env=env, timeout=120)
    assert loud.returncode == 0, loud.stderr
    assert "TensorFlow Lite" in loud.stderr or "W0000" in loud.stderr
