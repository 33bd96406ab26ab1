"""morphstudio: a streaming video face-morph renderer for StyleGAN-family generators.

Public API::

    import morphstudio
    G = morphstudio.load_generator("builtin:dcgan-faces64")       # or a .pkl / .pt / .safetensors path
    scene = morphstudio.load_scene("scenes/demo.yaml")
    ws = scene.latents(range(10))                                  # numpy [T, num_ws, w_dim]
    morphstudio.render(scene, output="out.mp4")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load_generator(*args: Any, **kwargs: Any) -> Any:
    """See :func:`morphstudio.generators.loading.load_generator` (imported lazily: torch is slow to import)."""
    from morphstudio.generators.loading import load_generator as _load

    return _load(*args, **kwargs)


def render(scene: Any, **kwargs: Any) -> Any:
    """Render a scene (a :class:`Scene` or a scene file path); see :func:`morphstudio.api.render`."""
    from morphstudio.api import render as _render

    return _render(scene, **kwargs)


def __getattr__(name: str) -> Any:
    # Lazy re-exports so `import morphstudio` does not pull in torch for scene-only users.
    if name in ("load_scene", "Scene"):
        from morphstudio import api

        return getattr(api, name)
    raise AttributeError(f"module 'morphstudio' has no attribute {name!r}")
