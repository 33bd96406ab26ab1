"""Alignment on photo-like images made from the built-in model (generated face, upscaled, rotated, pasted)."""

from __future__ import annotations

import numpy as np
import pytest

from morphstudio.errors import FaceNotFoundError
from morphstudio.faces.align import (
    DIGIFACE,
    FFHQ,
    align_face,
    crop_params_for,
    paste_back,
)
from morphstudio.faces.images import from_array
from morphstudio.faces.report import psnr
from morphstudio.faces.synthetic import compose_photo, generate_faces


@pytest.fixture(scope="module")
def G():
    import morphstudio

    return morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")


@pytest.fixture(scope="module")
def faces(G):
    return generate_faces(G, [0, 1, 3])[0]


def test_rotation_is_recovered(faces) -> None:
    # The generated face has its own slight roll; rotating the photo by 20 degrees must add 20 degrees to it.
    for face in faces[:2]:
        upright = align_face(from_array(compose_photo(face, angle=0)[0]), 64, params=DIGIFACE)
        turned = align_face(from_array(compose_photo(face, angle=20)[0]), 64, params=DIGIFACE)
        back = align_face(from_array(compose_photo(face, angle=-25)[0]), 64, params=DIGIFACE)
        assert turned.angle - upright.angle == pytest.approx(20, abs=3)
        assert back.angle - upright.angle == pytest.approx(-25, abs=3)
        # And the crops of the rotated photos look like the upright one (the rotation was undone).
        assert psnr(turned.image, upright.image) > 20


def test_digiface_framing_matches_the_model(G, faces) -> None:
    # The built-in model's own framing: aligning an upscaled generated face gives back (nearly) the same crop.
    assert crop_params_for(G) == DIGIFACE
    face = faces[0]
    photo, _ = compose_photo(face, angle=15, scale=4)
    af = align_face(from_array(photo), 64, params=DIGIFACE)
    centre = slice(16, 48)  # the face itself (the corners hold the composed photo's background)
    err = np.abs(af.image[centre, centre].astype(int) - face[centre, centre].astype(int)).mean()
    assert err < 20, err
    ffhq = align_face(from_array(photo), 64, params=FFHQ)
    err_ffhq = np.abs(ffhq.image[centre, centre].astype(int) - face[centre, centre].astype(int)).mean()
    assert err < err_ffhq  # FFHQ frames looser: the model's own framing fits better


def test_paste_back_puts_the_face_where_it_was(faces) -> None:
    photo, (cx, cy) = compose_photo(faces[0], angle=10, scale=4)
    af = align_face(from_array(photo), 64, params=DIGIFACE)
    assert af.transform.shape == (3, 3)
    white = np.full_like(af.image, 255)
    pasted = paste_back(photo, white, af.transform)
    changed = np.argwhere(np.abs(pasted.astype(int) - photo.astype(int)).sum(-1) > 60)
    ys, xs = changed[:, 0], changed[:, 1]
    assert abs(xs.mean() - cx) < 20 and abs(ys.mean() - cy) < 30
    # Pasting the crop itself back changes the photo only a little inside the face.
    same = paste_back(photo, af.image, af.transform)
    assert psnr(same[int(cy) - 60:int(cy) + 60, int(cx) - 60:int(cx) + 60],
                photo[int(cy) - 60:int(cy) + 60, int(cx) - 60:int(cx) + 60]) > 22


def test_mask_covers_the_face(faces) -> None:
    af = align_face(from_array(compose_photo(faces[0])[0]), 64, params=DIGIFACE)
    assert af.mask.shape == (64, 64)
    assert af.mask[32, 32] > 0.9 and af.mask[1, 1] < 0.1


def test_no_face() -> None:
    rng = np.random.RandomState(0)
    yy, xx = np.mgrid[0:240, 0:320]
    photo = np.clip(np.stack([xx * 0.5, yy * 0.7, 200 - xx * 0.3], -1) + rng.randn(240, 320, 3) * 10, 0, 255)
    photo = photo.astype(np.uint8)
    with pytest.raises(FaceNotFoundError, match="no face found"):
        align_face(from_array(photo), 64)


def test_two_faces_largest_chosen_with_a_note(faces) -> None:
    photo, _ = compose_photo(faces[0], scale=3, centre=(180, 240), size=(800, 480))
    photo, _ = compose_photo(faces[2], scale=5, centre=(560, 240), background=photo)
    af = align_face(from_array(photo), 64, params=DIGIFACE)
    assert af.num_faces == 2 and af.face_index == 1  # left to right; the right one is larger
    assert any("2 faces found" in n and "--face" in n for n in af.notes)
    left = align_face(from_array(photo), 64, face=0, params=DIGIFACE)
    assert left.landmarks.box[0] < af.landmarks.box[0]
    with pytest.raises(FaceNotFoundError, match="face 5 requested but the image holds 2"):
        align_face(from_array(photo), 64, face=5)
