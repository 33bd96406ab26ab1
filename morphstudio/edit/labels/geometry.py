"""Face geometry from mediapipe's 468-landmark face mesh: smile, mouth, eyes, head pose, face size and position.

Every measure is a ratio of distances within the face (so it does not depend on the image's size) or an angle,
taken on the largest face of each image. Landmark indices are those of mediapipe's canonical mesh; "image-left"
is the subject's right.

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
from morphstudio.faces.align import FaceLandmarks

# --- landmark indices -------------------------------------------------------------------------------------------
MOUTH_CORNERS = (61, 291)
INNER_LIP = (13, 14)            # upper and lower inner lip, at the centre
FACE_SIDES = (234, 454)         # the widest points of the face outline (at the cheekbones)
# Eye aspect ratio points per eye, in the order p1..p6 of Soukupova & Cech: corner, two upper lid, corner, two lower.
EYE_IMAGE_LEFT = (33, 160, 158, 133, 153, 144)
EYE_IMAGE_RIGHT = (362, 385, 387, 263, 373, 380)

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
    LabelInfo("smile", "ratio", "mouth width (corner to corner) over face width (cheek to cheek); about 0.38 "
                                "for a neutral adult face, larger when smiling"),
    LabelInfo("smile_lift", "ratio", "how far the mouth corners sit above the centre of the lips, over mouth "
                                     "width, measured across the eye line; positive when the corners turn up"),
    LabelInfo("mouth_open", "ratio", "gap between the inner lips over mouth width; 0 for a closed mouth"),
    LabelInfo("eyes_open", "ratio", "eye aspect ratio (lid-to-lid height over corner-to-corner width), mean of "
                                    "both eyes; about 0.25-0.35 open, under 0.15 closed"),
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


def measure(face: FaceLandmarks, width: int, height: int) -> np.ndarray:
    """The :data:`LABELS` of one face, float64 ``[len(LABELS)]``."""
    pts = face.mesh
    left, right = pts[MOUTH_CORNERS[0]], pts[MOUTH_CORNERS[1]]
    mouth_w = max(float(np.linalg.norm(right - left)), 1e-9)
    face_w = max(float(np.linalg.norm(pts[FACE_SIDES[1]] - pts[FACE_SIDES[0]])), 1e-9)
    upper, lower = pts[INNER_LIP[0]], pts[INNER_LIP[1]]
    # "Up" is measured across the eye line, so a tilted head does not read as a lopsided smile.
    eye_axis = face.eye_right - face.eye_left
    eye_axis = eye_axis / max(float(np.linalg.norm(eye_axis)), 1e-9)
    down = np.array([-eye_axis[1], eye_axis[0]])
    lift = float(np.dot((upper + lower) / 2.0 - (left + right) / 2.0, down)) / mouth_w
    gap = float(np.linalg.norm(lower - upper)) / mouth_w
    eyes = (_ear(pts, EYE_IMAGE_LEFT) + _ear(pts, EYE_IMAGE_RIGHT)) / 2.0
    yaw, pitch, roll = head_pose(pts, width, height)
    x0, y0, x1, y1 = face.box
    return np.array([mouth_w / face_w, lift, gap, eyes, yaw, pitch, roll, (y1 - y0) / height,
                     (x0 + x1) / 2.0 / width, (y0 + y1) / 2.0 / height], dtype=np.float64)


class GeometryLabeller(MeshLabeller):
    """Face-mesh geometry (:data:`LABELS`) of the largest face in each image; NaN rows where there is none."""

    labels: tuple[LabelInfo, ...] = LABELS

    def label_faces(self, images: np.ndarray, faces: list[FaceLandmarks | None]) -> np.ndarray:
        """Scores for images whose faces were already found (``None`` where none was)."""
        out = np.full((len(images), len(self.labels)), np.nan)
        h, w = images.shape[1:3]
        for i, face in enumerate(faces):
            if face is not None:
                out[i] = measure(face, w, h)
        return out
