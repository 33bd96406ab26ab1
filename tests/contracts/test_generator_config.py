"""One config mechanism for every backend: unknown keys named, JSON round trip, sane ranges checked before any
module is built, and the parameter count a config implies checked against the values in the file.

Hostile configs are written into real checkpoint files here and fed to ``morphstudio inspect``, as a user would.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from morphstudio.cli import main
from morphstudio.errors import CheckpointError
from morphstudio.generators import FAMILIES, config_for
from morphstudio.generators.checkpoints import BUILTIN_DIR, save_native
from morphstudio.generators.dcgan import DCGANConfig
from morphstudio.generators.loading import CheckpointData
from morphstudio.generators.stylegan2 import StyleGAN2Config
from morphstudio.generators.stylegan3 import StyleGAN3Config
from tests.tiny import tiny_stylegan2

ROOT = Path(__file__).resolve().parents[2]


def _sg2(**changes: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The tiny StyleGAN2's kwargs with ``changes`` applied (``"a.b"`` keys reach into nested sections)."""
    kwargs, state = tiny_stylegan2(resolution=16)
    kwargs = json.loads(json.dumps(kwargs))
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        target = kwargs
        for p in parents:
            target = target[p]
        target[leaf] = value
    return kwargs, state


def _write(tmp: Path, name: str, family: str, kwargs: dict[str, Any], state: dict[str, torch.Tensor]) -> Path:
    path = tmp / f"{name}.safetensors"
    save_native(CheckpointData(family, kwargs, state, "test", name), path)
    return path


def _dcgan_state() -> dict[str, torch.Tensor]:
    return load_file(str(BUILTIN_DIR / "dcgan-faces64.safetensors"))


DCGAN_KWARGS = {"z_dim": 100, "ngf": 64, "img_channels": 3, "resolution": 64}

# name -> (family, changes to the good kwargs, text the one-line error must contain)
HOSTILE: dict[str, tuple[str, dict[str, Any], str]] = {
    "z_dim-infinity": ("stylegan2", {"z_dim": math.inf}, "init_kwargs.z_dim=inf: must be a finite number"),
    "z_dim-nan": ("stylegan2", {"z_dim": math.nan}, "init_kwargs.z_dim=nan: must be a finite number"),
    "img_resolution-2**20": ("stylegan2", {"img_resolution": 2**20},
                             "init_kwargs.img_resolution=1048576: must be at most 4096"),
    "img_resolution-48": ("stylegan2", {"img_resolution": 48}, "init_kwargs.img_resolution=48: must be a power of two"),
    "negative-w_dim": ("stylegan2", {"w_dim": -512}, "init_kwargs.w_dim=-512: must be at least 1"),
    "negative-channel_max": ("stylegan2", {"synthesis_kwargs.channel_max": -8},
                             "init_kwargs.synthesis_kwargs.channel_max=-8: must be at least 1"),
    "mapping-num_layers-1e6": ("stylegan2", {"mapping_kwargs.num_layers": 1e6},
                               "init_kwargs.mapping_kwargs.num_layers=1000000: must be at most 64"),
    "w_dim-1e9": ("stylegan2", {"w_dim": 1e9}, "init_kwargs.w_dim=1000000000: must be at most 8192"),
    "z_dim-text": ("stylegan2", {"z_dim": "512"}, "init_kwargs.z_dim='512': must be a number"),
    "z_dim-fraction": ("stylegan2", {"z_dim": 31.5}, "init_kwargs.z_dim=31.5: must be a whole number"),
    "unknown-key": ("stylegan2", {"synthesis_kwargs.wobble": 3},
                    "init_kwargs.synthesis_kwargs.wobble=3: unknown StyleGAN2 setting"),
    "sg3-negative-c_dim": ("stylegan3", {"c_dim": -1}, "init_kwargs.c_dim=-1: must be at least 0"),
    "sg3-num_layers-1e6": ("stylegan3", {"num_layers": 1e6}, "init_kwargs.num_layers=1000000: must be at most 64"),
    "dcgan-ngf-1500": ("dcgan", {"ngf": 1500}, "1,531,317,000 parameters"),
    "dcgan-unknown-key": ("dcgan", {"nz": 100}, "init_kwargs.nz=100: unknown DCGAN setting"),
}


