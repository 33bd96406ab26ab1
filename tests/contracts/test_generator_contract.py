"""The generator contract, run over every backend and the test generators (as diffusers' shared tester mixins do).

Each backend below is a real model: NVIDIA's StyleGAN2-ADA and StyleGAN3-T reference networks, a seeded
StyleGAN3-R, the reference network in rosinality's ``.pt`` layout, the built-in DCGAN, the tiny conditional
StyleGAN2 of ``tests/tiny.py`` and the renderer tests' ``TinyGen``. Every check's expected value comes from outside
the code under test: the truncation and uint8 formulas are computed here with numpy, batching is checked against
one-by-one calls, and a converted file against the model it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

import morphstudio
from morphstudio.cli import main
from morphstudio.errors import ModelError
from morphstudio.generators import FAMILIES, Generator, backend_for, to_uint8
from morphstudio.generators.checkpoints import save_native
from morphstudio.generators.loading import CheckpointData
from morphstudio.generators.stylegan3 import StyleGAN3Generator
from tests.test_render_tinygen import TinyGen
from tests.tiny import tiny_stylegan2

R_KWARGS = {"z_dim": 32, "w_dim": 32, "c_dim": 0, "img_resolution": 32, "img_channels": 3,
            "mapping_kwargs": {"num_layers": 2}, "channel_base": 512, "channel_max": 32,
            "conv_kernel": 1, "use_radial_filters": True}


@dataclass
class Case:
    """A generator under test and, for real backends, a checkpoint file it was loaded from."""

    gen: Generator
    source: str | None


def _native(tmp: Path, gen: Generator, name: str) -> str:
    path = tmp / f"{name}.safetensors"
    save_native(CheckpointData(gen.family, gen.init_kwargs, gen.state_dict(), "test", name), path)
    return str(path)


def _load(source: str | Path) -> Generator:
    return morphstudio.load_generator(source, device="cpu")


def _stylegan3_r(tmp: Path) -> Case:
    with torch.random.fork_rng():
        torch.manual_seed(5)
        built = StyleGAN3Generator.from_kwargs(R_KWARGS)
    source = _native(tmp, built, "sg3-r")
    return Case(_load(source), source)


def _tiny(tmp: Path) -> Case:
    from morphstudio.generators.stylegan2 import StyleGAN2Generator

    init_kwargs, state = tiny_stylegan2(resolution=16, c_dim=3, seed=4)
    source = _native(tmp, StyleGAN2Generator.from_state(init_kwargs, state), "tiny-conditional")
    return Case(_load(source), source)


MAKERS: dict[str, Callable[[Path, Path], Case]] = {
    "stylegan2-ada": lambda ref, tmp: Case(_load(ref / "sg2ada" / "G_ema.safetensors"),
                                           str(ref / "sg2ada" / "G_ema.safetensors")),
    "stylegan3-t": lambda ref, tmp: Case(_load(ref / "sg3_t" / "G_ema.safetensors"),
                                         str(ref / "sg3_t" / "G_ema.safetensors")),
    "stylegan3-r": lambda ref, tmp: _stylegan3_r(tmp),
    "rosinality": lambda ref, tmp: Case(_load(ref / "rosinality" / "rosinality_g_ema.pt"),
                                        str(ref / "rosinality" / "rosinality_g_ema.pt")),
    "dcgan-builtin": lambda ref, tmp: Case(_load("builtin:dcgan-faces64"), "builtin:dcgan-faces64"),
    "tiny-stylegan2": lambda ref, tmp: _tiny(tmp),
    "tinygen": lambda ref, tmp: Case(TinyGen().eval().requires_grad_(False), None),
}
REAL = [name for name in MAKERS if name != "tinygen"]


@pytest.fixture(scope="module", params=list(MAKERS))
def case(request: pytest.FixtureRequest, reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Case:
    return MAKERS[request.param](reference_dir, tmp_path_factory.mktemp(request.param))


def seeds_z(gen: Generator, seeds: range) -> torch.Tensor:
    """NVIDIA's seed convention, written out with numpy: row i is ``RandomState(seed).randn(z_dim)``."""
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(gen.z_dim) for s in seeds])).float()


def first_ws(gen: Generator, n: int = 4, psi: float = 0.7) -> torch.Tensor:
    with torch.no_grad():
        return gen.mapping(seeds_z(gen, range(n)), gen.default_c(n), psi=psi)


# --- shapes -------------------------------------------------------------------------------------------------------


