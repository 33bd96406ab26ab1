"""Quality report of a projection: PSNR, SSIM, LPIPS (when VGG16 weights exist), time, steps; side-by-side PNG."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw


@dataclass
class QualityReport:
    """Reconstruction quality of one projected image.

    Attributes:
        name: Image name (file stem).
        psnr: Peak signal-to-noise ratio in dB (8-bit images; inf when identical).
        ssim: Structural similarity (single scale, 11 px Gaussian window) in [-1, 1].
        lpips: LPIPS-like VGG16 distance, ``None`` without VGG16 weights.
        seconds: Optimisation wall time (shared by a batch: the batch time).
        steps: Steps run.
        init: ``encoder``, ``w_avg`` or ``given``.
        distance: Distance from ``w_avg`` in typical distances of random faces.
    """

    name: str
    psnr: float
    ssim: float
    lpips: float | None
    seconds: float
    steps: int
    init: str
    distance: float

    def line(self) -> str:
        """One summary line, e.g. ``alice: PSNR 31.2 dB  SSIM 0.951  LPIPS n/a  12.3 s  300 steps (encoder)``."""
        lp = f"{self.lpips:.3f}" if self.lpips is not None else "n/a"
        return (f"{self.name}: PSNR {self.psnr:.2f} dB  SSIM {self.ssim:.3f}  LPIPS {lp}  {self.seconds:.1f} s  "
                f"{self.steps} steps (init {self.init})  |w - w_avg| {self.distance:.2f}x typical")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of the same shape."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM between two ``[H, W, 3]`` uint8 images."""
    from morphstudio.faces.losses import ssim
    from morphstudio.faces.project import to_tensor_images

    cpu = torch.device("cpu")
    with torch.no_grad():
        return float(ssim(to_tensor_images(a, cpu), to_tensor_images(b, cpu))[0])


def lpips_uint8(a: np.ndarray, b: np.ndarray, vgg: Any) -> float | None:
    """LPIPS-like distance when a :class:`morphstudio.faces.losses.VGG16Features` is given, else ``None``."""
    if vgg is None:
        return None
    from morphstudio.faces.project import to_tensor_images

    dev = next(vgg.buffers()).device
    with torch.no_grad():
        return float(vgg(to_tensor_images(a, dev), to_tensor_images(b, dev))[0])


def quality(name: str, target: np.ndarray, result: np.ndarray, *, seconds: float, steps: int, init: str,
            distance: float, vgg: Any = None) -> QualityReport:
    """Measure one reconstruction."""
    return QualityReport(name=name, psnr=psnr(target, result), ssim=ssim_uint8(target, result),
                         lpips=lpips_uint8(target, result, vgg), seconds=seconds, steps=steps, init=init,
                         distance=distance)


def side_by_side(target: np.ndarray, result: np.ndarray, *, min_size: int = 256,
                 report: QualityReport | None = None) -> np.ndarray:
    """``target | result | difference`` (difference amplified 4x), each panel upscaled to at least ``min_size``."""
    diff = np.clip(np.abs(target.astype(np.int16) - result.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
    s = target.shape[0]
    scale = max(1, -(-min_size // s))
    panels = [np.asarray(Image.fromarray(p).resize((s * scale, s * scale), Image.NEAREST))
              for p in (target, result, diff)]
    gap = np.full((s * scale, 4, 3), 255, np.uint8)
    body = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    header = Image.new("RGB", (body.shape[1], 18), (255, 255, 255))
    draw = ImageDraw.Draw(header)
    w = s * scale + 4
    for i, label in enumerate(("target", "projection", "|difference| x4")):
        draw.text((i * w + 4, 3), label, fill=(0, 0, 0))
    rows = [np.asarray(header), body]
    if report is not None:
        footer = Image.new("RGB", (body.shape[1], 18), (255, 255, 255))
        ImageDraw.Draw(footer).text((4, 3), report.line()[:160], fill=(0, 0, 0))
        rows.append(np.asarray(footer))
    return np.concatenate(rows, axis=0)


def save_side_by_side(path: str | Path, target: np.ndarray, result: np.ndarray,
                      report: QualityReport | None = None) -> Path:
    """Write :func:`side_by_side` as a PNG; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(side_by_side(target, result, report=report)).save(p)
    return p


def write_progress_video(path: str | Path, target: np.ndarray, snapshots: list[tuple[int, np.ndarray]], *,
                         fps: float = 15.0, min_size: int = 256) -> Path:
    """A video of the projection converging: ``target | current`` per snapshot (H.264 through
    :class:`morphstudio.sinks.ffmpeg.FfmpegSink`: written under a temporary name, renamed when complete).

    Args:
        path: ``.mp4``, ``.mkv`` or ``.mov``.
        target: ``[H, W, 3]`` uint8.
        snapshots: ``[(step, [H, W, 3] uint8)]`` for one image.
        fps: Frames per second.
        min_size: Panels are upscaled to at least this side (H.264 wants even sizes; 16-multiples are kinder).

    Raises:
        RenderError: A file type H.264 cannot go into; :class:`morphstudio.errors.EncoderError` (a RenderError)
            when ffmpeg fails.
    """
    from morphstudio.sinks.base import StreamInfo
    from morphstudio.sinks.ffmpeg import FfmpegSink

    p = Path(path)
    s = target.shape[0]
    scale = max(1, -(-min_size // s))
    size = s * scale
    size += size % 2
    frames = []
    for step, img in snapshots:
        both = np.concatenate([target, img], axis=1)
        big = np.asarray(Image.fromarray(both).resize((2 * size, size), Image.NEAREST))
        canvas = Image.fromarray(big)
        ImageDraw.Draw(canvas).text((size + 6, 4), f"step {step}", fill=(255, 255, 0))
        frames.append(np.asarray(canvas))
    sink = FfmpegSink(p, "h264")  # libx264, yuv420p, crf 18
    sink.open(StreamInfo(width=2 * size, height=size, fps=fps, frame_count=len(frames)))
    try:
        for i, f in enumerate(frames):
            sink.write(i, f[None])
        sink.close()
    except BaseException:
        sink.abort()
        raise
    return p
