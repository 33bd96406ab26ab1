"""Built-in labellers on real photos: geometry from the face mesh, age and gender from dlib's ONNX networks.

Expected values come from outside the labellers: a mirror flips left and right (so yaw and roll change sign and
symmetric measures stay), an image rotated by a known angle adds that angle to roll, a mouth stretched by a known
warp is wider, and the astronaut of ``scenes/photos/astronaut.jpg`` (Eileen Collins, photographed in her early
forties) is a woman of about 40.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from morphstudio.edit.labels import LabelInfo, get_labeller
from morphstudio.faces.images import read_image

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "scenes" / "photos"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return read_image(PHOTOS / "astronaut.jpg").pixels


@pytest.fixture(scope="module")
def generated() -> np.ndarray:
    """A face the built-in model drew (seed 16, upscaled to 256 px), turned well to one side."""
    return read_image(PHOTOS / "dcgan-seed16.png").pixels


@pytest.fixture(scope="module")
def geometry():
    return get_labeller("geometry")


def col(labeller, name: str) -> int:
    return [info.name for info in labeller.labels].index(name)


def mirror(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:, ::-1])


def test_labels_are_described(geometry) -> None:
    names = [i.name for i in get_labeller("all").labels]
    assert names == ["smile", "smile_lift", "mouth_open", "eyes_open", "yaw", "pitch", "roll", "face_size",
                     "face_x", "face_y", "age", "gender"]
    for info in get_labeller("all").labels:
        assert isinstance(info, LabelInfo) and info.unit and len(info.description) > 20
    pitch = geometry.labels[col(geometry, "pitch")]
    assert "relative to the sample mean" in pitch.description


@pytest.mark.parametrize("photo", ["astronaut", "generated"])
def test_mirror_flips_yaw_and_roll_and_keeps_the_rest(photo, request, geometry) -> None:
    """Single readings (no mirror averaging, which makes this exact by construction): what mediapipe's mesh and the
    measures do with a mirrored face, which the averaging relies on."""
    from morphstudio.edit.labels.geometry import GeometryLabeller

    img = request.getfixturevalue(photo)
    s, m = GeometryLabeller(mirror=False)(np.stack([img, mirror(img)]))
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(m))
    yaw, roll = col(geometry, "yaw"), col(geometry, "roll")
    for c in (yaw, roll):
        # The mirror image's angle is the negative of the original's, within a couple of degrees of mesh noise.
        assert abs(s[c] + m[c]) < 2.5, (geometry.labels[c].name, s[c], m[c])
    assert s[yaw] * m[yaw] < 0
    for name, tol in (("smile", 0.03), ("eyes_open", 0.04), ("mouth_open", 0.04), ("face_size", 0.02),
                      ("face_y", 0.02)):
        assert abs(s[col(geometry, name)] - m[col(geometry, name)]) < tol, name
    # Horizontal position mirrors too: x -> 1 - x.
    assert abs(s[col(geometry, "face_x")] - (1 - m[col(geometry, "face_x")])) < 0.02


@pytest.mark.parametrize("photo", ["astronaut", "generated"])
def test_mirrored_image_gets_exactly_the_mirrored_labels(photo, request, geometry) -> None:
    """The default reads each image and its mirror and averages them (yaw, roll, face_x mirrored back): the mean of
    two single readings, so a mirrored image gets the same numbers with yaw, roll and face_x mirrored."""
    from morphstudio.edit.labels.geometry import GeometryLabeller

    img = request.getfixturevalue(photo)
    s, m = geometry(np.stack([img, mirror(img)]))
    odd = {col(geometry, "yaw"), col(geometry, "roll")}
    for c, info in enumerate(geometry.labels):
        if c in odd:
            expected = -s[c]
        elif info.name == "face_x":
            expected = 1.0 - s[c]
        else:
            expected = s[c]
        assert m[c] == pytest.approx(expected, abs=1e-12), info.name
    once = GeometryLabeller(mirror=False)
    a, b = once(np.stack([img, mirror(img)]))
    # Each single reading on its own is not mirror-symmetric (mediapipe's mesh is not) ...
    assert abs(a[col(geometry, "smile")] - b[col(geometry, "smile")]) > 1e-6
    # ... and the default is their mean, b's mirrored labels mapped back by hand.
    back = b.copy()
    back[sorted(odd)] = -b[sorted(odd)]
    back[col(geometry, "face_x")] = 1.0 - b[col(geometry, "face_x")]
    np.testing.assert_allclose(s, (a + back) / 2, atol=1e-12)


def test_a_face_found_in_only_one_reading_keeps_that_reading(astronaut, monkeypatch) -> None:
    """Where mediapipe finds the face in the image but not in its mirror (or the other way), that one reading is
    the label, not NaN (the face is there) and not half of it."""
    from morphstudio.edit.labels import mesh
    from morphstudio.edit.labels.geometry import GeometryLabeller

    once = GeometryLabeller(mirror=False)(astronaut)[0]
    real = mesh.faces_in
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    monkeypatch.setattr(mesh, "faces_in", lambda img: [] if np.array_equal(img, flipped) else real(img))
    np.testing.assert_allclose(GeometryLabeller()(astronaut)[0], once, atol=1e-12)
    # The other way round: found only in the mirror, the mirror's reading (mapped back) is the label.
    monkeypatch.setattr(mesh, "faces_in", lambda img: real(img) if np.array_equal(img, flipped) else [])
    from morphstudio.edit.labels.geometry import unmirror

    only_mirror = unmirror(GeometryLabeller(mirror=False)(flipped)[0])
    np.testing.assert_allclose(GeometryLabeller()(astronaut)[0], only_mirror, atol=1e-12)


def test_two_faces_both_readings_are_of_the_same_face(generated) -> None:
    """An image holding a face and its mirror side by side is its own mirror image, so the mirror's largest face is
    the other copy; the mirror reading must be of the copy that is the same face, or yaw (-25 and +25) and face_x
    (0.25 and 0.75) would average to about 0 and 0.5."""
    from morphstudio.edit.labels.geometry import GeometryLabeller

    pair = np.ascontiguousarray(np.concatenate([generated, mirror(generated)], axis=1))
    lab = get_labeller("geometry")
    once = GeometryLabeller(mirror=False)(pair)[0]
    both = lab(pair)[0]
    assert abs(once[col(lab, "yaw")]) > 10  # the copies are turned well to either side
    assert abs(both[col(lab, "yaw")] - once[col(lab, "yaw")]) < 3.0
    assert abs(both[col(lab, "face_x")] - once[col(lab, "face_x")]) < 0.02


def test_generated_face_turned_to_the_left_has_negative_yaw(generated, geometry) -> None:
    # seed 16's nose points to the image's left (its image-right eye is twice as far from the nose as the other):
    # yaw is documented positive toward the image's right.
    s = geometry(generated)[0]
    assert s[col(geometry, "yaw")] < -10


def test_astronaut_values_are_plausible(astronaut, geometry) -> None:
    s = geometry(astronaut)[0]
    # She faces the camera and smiles with parted lips: a wide mouth, corners up, eyes open, near-frontal pose.
    assert 0.40 < s[col(geometry, "smile")] < 0.60
    assert s[col(geometry, "smile_lift")] > 0.05
    assert 0.05 < s[col(geometry, "mouth_open")] < 0.30
    assert 0.2 < s[col(geometry, "eyes_open")] < 0.4
    assert abs(s[col(geometry, "yaw")]) < 10 and abs(s[col(geometry, "roll")]) < 10
    # Her face is in the upper middle of the photo.
    assert 0.3 < s[col(geometry, "face_x")] < 0.6 and 0.1 < s[col(geometry, "face_y")] < 0.4
    # The values the README's `morphstudio score` example documents (3-D mesh measures, the photo and its mirror
    # averaged).
    for name, documented in (("smile", 0.487), ("smile_lift", 0.124), ("mouth_open", 0.149), ("eyes_open", 0.272)):
        assert abs(s[col(geometry, name)] - documented) < 0.01, (name, s[col(geometry, name)])


@pytest.mark.parametrize("angle", [-20.0, 15.0])
def test_rotating_the_image_adds_the_angle_to_roll(astronaut, geometry, angle) -> None:
    h, w = astronaut.shape[:2]
    # cv2's positive angle turns the picture counter-clockwise on screen: documented as positive roll.
    m = cv2.getRotationMatrix2D((w / 2, h / 3), angle, 1.0)
    turned = cv2.warpAffine(astronaut, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    base, rot = geometry(np.stack([astronaut, turned]))
    r = col(geometry, "roll")
    assert abs((rot[r] - base[r]) - angle) < 3.0, (base[r], rot[r])
    # A tilted head is not a lopsided smile: smile and mouth-corner lift are measured in the face's own frame.
    assert abs(rot[col(geometry, "smile")] - base[col(geometry, "smile")]) < 0.03
    assert abs(rot[col(geometry, "smile_lift")] - base[col(geometry, "smile_lift")]) < 0.03


def rotated_about_vertical(face, degrees: float):
    """``face`` with its 3-D mesh turned by ``degrees`` about the image's vertical axis through the mesh's centre,
    the 2-D parts (mesh, eyes, mouth corners) its orthographic projection: what a head turn does to the points."""
    from morphstudio.faces.align import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, FaceLandmarks

    t = math.radians(degrees)
    # x right, y down, z away from the camera: +t swings the nose (nearest the camera, smallest z) toward +x.
    rot = np.array([[math.cos(t), 0.0, -math.sin(t)], [0.0, 1.0, 0.0], [math.sin(t), 0.0, math.cos(t)]])
    centre = face.mesh3d.mean(0)
    p3 = (face.mesh3d - centre) @ rot.T + centre
    p2 = p3[:, :2].copy()
    return FaceLandmarks(eye_left=p2[list(EYE_IMAGE_LEFT)].mean(0), eye_right=p2[list(EYE_IMAGE_RIGHT)].mean(0),
                         mouth_left=p2[61], mouth_right=p2[291], mesh=p2, mesh3d=p3)


def image_plane_ratios(pts: np.ndarray) -> tuple[float, float]:
    """Mouth width over face width and the mean eye aspect ratio of 2-D points, written out from their definitions."""
    d = lambda a, b: float(np.linalg.norm(pts[a] - pts[b]))  # noqa: E731
    ear = lambda c1, t1, t2, c2, b2, b1: (d(t1, b1) + d(t2, b2)) / (2 * d(c1, c2))  # noqa: E731
    return d(61, 291) / d(234, 454), (ear(33, 160, 158, 133, 153, 144) + ear(362, 385, 387, 263, 373, 380)) / 2


def test_the_mesh_carries_depth_in_pixels(astronaut) -> None:
    from morphstudio.edit.labels.mesh import largest_face

    face = largest_face(astronaut)
    assert face.mesh3d is not None and face.mesh3d.shape == (468, 3)
    np.testing.assert_array_equal(face.mesh3d[:, :2], face.mesh)
    # mediapipe scales depth like x: the nose tip (1) sits in front of (smaller z than) the face's sides, by a
    # good part of the face's width (a real head is ~140 mm wide and the nose ~90 mm in front of the ears).
    z = face.mesh3d[:, 2]
    width = float(np.ptp(face.mesh[:, 0]))
    assert 0.2 * width < float(np.mean(z[[234, 454]]) - z[1]) < 1.0 * width
    # The 64 px upscale path scales depth back by the same factor as x.
    small = cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)
    f128 = largest_face(small)
    ratio = np.ptp(f128.mesh3d[:, 2]) / np.ptp(f128.mesh3d[:, 0])
    assert abs(ratio - np.ptp(z) / width) < 0.1 * np.ptp(z) / width


@pytest.mark.parametrize("degrees", [-20.0, 20.0])
def test_turning_the_head_leaves_the_expression(astronaut, degrees) -> None:
    from morphstudio.edit.labels.geometry import measure
    from morphstudio.edit.labels.mesh import largest_face

    h, w = astronaut.shape[:2]
    face = largest_face(astronaut)
    turned = rotated_about_vertical(face, degrees)
    names = [i.name for i in get_labeller("geometry").labels]
    before, after = measure(face, w, h), measure(turned, w, h)
    p3 = face.mesh3d
    smile_3d = float(np.linalg.norm(p3[61] - p3[291]) / np.linalg.norm(p3[234] - p3[454]))
    # What the labels must read: the 3-D ratios, the same before and after a rigid turn.
    for got in (before, after):
        assert abs(got[names.index("smile")] - smile_3d) < 1e-9
    for name in ("smile", "smile_lift", "mouth_open", "eyes_open"):
        k = names.index(name)
        assert abs(after[k] - before[k]) < 1e-6 * max(1.0, abs(before[k])), name
    # ... where the image-plane ratios, the old measures, do what foreshortening predicts: an eye's width (corner
    # to corner, across the turn) shrinks by about cos(20 deg) while its height (along the axis) stays, so the
    # image-plane eye aspect ratio grows by about 1 / cos(20 deg) = 1.064, a third of the model's spread of
    # eyes_open (sd 0.05); mouth and face width are pairs symmetric about the axis and shrink alike.
    (s0, e0), (s1, e1) = image_plane_ratios(face.mesh), image_plane_ratios(turned.mesh)
    assert abs(e1 / e0 - 1 / math.cos(math.radians(degrees))) < 0.02, (e0, e1)
    assert abs(s1 / s0 - 1) < 0.01, (s0, s1)
    # The head pose still sees the turn, with the sign yaw documents (positive toward the image's right).
    dyaw = after[names.index("yaw")] - before[names.index("yaw")]
    assert abs(dyaw - degrees) < 8.0, dyaw


def stretch_mouth(img: np.ndarray, centre: tuple[float, float], gain: float, radius: float) -> np.ndarray:
    """Stretch the picture horizontally by ``1 + gain`` near ``centre``, fading out over ``radius`` px."""
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xs - centre[0], ys - centre[1]
    weight = np.exp(-(dx ** 2 + (2 * dy) ** 2) / (2 * radius ** 2))
    src_x = centre[0] + dx / (1 + gain * weight)
    return cv2.remap(img, src_x, ys, interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def test_a_widened_mouth_scores_a_bigger_smile(astronaut, geometry) -> None:
    from morphstudio.edit.labels.mesh import largest_face

    face = largest_face(astronaut)
    assert face is not None
    centre = tuple((face.mouth_left + face.mouth_right) / 2)
    half = float(np.linalg.norm(face.mouth_right - face.mouth_left)) / 2
    scores = geometry(np.stack([astronaut] + [stretch_mouth(astronaut, centre, g, 1.2 * half)
                                              for g in (0.15, 0.3)]))
    smile = scores[:, col(geometry, "smile")]
    assert smile[0] < smile[1] < smile[2], smile
    # The warp moves the mouth corners out by about 9% and 18% of the mouth width; the mesh, which keeps a face
    # plausible, follows about half of it (measured: +9% at the larger warp).
    assert smile[2] / smile[0] > 1.05


def test_a_64px_face_is_found_after_upscaling(generated, geometry) -> None:
    small = cv2.resize(generated, (64, 64), interpolation=cv2.INTER_AREA)
    big, tiny = geometry(np.stack([generated, cv2.resize(small, (256, 256), interpolation=cv2.INTER_CUBIC)]))
    s64 = geometry(small)[0]
    assert np.all(np.isfinite(s64))
    # Ratios and angles do not depend on the image's size: the 64 px face reads as its 256 px upscale does.
    np.testing.assert_allclose(s64, tiny, atol=1e-6)
    assert abs(s64[col(geometry, "yaw")] - big[col(geometry, "yaw")]) < 5


def test_no_face_gives_a_nan_row(astronaut) -> None:
    lab = get_labeller("all")
    blank = np.full_like(astronaut, 128)
    noise = np.random.default_rng(0).integers(0, 256, astronaut.shape, dtype=np.uint8)
    s = lab(np.stack([astronaut, blank, noise]))
    assert s.shape == (3, len(lab.labels)) and s.dtype == np.float64
    assert np.all(np.isfinite(s[0]))
    assert np.all(np.isnan(s[1])) and np.all(np.isnan(s[2]))


def test_all_is_geometry_beside_age_gender(astronaut, generated, geometry) -> None:
    batch = np.stack([astronaut, mirror(astronaut)])
    both = get_labeller("all")(batch)
    np.testing.assert_array_equal(both[:, :10], geometry(batch))
    np.testing.assert_array_equal(both[:, 10:], get_labeller("age-gender")(batch))


# --- age and gender ----------------------------------------------------------------------------------------------


def test_onnx_models_have_the_documented_signature() -> None:
    from morphstudio.edit.labels.age_gender import session

    for name, size, classes in (("age-v1.onnx", 64, 81), ("gender-v1.onnx", 32, 2)):
        s = session(name)
        (inp,), (out,) = s.get_inputs(), s.get_outputs()
        assert (inp.name, inp.shape[1:], inp.type) == ("images", [3, size, size], "tensor(float)")
        assert (out.name, out.shape[1:]) == ("probabilities", [classes])


def test_onnx_outputs_are_probabilities(astronaut) -> None:
    from morphstudio.edit.labels.age_gender import face_chip, probabilities
    from morphstudio.edit.labels.mesh import largest_face

    face = largest_face(astronaut)
    rng = np.random.default_rng(1)
    for name, size in (("age-v1.onnx", 64), ("gender-v1.onnx", 32)):
        chips = np.stack([face_chip(astronaut, face, size), rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                          np.zeros((size, size, 3), np.uint8)])
        p = probabilities(name, chips)
        assert np.all(p >= 0) and np.all(p <= 1)
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


def test_astronaut_is_a_woman_of_about_forty(astronaut) -> None:
    lab = get_labeller("age-gender")
    age, male = lab(astronaut)[0]
    print(f"astronaut.jpg: age {age:.1f} years, P(male) {male:.3f}")
    assert male < 0.5, "female probability must be above 0.5"
    assert 25 < age < 70
    # Mirrored, she is the same person: both stay on the same side.
    age_m, male_m = lab(mirror(astronaut))[0]
    assert male_m < 0.5 and abs(age_m - age) < 10


def test_age_is_the_expectation_over_the_classes(astronaut) -> None:
    from morphstudio.edit.labels.age_gender import face_chip, session
    from morphstudio.edit.labels.mesh import largest_face

    chip = face_chip(astronaut, largest_face(astronaut), 64)
    readings = []
    for c in (chip, chip[:, ::-1]):  # the documented test-time augmentation: the chip and its mirror, averaged
        x = ((c.astype(np.float32) - np.float32([122.782, 117.001, 104.298])) / 256).transpose(2, 0, 1)[None]
        p = session("age-v1.onnx").run(None, {"images": np.ascontiguousarray(x)})[0][0]
        readings.append(0.25 * p[0] + sum(k * p[k] for k in range(1, 81)))
    assert math.isclose(get_labeller("age-gender")(astronaut)[0, 0], sum(readings) / 2, rel_tol=1e-5)
    assert not math.isclose(readings[0], readings[1], rel_tol=1e-3)  # the mirror is a second reading, not a copy
    from morphstudio.edit.labels.age_gender import AgeGenderLabeller

    assert math.isclose(AgeGenderLabeller(mirror=False)(astronaut)[0, 0], readings[0], rel_tol=1e-5)


def test_dlib_chip_puts_the_eyes_where_dlib_does(astronaut) -> None:
    from morphstudio.edit.labels.age_gender import face_chip
    from morphstudio.edit.labels.mesh import largest_face

    face = largest_face(astronaut)
    chip = face_chip(astronaut, face, 64)
    # dlib's template puts the outer eye corners at x = (0.2 + 0.12) / 1.4 and (0.2 + 0.86) / 1.4 of the chip,
    # y = (0.2 + 0.213) / 1.4: warp the photo's corner points with a chip of a marked photo and find them.
    marked = astronaut.copy()
    for idx in (33, 263):
        x, y = np.round(face.mesh[idx]).astype(int)
        marked[y - 1:y + 2, x - 1:x + 2] = (255, 0, 255)
    diff = np.abs(face_chip(marked, face, 64).astype(int) - chip.astype(int)).sum(-1)
    ys, xs = np.nonzero(diff > 60)
    left = xs < 32
    for sel, want_x in ((left, (0.2 + 0.1205750620789) / 1.4 * 64), (~left, (0.2 + 0.8595674595992) / 1.4 * 64)):
        assert abs(xs[sel].mean() - want_x) < 2.5 and abs(ys[sel].mean() - (0.2 + 0.2136) / 1.4 * 64) < 2.5


def test_importing_edit_loads_no_heavy_library() -> None:
    code = ("import sys, morphstudio.edit, morphstudio.edit.labels\n"
            "from morphstudio.edit.labels import get_labeller\n"
            "get_labeller('all')\n"
            "print(sorted(m for m in ('torch', 'mediapipe', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
