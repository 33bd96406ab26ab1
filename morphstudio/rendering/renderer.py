"""The renderer's public names in one place (the import path scripts, the CLI and the API use).

The work is split by job: :mod:`~morphstudio.rendering.plan` decides (frames, size, batch, threads, segments),
:mod:`~morphstudio.rendering.engine` runs the loop (latents -> batches -> bounded queues -> the writer's sinks),
:mod:`~morphstudio.rendering.scene_render` puts a scene on top, and the output itself — lock, segment files,
resume, encoders, join, audio — is :class:`morphstudio.sinks.segmented.SegmentedVideoWriter`'s.
"""

from __future__ import annotations

from morphstudio.rendering.engine import LATENT_CHUNK, LatentsFn, OutputWriter, RenderResult, render_latents
from morphstudio.rendering.outputs import Inputs, OutputSettings, check_output, resolve_output
from morphstudio.rendering.plan import RenderPlan, default_jobs, plan_render
from morphstudio.rendering.scene_render import preview_scale, render_scene

__all__ = [
    "LATENT_CHUNK",
    "Inputs",
    "LatentsFn",
    "OutputSettings",
    "OutputWriter",
    "RenderPlan",
    "RenderResult",
    "check_output",
    "default_jobs",
    "plan_render",
    "preview_scale",
    "render_latents",
    "render_scene",
    "resolve_output",
]
