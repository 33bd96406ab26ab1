"""Face geometry from mediapipe's 468-landmark face mesh: smile, mouth, eyes, head pose, face size and position.

Every measure is a ratio of distances within the face (so it does not depend on the image's size) or an angle,
taken on the largest face of each image. Landmark indices are those of mediapipe's canonical mesh; "image-left"
is the subject's right.

The expression measures (smile, smile_lift, mouth_open, eyes_open) are taken on the mesh in 3-D: mediapipe gives
every landmark a depth scaled like x (:attr:`FaceLandmarks.mesh3d`), and a distance in 3-D does not change when
the head turns. In the image plane it does: a turned head foreshortens what turns away (an eye seen from the
side is narrower, its aspect ratio larger), so the 2-D ratios this labeller used before read a head turn as a
change of expression. On the built-in model's faces, moving along the shipped yaw direction changed the 2-D
eyes_open by -0.09 standard deviations per unit and the 3-D one by +0.01; smile 0.105 -> 0.075, mouth_open
-0.09 -> -0.06 (``bench/pose_labels.py``). mediapipe's depth is itself an estimate: along the pitch direction the
3-D eyes_open moves more than the 2-D one did (-0.29 vs -0.12 sd per unit).

Each image is read twice, as is and mirrored, and the readings averaged with yaw, roll and face_x mirrored back
(:class:`GeometryLabeller`), so a mirrored image gets exactly the mirrored labels. mediapipe's mesh is not
mirror-symmetric: on the built-in model's faces a single reading of smile is largest with the head turned 4 degrees
to one side, and on the mirror images 2 degrees to the other, so a head turn read as a change of smile. With the
two averaged, the conditional yaw boundary's drag on the other labels fell from 0.46-0.48 of the plain yaw
direction's (two sets of 400 held-out faces) to 0.33-0.38 (three sets; ``bench/directions.py``).

Head pose comes from ``cv2.solvePnP`` on ten stable landmarks against :data:`TEMPLATE_MM`, a generic adult head
built from anthropometric averages (Farkas' adult norms, rounded: eye corners 90 mm apart outside and 32 mm
inside, a 50 mm mouth, the eye corners 50 mm above and the chin 68 mm below the base of the nose, the nose tip
35-40 mm in front of the eye corners). One generic head fits no real head exactly, so yaw and roll are reliable
in sign and size, but pitch mixes the true tilt with how far this face's proportions are from the template's:
compare pitch between faces (relative to the sample mean), never read it as an absolute angle.
"""

from __future__ import annotations

import cv2
import numpy as np

from morphstudio.edit.labels.base import LabelInfo, MeshLabeller
from morphstudio.faces.align import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, FaceLandmarks

# --- landmark indices -------------------------------------------------------------------------------------------
MOUTH_CORNERS = (61, 291)
INNER_LIP = (13, 14)            # upper and lower inner lip, at the centre
FACE_SIDES = (234, 454)         # the widest points of the face outline (at the cheekbones)
NOSE_DOWN = (168, 2)            # between the eyes, base of the nose: the face's own down axis (both on bone)
# Eye aspect ratio points per eye, in the order p1..p6 of Soukupova & Cech: corner, two upper lid, corner, two lower.
EYE_IMAGE_LEFT_EAR = (33, 160, 158, 133, 153, 144)
EYE_IMAGE_RIGHT_EAR = (362, 385, 387, 263, 373, 380)

# Camera-style axes: x to the image's right, y down, z away from the camera; origin at the nose tip, millimetres.
TEMPLATE_MM: dict[int, tuple[float, float, float]] = {
    1: (0.0, 0.0, 0.0),          # pronasale (nose tip): hangs only a few mm above the base of the nose
    2: (0.0, 4.0, 15.0),         # subnasale
    33: (-45.0, -46.0, 38.0),    # exocanthion, image-left (eye corners ~50 mm above the base of the nose)
    263: (45.0, -46.0, 38.0),    # exocanthion, image-right
    133: (-16.0, -46.0, 30.0),   # endocanthion, image-left
    362: (16.0, -46.0, 30.0),    # endocanthion, image-right
    61: (-25.0, 22.0, 28.0),     # cheilion, image-left (~18 mm below the base of the nose)
    291: (25.0, 22.0, 28.0),     # cheilion, image-right
    152: (0.0, 72.0, 30.0),      # menton (chin): ~68 mm below the base of the nose
    168: (0.0, -48.0, 22.0),     # just below nasion, between the eyes
}

