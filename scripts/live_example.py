"""Make the README's live-mode example: a slow pan and zoom over the public-domain NASA astronaut portrait
(``scenes/photos/astronaut.jpg``) as a short clip, run ``morphstudio live`` on it, and save before / after frames.

Usage::

    PYTHONPATH=$PWD .venv/bin/python scripts/live_example.py    # -> media/astronaut-pan.mkv, media/astronaut-live.mkv,
                                                                #    docs/live/before-after.png

The clip is a still photo moved by a virtual camera (not a real video): the face moves and grows in the frame,
which exercises tracking, smoothing, alignment and the blend.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from morphstudio.faces.images import read_image  # noqa: E402
from morphstudio.sinks.base import StreamInfo  # noqa: E402
from morphstudio.sinks.ffmpeg import FfmpegSink  # noqa: E402

FRAMES, FPS, SIZE = 40, 20.0, 256
COMMAND = ["live", "--input", "media/astronaut-pan.mkv", "-o", "media/astronaut-live.mkv", "--codec", "ffv1",
           "--no-window", "--attr", "scenes/directions/dcgan-light.npy=2.5"]
SHOW = (0, 20, 39)


def pan_zoom() -> np.ndarray:
    photo = read_image(ROOT / "scenes/photos/astronaut.jpg").pixels
    frames = []
    for i in range(FRAMES):
        u = i / (FRAMES - 1)
        side = 230 - 70 * u            # zoom in from 230 px to 160 px of the 256 px photo
        cx, cy = 128 - 10 * u, 128 - 40 * u  # drift toward the face
        m = np.array([[SIZE / side, 0, SIZE / 2 - cx * SIZE / side], [0, SIZE / side, SIZE / 2 - cy * SIZE / side]])
        frames.append(cv2.warpAffine(photo, m, (SIZE, SIZE), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


def decode(path: Path) -> np.ndarray:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return np.stack([np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen])


def save_small_png(rgb: np.ndarray, out: Path) -> None:
    """A 256-colour PNG: a fraction of the size of a full-colour one, and plenty for a README picture."""
    from PIL import Image

    Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)


def main() -> None:
    (ROOT / "media").mkdir(exist_ok=True)
    frames = pan_zoom()
    sink = FfmpegSink(ROOT / "media/astronaut-pan.mkv", "ffv1")
    sink.open(StreamInfo(SIZE, SIZE, FPS))
    sink.write(0, frames)
    sink.close()
    print("$ .venv/bin/morphstudio " + " ".join(COMMAND))
    subprocess.run([sys.executable, "-m", "morphstudio", *COMMAND], cwd=ROOT, check=True)
    after = decode(ROOT / "media/astronaut-live.mkv")
    rows = [np.concatenate([frames[i] for i in SHOW], axis=1), np.concatenate([after[i] for i in SHOW], axis=1)]
    strip = np.concatenate(rows, axis=0)
    out = ROOT / "docs/live/before-after.png"
    save_small_png(strip, out)
    print(f"wrote {out.relative_to(ROOT)} (top: input frames {', '.join(map(str, SHOW))}; bottom: live output)")


if __name__ == "__main__":
    main()
