"""Attribute strengths follow their keys without overshooting them (monotone PCHIP by default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import morphstudio
from morphstudio.timeline.testing import fake_latent_space

SPACE = fake_latent_space()


def _strengths(tmp_path: Path, keys: list[dict], **attr: object) -> np.ndarray:
    """Strength per frame, read back from the latents: (with attribute - without) along the direction."""
    d = np.random.default_rng(3).normal(size=SPACE.w_dim)
    np.save(tmp_path / "d.npy", d)
    base = {"output": {"fps": 20, "duration": 4}, "faces": {"a": {"seed": 1}, "b": {"seed": 2}},
            "timeline": [{"at": 0, "face": "a"}, {"at": 4, "face": "b"}]}
    plain = morphstudio.load_scene(base, latent_space=SPACE, base_dir=tmp_path)
    # normalize: false: strength 1 is the file's vector itself, so the strength is read back exactly.
    attribute = {"direction": "d.npy", "keys": keys, "normalize": False, **attr}
    edited = morphstudio.load_scene({**base, "attributes": {"x": attribute}}, latent_space=SPACE, base_dir=tmp_path)
    frames = np.arange(plain.frame_count + 1)
    delta = (edited.latents(frames) - plain.latents(frames)).astype(np.float64)[:, 0]
    return delta @ d / (d @ d)


# Closely spaced keys: a quick rise, a plateau, a quick fall back (what made faces go white or black).
KEYS = [{"at": 0, "value": 0}, {"at": 1.0, "value": 2}, {"at": 1.2, "value": 2}, {"at": 1.4, "value": -2},
        {"at": 1.6, "value": -2}, {"at": 4, "value": 0}]


def test_default_never_overshoots_closely_spaced_keys(tmp_path: Path) -> None:
    s = _strengths(tmp_path, KEYS)
    # Every frame stays within the keys' range [-2, 2] (a little float slack), and the two plateaus stay flat.
    assert s.max() <= 2 + 1e-6 and s.min() >= -2 - 1e-6, (s.min(), s.max())
    np.testing.assert_allclose(s[20:25], 2.0, atol=1e-6)   # 1.0 s .. 1.2 s at 20 fps
    np.testing.assert_allclose(s[28:33], -2.0, atol=1e-6)  # 1.4 s .. 1.6 s


def test_cubic_is_still_available_and_does_overshoot(tmp_path: Path) -> None:
    # Asking for cubic gives cubic: the swing past the keys the default avoids.
    s = _strengths(tmp_path, KEYS, interp="cubic")
    assert s.max() > 2.2 or s.min() < -2.2


def test_schema_default_is_pchip() -> None:
    from morphstudio.scene.schema import AttributeSpec

    assert AttributeSpec(direction="d.npy").interp == "pchip"