LABELS: tuple[LabelInfo, ...] = (
    LabelInfo("smile", "ratio", "mouth width (corner to corner) over face width (cheek to cheek), in 3-D so a head "
                                "turn does not change it; about 0.39 on the built-in model's faces (5-95 %: "
                                "0.33-0.47), larger when smiling"),
    LabelInfo("smile_lift", "ratio", "how far the mouth corners sit above the centre of the lips, over mouth "
                                     "width, along the face's own up axis in 3-D (perpendicular to the eye line); "
                                     "positive when the corners turn up"),
    LabelInfo("mouth_open", "ratio", "gap between the inner lips over mouth width, in 3-D; 0 for a closed mouth"),
    LabelInfo("eyes_open", "ratio", "eye aspect ratio (lid-to-lid height over corner-to-corner width) in 3-D, mean "
                                    "of both eyes; about 0.28 on the built-in model's faces (5-95 %: 0.21-0.36), "
                                    "smaller as the eyes close"),
    LabelInfo("yaw", "degrees", "head turn left/right from solvePnP against a generic 3-D head; positive when "
                                "the face turns toward the image's right; mirroring the image flips its sign"),
    LabelInfo("pitch", "degrees", "head tilt up/down against a generic 3-D head, positive looking up; only "
                                  "meaningful relative to the sample mean (the template is not this face)"),
    LabelInfo("roll", "degrees", "in-plane head tilt; positive when the face is turned counter-clockwise in the "
                                 "image; mirroring the image flips its sign"),
    LabelInfo("face_size", "fraction", "height of the face mesh (forehead to chin) over the image height"),
    LabelInfo("face_x", "fraction", "horizontal centre of the face over the image width (0 left edge, 1 right)"),
    LabelInfo("face_y", "fraction", "vertical centre of the face over the image height (0 top edge, 1 bottom)"),
)


def _ear(pts: np.ndarray, idx: tuple[int, ...]) -> float:
    p = pts[list(idx)]
    height = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
    return float(height / (2.0 * max(np.linalg.norm(p[0] - p[3]), 1e-9)))


def head_pose(pts: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees (signs as :data:`LABELS` documents) of mesh points in an image of that size."""
    ids = list(TEMPLATE_MM)
    obj = np.array([TEMPLATE_MM[i] for i in ids], dtype=np.float64)
    img = pts[ids].astype(np.float64)
    # A pinhole camera with a typical field of view: the focal length in pixels is about the image's longer side.
    f = float(max(width, height))
    cam = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
    ok, rvec, _ = cv2.solvePnP(obj, img, cam, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return (float("nan"),) * 3
    r, _ = cv2.Rodrigues(rvec)
    # R = Rz(g) Ry(b) Rx(a) in camera axes (x right, y down, z forward). With the nose pointing at the camera
    # (-z), +b swings it toward the image's left, +a swings it down and +g turns the eye line clockwise on
    # screen; the documented signs are the opposite of all three.
    b = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    a = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    g = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(-b), float(-a), float(-g)


def face_frame(pts3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face's own right and down axes (unit vectors) from its 3-D (or image-plane 2-D) mesh points.

    Right runs along the eye line (image-left eye centre to image-right eye centre); down is the line from between
    the eyes (168) to the base of the nose (2) with its part along the eye line removed, i.e. in the plane of the
    face, perpendicular to the eye line (the cross product of the face normal and the eye line). Both are points
    on bone, so neither the mouth nor the eyelids move them, and both turn with the head.
    """
    right = pts3[list(EYE_IMAGE_RIGHT)].mean(0) - pts3[list(EYE_IMAGE_LEFT)].mean(0)
    right = right / max(float(np.linalg.norm(right)), 1e-9)
    down = pts3[NOSE_DOWN[1]] - pts3[NOSE_DOWN[0]]
    down = down - np.dot(down, right) * right
    return right, down / max(float(np.linalg.norm(down)), 1e-9)


def expression(pts3: np.ndarray) -> tuple[float, float, float, float]:
    """smile, smile_lift, mouth_open, eyes_open (:data:`LABELS`) of one face's ``[468, 3]`` mesh (any units).

    Every one is a ratio of 3-D distances or of lengths along the face's own axes, so turning the head (yaw,
    pitch, roll) leaves it as it is; the same ratios taken in the image plane shrink what turns away from the
    camera (foreshortening), which made a head turn read as a change of expression. Given the ``[468, 2]``
    image-plane mesh instead, it returns those image-plane ratios (what this labeller measured before it used
    depth; ``bench/pose_labels.py`` compares the two).
    """
    left, right = pts3[MOUTH_CORNERS[0]], pts3[MOUTH_CORNERS[1]]
    mouth_w = max(float(np.linalg.norm(right - left)), 1e-9)
    face_w = max(float(np.linalg.norm(pts3[FACE_SIDES[1]] - pts3[FACE_SIDES[0]])), 1e-9)
    upper, lower = pts3[INNER_LIP[0]], pts3[INNER_LIP[1]]
    _, down = face_frame(pts3)
    lift = float(np.dot((upper + lower) / 2.0 - (left + right) / 2.0, down)) / mouth_w
    gap = float(np.linalg.norm(lower - upper)) / mouth_w
    eyes = (_ear(pts3, EYE_IMAGE_LEFT_EAR) + _ear(pts3, EYE_IMAGE_RIGHT_EAR)) / 2.0
    return mouth_w / face_w, lift, gap, eyes


def measure(face: FaceLandmarks, width: int, height: int) -> np.ndarray:
    """The :data:`LABELS` of one face, float64 ``[len(LABELS)]``.

    The expression labels come from the 3-D mesh (:func:`expression`), head pose and framing from the image-plane
    mesh; a face without ``mesh3d`` (not found by :func:`morphstudio.faces.align.detect_faces`) is refused.
    """
    if face.mesh3d is None:
        raise ValueError("the geometry labeller needs the face's 3-D mesh (FaceLandmarks.mesh3d), got None")
    smile, lift, gap, eyes = expression(face.mesh3d)
    yaw, pitch, roll = head_pose(face.mesh, width, height)
    x0, y0, x1, y1 = face.box
    return np.array([smile, lift, gap, eyes, yaw, pitch, roll, (y1 - y0) / height,
                     (x0 + x1) / 2.0 / width, (y0 + y1) / 2.0 / height], dtype=np.float64)


# How each label reads in the mirror image: yaw and roll change sign, face_x becomes 1 - face_x, the rest stay.
MIRROR_SIGN = np.array([1, 1, 1, 1, -1, 1, -1, 1, -1, 1], dtype=np.float64)
MIRROR_OFFSET = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 0], dtype=np.float64)


