"""A scene on top of the engine: its output, inputs, generator, latents and noise.

The scene arrives as :class:`RenderableScene`, the few things the renderer asks of it, so that ``rendering/``
does not import :mod:`morphstudio.api` (which imports the renderer to offer ``morphstudio.render``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from morphstudio.devices import resolve_device
from morphstudio.rendering.batcher import output_size
from morphstudio.rendering.clock import FrameSelection
from morphstudio.rendering.engine import RenderResult, render_latents
from morphstudio.rendering.outputs import OutputOverride, OutputSettings, check_output
from morphstudio.sinks.base import Sink
from morphstudio.sinks.lock import OutputClaim
from morphstudio.sinks.window import preview_sinks



class RenderableScene(Protocol):
    """What :func:`render_scene` uses of a scene (:class:`morphstudio.api.Scene` is one)."""

    @property
    def fps(self) -> float: ...
    @property
    def frame_count(self) -> int: ...
    @property
    def duration(self) -> float: ...
    @property
    def noise(self) -> Any: ...
    def generator(self) -> Any: ...
    def latents(self, frames: Sequence[int]) -> Any: ...
    def resolved_output(self, override: Any = None) -> Any: ...
    def input_paths(self) -> Any: ...
    def fingerprint(self) -> str: ...


def render_scene(
    scene: RenderableScene,
    *,
    output: OutputOverride = None,
    frames: FrameSelection = None,
    batch: int | None = None,
    device: str | torch.device | None = None,
    precision: str | torch.dtype | None = None,
    preview: bool = False,
    resume: bool = False,
    sinks: Sequence[Sink] | None = None,
    progress: bool = True,
    jobs: int | None = None,
    threads: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = None,
    recalibrate: bool = False,
) -> RenderResult:
    """Render a :class:`morphstudio.api.Scene` (what ``morphstudio.render(scene, ...)`` calls).

    Args:
        scene: A loaded scene (``morphstudio.load_scene``).
        output: Override of the scene's output: a path, a dict of fields, ``False`` for no file, or ``None``.
        frames: ``"A:B"`` / range of frames to render (Python slice semantics).
        batch: Frames per generator call (default: automatic).
        device: Run the generator here instead of the scene's device.
        precision: ``fp32`` | ``fp16`` | ``bf16``.
        preview: Also show the frames in a window.
        resume: Reuse finished segments of an interrupted render.
        sinks: Extra sinks.
        progress: Progress bar on a terminal.
        jobs: Segment encoders at once.
        threads: Torch CPU threads (default: planned, see ``morphstudio.rendering.plan``).
        should_stop: Polled each batch; True stops the render.
        log: Where notes go.
        recalibrate: Measure this machine's generator and encoder costs again even if they are cached.

    Returns:
        A :class:`RenderResult`.
    """
    out = scene.resolved_output(output)
    inputs = scene.input_paths()
    claim = None
    if out is not None and out.path is not None:
        # Before the model loads: a refused output, or one another render is writing, fails at once.
        check_output(out, inputs)
        claim = OutputClaim(out.path, out.label)
        claim.acquire()
    try:
        gen = scene.generator()
        if device is not None:
            dev = resolve_device(device)
            if gen.device != dev:
                gen = gen.to(dev)
        extra = list(sinks or [])
        if preview:  # no display: the file is still written, the window is skipped with a note
            writes_file = out is not None and out.path is not None
            extra += preview_sinks(preview_scale(out, gen.resolution), writes_file=writes_file, log=log)
        fingerprint = scene.fingerprint()
    except BaseException:
        if claim is not None:
            claim.release()
            claim.remove_created()
        raise
    # render_latents owns the claim from here: it releases it however the render ends.
    return render_latents(
        gen, scene.latents, scene.frame_count, scene.fps,
        output=out, noise=scene.noise, duration=scene.duration,
        frames=frames, batch=batch, precision=precision, sinks=extra, fingerprint=fingerprint,
        resume=resume, jobs=jobs, cpu_threads=threads, progress=progress, should_stop=should_stop, log=log,
        inputs=inputs, claim=claim, recalibrate=recalibrate,
    )


def preview_scale(out: OutputSettings | None, resolution: int, target: int = 512) -> float:
    """Window zoom so small renders are visible: the long side shown at about ``target`` pixels (never shrunk
    below 1:1 for large ones, beyond which the window would overflow a laptop screen)."""
    w, h = output_size(out.size if out is not None else None, resolution)
    return max(1.0, target / max(w, h)) if max(w, h) < target else min(1.0, 1024 / max(w, h))
