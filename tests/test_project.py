"""Projection on the built-in model (and, when its loader is present, the reference StyleGAN2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from morphstudio.errors import ProjectionError
from morphstudio.faces import losses as L
from morphstudio.faces.encoder import builtin_encoder_path, resolve_encoder
from morphstudio.faces.project import ProjectConfig, Projector
from morphstudio.faces.report import psnr
from morphstudio.faces.synthetic import generate_faces


@pytest.fixture(scope="module")
def G():
    import morphstudio

    return morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")


def test_generated_face_is_projected_back_above_30db(G) -> None:
    """The issue's acceptance test: known latent -> image -> projection (no alignment) -> PSNR >= 30 dB."""
    torch.set_num_threads(2)
    faces, _ = generate_faces(G, [11])
    enc = resolve_encoder("auto", G)
    assert enc is not None, "the shipped encoder for the built-in model should be found"
    proj = Projector(G, ProjectConfig(space="w", steps=150, patience=60), encoder=enc, warn=lambda m: None)
    result = proj.project(faces)
    assert result.init == "encoder"
    assert psnr(faces[0], result.images[0]) >= 30.0
    assert result.ws.shape == (1, G.num_ws, G.w_dim)


def test_batch_of_images_and_shell(G) -> None:
    faces, _ = generate_faces(G, [3, 4])
    proj = Projector(G, ProjectConfig(steps=30, patience=0), encoder=None, warn=lambda m: None)
    result = proj.project(faces, masks=np.ones((2, 64, 64), np.float32))
    assert result.ws.shape == (2, 1, 100) and result.images.shape == (2, 64, 64, 3)
    assert len(result.losses) == 30 and result.losses[-1] < result.losses[0]
    norms = np.linalg.norm(result.ws[:, 0], axis=-1)
    assert np.all(np.abs(norms - 10) < 2.2)  # z stays in the Gaussian shell of radius ~sqrt(100)


def test_early_stop_on_plateau(G) -> None:
    faces, _ = generate_faces(G, [5])
    cfg = ProjectConfig(steps=400, lr=1e-9, w_noise=0.0, patience=10)
    result = Projector(G, cfg, warn=lambda m: None).project(faces)
    assert result.stopped_early and result.steps < 400


def test_far_latent_warns(G) -> None:
    faces, ws = generate_faces(G, [6])
    warnings: list[str] = []
    proj = Projector(G, ProjectConfig(space="w+", steps=1, lr=1e-9, w_noise=0.0, z_shell=False),
                     warn=warnings.append)
    proj.project(faces, init_ws=ws * 4)
    assert any("typical distance from w_avg" in w for w in warnings)


def test_bad_target_size(G) -> None:
    with pytest.raises(ProjectionError, match="must be 64x64"):
        Projector(G, ProjectConfig(steps=1), warn=lambda m: None).project(np.zeros((1, 32, 32, 3), np.uint8))


def test_bad_space(G) -> None:
    with pytest.raises(ProjectionError, match="space must be"):
        Projector(G, ProjectConfig(space="z"))


def test_perceptual_fallback_never_downloads(G, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    warnings: list[str] = []
    _, name = L.perceptual_loss("auto", generator=G, warn=warnings.append)
    assert name == "ms-ssim" and any("VGG16" in w for w in warnings)
    assert not home.exists() or not any(home.rglob("*"))  # nothing fetched
    with pytest.raises(ProjectionError, match="LPIPS needs VGG16 weights"):
        L.perceptual_loss("lpips", generator=G)
    with pytest.raises(ProjectionError, match="not found"):
        L.perceptual_loss("lpips", vgg_path=tmp_path / "nope.pth")


def test_vgg_features_from_a_local_file(tmp_path: Path) -> None:
    from torchvision.models import vgg16

    path = tmp_path / "vgg16.pth"
    feats = {f"features.{k}": v for k, v in vgg16(weights=None).features.state_dict().items()}
    torch.save(feats, path)
    module, name = L.perceptual_loss("lpips", vgg_path=path)
    assert name == "lpips-vgg16"
    a = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        same = module(a, a)
        diff = module(a, a.flip(-1))
    assert torch.allclose(same, torch.zeros(2), atol=1e-6) and (diff > 0).all()


def test_msssim_and_noise_regulariser() -> None:
    a = torch.rand(2, 3, 64, 64) * 2 - 1
    ms = L.MSSSIMLoss()
    assert torch.allclose(ms(a, a), torch.zeros(2), atol=1e-5)
    assert (ms(a, -a) > 0.5).all()
    white = [torch.randn(2, 1, 32, 32)]
    smooth = [torch.nn.functional.interpolate(torch.randn(2, 1, 8, 8), size=32, mode="bilinear")]
    assert (L.noise_regulariser(smooth) > 10 * L.noise_regulariser(white)).all()


def test_stylegan2_w_plus_with_noise_maps(reference_dir: Path) -> None:
    import morphstudio

    G2 = morphstudio.load_generator(reference_dir / "sg2ada" / "G_ema.safetensors", device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():
        img = G2.synthesis(G2.mapping(torch.randn(1, G2.z_dim)), noise_mode="const")
    target = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    result = Projector(G2, ProjectConfig(space="w+", steps=12, patience=0), warn=lambda m: None).project(target)
    assert result.ws.shape == (1, G2.num_ws, G2.w_dim)
    assert set(result.noise) == set(G2.noise_shapes()) and result.noise
    for n in result.noise.values():  # renormalised every step
        assert abs(float(n.std()) - 1) < 0.05
    assert result.losses[-1] < result.losses[0]


def test_shipped_encoder_is_small_and_documented() -> None:
    import morphstudio

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    stem = builtin_encoder_path(G)
    assert stem is not None
    assert stem.with_suffix(".safetensors").stat().st_size < 8_000_000
    assert (stem.parent / "README.md").is_file()