def test_mapping_and_synthesis_shapes(case: Case) -> None:
    gen = case.gen
    with torch.no_grad():
        ws = gen.mapping(seeds_z(gen, range(3)), gen.default_c(3))
        img = gen.synthesis(ws)
    assert ws.shape == (3, gen.num_ws, gen.w_dim) and ws.dtype == torch.float32
    assert img.shape == (3, gen.img_channels, gen.resolution, gen.resolution) and img.dtype == torch.float32
    assert torch.isfinite(img).all()
    assert tuple(gen.w_avg.shape) == (gen.w_dim,)
    assert sorted({layer.w_index for layer in gen.layers()}) == list(range(gen.num_ws))
    with pytest.raises(ModelError, match="latents must have shape"):
        gen.synthesis(torch.zeros(1, gen.num_ws + 1, gen.w_dim))
    with pytest.raises(ModelError, match="z must have shape"):
        gen.mapping(torch.zeros(1, gen.z_dim + 1), gen.default_c(1))


def test_truncation_is_the_lerp_toward_w_avg(case: Case) -> None:
    gen = case.gen
    z, c = seeds_z(gen, range(2)), gen.default_c(2)
    with torch.no_grad():
        free = gen.mapping(z, c).numpy().astype(np.float64)
        half = gen.mapping(z, c, psi=0.5).numpy()
        cut = gen.mapping(z, c, psi=0.5, cutoff=1).numpy()
    w_avg = gen.w_avg.numpy().astype(np.float64)
    expected = w_avg + 0.5 * (free - w_avg)
    np.testing.assert_allclose(half, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(cut[:, :1], expected[:, :1], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(cut[:, 1:], free[:, 1:].astype(np.float32))


# --- batching -----------------------------------------------------------------------------------------------------


def test_batch_equals_single_calls(case: Case) -> None:
    gen = case.gen
    ws = first_ws(gen, 6)
    with torch.no_grad():
        together = gen.synthesis(ws)
        alone = torch.cat([gen.synthesis(ws[i : i + 1]) for i in range(len(ws))])
    assert (together - alone).abs().max().item() <= 1e-5


# --- uint8 frames -------------------------------------------------------------------------------------------------


def _documented_uint8(img: np.ndarray) -> np.ndarray:
    """``(img * 127.5 + 128).clamp(0, 255)`` to uint8, NCHW -> NHWC, in float32 as the README documents."""
    x = np.transpose(img.astype(np.float32), (0, 2, 3, 1)) * np.float32(127.5) + np.float32(128)
    return np.clip(x, 0, 255).astype(np.uint8)


def test_to_uint8_matches_the_documented_formula(case: Case) -> None:
    with torch.no_grad():
        img = case.gen.synthesis(first_ws(case.gen, 2))
    frames = to_uint8(img)
    assert frames.dtype == torch.uint8 and frames.device == img.device
    np.testing.assert_array_equal(frames.numpy(), _documented_uint8(img.numpy()))


def test_to_uint8_edges() -> None:
    """Rounding is truncation after the + 128 offset, so -1 -> 0, 0 -> 128, 0.999 -> 255; beyond [-1, 1] clamps."""
    values = [-2.0, -1.0, -0.5, -1 / 127.5, 0.0, 0.5 / 127.5, 0.999, 1.0, 3.0]
    img = torch.tensor(values).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    out = to_uint8(img)
    assert out.shape == (1, 1, len(values), 3)
    assert out[0, 0, :, 0].tolist() == [0, 0, 64, 127, 128, 128, 255, 255, 255]
    np.testing.assert_array_equal(out.numpy(), _documented_uint8(img.numpy()))


# --- convert round trip -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_case(request: pytest.FixtureRequest, reference_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Case:
    return MAKERS[request.param](reference_dir, tmp_path_factory.mktemp(request.param))


@pytest.mark.parametrize("real_case", REAL, indirect=True)
def test_convert_round_trip_is_bit_identical(real_case: Case, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "converted.safetensors"
    assert main(["convert", str(real_case.source), str(out)]) == 0
    capsys.readouterr()
    gen, again = real_case.gen, _load(out)
    assert type(again) is type(gen) and again.config == gen.config and again.init_kwargs == gen.init_kwargs
    mine, theirs = gen.state_dict(), again.state_dict()
    assert set(mine) == set(theirs)
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    ws = first_ws(gen, 3)
    with torch.no_grad():
        assert torch.equal(again.mapping(seeds_z(gen, range(3)), gen.default_c(3), psi=0.7), ws)
        assert torch.equal(again.synthesis(ws), gen.synthesis(ws))


@pytest.mark.parametrize("real_case", REAL, indirect=True)
def test_loading_leaves_the_global_rng_alone(real_case: Case) -> None:
    # A user seeds torch, loads a model, then draws: the draw must be the one the seed promises (loading builds
    # the network with its random initialisers before the checkpoint's tensors replace them).
    assert real_case.source is not None
    torch.manual_seed(11)
    _load(real_case.source)
    drawn = torch.rand(3)
    expected = torch.rand(3, generator=torch.Generator().manual_seed(11))
    assert torch.equal(drawn, expected)


@pytest.mark.parametrize("real_case", REAL, indirect=True)
def test_loaded_generators_own_their_tensors(real_case: Case) -> None:
    """A file's tensors are taken over by the generator built from it (not copied), so each load must own
    fresh ones: two loads share no memory, and a CheckpointData the caller passes in and keeps stays untouched when
    the generator built from it is changed."""
    from morphstudio.generators import load_checkpoint

    assert real_case.source is not None

    def pointers(gen: Generator) -> set[int]:
        return {t.data_ptr() for t in gen.state_dict().values() if t.numel()}

    first, second = _load(real_case.source), _load(real_case.source)
    assert pointers(first) and not pointers(first) & pointers(second)
    ckpt = load_checkpoint(real_case.source)
    before = {k: v.clone() for k, v in ckpt.state.items() if isinstance(v, torch.Tensor)}
    gen = morphstudio.load_generator(ckpt, device="cpu")
    with torch.no_grad():
        for t in gen.state_dict(keep_vars=True).values():
            if t.is_floating_point():
                t.add_(1.0)
    assert all(torch.equal(ckpt.state[k], v) for k, v in before.items())


@pytest.mark.parametrize("real_case", REAL, indirect=True)
def test_a_loaded_generator_does_not_change_when_its_file_is_rewritten_in_place(real_case: Case,
                                                                              tmp_path: Path) -> None:
    """A CPU generator owns its weights: overwriting the checkpoint file in place (``cp`` over it, ``rsync
    --inplace``) after loading changes nothing it draws (safetensors hands out slices of a memory map of the file,
    which must be copied, not adopted)."""
    import shutil

    assert real_case.source is not None
    if real_case.source.startswith("builtin:"):
        from morphstudio.generators.checkpoints import BUILTIN_DIR

        src = BUILTIN_DIR / f"{real_case.source.split(':', 1)[1]}.safetensors"
    else:
        src = Path(real_case.source)
    copy = tmp_path / src.name
    shutil.copyfile(src, copy)
    for side in (src.parent / f"{src.stem}.json", src.parent / "config.json"):  # a plain file's config beside it
        if side.is_file():
            shutil.copyfile(side, tmp_path / side.name)
    gen = _load(copy)
    ws = first_ws(gen, 2)
    with torch.no_grad():
        before = gen.synthesis(ws, noise_mode="const").clone()
    size = copy.stat().st_size
    with open(copy, "r+b") as f:  # same size, new bytes over the second half (the tensor data)
        f.seek(size // 2)
        f.write(np.random.default_rng(0).integers(0, 256, size - size // 2, dtype=np.uint8).tobytes())
    with torch.no_grad():
        after = gen.synthesis(ws, noise_mode="const")
    assert torch.equal(before, after)


@pytest.mark.parametrize("real_case", REAL, indirect=True)
def test_config_json_round_trip_and_parameter_count(real_case: Case) -> None:
    gen = real_case.gen
    cls = type(gen.config)
    assert cls.from_json(gen.config.to_json()) == gen.config
    assert cls.from_kwargs(gen.init_kwargs) == gen.config
    # The formula behind the parameter-count check agrees with the module the constructor builds.
    assert gen.config.param_count() == sum(p.numel() for p in gen.parameters())


# --- precision and the registry -------------------------------------------------------------------------------------


def test_precision_is_part_of_the_interface(case: Case) -> None:
    gen = case.gen
    assert gen.precision == torch.float32 and gen.supports_precision(torch.float32)
    with pytest.raises(ModelError, match=r"runs in fp32.*not torch\.float64"):
        gen.set_precision(torch.float64)
    assert gen.precision == torch.float32


def test_registry_maps_every_family_to_its_backend(case: Case) -> None:
    assert set(FAMILIES) == {"stylegan2", "stylegan3", "dcgan"}
    for family in FAMILIES:
        assert backend_for(family).family == family
    if case.source is not None:
        assert type(case.gen) is backend_for(case.gen.family)
