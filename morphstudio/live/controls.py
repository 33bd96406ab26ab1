"""Strengths the user changes while live mode runs: one control per ``--attr`` direction and one for ``--morph``.

The controls are display-free: the preview window (:class:`morphstudio.sinks.window.WindowSink`) turns trackbar
moves and key presses into calls here, on its GUI thread, and :meth:`morphstudio.live.edits.LiveEdits.apply` reads
the values on the generator's thread once per batch. A lock makes each read and write whole; no other state is
shared.

Keys: ``1`` .. ``9`` select a control, ``+`` / ``=`` raise it by one step (0.1), ``-`` / ``_`` lower it, ``0``
resets it to the value it started at (the command line's).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

ATTR_RANGE = (-3.0, 3.0)
"""Trackbar range of a direction's strength (widened to include a start value outside it)."""
MORPH_RANGE = (0.0, 1.0)
STEP = 0.1
"""One trackbar position and one key press."""

KEY_UP = (ord("+"), ord("="))
KEY_DOWN = (ord("-"), ord("_"))
KEY_RESET = ord("0")


@dataclass
class Control:
    """One named value with its range.

    Attributes:
        name: Shown on the trackbar and the overlay.
        start: The value given on the command line (``0`` resets to it).
        lo, hi: The range (values are clamped to it).
        step: One trackbar position / one key press.
        value: The current value.
    """

    name: str
    start: float
    lo: float
    hi: float
    step: float = STEP
    value: float = 0.0

    @property
    def positions(self) -> int:
        """The trackbar's largest position (its smallest is 0)."""
        return round((self.hi - self.lo) / self.step)

    def position(self) -> int:
        """The trackbar position nearest the current value."""
        return min(max(round((self.value - self.lo) / self.step), 0), self.positions)


class LiveControls:
    """Thread-safe named values, changed by trackbars and keys.

    Args:
        controls: ``(name, start value, (lo, hi))`` in key order (the first is key ``1``); the range is widened to
            include the start value.
    """

    def __init__(self, controls: list[tuple[str, float, tuple[float, float]]]) -> None:
        self._lock = threading.Lock()
        self._controls: list[Control] = []
        seen: set[str] = set()
        for name, start, (lo, hi) in controls:
            label, n = name, 2
            while label in seen:  # the same direction twice: tell the trackbars apart
                label, n = f"{name} #{n}", n + 1
            seen.add(label)
            self._controls.append(Control(label, float(start), min(lo, start), max(hi, start), value=float(start)))
        self._selected = 0

    @property
    def names(self) -> list[str]:
        """The controls' names, in key order."""
        return [c.name for c in self._controls]

    def __len__(self) -> int:
        return len(self._controls)

    def _find(self, name: str) -> Control:
        for c in self._controls:
            if c.name == name:
                return c
        raise KeyError(name)

    def control(self, name: str) -> Control:
        """A copy of the control ``name`` (its range, start and current value)."""
        with self._lock:
            c = self._find(name)
            return Control(c.name, c.start, c.lo, c.hi, c.step, c.value)

    def get(self, name: str) -> float:
        """The current value of ``name``."""
        with self._lock:
            return self._find(name).value

    def set(self, name: str, value: float) -> float:
        """Set ``name`` (clamped to its range); returns the value kept."""
        with self._lock:
            c = self._find(name)
            c.value = min(max(float(value), c.lo), c.hi)
            return c.value

    def set_position(self, name: str, position: int) -> float:
        """Set ``name`` from a trackbar position."""
        with self._lock:
            c = self._find(name)
            if c.position() == position:
                # The trackbar echoes every programmatic move back (setTrackbarPos calls its callback): keep a value
                # that is not on the grid (a start of 1.55, a reset) instead of snapping it to the position's.
                return c.value
            c.value = min(max(c.lo + position * c.step, c.lo), c.hi)
            return c.value

    def position(self, name: str) -> int:
        """The trackbar position of ``name``'s current value."""
        with self._lock:
            return self._find(name).position()

    @property
    def selected(self) -> str | None:
        """The control the keys change (None when there are none)."""
        with self._lock:
            return self._controls[self._selected].name if self._controls else None

    def handle_key(self, key: int) -> str | None:
        """Act on a key press (``waitKey``'s code); returns the name of the control whose value changed, else None.

        ``1`` .. ``9`` select, ``+`` / ``=`` and ``-`` / ``_`` nudge by one step, ``0`` resets; other keys are
        ignored (the window handles ``q`` / Esc itself).
        """
        with self._lock:
            if not self._controls:
                return None
            if ord("1") <= key <= ord("9"):
                if key - ord("1") < len(self._controls):
                    self._selected = key - ord("1")
                return None
            c = self._controls[self._selected]
            before = c.value
            if key in KEY_UP:
                # Snapped to the step grid (and rounded: no 0.30000000000000004 on the overlay).
                c.value = min(round(round((c.value + c.step) / c.step) * c.step, 6), c.hi)
            elif key in KEY_DOWN:
                c.value = max(round(round((c.value - c.step) / c.step) * c.step, 6), c.lo)
            elif key == KEY_RESET:
                c.value = c.start
            else:
                return None
            return c.name if c.value != before else None

    def describe(self) -> str:
        """One line for the overlay: ``1 smile +1.50  [2 morph 0.50]`` (the selected one in brackets)."""
        with self._lock:
            parts = []
            for i, c in enumerate(self._controls):
                text = f"{i + 1} {c.name} {c.value:+.2f}" if c.lo < 0 else f"{i + 1} {c.name} {c.value:.2f}"
                parts.append(f"[{text}]" if i == self._selected else text)
            return "  ".join(parts)
