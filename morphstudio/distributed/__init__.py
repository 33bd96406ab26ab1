"""Distributed rendering: a scene's segments rendered by workers, joined by one driver.

``executor`` is the interface (``LocalExecutor`` runs in this process), ``ray_executor`` puts the workers on Ray
actors (a local instance confined to 127.0.0.1, or an existing cluster), ``driver`` owns the output exactly as a
single-process render does. Importing this package needs no Ray.
"""

from morphstudio.distributed.driver import render_distributed
from morphstudio.distributed.executor import Executor, LocalExecutor
from morphstudio.distributed.job import SegmentJob, SegmentRenderer, SegmentResult, WorkerSpec
from morphstudio.distributed.ray_executor import RayExecutor

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "SegmentJob", "SegmentRenderer", "SegmentResult",
           "WorkerSpec", "render_distributed"]
