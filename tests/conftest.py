"""Shared test fixtures.

Reference data lives in ``../shared/`` beside the project root (in development sessions and in CI). Tests that
need it fail with a clear message when it is missing, everywhere: a skip would make a broken checkout look green.
Only "no CUDA" may skip a test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference``; its absence fails the test with the reason (in CI and on every machine alike)."""
    if not REFERENCE.is_dir():
        pytest.fail(f"reference data missing: {REFERENCE} (the tests need ../shared beside the checkout; see "
                    "../shared/README.md)", pytrace=False)
    return REFERENCE


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Projections are cached per user; tests get their own empty cache so they neither read nor fill ~/.cache."""
    os.environ["MORPHSTUDIO_CACHE"] = str(tmp_path_factory.mktemp("morphstudio-cache"))


@pytest.fixture(autouse=True)
def _no_network_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing may download weights in tests: point torch's hub cache at an empty folder and go offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
