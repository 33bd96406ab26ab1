"""The README's scene snippets name direction files that exist (paths in scenes are relative to scenes/)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_direction_files_exist() -> None:
    text = (ROOT / "README.md").read_text()
    named = re.findall(r"direction: ([\w./-]+\.npy)", text)
    assert named, "the README shows attribute examples with direction files"
    missing = [n for n in named if not (ROOT / "scenes" / n).is_file()]
    assert missing == [], f"README names direction files that do not exist under scenes/: {missing}"


def test_readme_attribute_example_runs(tmp_path: Path) -> None:
    # The attribute row of the scene reference, as a scene on the built-in model: it must load and evaluate.
    import morphstudio

    text = (ROOT / "README.md").read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith("| attributes |"))
    snippet = re.search(r"`attributes: (\{.*?\})`", row).group(1).replace("add/set", "add")
    import yaml

    attributes = yaml.safe_load(snippet)
    scene = morphstudio.load_scene({"model": "builtin:dcgan-faces64", "output": {"fps": 4, "duration": 2},
                                    "faces": {"a": {"seed": 1}}, "timeline": [{"at": 0, "face": "a"}],
                                    "attributes": attributes}, base_dir=ROOT / "scenes", device="cpu")
    assert scene.latents([0, 4]).shape == (2, 1, 100)
