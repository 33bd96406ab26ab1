"""``--refine N``: a few projector steps on each aligned crop after the encoder, warm-started across frames.

The encoder's guess is quick but coarse; the projector (:class:`morphstudio.faces.project.Projector`) gets closer
but needs hundreds of steps from scratch. In a video the face of one frame is nearly the face of the last, so
each frame starts from the previous frame's refined latent while the same face continues (a frame with no face
in between ends it) and from the encoder's guess otherwise: the few steps a frame can afford add up over the
frames, and consecutive latents stay close (no jumping between independent fits).

The steps are the projector's own (its losses weighted inside the face mask, its Adam with the learning rate
scaled by the latents' spread), run with no exploration noise, a constant learning rate, no early stop and no
z-shell (see below), and with the projector's rule that the best latent seen is kept: a step that made the crop worse is
not taken, so refining never does worse than where the frame started.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

MAX_STEPS = 100


class WarmRefiner:
    """Refines one frame's latent at a time, remembering the last result.

    Args:
        generator: The torch generator.
        steps: Optimiser updates per frame (N of ``--refine N``, >= 1).
        lr: The projector's learning rate (in units of the latents' spread); a fifth of a from-scratch
            projection's 0.1 by default: a warm start is already close, and larger first steps overshoot.
        warn: Where the projector's notes go (e.g. which perceptual loss it fell back to).
    """

    def __init__(self, generator: Any, steps: int, *, lr: float = 0.02,
                 warn: Callable[[str], None] | None = None) -> None:
        from morphstudio.faces.project import ProjectConfig, Projector

        if not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must be between 1 and {MAX_STEPS}")
        self.steps = steps
        # The projector measures each step's loss before the update, so N updates need N + 1 measured steps (the
        # last one's update is never used); the best of the N + 1 latents is kept.
        # No z-shell: the encoder's DCGAN latents lie well inside the shell of random z (|z| about half its
        # radius on the built-in model), and pulling the start onto the shell costs more than a few steps win back.
        cfg = ProjectConfig(space="w+", steps=steps + 1, lr=lr, lr_rampup=0.0, lr_rampdown=0.0, w_noise=0.0,
                            patience=0, optimise_noise=False, z_shell=False)
        self._warn = warn
        self._said: set[str] = set()
        self.projector = Projector(generator, cfg, warn=self._note)
        self.previous: np.ndarray | None = None

    def _note(self, msg: str) -> None:
        # Once per kind of note, not once per frame (the far-from-w_avg warning differs only in its numbers).
        kind = re.sub(r"[0-9.]+", "#", msg)
        if self._warn is not None and kind not in self._said:
            self._said.add(kind)
            self._warn(msg)

    def start_for(self, encoded: np.ndarray, continues: bool) -> np.ndarray:
        """Where a frame's refinement starts: the previous frame's result while the face continues, else the
        encoder's ``[num_ws, w_dim]`` guess."""
        if continues and self.previous is not None and self.previous.shape == encoded.shape:
            return self.previous
        return encoded

    def refine(self, crop: np.ndarray, mask: np.ndarray | None, encoded: np.ndarray, continues: bool) -> np.ndarray:
        """The refined ``[num_ws, w_dim]`` float32 latent of one aligned ``[S, S, 3]`` uint8 crop.

        Args:
            crop: The aligned crop at the generator's resolution.
            mask: Its ``[S, S]`` face mask in [0, 1] (the loss weighs the face more), or None.
            encoded: The encoder's latent of this crop.
            continues: The previous frame showed the same face.
        """
        start = self.start_for(np.asarray(encoded, np.float32), continues)
        result = self.projector.project(crop[None], None if mask is None else np.asarray(mask)[None],
                                        init_ws=start[None])
        self.previous = result.ws[0]
        return self.previous
