"""The shipped face model and the generator interface as a user meets them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import morphstudio
from morphstudio.cli import main
from morphstudio.devices import resolve_device, resolve_dtype
from morphstudio.errors import DeviceError, ModelError
from morphstudio.generators import to_uint8
from morphstudio.latent import z_from_seed

BUILTIN = "builtin:dcgan-faces64"


@pytest.fixture(scope="module")
def G() -> morphstudio.generators.Generator:
    return morphstudio.load_generator(BUILTIN, device="cpu")


def seeds_z(seeds: range | list[int], z_dim: int = 100) -> torch.Tensor:
    return torch.from_numpy(np.stack([z_from_seed(s, z_dim) for s in seeds])).float()


def test_builtin_describes_itself(G) -> None:
    assert (G.family, G.resolution, G.z_dim, G.w_dim, G.c_dim, G.num_ws) == ("dcgan", 64, 100, 100, 0, 1)
    assert torch.equal(G.w_avg, torch.zeros(100))
    assert not any(p.requires_grad for p in G.parameters())
    assert {layer.w_index for layer in G.layers()} == {0}
    assert [layer.resolution for layer in G.layers()] == [4, 8, 16, 32, 64]


def test_builtin_makes_faces(G) -> None:
    """mediapipe's face mesh finds a face in at least 80% of 50 seeds upscaled to 256 px."""
    import mediapipe as mp

    with torch.no_grad():
        faces = to_uint8(G(seeds_z(range(50)))).numpy()
    found = 0
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, min_detection_confidence=0.5) as fm:
        for face in faces:
            big = cv2.resize(face, (256, 256), interpolation=cv2.INTER_CUBIC)
            found += fm.process(big).multi_face_landmarks is not None
    assert found >= 40, f"face mesh found faces in only {found}/50 seeds"


def test_mapping_is_identity_and_truncation_pulls_to_zero(G) -> None:
    z = seeds_z([3, 4])
    ws = G.mapping(z)
    assert ws.shape == (2, 1, 100) and torch.equal(ws[:, 0], z)
    assert torch.allclose(G.mapping(z, psi=0.5), 0.5 * ws)
    with torch.no_grad():
        img = G.synthesis(G.mapping(z, psi=0.0))
    assert torch.equal(img[0], img[1]), "psi 0 must collapse every seed to the mean face"


def test_wrong_latent_shape_is_a_clear_error(G) -> None:
    with pytest.raises(ModelError, match=r"latents must have shape \[N, 1, 100\].*got \[2, 3, 100\]"):
        G.synthesis(torch.zeros(2, 3, 100))
    with pytest.raises(ModelError, match=r"z must have shape \[N, 100\]"):
        G.mapping(torch.zeros(2, 512))


def test_device_and_precision_errors() -> None:
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")
        with pytest.raises(DeviceError, match="only supported on a GPU"):
            resolve_dtype("fp16", torch.device("cpu"))
    with pytest.raises(DeviceError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    assert resolve_device("cpu") == torch.device("cpu")


def test_inspect_prints_layer_table_and_writes_contact_sheet(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sheet.png"
    assert main(["inspect", BUILTIN, "--grid", str(out), "--seeds", "0-3", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    for expected in ("family      dcgan", "resolution  64 x 64", "num_ws      1", "parameters  3,5", "main.12"):
        assert expected in text
    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (256, 256, 3) and sheet.std() > 20  # 2x2 faces of 128 px, not a blank image


def test_inspect_bad_inputs_give_one_line(tmp_path: Path, capsys) -> None:
    assert main(["inspect", "builtin:nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope" in err and "Traceback" not in err
    assert main(["inspect", BUILTIN, "--grid", str(tmp_path / "missing" / "x.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
