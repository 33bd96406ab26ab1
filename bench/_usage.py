"""CPU accounting the benchmarks share (imported by name: the benchmarks' own folder is on ``sys.path``)."""

from __future__ import annotations

import resource


def cpu_seconds() -> float:
    """CPU time of this process and its finished, waited-for children (ffmpeg decoders and encoders)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
