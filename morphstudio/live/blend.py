"""Put a generated face back into the video frame: inverse warp, colour match, feathered blend.

The generated crop lives in the aligned frame of :mod:`morphstudio.faces.align` (``transform``: frame pixel ->
crop pixel). It is colour-matched to the original crop inside the face mask (per-channel mean and spread), then
warped back through the inverse transform into only the frame's region the crop covers, and blended with the
mask feathered at its edge. Pixels where the mask is zero are copied untouched, so everything outside the face
is byte-identical to the input.
"""

from __future__ import annotations

import cv2
import numpy as np


def feathered(mask: np.ndarray, feather: float = 0.06) -> np.ndarray:
    """Soften a ``[S, S]`` crop mask: shrink it a little, then blur, so the seam fades inside the face outline
    instead of cutting across the cheeks; the crop's own border is forced to zero."""
    s = mask.shape[0]
    k = max(3, int(round(s * feather)) * 2 + 1)
    m = cv2.erode((mask > 0.5).astype(np.float32), np.ones((k // 2 | 1, k // 2 | 1), np.uint8))
    m = cv2.GaussianBlur(m, (k, k), 0)
    m[[0, -1], :] = 0
    m[:, [0, -1]] = 0
    return m.astype(np.float32)


def match_colour(generated: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift and scale each channel of ``generated`` so its mean and spread inside ``mask`` match ``original``'s.

    The generator's palette (lighting, white balance) differs from the camera's; without this the pasted face is
    a differently lit patch.
    """
    w = mask.astype(np.float64)
    total = w.sum()
    if total < 1.0:
        return generated
    g = generated.astype(np.float64)
    o = original.astype(np.float64)
    out = np.empty_like(g)
    for c in range(3):
        mg = (g[..., c] * w).sum() / total
        mo = (o[..., c] * w).sum() / total
        sg = np.sqrt(((g[..., c] - mg) ** 2 * w).sum() / total)
        so = np.sqrt(((o[..., c] - mo) ** 2 * w).sum() / total)
        # Cap the gain: a flat generated channel must not be blown up into noise.
        gain = min(so / sg, 3.0) if sg > 1e-6 else 1.0
        out[..., c] = (g[..., c] - mg) * gain + mo
    return out.round().clip(0, 255).astype(np.uint8)


def blend_back(frame: np.ndarray, face: np.ndarray, transform: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Paste ``face`` (``[S, S, 3]`` uint8 crop, already colour-matched) into a copy of ``frame``.

    Only the frame's box around the mask's footprint is warped and blended (a face is a small part of a frame,
    and the crop square is larger than the face), in one uint8 pass (``cv2.blendLinear``): no float copy of the
    frame or of the crop's whole footprint.

    Args:
        frame: ``[H, W, 3]`` uint8 video frame.
        face: The crop to paste, at the size ``transform`` maps to.
        transform: ``[3, 3]`` frame -> crop matrix.
        mask: ``[S, S]`` float blend weights in crop coordinates (0 = keep the frame).

    Returns:
        A new frame; pixels outside the mask's footprint are the input's bytes.
    """
    out = frame.copy()
    h, w = frame.shape[:2]
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return out
    inv = np.linalg.inv(transform)
    # The mask's bounding box in crop pixels, one pixel wider each way for the bilinear footprint; a homography
    # maps it to a convex quadrilateral, so its corners bound the frame region it touches.
    c0, c1 = cols[0] - 1.0, cols[-1] + 2.0
    r0, r1 = rows[0] - 1.0, rows[-1] + 2.0
    corners = np.array([[c0, r0], [c1, r0], [c1, r1], [c0, r1]], np.float64)
    pts = cv2.perspectiveTransform(corners[None], inv)[0]
    x0, y0 = np.floor(pts.min(0)).astype(int) - 1
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return out
    # Warp into the region of interest only: translate so its top-left corner is the origin.
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
    m = shift @ inv
    size = (x1 - x0, y1 - y0)
    back = cv2.warpPerspective(face, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpPerspective(mask.astype(np.float32), m, size, flags=cv2.INTER_LINEAR, borderValue=0)
    np.clip(alpha, 0.0, 1.0, out=alpha)
    roi = out[y0:y1, x0:x1]
    # roi * (1 - a) + back * a, rounded, per pixel. Where a is exactly 0 that is roi * 1 + back * 0: the frame's
    # own byte, so everything outside the face stays byte-identical.
    roi[...] = cv2.blendLinear(np.ascontiguousarray(roi), back, 1.0 - alpha, alpha)
    return out
