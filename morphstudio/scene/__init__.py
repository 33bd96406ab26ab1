"""Scene files: typed schema, YAML loading with line numbers, validation (never imports torch).

Names are re-exported lazily so ``python -m morphstudio.scene.schema`` runs its module cleanly.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "NoiseSpec": "morphstudio.scene.schema",
    "OutputSpec": "morphstudio.scene.schema",
    "SceneSpec": "morphstudio.scene.schema",
    "json_schema": "morphstudio.scene.schema",
    "Timing": "morphstudio.scene.validate",
    "load_spec": "morphstudio.scene.validate",
    "Locator": "morphstudio.scene.yamlmap",
    "load_yaml": "morphstudio.scene.yamlmap",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'morphstudio.scene' has no attribute {name!r}")