def _hostile_file(tmp: Path, name: str) -> tuple[Path, str]:
    family, changes, expected = HOSTILE[name]
    if family == "dcgan":
        return _write(tmp, name, family, {**DCGAN_KWARGS, **changes}, _dcgan_state()), expected
    if family == "stylegan3":
        kwargs = {"z_dim": 16, "w_dim": 16, "img_resolution": 16, "num_layers": 4, "channel_base": 256,
                  "channel_max": 16, **changes}
        return _write(tmp, name, family, kwargs, {"mapping.fc0.weight": torch.zeros(16, 16)}), expected
    kwargs, state = _sg2(**changes)
    return _write(tmp, name, family, kwargs, state), expected


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_config_is_one_line_naming_file_key_and_value(name: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    path, expected = _hostile_file(tmp_path, name)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["inspect", str(path), "--device", "cpu"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {path}: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == "" and sorted(p.name for p in tmp_path.iterdir()) == before


_CHILD = r"""
import resource, sys
limit = 6 * 2**30  # importing torch needs ~3 GiB of address space; a regression then fails instead of swapping
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from morphstudio.cli import main
try:
    rc = main(["inspect", sys.argv[1], "--device", "cpu"])
finally:
    print(f"peak_rss_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
sys.exit(rc)
"""


@pytest.mark.parametrize("name", ["w_dim-1e9", "dcgan-ngf-1500"])
def test_hostile_config_memory_is_bounded(name: str, tmp_path: Path) -> None:
    """Before the checks these two allocated 12.3 GB and 6.6 GB of peak RSS; now nothing beyond torch itself."""
    path, expected = _hostile_file(tmp_path, name)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    peak_mib = int(proc.stdout.strip().rsplit("=", 1)[1]) / 1024
    assert peak_mib < 2048, f"peak RSS {peak_mib:.0f} MiB"


# --- the mechanism itself -----------------------------------------------------------------------------------------


def test_every_family_has_a_config_that_round_trips_as_json() -> None:
    configs = {
        "stylegan2": StyleGAN2Config(img_resolution=32, c_dim=4, channel_base=512, channel_max=32,
                                     channels=((4, 32), (8, 24), (16, 8), (32, 4)), conv_clamp=256),
        "stylegan3": StyleGAN3Config(z_dim=16, w_dim=16, img_resolution=16, num_layers=4, channel_base=256,
                                     channel_max=16, use_radial_filters=True, conv_kernel=1),
        "dcgan": DCGANConfig(z_dim=64, ngf=16, resolution=32),
    }
    assert set(configs) == set(FAMILIES)
    for family, config in configs.items():
        cls = config_for(family)
        assert type(config) is cls
        text = config.to_json()
        assert json.loads(text) == config.to_kwargs()
        assert cls.from_json(text) == config
        assert cls.from_kwargs(json.loads(text)).to_kwargs() == config.to_kwargs()


def test_stored_layouts_fill_their_own_defaults() -> None:
    """StyleGAN2-ADA (nested) and the StyleGAN3 repository's flat stylegan2 kwargs have different defaults."""
    flat, _ = tiny_stylegan2(flat=True)
    flat = {k: v for k, v in flat.items() if k not in ("num_fp16_res", "conv_clamp")}
    assert (lambda c: (c.num_fp16_res, c.conv_clamp))(StyleGAN2Config.from_kwargs(flat)) == (4, 256)
    nested = StyleGAN2Config.from_kwargs({"img_resolution": 32, "synthesis_kwargs": {}})
    assert (nested.num_fp16_res, nested.conv_clamp, nested.layer_features, nested.embed_features) == (0, None, 512, 0)
    conditional = StyleGAN2Config.from_kwargs({"img_resolution": 32, "c_dim": 10, "w_dim": 64})
    assert (conditional.embed_features, conditional.layer_features) == (64, 64)


def test_unknown_keys_are_named_in_every_section() -> None:
    with pytest.raises(CheckpointError, match=r"^m\.pkl: init_kwargs\.mapping_kwargs\.depth=3: unknown StyleGAN2"):
        StyleGAN2Config.from_kwargs({"img_resolution": 32, "mapping_kwargs": {"depth": 3}}, "m.pkl")
    with pytest.raises(CheckpointError, match=r"init_kwargs\.mapping_kwargs\.lr=0\.1: unknown StyleGAN3 mapping"):
        StyleGAN3Config.from_kwargs({"z_dim": 8, "w_dim": 8, "img_resolution": 16, "mapping_kwargs": {"lr": 0.1}})
    with pytest.raises(CheckpointError, match=r"init_kwargs\.synthesis_kwargs\.extra=1: unknown StyleGAN3"):
        StyleGAN3Config.from_kwargs({"z_dim": 8, "w_dim": 8, "img_resolution": 16, "synthesis_kwargs": {"extra": 1}})
    with pytest.raises(CheckpointError, match=r"init_kwargs is \[1, 2, 3\] \(list\), not a mapping of DCGAN"):
        DCGANConfig.from_kwargs([1, 2, 3])


def test_nested_and_self_referencing_values_are_summarised_not_walked() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(CheckpointError, match=r"init_kwargs\.z_dim=<a mapping of 1 keys>: must be a number"):
        DCGANConfig.from_kwargs({"z_dim": loop})
    deep: list[Any] = []
    for _ in range(20000):
        deep = [deep]
    with pytest.raises(CheckpointError, match=r"resample_filter\[0\]=<a list of 1 items>: must be a number"):
        StyleGAN2Config.from_kwargs({"img_resolution": 32, "synthesis_kwargs": {"resample_filter": deep}})


def test_parameter_count_formula_against_literal_sizes() -> None:
    """Sizes worked out by hand from the layer shapes (not from the modules)."""
    # DCGAN 64 px, z 100, ngf 64: convs 100*512*16 + 512*256*16 + 256*128*16 + 128*64*16 + 64*3*16,
    # BatchNorms 2 * (512 + 256 + 128 + 64).
    assert DCGANConfig().param_count() == 3_576_704
    # StyleGAN2 4 px, z = w = 8, one mapping layer, width 4: mapping 8*8+8; const 4*16; conv1: affine 8*4+4,
    # weight 4*4*9, bias 4, noise strength 1; ToRGB: affine 8*4+4, weight 3*4, bias 3.
    tiny = StyleGAN2Config(z_dim=8, w_dim=8, img_resolution=4, mapping_layers=1, channel_base=16, channel_max=4)
    assert tiny.param_count() == 72 + 64 + (36 + 144 + 4 + 1) + (36 + 12 + 3)


def test_direct_construction_is_range_checked_too() -> None:
    with pytest.raises(ValueError, match="w_dim=100000: must be at most 8192"):
        StyleGAN2Config(w_dim=100_000)
    with pytest.raises(ValueError, match="conv_clamp=inf: must be a finite number"):
        StyleGAN2Config(conv_clamp=math.inf)
    with pytest.raises(ValueError, match="num_layers=2: must exceed num_critical"):
        StyleGAN3Config(z_dim=8, w_dim=8, img_resolution=16, num_layers=2)
