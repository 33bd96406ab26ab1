"""The latent encoder: training on generated pairs, saving/loading, fitting checks, and the shipped one."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from morphstudio.errors import EncoderModelError
from morphstudio.faces.encoder import (
    EncoderConfig,
    LatentEncoder,
    TrainConfig,
    load_encoder,
    resolve_encoder,
    save_encoder,
    train_encoder,
)
from morphstudio.faces.report import psnr
from morphstudio.faces.synthetic import generate_faces


@pytest.fixture(scope="module")
def G():
    import morphstudio

    return morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")


def test_train_save_load_roundtrip(G, tmp_path: Path) -> None:
    cfg = TrainConfig(steps=4, batch_size=4, width=8, input_res=32, pool_size=16, fresh_per_step=2, log_every=2)
    enc = train_encoder(G, cfg, model_name="builtin:dcgan-faces64")
    assert enc.config.space == "z" and enc.config.steps == 4 and len(enc.config.loss_curve) == 2
    st, js = save_encoder(enc, tmp_path / "tiny")
    meta = json.loads(js.read_text())
    for key in ("arch", "model_fingerprint", "resolution", "space", "steps", "loss", "loss_curve"):
        assert key in meta
    back = load_encoder(st)
    faces, _ = generate_faces(G, [1, 2])
    a, b = enc.encode_uint8(faces), back.encode_uint8(faces)
    assert a.shape == (2, 1, 100)
    np.testing.assert_allclose(a, b, atol=0.05 * np.abs(a).max())  # fp16 storage


def test_missing_and_mismatched(G, tmp_path: Path) -> None:
    with pytest.raises(EncoderModelError, match="encoder file not found"):
        load_encoder(tmp_path / "nothing")
    enc = LatentEncoder(EncoderConfig(num_ws=10, w_dim=512, width=8))
    with pytest.raises(EncoderModelError, match=r"trained for latents \[10, 512\]"):
        enc.check_fits(G)
    broken = tmp_path / "broken"
    save_encoder(enc, broken)
    cfg = json.loads(broken.with_suffix(".json").read_text())
    cfg["width"] = 16
    broken.with_suffix(".json").write_text(json.dumps(cfg))
    with pytest.raises(EncoderModelError, match="do not match its config"):
        load_encoder(broken)
    assert resolve_encoder("none", G) is None


def test_shipped_encoder_beats_the_average_face(G) -> None:
    enc = resolve_encoder("auto", G)
    assert enc is not None and enc.config.model_name == "builtin:dcgan-faces64"
    faces, _ = generate_faces(G, list(range(900, 916)), psi=1.0)
    guess = torch.from_numpy(enc.encode_uint8(faces))
    with torch.no_grad():
        from_enc = G.synthesis(guess)
        from_avg = G.synthesis(G.w_avg.expand(16, 1, -1))
    to8 = lambda x: (x.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    p_enc = np.mean([psnr(a, b) for a, b in zip(faces, to8(from_enc))])
    p_avg = np.mean([psnr(a, b) for a, b in zip(faces, to8(from_avg))])
    assert p_enc > p_avg + 3, (p_enc, p_avg)


def test_space_z_only_for_dcgan() -> None:
    fake = SimpleNamespace(family="stylegan2", device=torch.device("cpu"))
    with pytest.raises(EncoderModelError, match="only meaningful for DCGAN"):
        train_encoder(fake, TrainConfig(space="z"))
