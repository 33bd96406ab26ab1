"""The live stages' region-only warps give the full-frame results: the blend back against the textbook
full-frame alpha blend, the crop against :func:`morphstudio.faces.align.warp_to_crop` on the whole frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from morphstudio.faces.align import CropParams, warp_to_crop
from morphstudio.live.blend import blend_back, feathered
from morphstudio.live.pipeline import warp_region

S = 64


def frame_and_transform(centre: tuple[float, float], side: float, angle: float, seed: int = 0
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy 320x240 frame and the frame -> crop matrix of a rotated square of ``side`` px at ``centre``."""
    rs = np.random.RandomState(seed)
    frame = cv2.GaussianBlur(rs.randint(0, 256, (240, 320, 3)).astype(np.uint8), (5, 5), 0)
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    half = side / 2
    quad = np.array(centre) + np.array([[-half, -half], [-half, half], [half, half], [half, -half]]) @ np.array(
        [[c, s], [-s, c]])
    dst = np.array([[0, 0], [0, S], [S, S], [S, 0]], np.float32)
    return frame, cv2.getPerspectiveTransform(quad.astype(np.float32), dst).astype(np.float64), quad


def disc_mask(radius: float = 0.35) -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S]
    return feathered((np.hypot(xx - S / 2, yy - S / 2) < radius * S).astype(np.float32))


def box_mask() -> np.ndarray:
    """Full weight right up to its hard edge (an off-centre box): a region cut too tight shows at once."""
    m = np.zeros((S, S), np.float32)
    m[10:50, 6:40] = 1.0
    return m


@pytest.mark.parametrize("mask_of", [disc_mask, box_mask])
@pytest.mark.parametrize("centre, side, angle", [((160, 120), 150, 10), ((40, 200), 120, -25), ((300, 20), 90, 40)])
def test_blend_back_is_the_full_frame_alpha_blend(centre: tuple[float, float], side: float, angle: float,
                                                  mask_of: object) -> None:
    frame, transform, _ = frame_and_transform(centre, side, angle)
    face = np.random.RandomState(1).randint(0, 256, (S, S, 3)).astype(np.uint8)
    mask = mask_of()  # type: ignore[operator]
    got = blend_back(frame, face, transform, mask)
    # The reference: warp the face and the mask over the whole frame, then frame * (1 - a) + face * a.
    inv = np.linalg.inv(transform)
    h, w = frame.shape[:2]
    back = cv2.warpPerspective(face, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a = cv2.warpPerspective(mask, inv, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)[..., None].astype(np.float64)
    want = np.round(frame * (1 - a) + back * a)
    assert np.abs(got - want).max() <= 1  # float32 vs float64 rounding
    untouched = a[..., 0] == 0
    assert untouched.mean() > 0.4
    np.testing.assert_array_equal(got[untouched], frame[untouched])
    assert np.abs(got.astype(int) - frame).sum(-1)[a[..., 0] > 0.9].mean() > 20  # the face did go in


def test_blend_back_with_an_empty_mask_returns_the_frame() -> None:
    frame, transform, _ = frame_and_transform((160, 120), 150, 0)
    got = blend_back(frame, np.zeros((S, S, 3), np.uint8), transform, np.zeros((S, S), np.float32))
    np.testing.assert_array_equal(got, frame)


@pytest.mark.parametrize("params", [CropParams(), CropParams(border="reflect"), CropParams(border="constant")])
@pytest.mark.parametrize("centre, side, angle", [((160, 120), 100, 10), ((30, 210), 110, -20), ((170, 110), 230, 5)])
def test_the_region_crop_is_the_full_frame_crop(centre: tuple[float, float], side: float, angle: float,
                                                params: CropParams) -> None:
    """Same pixels as the full-frame warp when no anti-alias shrink is needed (a face under twice the crop's
    side); with the shrink (the 230 px face), closer than a half-pixel shift of the crop (the shrink's pixel grid
    starts at the region's corner instead of the frame's)."""
    frame, transform, quad = frame_and_transform(centre, side, angle)
    full = warp_to_crop(frame, transform, S, params).astype(int)
    region = warp_region(frame, transform, quad, S, params).astype(int)
    if side / S < 2:
        assert np.abs(full - region).max() <= 1
    else:
        # The yardstick: the same full-frame crop of a quad moved by half a pixel. The region crop must stay
        # closer than that (this frame is blurred noise, the worst case for a shifted grid).
        half_px = np.array([[1, 0, -0.5], [0, 1, 0], [0, 0, 1]])
        moved = warp_to_crop(frame, transform @ half_px, S, params).astype(int)
        assert np.abs(full - region).mean() < np.abs(full - moved).mean()
