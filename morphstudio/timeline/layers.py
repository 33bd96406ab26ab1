"""Layer groups and layer ranges of a model's per-layer latents."""

from __future__ import annotations

import numpy as np

from morphstudio.latent import LatentSpace
from morphstudio.scene.schema import GROUPS
from morphstudio.scene.yamlmap import Locator, Path_


def group_of_rows(space: LatentSpace) -> list[str]:
    """Group of each latent: coarse drives <= 8 px, middle 16-32 px, fine >= 64 px."""
    out = []
    for res in space.resolutions:
        out.append("coarse" if res <= 8 else "middle" if res <= 32 else "fine")
    return out


def group_rows(space: LatentSpace) -> dict[str, np.ndarray]:
    """``{group: row indices}`` (a group may be empty on small models)."""
    groups = group_of_rows(space)
    return {g: np.asarray([i for i, x in enumerate(groups) if x == g], dtype=np.int64) for g in GROUPS}


def one_latent_problem(space: LatentSpace, what: str) -> str:
    """The message for a layer feature asked of a one-latent model."""
    return (f"{what} cannot be used with this {space.family} model: it has a single latent (num_ws = 1), so "
            "there are no layers to choose; use a StyleGAN checkpoint (e.g. --model path/to/stylegan2.pkl)")


def select_rows(sel: str | tuple[int, int], space: LatentSpace, path: Path_, loc: Locator) -> np.ndarray:
    """Row indices of a layer selection, checked against the model.

    Args:
        sel: ``all``, a group name or ``(start, stop)``.
        space: The model's latent space.
        path: Field path of the selection, for errors.
        loc: Error locator.

    Raises:
        SceneError: A range on a one-latent model, out of range, or an empty group.
    """
    if sel == "all":
        return np.arange(space.num_ws)
    if space.num_ws == 1:
        raise loc.error(path, one_latent_problem(space, f"layers {_show(sel)}"))
    if isinstance(sel, tuple):
        start, stop = sel
        if stop > space.num_ws:
            raise loc.error(path, f"layer range [{start}, {stop}) is out of range: this model has "
                            f"{space.num_ws} latents (0..{space.num_ws - 1})")
        return np.arange(start, stop)
    rows = group_rows(space)[sel]
    if rows.size == 0:
        res = ", ".join(str(r) for r in space.resolutions)
        raise loc.error(path, f"this model has no {sel} layers (its latents drive resolutions {res})")
    return rows


def _show(sel: str | tuple[int, int]) -> str:
    return f"[{sel[0]}, {sel[1]})" if isinstance(sel, tuple) else sel
