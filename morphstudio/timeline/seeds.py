"""Seeds of the scene's random elements that have no seed of their own: one derivation, named streams.

A walk or deform loop without ``seed:`` gets ``(scene seed * 7919 + stream + index) mod 2**32``: the prime spreads
neighbouring scene seeds apart, the stream keeps walks and loops from sharing draws, and the index gives each
element of a list its own. These values are part of every saved scene's look (a changed rule changes its random
faces and directions), so tests pin them as literal numbers.
"""

from __future__ import annotations

from enum import IntEnum

SEED_MULTIPLIER = 7919
SEED_MODULUS = 2**32
LATENT_STATS_SEED = 20240601
"""Seed of the random latents that measure a model's spread (the unit of loop amplitudes and strengths)."""
LATENT_STATS_SAMPLES = 256
"""How many: enough for the RMS to settle to a few percent; the timeline's and no other caller's count."""


class SeedStream(IntEnum):
    """Which kind of element a derived seed is for (its offset in :func:`derive_seed`)."""

    WALK = 1000
    LOOP = 2000


def derive_seed(scene_seed: int, stream: SeedStream, index: int) -> int:
    """The seed of element ``index`` of ``stream`` in a scene seeded ``scene_seed``.

    Args:
        scene_seed: The scene's ``seed`` (0 <= seed < 2**32).
        stream: Walks or deform loops.
        index: Position of the element in its list.

    Returns:
        ``(scene_seed * 7919 + stream + index) mod 2**32``.
    """
    return (scene_seed * SEED_MULTIPLIER + int(stream) + index) % SEED_MODULUS


def seed_of(own: int | None, scene_seed: int, stream: SeedStream, index: int) -> int:
    """An element's own ``seed:`` when it has one, else :func:`derive_seed`."""
    return own if own is not None else derive_seed(scene_seed, stream, index)
