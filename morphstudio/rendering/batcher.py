"""On the device: latents -> images -> resized -> uint8, a batch at a time.

On a GPU everything up to the uint8 conversion stays on the device (float resize, then uint8), so only
``H*W*3`` bytes per frame cross to the host. On the CPU the images become uint8 at the model's resolution and
OpenCV resizes those (see :func:`resize_uint8`: a float resize at the output size would cost more than the
generator). On CUDA the host buffer is pinned and the copy is ``non_blocking``; the renderer keeps one batch in
flight and synchronises once per batch (an event), so the GPU computes the next batch while the CPU hands the
previous one to the encoders. A CUDA out-of-memory error halves the batch size and retries the same frames.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from morphstudio.errors import RenderError
from morphstudio.formats import FIT_MODES, size_problem
from morphstudio.generators.base import Generator, to_uint8

NoiseFn = Callable[[Sequence[int]], tuple[str, "dict[str, torch.Tensor] | None"]]


def resize_images(img: torch.Tensor, width: int, height: int, fit: str) -> torch.Tensor:
    """Resize ``[N, C, h, w]`` float images to ``[N, C, height, width]``.

    Args:
        img: Images in about [-1, 1].
        width: Output width.
        height: Output height.
        fit: ``fill`` (scale to cover, centre crop), ``fit`` (stretch to the exact size) or ``letterbox``
            (scale to fit inside, black bars).

    Returns:
        The resized images (float32). Unchanged (same tensor) when the size already matches.
    """
    if fit not in FIT_MODES:
        raise RenderError(f"output.fit: unknown mode {fit!r} (use one of {', '.join(FIT_MODES)})")
    n, c, h, w = img.shape
    if (h, w) == (height, width):
        return img
    img = img.float()
    if fit == "fit":
        return _interp(img, height, width)
    sh, sw = _fit_geometry(h, w, width, height, fit)
    if fit == "fill":
        out = _interp(img, sh, sw)
        top, left = (sh - height) // 2, (sw - width) // 2
        return out[:, :, top : top + height, left : left + width]
    inner = _interp(img, sh, sw)
    out = img.new_full((n, c, height, width), -1.0)  # -1 is black after to_uint8
    top, left = (height - sh) // 2, (width - sw) // 2
    out[:, :, top : top + sh, left : left + sw] = inner
    return out


def _interp(img: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if (img.shape[2], img.shape[3]) == (h, w):
        return img
    if h <= img.shape[2] and w <= img.shape[3]:
        # Downscaling: area averaging is alias-free and exact for integer factors.
        return F.interpolate(img, size=(h, w), mode="area")
    # Upscaling: bicubic; antialias only matters when one axis shrinks.
    return F.interpolate(img, size=(h, w), mode="bicubic", align_corners=False, antialias=True)


def _fit_geometry(h: int, w: int, width: int, height: int, fit: str) -> tuple[int, int]:
    """Scaled ``(sh, sw)`` of an ``h x w`` image for ``fill`` (covers) or ``letterbox`` (fits inside)."""
    scale = max(width / w, height / h) if fit == "fill" else min(width / w, height / h)
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    if fit == "fill":
        return max(sh, height), max(sw, width)
    return min(sh, height), min(sw, width)


def resize_uint8(frames: np.ndarray, width: int, height: int, fit: str) -> np.ndarray:
    """Resize ``uint8 [N, h, w, 3]`` frames with OpenCV (the CPU path; same geometry as :func:`resize_images`).

    On a CPU the float resize at the output size dominates the frame time (every output pixel is touched by
    several float passes); OpenCV's SIMD resize of the uint8 frames costs about a twentieth of it. Bicubic for
    upscaling, area averaging for downscaling; the uint8 values come from :func:`to_uint8` at the model's
    resolution, so only the interpolation differs from the GPU path (by rounding).
    """
    import cv2

    if fit not in FIT_MODES:
        raise RenderError(f"output.fit: unknown mode {fit!r} (use one of {', '.join(FIT_MODES)})")
    n, h, w, c = frames.shape
    if (h, w) == (height, width):
        return frames

    def rs(img: np.ndarray, oh: int, ow: int) -> np.ndarray:
        if (img.shape[0], img.shape[1]) == (oh, ow):
            return img
        interp = cv2.INTER_AREA if (oh <= img.shape[0] and ow <= img.shape[1]) else cv2.INTER_CUBIC
        return cv2.resize(img, (ow, oh), interpolation=interp)

    out = np.zeros((n, height, width, c), dtype=np.uint8)
    if fit == "fit":
        for i in range(n):
            out[i] = rs(frames[i], height, width)
        return out
    sh, sw = _fit_geometry(h, w, width, height, fit)
    for i in range(n):
        img = rs(frames[i], sh, sw)
        if fit == "fill":
            top, left = (sh - height) // 2, (sw - width) // 2
            out[i] = img[top : top + height, left : left + width]
        else:
            top, left = (height - sh) // 2, (width - sw) // 2
            out[i, top : top + sh, left : left + sw] = img
    return out


@dataclass
class Pending:
    """A batch submitted to the device whose uint8 frames may still be in flight."""

    frames: Sequence[int]
    host: torch.Tensor
    event: torch.cuda.Event | None

    def result(self) -> np.ndarray:
        """Wait for this batch (one sync) and return ``uint8 [N, H, W, 3]``."""
        if self.event is not None:
            self.event.synchronize()
        return self.host.numpy()


def is_oom(exc: BaseException) -> bool:
    """True for a device out-of-memory error (CUDA's, or a RuntimeError saying so)."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class Batcher:
    """Turns latents into uint8 frames of the output size on the generator's device.

    Args:
        generator: The generator (already on its device, eval mode).
        width: Output width.
        height: Output height.
        fit: Resize mode, see :func:`resize_images`.
        precision: Compute dtype for synthesis (``torch.float32``, ``float16``, ``bfloat16``); half precision
            runs under autocast, so any backend supports it.
        noise_fn: Maps frame indices to ``(noise_mode, noise)`` (see :class:`morphstudio.rendering.noise.NoiseSource`).
    """

    def __init__(self, generator: Generator, width: int, height: int, fit: str = "fill",
                 precision: torch.dtype = torch.float32, noise_fn: NoiseFn | None = None) -> None:
        self.generator = generator
        self.width = width
        self.height = height
        self.fit = fit
        self.precision = precision
        self.noise_fn = noise_fn or (lambda frames: ("const", None))
        self.device = generator.device
        self.is_cuda = self.device.type == "cuda"
        self.oom_halvings = 0
        # Backends with their own mixed precision (StyleGAN2/3: official fp16 blocks with clamping) use it;
        # anything else runs under autocast.
        self.native_precision = generator.supports_precision(precision)
        self._saved_precision: torch.dtype | None = None

    def __enter__(self) -> Batcher:  # noqa: PYI034 - typing.Self needs Python 3.11
        if self.native_precision and self.precision != torch.float32:
            self._saved_precision = self.generator.precision
            self.generator.set_precision(self.precision)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved_precision is not None:
            self.generator.set_precision(self._saved_precision)
            self._saved_precision = None

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == torch.float32 or self.native_precision:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.precision)

    def _synthesize(self, ws: np.ndarray, frames: Sequence[int]) -> torch.Tensor:
        """Synthesis alone for one batch: ``[N, 3, h, w]`` at the model's resolution, on the device."""
        src = torch.from_numpy(np.ascontiguousarray(ws, dtype=np.float32))
        if self.is_cuda:
            src = src.pin_memory().to(self.device, non_blocking=True)
        else:
            src = src.to(self.device)
        noise_mode, noise = self.noise_fn(frames)
        with torch.inference_mode(), self._autocast():
            return self.generator.synthesis(src, noise_mode=noise_mode, noise=noise)

    def images(self, ws: np.ndarray, frames: Sequence[int]) -> torch.Tensor:
        """Synthesis + resize for one batch: float32 ``[N, 3, H, W]`` in about [-1, 1], on the device."""
        img = self._synthesize(ws, frames)
        with torch.inference_mode():
            return resize_images(img.float(), self.width, self.height, self.fit)

    def _compute_host(self, ws: np.ndarray, frames: Sequence[int]) -> np.ndarray:
        """The non-CUDA path: uint8 at the model's resolution, then an OpenCV resize (see :func:`resize_uint8`)."""
        img = self._synthesize(ws, frames)
        with torch.inference_mode():
            # to_uint8 returns a permuted view: made contiguous here for OpenCV and the sinks.
            u8 = to_uint8(img.float()).contiguous().cpu().numpy()
        return resize_uint8(u8, self.width, self.height, self.fit)

    def _compute(self, ws: np.ndarray, frames: Sequence[int]) -> torch.Tensor:
        """Synthesis + resize + uint8 for one batch; returns ``uint8 [N, H, W, 3]`` on the device."""
        img = self.images(ws, frames)
        with torch.inference_mode():
            return to_uint8(img).contiguous()

    def submit(self, ws: np.ndarray, frames: Sequence[int]) -> Pending:
        """Start rendering one batch (asynchronous on CUDA). OOM is *not* handled here; see :meth:`submit_split`."""
        if not self.is_cuda:
            return Pending(frames, torch.from_numpy(self._compute_host(ws, frames)), None)
        out = self._compute(ws, frames)
        host = torch.empty(out.shape, dtype=torch.uint8, pin_memory=True)
        host.copy_(out, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return Pending(frames, host, event)

    def submit_split(self, ws: np.ndarray, frames: Sequence[int], batch: int) -> tuple[list[Pending], int]:
        """Submit ``frames`` in sub-batches of ``batch``, halving it on out-of-memory until it fits.

        Returns:
            The pending sub-batches in order and the batch size that worked.

        Raises:
            RenderError: Out of memory even at batch size 1.
        """
        pend: list[Pending] = []
        i = 0
        while i < len(frames):
            n = min(batch, len(frames) - i)
            try:
                pend.append(self.submit(ws[i : i + n], frames[i : i + n]))
                i += n
            except Exception as exc:
                if not is_oom(exc):
                    raise
                if self.is_cuda:
                    torch.cuda.empty_cache()
                if n <= 1:
                    raise RenderError(
                        f"out of memory on {self.device} even with batch size 1 at "
                        f"{self.width}x{self.height}", hint="use a smaller --size or another device") from None
                batch = max(1, n // 2)
                self.oom_halvings += 1
        return pend, batch


def auto_batch_size(generator: Generator, width: int, height: int, precision: torch.dtype = torch.float32) -> int:
    """A batch size that keeps the device busy without running out of memory.

    On CUDA the free memory is measured and a batch-1 probe's peak usage scales it (half of free memory, at most
    64). On CPU this is only the memory cap, about 2 megapixels of output (8 frames at 512x512), between 1 and
    16: whether batching pays there at all depends on the model, so the renderer measures batches up to this
    size and keeps the fastest (:func:`morphstudio.rendering.plan.plan_cpu_render`).
    """
    device = generator.device
    res = generator.resolution
    if device.type == "cuda":
        try:
            torch.cuda.synchronize(device)
            free, _ = torch.cuda.mem_get_info(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            b = Batcher(generator, width, height, "fit", precision)
            ws = generator.w_avg.detach().float().cpu().numpy()[None, None].repeat(generator.num_ws, 1)
            b.submit(ws, [0]).result()
            per_frame = max(1, torch.cuda.max_memory_allocated(device) - base)
            return int(max(1, min(64, (free * 0.5) // per_frame)))
        except Exception as exc:
            if not is_oom(exc):
                raise
            torch.cuda.empty_cache()
            return 1
    pixels = max(width * height, res * res)
    return int(max(1, min(16, (2 * 1024 * 1024) // pixels)))


def output_size(size: Sequence[int] | int | None, resolution: int) -> tuple[int, int]:
    """``(width, height)`` from an ``output.size`` value (``None`` = the model's resolution).

    Raises:
        RenderError: The size breaks :func:`morphstudio.formats.size_problem`'s rule (the scene's and --size's).
    """
    if size is None:
        return resolution, resolution
    if isinstance(size, (int, np.integer)):
        w = h = int(size)
    else:
        w, h = (int(v) for v in size)
    problem = size_problem(w, h)
    if problem:
        raise RenderError(f"output.size: {problem}")
    return w, h
