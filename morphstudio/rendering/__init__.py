"""The streaming renderer: clock (frames <-> seconds), noise, batcher (device work), segments + resume, renderer.

Import :func:`render_latents` / :func:`render_scene` from :mod:`morphstudio.rendering.renderer` (torch is imported
there, so this package's ``__init__`` stays light).
"""

from __future__ import annotations

from typing import Any

__all__ = ["OutputSettings", "RenderPlan", "RenderResult", "plan_render", "render_latents", "render_scene"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from morphstudio.rendering import renderer

        return getattr(renderer, name)
    raise AttributeError(f"module 'morphstudio.rendering' has no attribute {name!r}")
