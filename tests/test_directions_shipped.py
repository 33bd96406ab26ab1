"""The directions shipped for the built-in model, `directions list|show|analogy`, and hostile provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from morphstudio.cli import main
from morphstudio.edit import directions as dirs
from morphstudio.edit.grids import analogy_latents
from morphstudio.errors import SceneError

SHIPPED = ("smile", "mouth_open", "eyes_open", "yaw", "pitch", "age", "gender")
KEYS = ("model", "model_fingerprint", "method", "label", "label_source", "n_samples", "heldout_score",
        "heldout_metric", "layers", "label_mean", "label_std", "intercept", "scale", "semantics", "date")


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_direction_has_its_provenance(name: str) -> None:
    path = dirs.resolve(name, "builtin:dcgan-faces64", Path("/nonexistent"))
    d = dirs.load(path)
    assert d.vector.shape == (100,) and [k for k in KEYS if k not in d.provenance] == []
    assert d.provenance["label"] == name and d.semantics == "set" and d.provenance["n_samples"] >= 1000
    assert (Path(__file__).resolve().parents[1] / "docs" / "directions" / f"{name}.png").is_file()


def test_a_scene_uses_a_shipped_direction_by_name(tmp_path: Path) -> None:
    import morphstudio

    spec = {"model": "builtin:dcgan-faces64", "output": {"fps": 4, "duration": 2}, "faces": {"a": {"seed": 1}},
            "timeline": [{"at": 0, "face": "a"}],
            "attributes": {"s": {"direction": "smile", "keys": [{"at": 0, "value": 0}, {"at": 1, "value": 2}]}}}
    ws = morphstudio.load_scene(spec, base_dir=tmp_path, device="cpu").latents([0, 4]).astype(np.float64)
    d = dirs.load(dirs.resolve("smile", "builtin:dcgan-faces64", tmp_path))
    moved = ws[1, 0] - ws[0, 0]
    np.testing.assert_allclose(moved, 2 * float(d.provenance["scale"]) * d.unit, atol=1e-4)


def test_list_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["directions", "list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in SHIPPED)
    assert main(["directions", "show", "age", "--grid", "g.png", "--seeds", "1-2", "--strengths=-1,0,1"]) == 0
    out = capsys.readouterr().out
    assert "semantics   set" in out and "one standard deviation of its label 'age'" in out
    from PIL import Image
    assert Image.open(tmp_path / "g.png").size == (3 * 64, 2 * 64)


def test_analogy_corners() -> None:
    a, b, c = np.zeros(4), np.eye(4)[0], np.eye(4)[1]
    g = analogy_latents(a, b, c, 5)
    np.testing.assert_allclose(g[0, 0], a)
    np.testing.assert_allclose(g[0, -1], b)
    np.testing.assert_allclose(g[-1, 0], c)
    np.testing.assert_allclose(g[-1, -1], c + b - a)
    np.testing.assert_allclose(g[2, 2], 0.5 * (b + c))


def test_provenance_that_is_not_a_json_object_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "d.npz"
    np.savez(p, direction=np.ones(8), provenance=np.frombuffer(b"[1, 2]", np.uint8))
    with pytest.raises(SceneError, match="provenance member that is not a JSON object"):
        dirs.load(p)
    np.savez(p, direction=np.ones(8), provenance=np.frombuffer(b'{"scale": -1}', np.uint8))
    with pytest.raises(SceneError, match="provenance scale must be a positive number, got -1"):
        dirs.load(p)
