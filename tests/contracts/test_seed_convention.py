"""NVIDIA's seed convention, pinned against the official reference vectors (not against morphstudio's own code)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from morphstudio.latent import z_from_seed


@pytest.mark.parametrize("network", ["sg2ada", "sg3_t"])
def test_reference_z_rows_are_randomstate_seeds(reference_dir: Path, network: str) -> None:
    """Row i of ``z.npy`` (written by NVIDIA's own code) is ``np.random.RandomState(i).randn(512)``."""
    z = np.load(reference_dir / network / "z.npy")
    assert z.shape == (4, 512) and z.dtype == np.float64
    for seed, row in enumerate(z):
        np.testing.assert_array_equal(row, np.random.RandomState(seed).randn(512))


def test_z_from_seed_follows_the_reference(reference_dir: Path) -> None:
    """A scene's ``{seed: i}`` face is the reference file's row i, exactly."""
    z = np.load(reference_dir / "sg2ada" / "z.npy")
    for seed, row in enumerate(z):
        np.testing.assert_array_equal(np.asarray(z_from_seed(seed, 512), dtype=np.float64), row)
