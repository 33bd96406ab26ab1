"""Checkpoint formats users bring: official PyTorch pickles (both repos, numpy 1 and 2 names, full snapshots),
legacy TensorFlow pickles, morphstudio's safetensors, and the conversions between them.

The pickles are written by ``tests/pickle_writer.py`` in the official layout from the reference weights, so an
image made through any loader can be compared with the official implementation's output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import pickle_writer as pw
from morphstudio import load_generator
from morphstudio.cli import main
from morphstudio.errors import CheckpointError, ModelError
from morphstudio.generators.checkpoints import available_builtins, read_checkpoint, save_native
from morphstudio.generators.loading import CheckpointData

TOL = 1e-4

#: (reference folder, ws tag, psi, cutoff) for every reference image set.
SG2_CASES = [("psi1", 1.0, None), ("psi0.7", 0.7, None), ("psi0.7_cutoff4", 0.7, 4)]
SG3_CASES = [("psi1", 1.0, None), ("psi0.7", 0.7, None), ("psi0.7_cutoff8", 0.7, 8)]


@pytest.fixture(scope="module")
def pickles(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every official-layout pickle, written once for the module."""
    d = tmp_path_factory.mktemp("pickles")
    return {
        "ada-p3-numpy1": pw.sg2ada_pickle(reference_dir, d / "ada-p3-numpy1.pkl", protocol=3),
        "ada-p4-numpy2": pw.sg2ada_pickle(reference_dir, d / "ada-p4-numpy2.pkl", protocol=4, numpy_names="numpy2"),
        "ada-p2": pw.sg2ada_pickle(reference_dir, d / "ada-p2.pkl", protocol=2),
        "sg3repo-sg2": pw.sg2ada_pickle(reference_dir, d / "sg3repo-sg2.pkl", protocol=4, numpy_names="numpy2",
                                        flat_kwargs=True),
        "sg3-p4-numpy2": pw.sg3_pickle(reference_dir, d / "sg3-p4-numpy2.pkl"),
        "sg3-p3-numpy1": pw.sg3_pickle(reference_dir, d / "sg3-p3-numpy1.pkl", protocol=3, numpy_names="numpy1"),
        "tf": pw.tf_pickle(reference_dir, d / "tf.pkl"),
    }


def _images(G: torch.nn.Module, z: np.ndarray, psi: float, cutoff: int | None,
            noise_mode: str = "const") -> np.ndarray:
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(z).float(), None, psi=psi, cutoff=cutoff)
        return G.synthesis(ws, noise_mode=noise_mode).numpy()


def _ref_dir(reference_dir: Path, key: str) -> Path:
    return reference_dir / ("sg3_t" if key.startswith("sg3-") else "sg2ada")


# --- reading ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, family, fmt", [
    ("ada-p3-numpy1", "stylegan2", "nvidia-pkl (stylegan2-ada-pytorch)"),
    ("ada-p4-numpy2", "stylegan2", "nvidia-pkl (stylegan2-ada-pytorch)"),
    ("ada-p2", "stylegan2", "nvidia-pkl (stylegan2-ada-pytorch)"),
    ("sg3repo-sg2", "stylegan2", "nvidia-pkl (stylegan3 repo, stylegan2 config)"),
    ("sg3-p4-numpy2", "stylegan3", "nvidia-pkl (stylegan3 config-t)"),
    ("sg3-p3-numpy1", "stylegan3", "nvidia-pkl (stylegan3 config-t)"),
    ("tf", "stylegan2", "tensorflow-pkl (stylegan2)"),
])
def test_pickles_give_every_official_tensor(pickles: dict[str, Path], reference_dir: Path, key: str, family: str,
                                            fmt: str) -> None:
    ckpt = read_checkpoint(pickles[key])
    ref = load_file(str(_ref_dir(reference_dir, key) / "G_ema.safetensors"))
    assert (ckpt.family, ckpt.format) == (family, fmt)
    assert set(ckpt.state) == set(ref)  # None buffers (SG3's last filters) stay absent, as in the reference
    for name, tensor in ref.items():
        assert ckpt.state[name].shape == tensor.shape, name
        # TF stores mod_bias - 1; adding 1 back may round in the last bit.
        assert torch.allclose(ckpt.state[name], tensor, atol=1e-6, rtol=0), name
    json.dumps(ckpt.init_kwargs)  # plain data, no EasyDicts or numpy scalars
    if key.startswith("ada"):
        assert ckpt.extra["used"] == "G_ema"
        assert ckpt.extra["networks"] == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]


