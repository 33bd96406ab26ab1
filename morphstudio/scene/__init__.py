"""Scene files: typed schema, YAML loading with line numbers, validation (never imports torch)."""

from morphstudio.scene.schema import NoiseSpec, OutputSpec, SceneSpec, json_schema
from morphstudio.scene.validate import Timing, load_spec
from morphstudio.scene.yamlmap import Locator, load_yaml

__all__ = ["Locator", "NoiseSpec", "OutputSpec", "SceneSpec", "Timing", "json_schema", "load_spec", "load_yaml"]
