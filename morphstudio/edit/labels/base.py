"""The labeller interface, the spec parser and what every built-in labeller shares.

A *labeller* turns face images into numbers: ``labeller(images)`` takes uint8 ``[N, H, W, 3]`` RGB and returns
float64 ``[N, len(labeller.labels)]``, one column per :class:`LabelInfo`, and an all-NaN row for an image in
which no face was found (the fitting side skips those rows and says how many).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from morphstudio.errors import MorphError


class LabellerError(MorphError):
    """A labeller spec or a user's labeller is unusable (unknown name, bad module, bad folder or CSV...)."""


@dataclass(frozen=True)
class LabelInfo:
    """One column of a labeller's output.

    Attributes:
        name: Short identifier (``smile``, ``age``...), the name a fitted direction takes.
        unit: What the number is measured in (``ratio``, ``degrees``, ``years``, ``probability``...).
        description: One sentence a user reads in ``morphstudio score`` and ``directions show``.
    """

    name: str
    unit: str
    description: str


@runtime_checkable
class Labeller(Protocol):
    """Anything with ``labels`` and ``__call__(images) -> scores``."""

    labels: tuple[LabelInfo, ...]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` RGB -> float64 ``[N, len(labels)]``, NaN rows where no face was found."""
        ...


BUILTIN_SPECS = ("geometry", "age-gender", "all")


def check_images(images: Any) -> np.ndarray:
    """The images as a uint8 ``[N, H, W, 3]`` array, or a :class:`LabellerError` saying what they are instead.

    A single ``[H, W, 3]`` image is accepted and given a batch axis of one.
    """
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise LabellerError(f"labellers take RGB images [N, H, W, 3], got an array of shape {list(arr.shape)}")
    if arr.dtype != np.uint8:
        raise LabellerError(f"labellers take uint8 images (0-255), got dtype {arr.dtype}")
    if arr.shape[1] < 8 or arr.shape[2] < 8:
        raise LabellerError(f"images of {arr.shape[2]}x{arr.shape[1]} px are too small to hold a face")
    return arr


class MeshLabeller:
    """What the built-in labellers share: find the largest face of each image with mediapipe's mesh, then score it.

    Subclasses set ``labels`` and implement :meth:`label_faces`; :class:`CombinedLabeller` calls that directly with
    one mesh pass shared by all of them (the geometry labeller makes a second one, on the mirror image). mediapipe
    is imported on the first call, not with this module.
    """

    labels: tuple[LabelInfo, ...] = ()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` RGB -> float64 ``[N, len(labels)]``, NaN rows where no face was found."""
        from morphstudio.edit.labels.mesh import find_faces

        arr = check_images(images)
        return self.label_faces(arr, find_faces(arr))

    def label_faces(self, images: np.ndarray, faces: list[Any]) -> np.ndarray:
        """Scores for images whose faces were already found (``None`` where none was)."""
        raise NotImplementedError


class CombinedLabeller:
    """Several built-in labellers side by side, sharing one face-mesh pass per image (the geometry labeller adds
    its mirror pass).

    Args:
        parts: Labellers with a ``label_faces(images, faces)`` method (the built-in ones).
    """

    def __init__(self, parts: Sequence[Any]) -> None:
        self.parts = tuple(parts)
        self.labels: tuple[LabelInfo, ...] = tuple(info for p in self.parts for info in p.labels)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        from morphstudio.edit.labels.mesh import find_faces

        arr = check_images(images)
        faces = find_faces(arr)
        return np.concatenate([p.label_faces(arr, faces) for p in self.parts], axis=1)