def test_snapshot_without_g_ema_falls_back_to_g_with_a_note(reference_dir: Path, tmp_path: Path) -> None:
    path = pw.sg2ada_pickle(reference_dir, tmp_path / "no_ema.pkl", with_g_ema=False)
    ckpt = read_checkpoint(path)
    ref = load_file(str(reference_dir / "sg2ada" / "G_ema.safetensors"))
    assert ckpt.extra["used"] == "G"
    assert any("no G_ema" in note for note in ckpt.extra["notes"])
    # G holds the training weights (the reference + 0.25 in these files), not G_ema's.
    assert torch.allclose(ckpt.state["mapping.fc0.bias"], ref["mapping.fc0.bias"] + 0.25)


def test_snapshot_with_only_discriminator_is_refused(tmp_path: Path) -> None:
    snap = pw.snapshot(pw.simple_module("Generator", "x", {}, {}, {}))
    path = pw.dump({"D": snap["D"], "augment_pipe": snap["augment_pipe"]}, tmp_path / "d_only.pkl")
    with pytest.raises(CheckpointError, match="neither G_ema nor G"):
        read_checkpoint(path)


def test_reference_safetensors_with_config_json(reference_dir: Path) -> None:
    sg2 = read_checkpoint(reference_dir / "sg2ada" / "G_ema.safetensors")
    sg3 = read_checkpoint(reference_dir / "sg3_t" / "G_ema.safetensors")
    assert (sg2.family, sg2.format) == ("stylegan2", "safetensors + config.json")
    assert (sg3.family, sg3.format) == ("stylegan3", "safetensors + config.json")
    assert sg2.init_kwargs["synthesis_kwargs"]["channel_base"] == 2048


def test_format_comes_from_content_not_name(pickles: dict[str, Path], reference_dir: Path, tmp_path: Path) -> None:
    disguised = tmp_path / "model.safetensors"
    shutil.copy(pickles["sg3-p4-numpy2"], disguised)
    assert read_checkpoint(disguised).format == "nvidia-pkl (stylegan3 config-t)"
    other = tmp_path / "weights.pkl"
    shutil.copy(reference_dir / "sg2ada" / "G_ema.safetensors", other)
    shutil.copy(reference_dir / "sg2ada" / "config.json", tmp_path / "config.json")
    assert read_checkpoint(other).family == "stylegan2"


def test_builtin_sources() -> None:
    assert "dcgan-faces64" in available_builtins()
    ckpt = read_checkpoint("builtin:dcgan-faces64")
    assert (ckpt.family, ckpt.path) == ("dcgan", "builtin:dcgan-faces64")
    with pytest.raises(ModelError, match="available: builtin:dcgan-faces64"):
        read_checkpoint("builtin:ffhq-1024")
    with pytest.raises(ModelError):
        read_checkpoint("builtin:../../etc/passwd")


def test_rosinality_pt_goes_to_its_reader(reference_dir: Path) -> None:
    ckpt = read_checkpoint(reference_dir / "rosinality" / "rosinality_g_ema.pt")
    ref = load_file(str(reference_dir / "sg2ada" / "G_ema.safetensors"))
    assert ckpt.family == "stylegan2"
    assert ckpt.state["synthesis.b64.conv1.weight"].shape == ref["synthesis.b64.conv1.weight"].shape


