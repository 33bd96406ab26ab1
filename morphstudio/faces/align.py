"""Face alignment: find a face with mediapipe's face mesh and crop it the way the generator's faces were framed.

The crop is FFHQ's recipe (the one every StyleGAN face model was trained on): from the two eye centres and the
mouth corners, build an oriented square whose side follows the eye-to-eye and eye-to-mouth distances, rotate it
with the face, and warp it to the generator's resolution. The warp is kept as a 3x3 matrix (photo pixel ->
crop pixel) so a generated face can be pasted back into the photo with :func:`paste_back`.

The numbers of the recipe live in :class:`CropParams`; models whose training faces were framed differently
(the built-in DCGAN learned DigiFace-1M's tighter, centred renders) get their own parameters through
:func:`crop_params_for`.

mediapipe 0.10.21 ships the face-mesh model inside its wheel, so nothing is downloaded.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal

import cv2
import numpy as np

from morphstudio.errors import FaceNotFoundError, ImageInputError
from morphstudio.faces.images import LoadedImage

log = logging.getLogger(__name__)

# Face-mesh landmark indices (mediapipe's canonical 468-point mesh). "Image-left" is the subject's right eye.
EYE_IMAGE_LEFT = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
EYE_IMAGE_RIGHT = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
MOUTH_IMAGE_LEFT = 61
MOUTH_IMAGE_RIGHT = 291

BorderMode = Literal["blur", "reflect", "constant", "replicate"]


@dataclass(frozen=True)
class CropParams:
    """How a face is framed in the crop (FFHQ's values by default).

    Attributes:
        eye_factor: Half the crop side is at least ``eye_factor * |eye-to-eye|`` ...
        mouth_factor: ... and at least ``mouth_factor * |eye-to-mouth|``.
        centre_shift: The crop centre sits this fraction of eye-to-mouth below the eye midpoint.
        zoom: Extra factor on the crop side (>1 shows more background).
        border: How pixels outside the photo are filled: ``blur`` (the default for every framing: the edge
            pixels stretched outward and blurred away from the edge, so a face near the photo's edge gets a
            soft background), ``reflect`` (FFHQ's mirror-then-blur: leaves a mirrored ghost of a face cut by
            the edge), ``replicate`` (streaks) or ``constant`` (``border_value``).
        border_value: RGB fill for ``constant``.
    """

    eye_factor: float = 2.0
    mouth_factor: float = 1.8
    centre_shift: float = 0.1
    zoom: float = 1.0
    border: BorderMode = "blur"
    border_value: tuple[int, int, int] = (0, 0, 0)


FFHQ = CropParams()
# DigiFace-1M renders (the built-in DCGAN's training data) are tighter than FFHQ: the face fills most of the
# frame, eyes a little above the centre. Chosen by aligning faces the model generated (see tests/test_align.py:
# the crop of an upscaled generated face lands back on the generated framing).
DIGIFACE = CropParams(eye_factor=1.4, mouth_factor=1.48, centre_shift=0.076, zoom=1.0)
# A note is shown when the photo holds fewer than this fraction of the crop's pixels per side: the crop is then
# an upscale and the projection matches a soft face.
LOW_RES_FACTOR = 0.5


def crop_params_for(generator: Any) -> CropParams:
    """Per-model framing: the generator's ``crop_params`` attribute if it has one, DigiFace for the built-in
    DCGAN, else FFHQ (every StyleGAN face model)."""
    params = getattr(generator, "crop_params", None)
    if isinstance(params, CropParams):
        return params
    if getattr(generator, "family", None) == "dcgan":
        return DIGIFACE
    return FFHQ


@dataclass
class FaceLandmarks:
    """The points alignment uses, in photo pixels (x, y).

    ``mesh3d`` is the same mesh with mediapipe's depth as a third column: ``z`` is relative depth (smaller is
    nearer the camera, about zero at the centre of the head) which mediapipe scales like ``x``, so ``z * width``
    is in the same pixels as ``x``. Distances between its points do not change when the head turns, which the
    image-plane ``mesh`` cannot offer (the face labeller measures expressions on it). ``None`` where the points
    did not come from mediapipe with depth (e.g. the live tracker's 2-D mesh).
    """

    eye_left: np.ndarray
    eye_right: np.ndarray
    mouth_left: np.ndarray
    mouth_right: np.ndarray
    mesh: np.ndarray  # [468, 2] all mesh points
    mesh3d: np.ndarray | None = None  # [468, 3]: mesh with z (pixels, scaled by the image width as x is)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """x0, y0, x1, y1 of the mesh."""
        return (float(self.mesh[:, 0].min()), float(self.mesh[:, 1].min()),
                float(self.mesh[:, 0].max()), float(self.mesh[:, 1].max()))

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)


@dataclass
class AlignedFace:
    """A face cropped for the generator.

    Attributes:
        image: ``[S, S, 3]`` uint8 crop.
        transform: ``[3, 3]`` matrix mapping photo pixel coordinates (x, y, 1) to crop coordinates.
        mask: ``[S, S]`` float32 in [0, 1]: 1 inside the face (convex hull of the mesh), soft edge.
        landmarks: The landmarks in photo coordinates.
        face_index: Which face (left to right, 0-based) of ``num_faces``.
        num_faces: How many faces the photo holds.
        angle: Roll of the face in degrees (positive = the face is turned counter-clockwise in the photo).
        notes: Things the user may want to know (several faces, border filled...).
        photo_size: ``(H, W)`` of the photo the transform refers to.
    """

    image: np.ndarray
    transform: np.ndarray
    mask: np.ndarray
    landmarks: FaceLandmarks
    face_index: int
    num_faces: int
    angle: float
    notes: list[str]
    photo_size: tuple[int, int]


_MESH_LOCK = threading.Lock()
_MESH: Any = None


def _face_mesh() -> Any:
    """One static-image FaceMesh per process (creating one costs ~0.5 s)."""
    global _MESH
    with _MESH_LOCK:
        if _MESH is None:
            # mediapipe's C++ side writes TFLite / absl chatter straight to file descriptor 2; the library leaves
            # the process's stderr alone (the CLI filters those lines, see morphstudio.commands.native_logs).
            import mediapipe as mp  # imported lazily: it is slow and pulls in TFLite

            _MESH = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=8, refine_landmarks=False, min_detection_confidence=0.5)
        return _MESH


def detect_faces(pixels: np.ndarray) -> list[FaceLandmarks]:
    """All faces mediapipe finds in an RGB uint8 image, sorted left to right."""
    h, w = pixels.shape[:2]
    mesh = _face_mesh()
    with _MESH_LOCK:
        result = mesh.process(np.ascontiguousarray(pixels))
    faces: list[FaceLandmarks] = []
    for lms in result.multi_face_landmarks or []:
        pts3 = np.array([(p.x * w, p.y * h, p.z * w) for p in lms.landmark], dtype=np.float64)[:468]
        pts = pts3[:, :2]
        faces.append(FaceLandmarks(
            eye_left=pts[list(EYE_IMAGE_LEFT)].mean(0),
            eye_right=pts[list(EYE_IMAGE_RIGHT)].mean(0),
            mouth_left=pts[MOUTH_IMAGE_LEFT],
            mouth_right=pts[MOUTH_IMAGE_RIGHT],
            mesh=pts.copy(),
            mesh3d=pts3,
        ))
    faces.sort(key=lambda f: f.box[0])
    return faces


def crop_quad(lm: FaceLandmarks, params: CropParams = FFHQ) -> np.ndarray:
    """The oriented crop square in photo coordinates: corners top-left, bottom-left, bottom-right, top-right."""
    eye_avg = (lm.eye_left + lm.eye_right) * 0.5
    eye_to_eye = lm.eye_right - lm.eye_left
    mouth_avg = (lm.mouth_left + lm.mouth_right) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    # x: the face's horizontal axis, a blend of the eye line and the perpendicular of the eye-mouth line
    # (FFHQ's construction: robust to a tilted mouth or one eye detected badly).
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x = x / max(np.hypot(*x), 1e-9)
    half = max(np.hypot(*eye_to_eye) * params.eye_factor, np.hypot(*eye_to_mouth) * params.mouth_factor)
    x = x * half * params.zoom
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * params.centre_shift
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def _quad_transform(quad: np.ndarray, size: int) -> np.ndarray:
    dst = np.array([[0, 0], [0, size], [size, size], [size, 0]], dtype=np.float32)
    return cv2.getPerspectiveTransform(quad.astype(np.float32), dst).astype(np.float64)


def warp_to_crop(pixels: np.ndarray, transform: np.ndarray, size: int, params: CropParams) -> np.ndarray:
    """Warp a photo with ``transform`` (photo -> crop) into a ``size`` square, anti-aliased and border-filled."""
    # Shrink first when the face is much larger than the crop: a bilinear warp alone would alias.
    scale_len = np.sqrt(abs(np.linalg.det(transform[:2, :2])))
    m = transform
    src = pixels
    if scale_len < 0.5:
        shrink = 1.0 / (2 * scale_len)
        h, w = pixels.shape[:2]
        nw, nh = max(1, round(w / shrink)), max(1, round(h / shrink))
        src = cv2.resize(pixels, (nw, nh), interpolation=cv2.INTER_AREA)
        pre = np.diag([w / nw, h / nh, 1.0])  # small -> original coordinates
        m = transform @ pre
    border = {"blur": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT, "replicate": cv2.BORDER_REPLICATE,
              "constant": cv2.BORDER_CONSTANT}[params.border]
    out = cv2.warpPerspective(src, m, (size, size), flags=cv2.INTER_CUBIC if scale_len > 1 else cv2.INTER_LINEAR,
                              borderMode=border, borderValue=tuple(int(v) for v in params.border_value))
    if params.border == "reflect":
        out = _blur_outside(out, src, m, size, kernel=size // 16, ramp=0.1)
    elif params.border == "blur":
        # Stretched edge pixels are streaks; a blur a quarter of the crop wide turns them into a smooth wash
        # of the edge's colours within a few pixels of the edge (no mirrored face, no stripes).
        out = _blur_outside(out, src, m, size, kernel=size // 4, ramp=0.04)
    return out


def _blur_outside(out: np.ndarray, src: np.ndarray, m: np.ndarray, size: int, *, kernel: int,
                  ramp: float) -> np.ndarray:
    """Fade the pixels outside the photo into a blurred copy: fully blurred ``ramp * size`` px from the edge."""
    inside = np.ones(src.shape[:2], np.uint8) * 255
    mask = cv2.warpPerspective(inside, m, (size, size), flags=cv2.INTER_NEAREST, borderValue=0)
    if mask.min() == 255:
        return out
    dist = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, 3)
    k = max(3, kernel * 2 + 1)
    blurred = cv2.GaussianBlur(out, (k, k), 0)
    alpha = np.clip(dist / max(size * ramp, 1.0), 0, 1)[..., None]
    return (out * (1 - alpha) + blurred * alpha).round().clip(0, 255).astype(np.uint8)


def face_mask(lm: FaceLandmarks, transform: np.ndarray, size: int) -> np.ndarray:
    """Soft ``[size, size]`` mask of the face (convex hull of the mesh) in crop coordinates."""
    pts = cv2.perspectiveTransform(lm.mesh[None].astype(np.float64), transform)[0]
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
    mask = np.zeros((size * 4, size * 4), np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull * 4).astype(np.int32), 255)
    mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    k = max(3, size // 32 * 2 + 1)
    return cv2.GaussianBlur(mask, (k, k), 0)


CHOOSE_HINT = "pass --face N to choose another"


def choose_face(faces: list[FaceLandmarks], face: int | None, where: Any,
                choose_hint: str = CHOOSE_HINT) -> tuple[int, list[str]]:
    """Index of the face to use: ``face`` (0-based, left to right) or the largest, with a note when ambiguous.

    ``choose_hint`` tells the user how to pick another (``--face N`` on the command line, ``face_index: N`` in
    a scene)."""
    if not faces:
        raise FaceNotFoundError(where, "no face found in the image",
                                hint="use a photo where the face is clearly visible, or pass --no-align if the "
                                     "image is already a face crop")
    notes: list[str] = []
    if face is not None:
        if not 0 <= face < len(faces):
            raise FaceNotFoundError(where, f"face {face} requested but the image holds {len(faces)} face(s) "
                                           f"(numbered 0..{len(faces) - 1} left to right)")
        return face, notes
    idx = int(np.argmax([f.area for f in faces]))
    if len(faces) > 1:
        notes.append(f"{len(faces)} faces found; using the largest (face {idx}, counted left to right from 0); "
                     + choose_hint)
    return idx, notes


def align_face(
    image: LoadedImage | np.ndarray,
    size: int,
    *,
    face: int | None = None,
    params: CropParams = FFHQ,
    choose_hint: str = CHOOSE_HINT,
) -> AlignedFace:
    """Detect, choose and crop one face.

    Args:
        image: A :class:`LoadedImage` (from :func:`morphstudio.faces.images.read_image`) or an RGB uint8 array.
        size: Output side in pixels (the generator's resolution).
        face: 0-based index counted left to right; ``None`` picks the largest face.
        params: Framing (see :func:`crop_params_for`).
        choose_hint: How the user picks another face, for the note on a photo with several.

    Returns:
        The crop, its transform and a face mask.

    Raises:
        FaceNotFoundError: No face, or the requested index does not exist.
    """
    if isinstance(image, np.ndarray):
        from morphstudio.faces.images import from_array

        image = from_array(image)
    where = image.path if image.path is not None else "image"
    if size < 8:
        raise ImageInputError(where, f"crop size must be at least 8 px, got {size}")
    faces = detect_faces(image.pixels)
    idx, notes = choose_face(faces, face, where, choose_hint)
    lm = faces[idx]
    quad = crop_quad(lm, params)
    transform = _quad_transform(quad, size)
    crop = warp_to_crop(image.pixels, transform, size, params)
    h, w = image.pixels.shape[:2]
    if quad[:, 0].min() < 0 or quad[:, 1].min() < 0 or quad[:, 0].max() > w or quad[:, 1].max() > h:
        fill = {"blur": "a blur of the photo's edge", "reflect": "mirroring the photo (border: reflect)",
                "replicate": "repeating the edge pixels (border: replicate)", "constant": "a flat colour"}
        notes.append(f"the crop extends past the photo's edge; filled with {fill[params.border]}")
    side = float(np.hypot(*(quad[3] - quad[0])))  # the crop's side in photo pixels
    if side < size * LOW_RES_FACTOR:
        notes.append(f"low resolution: the face's crop spans only {side:.0f} px of the photo but the model draws "
                     f"{size} px, so it is upscaled {size / side:.1f}x and the projection will match a blurry "
                     "face; a larger photo of the face works better")
    eye_vec = lm.eye_right - lm.eye_left
    angle = float(np.degrees(np.arctan2(-eye_vec[1], eye_vec[0])))
    return AlignedFace(
        image=crop, transform=transform, mask=face_mask(lm, transform, size), landmarks=lm, face_index=idx,
        num_faces=len(faces), angle=angle, notes=image.notes + notes, photo_size=(h, w),
    )


def paste_back(photo: np.ndarray, face_img: np.ndarray, transform: np.ndarray, *, feather: float = 0.08,
               mask: np.ndarray | None = None) -> np.ndarray:
    """Put a (generated) face crop back into the photo it was aligned from.

    Args:
        photo: ``[H, W, 3]`` uint8, the original photo (same size the transform was computed on).
        face_img: ``[S, S, 3]`` uint8 crop at the size the transform was made for.
        transform: ``[3, 3]`` photo -> crop matrix from :class:`AlignedFace`.
        feather: Width of the soft edge as a fraction of the crop side.
        mask: Optional ``[S, S]`` blend weights (e.g. :attr:`AlignedFace.mask`); default a feathered square.

    Returns:
        A new ``[H, W, 3]`` uint8 photo.
    """
    h, w = photo.shape[:2]
    s = face_img.shape[0]
    inv = np.linalg.inv(transform)
    back = cv2.warpPerspective(face_img, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if mask is None:
        e = max(1, round(s * feather))
        ramp = np.minimum(np.arange(s) + 1, np.arange(s)[::-1] + 1).astype(np.float32) / e
        ramp = np.clip(ramp, 0, 1)
        mask = np.minimum(ramp[None, :], ramp[:, None])
    alpha = cv2.warpPerspective(mask.astype(np.float32), inv, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    alpha = alpha[..., None]
    out = photo.astype(np.float32) * (1 - alpha) + back.astype(np.float32) * alpha
    return out.round().clip(0, 255).astype(np.uint8)


def settings_dict(params: CropParams) -> dict[str, Any]:
    """JSON-able record of the framing (stored with projections and in the cache key)."""
    d = asdict(params)
    d["border_value"] = list(d["border_value"])
    return d
