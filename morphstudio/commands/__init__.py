"""One module per ``morphstudio`` subcommand; each exposes ``register(subparsers)``. Helpers several commands
share live here (and in scene_args / watch), so no command module imports another."""

from __future__ import annotations

from morphstudio.errors import RenderError

DEVICE_HELP = "auto (default: CUDA when present, else CPU), cpu, cuda, cuda:N, mps"
"""Help text of every command's ``--device`` option."""


def parse_seeds(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                seeds.extend(range(int(a), int(b) + 1))
            elif part:
                seeds.append(int(part))
        except ValueError:
            raise RenderError(f"--seeds: expected numbers like '0-15' or '1,5,9', got {text!r}") from None
    if not seeds:
        raise RenderError(f"--seeds: no seeds in {text!r}")
    return seeds
