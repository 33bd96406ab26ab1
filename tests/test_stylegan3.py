"""StyleGAN3 backend: exact match with NVIDIA's official config-T outputs, batching, config-R, and bad checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from morphstudio.errors import CheckpointError, ModelError
from morphstudio.generators.base import to_uint8
from morphstudio.generators.stylegan3 import StyleGAN3Generator, filtered_lrelu

TOL = 1e-4  # the project's bar; a faithful fp32 implementation lands near 1e-6


@pytest.fixture(scope="module")
def sg3_dir(reference_dir: Path) -> Path:
    return reference_dir / "sg3_t"


@pytest.fixture(scope="module")
def sg3_config(sg3_dir: Path) -> dict:
    return json.loads((sg3_dir / "config.json").read_text())


@pytest.fixture(scope="module")
def sg3_state(sg3_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(sg3_dir / "G_ema.safetensors"))


@pytest.fixture(scope="module")
def sg3(sg3_config: dict, sg3_state: dict[str, torch.Tensor]) -> StyleGAN3Generator:
    gen = StyleGAN3Generator.from_state(sg3_config["init_kwargs"], sg3_state, source="sg3_t/G_ema.safetensors")
    return gen.requires_grad_(False)


def _ref(sg3_dir: Path, name: str) -> np.ndarray:
    return np.load(sg3_dir / name)


# --- config-T against the official implementation -----------------------------------------------------------------


def test_config_and_state_round_trip(sg3: StyleGAN3Generator, sg3_config: dict,
                                     sg3_state: dict[str, torch.Tensor]) -> None:
    assert (sg3.z_dim, sg3.w_dim, sg3.c_dim, sg3.resolution) == (512, 512, 0, 64)
    assert sg3.num_ws == sg3_config["num_ws"] == 16
    out = sg3.state_dict()
    assert set(out) == set(sg3_state)  # same official names, nothing added or lost (None filters stay absent)
    for name, tensor in sg3_state.items():
        assert torch.equal(out[name], tensor), name
    # The stored kwargs rebuild the same model; loading neither draws from the global RNG nor aliases its input.
    torch.manual_seed(7)
    again = StyleGAN3Generator.from_state(json.loads(json.dumps(sg3.init_kwargs)), out)
    assert torch.rand(1).item() == torch.rand(1, generator=torch.Generator().manual_seed(7)).item()
    assert again.init_kwargs == sg3.init_kwargs
    assert again.state_dict()["synthesis.input.transform"].data_ptr() != out["synthesis.input.transform"].data_ptr()


@pytest.mark.parametrize("tag, psi, cutoff", [("psi1", 1.0, None), ("psi0.7", 0.7, None), ("psi0.7_cutoff8", 0.7, 8)])
def test_mapping_matches_official(sg3: StyleGAN3Generator, sg3_dir: Path, tag: str, psi: float,
                                  cutoff: int | None) -> None:
    z = torch.from_numpy(_ref(sg3_dir, "z.npy"))
    ws = sg3.mapping(z, psi=psi, cutoff=cutoff)
    np.testing.assert_allclose(ws.numpy(), _ref(sg3_dir, f"ws_{tag}.npy"), rtol=0, atol=TOL)


@pytest.mark.parametrize("tag", ["psi1", "psi0.7", "psi0.7_cutoff8"])
def test_images_match_official(sg3: StyleGAN3Generator, sg3_dir: Path, tag: str) -> None:
    ws = torch.from_numpy(_ref(sg3_dir, f"ws_{tag}.npy"))
    img = sg3.synthesis(ws, noise_mode="const")
    ref = _ref(sg3_dir, f"img_{tag}_const.npy")
    assert img.dtype == torch.float32 and img.shape == ref.shape
    assert np.abs(img.numpy() - ref).max() <= TOL

    # uint8 frames: the same conversion as NVIDIA's; a value sitting on a rounding edge may land one level off.
    u8 = to_uint8(img).numpy().astype(int)
    ref_u8 = _ref(sg3_dir, f"img_{tag}_const_uint8.npy").astype(int)
    diff = np.abs(u8 - ref_u8)
    assert diff.max() <= 1
    assert np.count_nonzero(diff) <= 0.001 * diff.size, f"{np.count_nonzero(diff)} of {diff.size} values one off"


def test_input_transform_matches_official(sg3: StyleGAN3Generator, sg3_dir: Path) -> None:
    ws = torch.from_numpy(_ref(sg3_dir, "ws_psi1.npy"))
    transform = torch.from_numpy(_ref(sg3_dir, "transform.npy"))
    buf = sg3.synthesis_network.input.transform
    saved = buf.clone()
    try:
        buf.copy_(transform)
        img = sg3.synthesis(ws)
        assert np.abs(img.numpy() - _ref(sg3_dir, "img_psi1_transform.npy")).max() <= TOL
        # The reference transform is gen_images.py's --translate=0.1,-0.05 --rotate=10.
        sg3.set_input_transform(translate=(0.1, -0.05), rotate_deg=10)
        assert torch.allclose(buf, transform, atol=1e-6)
    finally:
        buf.copy_(saved)


def test_noise_modes_and_layer_table(sg3: StyleGAN3Generator, sg3_dir: Path) -> None:
    ws = torch.from_numpy(_ref(sg3_dir, "ws_psi1.npy"))[:1]
    const = sg3.synthesis(ws, noise_mode="const")
    assert torch.equal(const, sg3.synthesis(ws, noise_mode="random"))  # SG3 has no noise inputs
    assert torch.equal(const, sg3.synthesis(ws, noise_mode="none"))
    assert sg3.noise_shapes() == {}
    with pytest.raises(ModelError, match="no noise inputs"):
        sg3.synthesis(ws, noise={"L0_36_64": torch.zeros(1, 1, 36, 36)})

    layers = sg3.layers()
    assert [layer.w_index for layer in layers] == list(range(16))
    assert layers[0].name == "input" and layers[1].name == "L0_36_64" and layers[-1].name == "L14_64_3"
    res = [layer.resolution for layer in layers]
    assert res == sorted(res) and res[0] == 16 and res[-1] == 64  # coarse -> fine sampling rates
    space = sg3.latent_space()
    assert space.num_ws == 16 and len(space.resolutions) == 16


def test_bf16_precision_runs_close(sg3_config: dict, sg3_state: dict[str, torch.Tensor], sg3_dir: Path) -> None:
    gen = StyleGAN3Generator.from_state(sg3_config["init_kwargs"], sg3_state).requires_grad_(False)
    gen.set_precision(torch.bfloat16)
    ws = torch.from_numpy(_ref(sg3_dir, "ws_psi1.npy"))[:1]
    img = gen.synthesis(ws)
    assert img.dtype == torch.float32
    assert (img - torch.from_numpy(_ref(sg3_dir, "img_psi1_const.npy"))[:1]).abs().max().item() < 0.05


def test_constructor_designs_the_official_filters(sg3_config: dict, sg3_state: dict[str, torch.Tensor]) -> None:
    """Layer layout (sampling rates, cutoffs, band widths, tap counts) derived from the kwargs alone reproduces
    every filter stored in the official checkpoint, so the derived paddings and factors are the official ones."""
    built = StyleGAN3Generator.from_kwargs(sg3_config["init_kwargs"]).state_dict()
    filters = [k for k in sg3_state if k.endswith("_filter")]
    assert len(filters) == 28
    for key in filters:
        assert torch.allclose(built[key], sg3_state[key], atol=1e-7), key


def test_conditional_model_uses_its_label() -> None:
    kwargs = {"z_dim": 16, "w_dim": 16, "c_dim": 3, "img_resolution": 16, "img_channels": 3, "num_layers": 4,
              "channel_base": 256, "channel_max": 16}
    torch.manual_seed(0)
    gen = StyleGAN3Generator.from_kwargs(kwargs).requires_grad_(False)
    state = gen.state_dict()
    assert state["mapping.embed.weight"].shape == (16, 3) and state["mapping.fc0.weight"].shape == (16, 32)
    assert gen.num_ws == 6
    z = torch.randn(2, 16)
    with pytest.raises(ModelError, match="conditional"):
        gen.mapping(z)
    c0, c1 = torch.eye(3)[[0, 0]], torch.eye(3)[[1, 1]]
    assert not torch.allclose(gen.mapping(z, c0), gen.mapping(z, c1))
    img = gen.synthesis(gen.mapping(z, c0))
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()


def _naive_filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, b: torch.Tensor,
                          up: int, down: int, padding: tuple[int, int, int, int], gain: float, slope: float,
                          clamp: float) -> torch.Tensor:
    """The textbook definition: zero insertion, pad/crop, full 2-D convolutions, every pixel computed."""
    n, c, h, w = x.shape
    x = x + b.view(1, -1, 1, 1)
    z = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    z[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = padding
    z = F.pad(z, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    z = z[:, :, max(-py0, 0): z.shape[2] - max(-py1, 0), max(-px0, 0): z.shape[3] - max(-px1, 0)]

    def conv(img: torch.Tensor, f: torch.Tensor, gain2: float) -> torch.Tensor:
        f2 = torch.outer(f, f) if f.ndim == 1 else f
        k = (f2 * gain2).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
        return F.conv2d(img, k, groups=c)

    z = conv(z, fu, up * up) if fu is not None else z
    z = F.leaky_relu(z, slope) * gain
    z = z.clamp(-clamp, clamp)
    z = conv(z, fd, 1.0) if fd is not None else z
    return z[:, :, ::down, ::down]


@pytest.mark.parametrize("radial", [False, True])
@pytest.mark.parametrize("padding", [(11, 10, 11, 10), (-3, 5, 2, -4)])
def test_filtered_lrelu_equals_textbook_definition(radial: bool, padding: tuple[int, int, int, int]) -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 9, 9, generator=gen, dtype=torch.float64) * 3
    fu = torch.rand(6, generator=gen, dtype=torch.float64)  # asymmetric: catches a missing flip
    fd = torch.rand(6, 6, generator=gen, dtype=torch.float64) if radial else torch.rand(6, generator=gen,
                                                                                       dtype=torch.float64)
    b = torch.randn(4, generator=gen, dtype=torch.float64)
    args = (x, fu, fd, b, 2, 2, padding)
    got = filtered_lrelu(*args, gain=1.4, slope=0.2, clamp=2.5)
    want = _naive_filtered_lrelu(*args, gain=1.4, slope=0.2, clamp=2.5)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-12)


def test_fp16_is_a_gpu_setting(sg3: StyleGAN3Generator, sg3_dir: Path) -> None:
    """As in the official code, fp16 layers run in fp32 on the CPU: the image is unchanged."""
    ws = torch.from_numpy(_ref(sg3_dir, "ws_psi1.npy"))[:1]
    ref = sg3.synthesis(ws)
    try:
        sg3.set_precision(torch.float16)
        assert torch.equal(sg3.synthesis(ws), ref)
    finally:
        sg3.set_precision(torch.float32)


# --- config-R -------------------------------------------------------------------------------------------------


R_KWARGS = {
    "z_dim": 32, "w_dim": 32, "c_dim": 0, "img_resolution": 32, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2}, "channel_base": 512, "channel_max": 32,
    "magnitude_ema_beta": 0.999, "conv_kernel": 1, "use_radial_filters": True,
}


def make_config_r_state(template: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """A config-R ``G_ema`` state dict in the official naming, made from a config-T one of the same size.

    Config-R differs from config-T by 1x1 convolutions and by 2-D (radially symmetric) down-sampling filters in
    every layer that is not critically sampled (all but the last three). The radial filters here are outer
    products of the separable ones, normalised: the official shapes and a genuine low-pass, not NVIDIA's jinc
    design. All weights are small random values.
    """
    gen = torch.Generator().manual_seed(seed)
    names = sorted({k.split(".")[1] for k in template if k.startswith("synthesis.L")},
                   key=lambda n: int(n[1:].split("_")[0]))
    num_layers = len(names) - 1
    critical = set(names[num_layers - 2:])  # num_critical = 2, plus ToRGB
    state: dict[str, torch.Tensor] = {}
    for key, value in template.items():
        parts = key.split(".")
        if key.endswith(".weight") and value.ndim == 4:
            value = torch.randn(value.shape[0], value.shape[1], 1, 1, generator=gen)  # conv_kernel = 1
        elif parts[-1] == "down_filter" and parts[1] not in critical:
            value = torch.outer(value, value)
            value = value / value.sum()
        elif value.is_floating_point() and parts[-1] in ("weight", "bias"):
            value = value + 0.05 * torch.randn(value.shape, generator=gen)
        state[key] = value.clone()
    return state


@pytest.fixture(scope="module")
def r_template() -> dict[str, torch.Tensor]:
    """A config-T state dict of the small R size (built, not stored: the names come from the constructor, whose
    naming the config-T reference test pins down)."""
    t_kwargs = {**R_KWARGS, "conv_kernel": 3, "use_radial_filters": False}
    torch.manual_seed(0)
    return StyleGAN3Generator.from_kwargs(t_kwargs).state_dict()


def test_config_r_builds_and_renders(r_template: dict[str, torch.Tensor]) -> None:
    state = make_config_r_state(r_template)
    gen = StyleGAN3Generator.from_state(R_KWARGS, state, source="r.safetensors").requires_grad_(False)
    radial = [k for k, v in gen.state_dict().items() if k.endswith("down_filter") and v.ndim == 2]
    assert len(radial) == (gen.num_ws - 1) - 3  # every layer but the 2 critically sampled ones and ToRGB
    # The loaded filters are the stored ones, not the constructor's designs.
    assert all(torch.equal(gen.state_dict()[k], state[k]) for k in radial)
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(1))
    img = gen(z, psi=0.7)
    assert img.shape == (3, 3, 32, 32) and torch.isfinite(img).all()
    singles = torch.cat([gen(z[i : i + 1], psi=0.7) for i in range(3)])
    assert (img - singles).abs().max().item() <= 1e-5


def test_config_r_design_matches_official_shapes(r_template: dict[str, torch.Tensor]) -> None:
    """A config-R built from kwargs designs radial filters of exactly the shapes the official state holds."""
    built = StyleGAN3Generator.from_kwargs(R_KWARGS).state_dict()
    expected = make_config_r_state(r_template)
    assert {k: tuple(v.shape) for k, v in built.items()} == {k: tuple(v.shape) for k, v in expected.items()}
    for key, filt in built.items():
        if key.endswith("down_filter") and filt.ndim == 2:
            assert abs(filt.sum().item() - 1) < 1e-5 and torch.allclose(filt, filt.T)  # unit DC gain, symmetric


# --- bad checkpoints -----------------------------------------------------------------------------------------------


def test_shape_mismatch_names_the_tensor(sg3_config: dict, sg3_state: dict[str, torch.Tensor]) -> None:
    bad = dict(sg3_state)
    bad["synthesis.L3_36_64.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(CheckpointError) as info:
        StyleGAN3Generator.from_state(sg3_config["init_kwargs"], bad, source="bad.pkl")
    msg = str(info.value)
    assert "bad.pkl" in msg and "synthesis.L3_36_64.weight" in msg
    assert "[64, 64, 1, 1]" in msg and "[64, 64, 3, 3]" in msg


def test_missing_extra_and_bad_config_are_checkpoint_errors(sg3_config: dict,
                                                            sg3_state: dict[str, torch.Tensor]) -> None:
    kwargs = sg3_config["init_kwargs"]
    missing = {k: v for k, v in sg3_state.items() if k != "synthesis.input.freqs"}
    with pytest.raises(CheckpointError, match="synthesis.input.freqs' is missing"):
        StyleGAN3Generator.from_state(kwargs, missing, source="m.pkl")
    extra = {**sg3_state, "synthesis.L14_64_3.up_filter": torch.ones(12)}
    with pytest.raises(CheckpointError, match="unexpected tensor 'synthesis.L14_64_3.up_filter'"):
        StyleGAN3Generator.from_state(kwargs, extra, source="x.pkl")
    with pytest.raises(CheckpointError, match=r"k\.pkl: init_kwargs\.bogus=1: unknown StyleGAN3 setting"):
        StyleGAN3Generator.from_state({**kwargs, "bogus": 1}, sg3_state, source="k.pkl")
    with pytest.raises(CheckpointError, match="init_kwargs.z_dim is missing"):
        StyleGAN3Generator.from_state({k: v for k, v in kwargs.items() if k != "z_dim"}, sg3_state)


def test_layer_groups_follow_the_band_limit(sg3_config: dict, sg3_state: dict[str, torch.Tensor]) -> None:
    """StyleGAN3 layers sample at >= 16 px, but the first ones carry only 4 px of content: a scene's coarse /
    middle / fine groups must all exist on a StyleGAN3 model, ordered coarse to fine."""
    from morphstudio.timeline.layers import group_rows

    G = StyleGAN3Generator.from_state(sg3_config["init_kwargs"], sg3_state)
    space = G.latent_space()
    assert space.resolutions[0] == 4 and space.resolutions[-1] == G.resolution
    assert list(space.resolutions) == sorted(space.resolutions)
    rows = group_rows(space)
    assert all(rows[g].size > 0 for g in ("coarse", "middle", "fine"))
    assert rows["coarse"].max() < rows["middle"].min() <= rows["middle"].max() < rows["fine"].min()