def unmirror(readings: np.ndarray) -> np.ndarray:
    """``[..., len(LABELS)]`` readings of mirrored images, as the same labels of the images themselves."""
    return MIRROR_OFFSET + MIRROR_SIGN * readings


class GeometryLabeller(MeshLabeller):
    """Face-mesh geometry (:data:`LABELS`) of the largest face in each image; NaN rows where there is none.

    Args:
        mirror: Also find the face in the mirror image and average the two readings (yaw, roll and face_x
            mirrored back first), so that a mirrored image gets exactly the mirrored labels (the module docstring
            says why). It costs a second mesh pass. ``mirror=False`` reads each image once.
    """

    labels: tuple[LabelInfo, ...] = LABELS

    def __init__(self, mirror: bool = True) -> None:
        self.mirror = mirror

    def label_faces(self, images: np.ndarray, faces: list[FaceLandmarks | None]) -> np.ndarray:
        """Scores for images whose faces were already found (``None`` where none was)."""
        out = self._read(images, faces)
        if not self.mirror:
            return out
        from morphstudio.edit.labels.mesh import largest_face, matching_face

        flipped = np.ascontiguousarray(images[:, :, ::-1])
        w = images.shape[2]
        mirrored: list[FaceLandmarks | None] = []
        for img, face in zip(flipped, faces):
            if face is None:
                mirrored.append(largest_face(img))
            else:
                # The same face in the mirror, not the mirror's own largest: with two faces of about the same
                # size, the two readings could otherwise be of two people.
                x0, y0, x1, y1 = face.box
                mirrored.append(matching_face(img, (w - x1, y0, w - x0, y1)))
        back = unmirror(self._read(flipped, mirrored))
        # Where mediapipe found the face in only one of the two, that reading stands alone: a mirrored image then
        # still gets the mirrored labels, as it finds the same faces the other way round. This is per label: if
        # solvePnP fails in one reading only, the pose comes from the other and the expressions are averaged.
        return np.where(np.isnan(out), back, np.where(np.isnan(back), out, 0.5 * (out + back)))

    def _read(self, images: np.ndarray, faces: list[FaceLandmarks | None]) -> np.ndarray:
        out = np.full((len(images), len(self.labels)), np.nan)
        h, w = images.shape[1:3]
        for i, face in enumerate(faces):
            if face is not None:
                out[i] = measure(face, w, h)
        return out
