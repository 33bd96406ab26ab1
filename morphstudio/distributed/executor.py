"""Where segments are rendered: one interface, an in-process executor and (``ray_executor``) Ray actors.

The driver (:mod:`morphstudio.distributed.driver`) owns the output: it plans, locks, writes the manifest,
commits and joins. An executor only turns :class:`SegmentJob` values into :class:`SegmentResult` values, in any
order, as they finish.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from morphstudio.distributed.job import SegmentJob, SegmentRenderer, SegmentResult, WorkerSpec


class Executor(ABC):
    """Renders segment jobs somewhere.

    Use ``with executor.start(spec): for job, result in executor.results(jobs): ...``.
    """

    #: How many segments render at once (the driver plans CPU threads and messages from it).
    workers: int = 1

    @abstractmethod
    def start(self, spec: WorkerSpec) -> Executor:
        """Start the workers (each loads the model once). Returns ``self``."""

    @abstractmethod
    def results(self, jobs: Iterable[SegmentJob]) -> Iterator[tuple[SegmentJob, SegmentResult]]:
        """Render every job; yields each with its result as it finishes (unordered)."""

    @abstractmethod
    def close(self) -> None:
        """Stop the workers (safe to call twice)."""

    def describe(self) -> str:
        return f"{type(self).__name__} ({self.workers} worker(s))"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """One worker in this process: the reference the Ray executor's output is compared with, and a fallback."""

    def __init__(self) -> None:
        self.workers = 1
        self._renderer: SegmentRenderer | None = None

    def start(self, spec: WorkerSpec) -> LocalExecutor:
        self._renderer = SegmentRenderer(spec)
        return self

    def results(self, jobs: Iterable[SegmentJob]) -> Iterator[tuple[SegmentJob, SegmentResult]]:
        if self._renderer is None:
            raise RuntimeError("LocalExecutor.results() before start()")
        for job in jobs:
            yield job, self._renderer.render(job)

    def close(self) -> None:
        self._renderer = None
