"""StyleGAN2 backend: images equal the official implementation's; what only StyleGAN2 has (noise, modconv, clamp).

The contract every backend shares (shapes, batching, uint8, convert round trip) is in tests/contracts/.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from morphstudio.errors import CheckpointError, ModelError
from morphstudio.generators.base import to_uint8
from morphstudio.generators.stylegan2 import StyleGAN2Generator
from tests.tiny import tiny_stylegan2

TOL = 1e-4  # the bar; a faithful fp32 implementation lands near 1e-6
TAGS = {"psi1": (1.0, None), "psi0.7": (0.7, None), "psi0.7_cutoff4": (0.7, 4)}


@pytest.fixture(scope="module")
def ref(reference_dir: Path) -> Path:
    return reference_dir / "sg2ada"


@pytest.fixture(scope="module")
def G(ref: Path) -> StyleGAN2Generator:
    cfg = json.loads((ref / "config.json").read_text())
    gen = StyleGAN2Generator.from_state(cfg["init_kwargs"], load_file(ref / "G_ema.safetensors"), source="sg2ada")
    assert gen.num_ws == cfg["num_ws"]
    return gen.eval().requires_grad_(False)


def tiny(**kwargs: object) -> StyleGAN2Generator:
    init_kwargs, state = tiny_stylegan2(**kwargs)
    return StyleGAN2Generator.from_state(init_kwargs, state, source="tiny").requires_grad_(False)


def npy(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.load(path))


# --- reference images -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", list(TAGS))
def test_mapping_matches_official(G: StyleGAN2Generator, ref: Path, tag: str) -> None:
    psi, cutoff = TAGS[tag]
    z = npy(ref / "z.npy").float()
    with torch.no_grad():
        ws = G.mapping(z, psi=psi, cutoff=cutoff)
    assert (ws - npy(ref / f"ws_{tag}.npy")).abs().max().item() <= TOL


@pytest.mark.parametrize("tag", list(TAGS))
def test_synthesis_matches_official(G: StyleGAN2Generator, ref: Path, tag: str) -> None:
    ws = npy(ref / f"ws_{tag}.npy")
    with torch.no_grad():
        img = torch.cat([G.synthesis(ws[i:i + 1], noise_mode="const") for i in range(len(ws))])
    expected = npy(ref / f"img_{tag}_const.npy")
    assert img.shape == expected.shape
    assert (img - expected).abs().max().item() <= TOL

    # uint8: only pixels sitting on a rounding boundary may differ, by one level.
    u8 = to_uint8(img).numpy().astype(int)
    diff = np.abs(u8 - np.load(ref / f"img_{tag}_const_uint8.npy").astype(int))
    print(f"{tag}: {int((diff > 0).sum())} of {diff.size} uint8 values differ by one level")
    assert diff.max() <= 1
    assert (diff > 0).sum() <= 10


def test_noise_none_matches_official(G: StyleGAN2Generator, ref: Path) -> None:
    ws = npy(ref / "ws_psi1.npy")
    with torch.no_grad():
        img = torch.cat([G.synthesis(ws[i:i + 1], noise_mode="none") for i in range(len(ws))])
    assert (img - npy(ref / "img_psi1_none.npy")).abs().max().item() <= TOL


def test_z_to_image_in_one_call(G: StyleGAN2Generator, ref: Path) -> None:
    z = npy(ref / "z.npy").float()
    with torch.no_grad():
        img = G(z, psi=0.7)
    assert (img - npy(ref / "img_psi0.7_const.npy")).abs().max().item() <= TOL


def test_fused_and_unfused_modconv_agree() -> None:
    gen = tiny(resolution=16)
    ws = gen.mapping(torch.randn(3, gen.z_dim, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        gen.modconv = "fused"
        fused = gen.synthesis(ws)
        gen.modconv = "unfused"
        unfused = gen.synthesis(ws)
    assert (fused - unfused).abs().max().item() <= 1e-5


def test_state_dict_round_trips_official_names(G: StyleGAN2Generator, ref: Path) -> None:
    official = load_file(ref / "G_ema.safetensors")
    own = G.state_dict()
    assert set(own) == set(official)
    assert all(torch.equal(own[k], official[k]) for k in official)


# --- layout, layers, latent space -----------------------------------------------------------------------------


def test_layers_and_noise_shapes(G: StyleGAN2Generator) -> None:
    layers = G.layers()
    by_name = {layer.name: layer for layer in layers}
    assert G.num_ws == 10
    assert by_name["b4.conv1"].w_index == 0
    assert by_name["b4.torgb"].w_index == by_name["b8.conv0"].w_index == 1
    assert by_name["b64.torgb"].w_index == G.num_ws - 1
    assert by_name["b32.conv0"].resolution == 32 and by_name["b32.conv0"].channels == 128
    assert sorted({layer.w_index for layer in layers}) == list(range(G.num_ws))
    shapes = G.noise_shapes()
    assert len(shapes) == 9 and shapes["b4.conv1"] == (4, 4) and shapes["b64.conv1"] == (64, 64)
    assert G.latent_space().resolutions == (4, 8, 8, 16, 16, 32, 32, 64, 64, 64)


def test_stylegan3_repo_flat_kwargs_render_the_same() -> None:
    """(Their different defaults are pinned in tests/contracts/test_generator_config.py.)"""
    flat, state = tiny_stylegan2(flat=True)
    gen = StyleGAN2Generator.from_state(flat, state)
    nested, _ = tiny_stylegan2()
    same = StyleGAN2Generator.from_state(nested, state)
    ws = gen.mapping(torch.randn(2, 32, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        assert torch.allclose(gen.synthesis(ws), same.synthesis(ws), atol=1e-6)


def test_conditional_model() -> None:
    gen = tiny(c_dim=5)
    assert "mapping.embed.weight" in gen.state_dict()
    z = torch.randn(3, gen.z_dim, generator=torch.Generator().manual_seed(2))
    c0 = torch.nn.functional.one_hot(torch.tensor([0, 0, 0]), 5).float()
    c1 = torch.nn.functional.one_hot(torch.tensor([1, 2, 3]), 5).float()
    with torch.no_grad():
        ws0, ws1 = gen.mapping(z, c0), gen.mapping(z, c1)
        img = gen.synthesis(ws1)
    assert ws0.shape == (3, gen.num_ws, gen.w_dim)
    assert not torch.allclose(ws0, ws1)
    assert img.shape == (3, 3, 32, 32) and torch.isfinite(img).all()
    with pytest.raises(ModelError, match="conditional"):
        gen.mapping(z)


def test_conv_clamp_bounds_every_layer() -> None:
    clamp = 0.01
    gen = tiny(conv_clamp=clamp)
    free = tiny(conv_clamp=None)
    ws = gen.mapping(torch.randn(2, gen.z_dim, generator=torch.Generator().manual_seed(3)))
    with torch.no_grad():
        img = gen.synthesis(ws)
        unclamped = free.synthesis(ws)
    assert img.shape == (2, 3, 32, 32)
    # Each ToRGB output is clamped and the skip upsampling keeps the bound, so 4 blocks stay within 4 * clamp.
    assert img.abs().max().item() <= 4 * clamp + 1e-6
    assert unclamped.abs().max().item() > 4 * clamp


# --- noise ----------------------------------------------------------------------------------------------------


def test_noise_modes_and_override() -> None:
    gen = tiny(resolution=16)
    ws = gen.mapping(torch.randn(2, gen.z_dim, generator=torch.Generator().manual_seed(4)))
    with torch.no_grad():
        const_a, const_b = gen.synthesis(ws, "const"), gen.synthesis(ws, "const")
        rand_a, rand_b = gen.synthesis(ws, "random"), gen.synthesis(ws, "random")
        none = gen.synthesis(ws, "none")
        shapes = gen.noise_shapes()
        zeros = {name: torch.zeros(1, 1, *hw) for name, hw in shapes.items()}
        stored = {name: gen.synthesis_network.get_submodule(name).noise_const for name in shapes}
        one = gen.synthesis(ws, "const", noise={"b8.conv0": torch.randn(2, 1, 8, 8)})
        assert torch.equal(const_a, const_b)
        assert not torch.allclose(rand_a, rand_b)
        assert not torch.allclose(none, const_a)
        assert torch.allclose(gen.synthesis(ws, "const", noise=zeros), none, atol=1e-6)
        assert torch.allclose(gen.synthesis(ws, "none", noise=stored), const_a, atol=1e-6)
        assert not torch.allclose(one, const_a)
    with pytest.raises(ModelError, match="b9.conv0"):
        gen.synthesis(ws, noise={"b9.conv0": torch.zeros(9, 9)})
    with pytest.raises(ModelError, match=r"\[2, 1, 8, 8\]"):
        gen.synthesis(ws, noise={"b8.conv0": torch.zeros(1, 1, 4, 4)})


def test_gradients_flow_for_projection() -> None:
    gen = tiny(resolution=8)
    ws = gen.mapping(torch.randn(1, gen.z_dim)).detach().requires_grad_(True)
    gen.synthesis(ws).square().mean().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0


def test_precision_on_cpu_stays_fp32() -> None:
    gen = tiny(resolution=16)
    ws = gen.mapping(torch.randn(2, gen.z_dim, generator=torch.Generator().manual_seed(6)))
    with torch.no_grad():
        before = gen.synthesis(ws)
        gen.set_precision(torch.bfloat16)
        after = gen.synthesis(ws)
    assert after.dtype == torch.float32 and torch.equal(before, after)
    with pytest.raises(ModelError):
        gen.set_precision(torch.float64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_cuda(dtype: torch.dtype) -> None:
    init_kwargs, state = tiny_stylegan2(resolution=64, num_fp16_res=2, conv_clamp=256)
    gen = StyleGAN2Generator.from_state(init_kwargs, state).cuda().requires_grad_(False)
    ws = gen.mapping(torch.randn(4, gen.z_dim, device="cuda"))
    with torch.no_grad():
        full = gen.synthesis(ws)
        gen.set_precision(dtype)
        half = gen.synthesis(ws)
    assert half.dtype == torch.float32
    assert (half - full).abs().max().item() < 0.1


# --- errors ---------------------------------------------------------------------------------------------------


def test_mismatched_state_names_the_tensor() -> None:
    init_kwargs, state = tiny_stylegan2()
    bad = dict(state)
    bad["synthesis.b8.conv0.weight"] = torch.zeros(32, 16, 3, 3)
    with pytest.raises(CheckpointError, match=r"model\.pkl: tensor 'synthesis\.b8\.conv0\.weight' has shape "
                                              r"\[32, 16, 3, 3\] .* needs \[32, 32, 3, 3\]"):
        StyleGAN2Generator.from_state(init_kwargs, bad, source="model.pkl")
    missing = {k: v for k, v in state.items() if k != "synthesis.b16.torgb.bias"}
    with pytest.raises(CheckpointError, match=r"'synthesis\.b16\.torgb\.bias' is missing.*\[3\]"):
        StyleGAN2Generator.from_state(init_kwargs, missing, source="model.pkl")
    extra = {**state, "synthesis.b64.conv0.weight": torch.zeros(8, 8, 3, 3)}
    with pytest.raises(CheckpointError, match=r"unexpected tensor 'synthesis\.b64\.conv0\.weight'"):
        StyleGAN2Generator.from_state(init_kwargs, extra, source="model.pkl")


def test_unsupported_settings_are_clear_errors() -> None:
    init_kwargs, state = tiny_stylegan2()
    resnet = {**init_kwargs, "synthesis_kwargs": {**init_kwargs["synthesis_kwargs"], "architecture": "resnet"}}
    with pytest.raises(ModelError, match="architecture 'resnet'"):
        StyleGAN2Generator.from_state(resnet, state)
    odd = {**init_kwargs, "synthesis_kwargs": {**init_kwargs["synthesis_kwargs"], "wobble": 3}}
    with pytest.raises(CheckpointError, match="wobble=3"):
        StyleGAN2Generator.from_state(odd, state)
    with pytest.raises(CheckpointError, match="img_resolution=48"):
        StyleGAN2Generator.from_state({**init_kwargs, "img_resolution": 48}, state)
