"""One face-mesh pass per image, shared by the geometry and age-gender labellers.

It reuses :func:`morphstudio.faces.align.detect_faces` (one static-image FaceMesh per process, mediapipe 0.10.21's
legacy 468-landmark mesh that ships in its wheel). mediapipe's detector misses most faces drawn at 64 px, so a
small image is upscaled (bicubic) until its shorter side is :data:`MIN_SIDE` before the mesh runs, as
``tests/test_builtin_model.py`` does; the landmarks are then scaled back to the image's own pixels (the 3-D
mesh's depth by the horizontal factor, as mediapipe scales it like x).
"""

from __future__ import annotations

import cv2
import numpy as np

from morphstudio.faces.align import FaceLandmarks, detect_faces

MIN_SIDE = 256
"""Shorter side an image is upscaled to before face detection (the built-in model draws 64 px faces)."""


def faces_in(image: np.ndarray) -> list[FaceLandmarks]:
    """Every face mediapipe finds in one uint8 RGB image, in that image's pixel coordinates."""
    h, w = image.shape[:2]
    scale = max(1.0, MIN_SIDE / min(h, w))
    big = image
    if scale > 1.0:
        big = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        # The resize rounds the size; keep the exact per-axis factors so landmarks map back precisely.
    sx, sy = big.shape[1] / w, big.shape[0] / h
    k = np.array([sx, sy])
    out = []
    for f in detect_faces(big):
        # mediapipe scales depth like x (by the image width), so z comes back by the x factor.
        mesh3d = None if f.mesh3d is None else f.mesh3d / np.array([sx, sy, sx])
        out.append(FaceLandmarks(eye_left=f.eye_left / k, eye_right=f.eye_right / k, mouth_left=f.mouth_left / k,
                                 mouth_right=f.mouth_right / k, mesh=f.mesh / k, mesh3d=mesh3d))
    return out


def largest_face(image: np.ndarray) -> FaceLandmarks | None:
    """The largest face mediapipe finds in one uint8 RGB image, in that image's pixel coordinates, or None."""
    faces = faces_in(image)
    return max(faces, key=lambda face: face.area) if faces else None


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matching_face(image: np.ndarray, box: tuple[float, float, float, float],
                  min_overlap: float = 0.5) -> FaceLandmarks | None:
    """The face in ``image`` whose box overlaps ``box`` most (at least ``min_overlap``, IoU), or None."""
    best, score = None, min_overlap
    for face in faces_in(image):
        o = overlap(face.box, box)
        if o >= score:
            best, score = face, o
    return best


def find_faces(images: np.ndarray) -> list[FaceLandmarks | None]:
    """:func:`largest_face` of every image of a uint8 ``[N, H, W, 3]`` batch."""
    return [largest_face(np.ascontiguousarray(img)) for img in images]
