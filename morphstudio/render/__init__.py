"""The streaming renderer: clock (frames <-> seconds), noise, batcher (device work), segments + resume, renderer.

Import :func:`render_latents` / :func:`render_scene` from :mod:`morphstudio.render.renderer` (torch is imported
there, so this package's ``__init__`` stays light).

``morphstudio.render`` is also the public *function* ``morphstudio.render(scene, ...)``: once this subpackage
is imported, Python binds the name ``render`` on the ``morphstudio`` package to this module, which would hide
the lazy function. So the module itself is callable and forwards to :func:`morphstudio.api.render`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["OutputSettings", "RenderPlan", "RenderResult", "plan_render", "render_latents", "render_scene"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from morphstudio.render import renderer

        return getattr(renderer, name)
    raise AttributeError(f"module 'morphstudio.render' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """This module, callable as ``morphstudio.render(scene, **options)``."""

    def __call__(self, scene: Any, **kwargs: Any) -> Any:
        from morphstudio.api import render

        return render(scene, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
