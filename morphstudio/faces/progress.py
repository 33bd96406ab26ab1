"""Progress of a projection on stderr: which face, which step, what loss.

A projection takes seconds to minutes and used to run silently (inside ``validate``, a render, or ``project``).
On a terminal this is a tqdm bar (``faces.me (photos/me.jpg) 37%|███  | 111/300 [00:04<00:07, loss=0.2143]``);
when stderr is a file or a pipe (CI logs, ``2> log``) a bar would be a smear of carriage returns, so it prints a
line at the start, about every tenth of the steps, and at the end instead.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class ProjectionProgress:
    """A ``Projector.project`` callback that shows progress.

    Args:
        label: What is being projected, e.g. ``faces.me (photos/me.jpg)`` or ``3 photos``.
        steps: The most steps the projection will run (it may stop earlier on a plateau).
        stream: Where to write (default ``sys.stderr``).
        bar: Force the tqdm bar on (True) or plain lines (False); default: a bar only on a terminal.
    """

    def __init__(self, label: str, steps: int, *, stream: TextIO | None = None, bar: bool | None = None) -> None:
        self.label = label
        self.steps = max(1, int(steps))
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.use_bar = bar if bar is not None else bool(callable(isatty) and isatty())
        self._bar: Any = None
        self._every = max(1, self.steps // 10)
        self._t0 = time.perf_counter()
        self._last_step = -1
        self._last_loss = float("nan")
        if self.use_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=self.steps, desc=label, unit="step", file=self.stream, dynamic_ncols=True,
                             leave=True, smoothing=0.1)
        else:
            self._line(f"project {label}: {self.steps} steps at most")

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def __call__(self, step: int, loss: float, ws: Any = None) -> None:
        """Called after every step (0-based) with the batch-mean loss."""
        self._last_step, self._last_loss = step, loss
        if self._bar is not None:
            self._bar.update(step + 1 - self._bar.n)
            self._bar.set_postfix_str(f"loss={loss:.4f}", refresh=False)
        elif (step + 1) % self._every == 0 and step + 1 < self.steps:
            self._line(f"project {self.label}: step {step + 1}/{self.steps}  loss {loss:.4f}  "
                       f"{time.perf_counter() - self._t0:.1f} s")

    def close(self, stopped_early: bool = False) -> None:
        """End the display with a summary (steps run, last loss, time)."""
        ran = self._last_step + 1
        how = " (stopped early: the loss stopped improving)" if stopped_early else ""
        if self._bar is not None:
            if stopped_early:
                self._bar.total = ran  # a bar left at 63% would look like a failure
                self._bar.refresh()
            self._bar.close()
            self._bar = None
        else:
            self._line(f"project {self.label}: done, step {ran}/{self.steps}{how}  loss {self._last_loss:.4f}  "
                       f"{time.perf_counter() - self._t0:.1f} s")