# --- native format ----------------------------------------------------------------------------------------------


def test_save_native_embeds_metadata_and_writes_sidecar(pickles: dict[str, Path], tmp_path: Path) -> None:
    ckpt = read_checkpoint(pickles["ada-p3-numpy1"])
    out = tmp_path / "g.safetensors"
    sidecar = save_native(ckpt, out)
    assert sidecar == tmp_path / "g.json"
    with safe_open(str(out), "pt") as f:
        meta = json.loads(f.metadata()["morphstudio"])
        assert set(f.keys()) == set(ckpt.state)
    assert meta == {"format_version": 1, "family": "stylegan2", "init_kwargs": ckpt.init_kwargs,
                    "source_format": "nvidia-pkl (stylegan2-ada-pytorch)", "source": str(pickles["ada-p3-numpy1"])}
    assert json.loads(sidecar.read_text()) == meta
    # The loader trusts the embedded copy, not the sidecar people may edit.
    sidecar.write_text(json.dumps({**meta, "family": "dcgan"}))
    again = read_checkpoint(out)
    assert again.family == "stylegan2" and again.format == "morphstudio safetensors"
    assert all(torch.equal(again.state[k], ckpt.state[k]) for k in ckpt.state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "g.safetensors"]  # no temp files left


def test_save_native_failure_leaves_nothing(tmp_path: Path) -> None:
    bad = CheckpointData("stylegan2", {"z_dim": object()}, {"a": torch.zeros(2)}, "test", "x")
    with pytest.raises(CheckpointError, match="JSON"):
        save_native(bad, tmp_path / "out.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_safetensors_without_any_description_is_explained(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"mapping.fc0.weight": torch.zeros(2, 2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(CheckpointError, match="no bare.json or config.json beside it"):
        read_checkpoint(tmp_path / "bare.safetensors")


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    meta = {"format_version": 99, "family": "stylegan2", "init_kwargs": {}}
    save_file({"a": torch.zeros(1)}, str(tmp_path / "new.safetensors"), metadata={"morphstudio": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="newer morphstudio"):
        read_checkpoint(tmp_path / "new.safetensors")


# --- end to end: images equal the official ones -----------------------------------------------------------------

# The readers are shown above to give the reference tensors for every pickle variant; rendering checks one
# variant per code path (two seeds where a backend test already covers all four), to keep the suite quick.


@pytest.mark.parametrize("key, cases, seeds", [
    ("ada-p3-numpy1", SG2_CASES, 4),
    ("sg3repo-sg2", SG2_CASES[1:2], 2),
    ("tf", SG2_CASES[:2], 2),
])
def test_stylegan2_pickles_render_the_reference_images(pickles: dict[str, Path], reference_dir: Path, key: str,
                                                       cases: list, seeds: int) -> None:
    ref = reference_dir / "sg2ada"
    G = load_generator(pickles[key], device="cpu")
    z = np.load(ref / "z.npy")[:seeds]
    for tag, psi, cutoff in cases:
        img = _images(G, z, psi, cutoff)
        assert np.abs(img - np.load(ref / f"img_{tag}_const.npy")[:seeds]).max() <= TOL, tag
    if key == "ada-p3-numpy1":
        img = _images(G, z, 1.0, None, noise_mode="none")
        assert np.abs(img - np.load(ref / "img_psi1_none.npy")).max() <= TOL


def test_stylegan3_pickle_renders_the_reference_images(pickles: dict[str, Path], reference_dir: Path) -> None:
    ref = reference_dir / "sg3_t"
    G = load_generator(pickles["sg3-p4-numpy2"], device="cpu")
    z = np.load(ref / "z.npy")[:2]
    for tag, psi, cutoff in SG3_CASES:
        img = _images(G, z, psi, cutoff)
        assert np.abs(img - np.load(ref / f"img_{tag}_const.npy")[:2]).max() <= TOL, tag


@pytest.mark.parametrize("key", ["ada-p3-numpy1", "sg3-p4-numpy2", "tf"])
def test_pkl_to_safetensors_gives_identical_images(pickles: dict[str, Path], reference_dir: Path, tmp_path: Path,
                                                   key: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "converted.safetensors"
    assert main(["convert", str(pickles[key]), str(out)]) == 0
    printed = capsys.readouterr().out
    family = "stylegan3" if key.startswith("sg3") else "stylegan2"
    assert f"{family}, 64x64" in printed and "tensors" in printed
    z = np.load(_ref_dir(reference_dir, key) / "z.npy")[:2]
    a = _images(load_generator(pickles[key], device="cpu"), z, 0.7, None)
    b = _images(load_generator(out, device="cpu"), z, 0.7, None)
    assert np.array_equal(a, b)


def test_reference_safetensors_loads_by_path(reference_dir: Path) -> None:
    ref = reference_dir / "sg2ada"
    G = load_generator(ref / "G_ema.safetensors", device="cpu")
    img = _images(G, np.load(ref / "z.npy"), 1.0, None)
    assert np.abs(img - np.load(ref / "img_psi1_const.npy")).max() <= TOL


def test_wrong_shape_in_valid_safetensors_names_the_tensor(reference_dir: Path, tmp_path: Path) -> None:
    ckpt = read_checkpoint(reference_dir / "sg2ada" / "G_ema.safetensors")
    ckpt.state["synthesis.b32.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    save_native(ckpt, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match=r"synthesis\.b32\.conv1\.weight"):
        load_generator(tmp_path / "bad.safetensors", device="cpu")


# --- other official configurations, through small seeded models ---------------------------------------------------

R_KWARGS = {
    "z_dim": 32, "w_dim": 32, "c_dim": 0, "img_resolution": 32, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2}, "channel_base": 512, "channel_max": 32,
    "magnitude_ema_beta": 0.999, "conv_kernel": 1, "use_radial_filters": True,
}


def test_conditional_stylegan2_pickle_renders_like_its_weights(tmp_path: Path) -> None:
    from tiny import tiny_stylegan2

    from morphstudio.generators.stylegan2 import StyleGAN2Generator

    kwargs, state = tiny_stylegan2(resolution=16, c_dim=3, seed=1)
    path = pw.dump(pw.snapshot(pw.generator_tree(state, kwargs, pw.SRC_ADA)), tmp_path / "cond.pkl", protocol=3)
    ckpt = read_checkpoint(path)
    assert {"mapping.embed.weight", "mapping.embed.bias"} <= set(ckpt.state) and ckpt.init_kwargs["c_dim"] == 3
    direct = StyleGAN2Generator.from_state(kwargs, state).requires_grad_(False)
    loaded = load_generator(path, device="cpu")
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(0))
    c = torch.eye(3)[:2]
    with torch.no_grad():
        assert torch.equal(loaded(z, c, psi=0.7), direct(z, c, psi=0.7))


def test_stylegan3_config_r_pickle_is_recognised_and_renders_like_its_weights(tmp_path: Path) -> None:
    from morphstudio.generators.stylegan3 import StyleGAN3Generator

    torch.manual_seed(0)
    direct = StyleGAN3Generator.from_kwargs(R_KWARGS).requires_grad_(False)
    state = {k: v.clone() for k, v in direct.state_dict().items()}
    path = pw.dump(pw.snapshot(pw.generator_tree(state, R_KWARGS, pw.SRC_SG3), order="sg3"), tmp_path / "r.pkl",
                   numpy_names="numpy2")
    ckpt = read_checkpoint(path)
    assert ckpt.format == "nvidia-pkl (stylegan3 config-r)"
    loaded = load_generator(path, device="cpu")
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(z, psi=0.7), direct(z, psi=0.7))
