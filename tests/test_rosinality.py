"""rosinality stylegan2-pytorch ``.pt`` files: read safely, renamed exactly, images equal rosinality's own."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import morphstudio
from morphstudio.errors import CheckpointError, UnsafeCheckpointError
from morphstudio.generators.checkpoints.rosinality import looks_like_rosinality, read_rosinality
from morphstudio.generators.loading import build_generator
from morphstudio.generators.stylegan2 import StyleGAN2Generator
from tests.tiny import tiny_stylegan2, to_rosinality, write_tiny_rosinality

TOL = 1e-4


def images(gen: StyleGAN2Generator, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([gen(z[i:i + 1], psi=psi) for i in range(len(z))])


@pytest.mark.parametrize("tag,psi", [("psi1", 1.0), ("psi0.7", 0.7)])
def test_reference_images_match_rosinality(reference_dir: Path, tag: str, psi: float) -> None:
    ckpt = read_rosinality(reference_dir / "rosinality" / "rosinality_g_ema.pt")
    synth = ckpt.init_kwargs["synthesis_kwargs"]
    assert (synth["channel_base"], synth["channel_max"]) == (2048, 128)  # widths 128/64/32 read from the shapes
    assert ckpt.init_kwargs["mapping_kwargs"]["num_layers"] == 8
    gen = build_generator(ckpt)
    z = torch.from_numpy(np.load(reference_dir / "sg2ada" / "z.npy")).float()
    expected = torch.from_numpy(np.load(reference_dir / "rosinality" / f"img_{tag}_const_rosinality.npy"))
    assert (images(gen, z, psi) - expected).abs().max().item() <= TOL


def test_tiny_round_trip_equals_official_layout(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    init_kwargs, state = write_tiny_rosinality(path, seed=3)
    ckpt = read_rosinality(path)
    assert ckpt.family == "stylegan2" and ckpt.extra["w_avg"] == "latent_avg"
    assert set(ckpt.state) <= set(state)
    for name, tensor in ckpt.state.items():
        assert torch.equal(tensor, state[name]), name
    official = StyleGAN2Generator.from_state(init_kwargs, state)
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(images(build_generator(ckpt), z, 0.5), images(official, z, 0.5), atol=1e-6)


def test_training_checkpoint_with_args_namespace(tmp_path: Path) -> None:
    path = tmp_path / "020000.pt"
    init_kwargs, state = write_tiny_rosinality(path, training=True, seed=1)
    ckpt = read_rosinality(path)
    assert ckpt.format == "rosinality .pt (training checkpoint)"
    assert ckpt.extra["args"]["size"] == 32 and "g_optim" in ckpt.extra["networks"]
    assert ckpt.extra["w_avg"].startswith("estimated")  # train.py saves no latent_avg
    gen = build_generator(ckpt)
    with torch.no_grad():
        mean_w = gen.mapping(torch.randn(4096, 32, generator=torch.Generator().manual_seed(0)))[:, 0].mean(0)
    assert torch.allclose(gen.w_avg, mean_w, atol=1e-5)  # the mean of 4096 seeded z through the mapping
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(2))
    official = StyleGAN2Generator.from_state(init_kwargs, state)
    assert torch.allclose(images(gen, z), images(official, z), atol=1e-6)  # psi 1 does not need w_avg


def test_widths_outside_the_channel_formula(tmp_path: Path) -> None:
    widths = {4: 16, 8: 24, 16: 8, 32: 12}
    init_kwargs, state = tiny_stylegan2(channels=widths)
    path = tmp_path / "odd.pt"
    torch.save(to_rosinality(init_kwargs, state), path)
    ckpt = read_rosinality(path)
    assert ckpt.init_kwargs["synthesis_kwargs"]["channels"] == {str(r): c for r, c in widths.items()}
    gen = build_generator(ckpt)
    assert [layer.channels for layer in gen.layers() if layer.name.endswith("torgb")] == list(widths.values())


def test_load_generator_detects_rosinality_by_content(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"  # the extension says nothing
    write_tiny_rosinality(path, resolution=16)
    gen = morphstudio.load_generator(path, device="cpu")
    assert gen.family == "stylegan2" and gen.resolution == 16


def test_looks_like_rosinality() -> None:
    assert looks_like_rosinality(["g", "d", "g_ema", "args"])
    assert not looks_like_rosinality(["G_ema", "D"])


# --- broken and hostile files -------------------------------------------------------------------------------


def test_not_a_torch_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_rosinality(empty)
    text = tmp_path / "notes.pt"
    text.write_text("hello, not a checkpoint\n")
    with pytest.raises(CheckpointError, match="not a .*PyTorch checkpoint"):
        read_rosinality(text)
    with pytest.raises(CheckpointError, match="not found"):
        read_rosinality(tmp_path / "missing.pt")


def test_truncated_file(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    write_tiny_rosinality(good, resolution=8)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError) as info:
        read_rosinality(cut)
    assert "\n" not in str(info.value) and str(cut) in str(info.value)


def test_no_g_ema(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "args": argparse.Namespace(size=8)}, path)
    with pytest.raises(CheckpointError, match="no 'g_ema'.*'model'"):
        read_rosinality(path)


def test_inconsistent_shapes_name_the_rosinality_tensor(tmp_path: Path) -> None:
    init_kwargs, state = tiny_stylegan2()
    ckpt = to_rosinality(init_kwargs, state)
    ckpt["g_ema"]["convs.3.conv.weight"] = torch.zeros(1, 16, 8, 3, 3)  # b16.conv1 takes 16 channels, not 8
    path = tmp_path / "bad.pt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"'convs\.3\.conv\.weight' .*\[16, 8, 3, 3\].*\[16, 16, 3, 3\]"):
        read_rosinality(path)
    del ckpt["g_ema"]["noises.noise_2"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="'noises.noise_2'"):
        read_rosinality(path)


class _Evil:
    """Pickles as a call to ``os.system`` (what a hostile .pt file would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def test_hostile_pickle_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": _Evil(marker), "latent_avg": torch.zeros(4)}, path)
    with pytest.raises(UnsafeCheckpointError, match="system"):
        read_rosinality(path)
    assert not marker.exists()


def test_shapes_of_a_config_far_larger_than_the_file_are_refused_before_building() -> None:
    """The shape check builds the network its settings describe (uninitialised); settings implying far more
    values than the file holds are one line naming the file, before anything is built."""
    from morphstudio.errors import CheckpointError
    from morphstudio.generators.stylegan2 import StyleGAN2Generator

    kwargs = {"z_dim": 512, "w_dim": 512, "c_dim": 0, "img_resolution": 1024, "img_channels": 3,
              "channel_base": 32768, "channel_max": 512, "mapping_kwargs": {"num_layers": 8}}
    with pytest.raises(CheckpointError, match="hostile.pt"):
        StyleGAN2Generator.expected_shapes(kwargs, "hostile.pt", {"conv1.weight": torch.zeros(16)})
    small = {"z_dim": 8, "w_dim": 8, "c_dim": 0, "img_resolution": 8, "img_channels": 3,
             "channel_base": 64, "channel_max": 8, "mapping_kwargs": {"num_layers": 1}}
    shapes = StyleGAN2Generator.expected_shapes(small, "ok.pt")
    assert shapes["mapping.fc0.weight"] == (8, 8) and shapes["synthesis.b4.const"] == (8, 4, 4)
