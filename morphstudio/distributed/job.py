"""The unit of distributed work: one encoded segment, described by plain values any process can render.

A :class:`SegmentJob` carries everything a worker needs besides the model: the frame range, the latents of
exactly those frames (computed once on the driver, so every worker sees bit-identical inputs), the output
settings and the render plan (batch size and torch threads, which change a StyleGAN's floating-point sums). A
worker renders it with :class:`SegmentRenderer` into a temporary file in the parts folder, or into memory when it
cannot see that folder; the driver alone commits it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from morphstudio.sinks.manifest import file_sha256
from morphstudio.sinks.segmented import Segment, partial_file, segment_sink

PROBE_NAME = ".probe"  # written by the driver into the parts folder; a worker that can read it shares the folder


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker loads once: the model, where it runs, and how to find the shared parts folder.

    Attributes:
        model: The scene's model (a checkpoint path or ``builtin:NAME``), as the driver resolved it.
        device: ``cpu``, ``cuda`` (the GPU Ray assigned) or ``auto``.
        parts: The output's parts folder as the driver sees it.
        probe: The probe file's expected content (a random token: an old probe from another job does not count).
    """

    model: str
    device: str
    parts: str
    probe: str


@dataclass(frozen=True)
class SegmentJob:
    """One segment to render (picklable: numpy, numbers and strings only).

    Attributes:
        start: First frame index.
        stop: One past the last frame.
        ws: float32 latents ``[stop - start, num_ws, w_dim]`` of exactly these frames.
        digest: ``latents_digest(ws)``, recorded in the manifest.
        file: The finished segment's file name in the parts folder (``seg_000000-000012.mkv``).
        width: Output width.
        height: Output height.
        fit: Resize mode.
        fps: Frames per second.
        codec: Segment codec.
        crf: Quality, or ``None``.
        precision: ``torch.float32`` / ``float16`` / ``bfloat16`` as ``str(dtype)``.
        noise: the noise settings (``noise_identity``: mode, seed, period).
        duration: Scene duration in seconds (the animated-noise period default).
        frame_count: Frames in the whole scene (the render's first frame offsets nothing: indices are absolute).
        batch: Frames per generator call (the recorded plan).
        threads: Torch CPU threads (the recorded plan), ``None`` on a GPU.
        encoder_threads: ffmpeg threads, or ``None`` for ffmpeg's own choice.
    """

    start: int
    stop: int
    ws: np.ndarray
    digest: str
    file: str
    width: int
    height: int
    fit: str
    fps: float
    codec: str
    crf: int | None
    precision: str
    noise: dict[str, Any]
    duration: float
    frame_count: int
    batch: int
    threads: int | None
    encoder_threads: int | None

    def __len__(self) -> int:
        return self.stop - self.start

    def segment(self) -> Segment:
        """The writer's unit of work for this job (its encoder settings and file name)."""
        return Segment(self.start, self.stop, self.file, self.codec, self.crf, self.width, self.height, self.fps,
                       self.encoder_threads, fingerprint="", batch=self.batch, threads=self.threads)


@dataclass(frozen=True)
class SegmentResult:
    """What a worker hands back.

    Attributes:
        start: The job's first frame.
        stop: The job's stop.
        temp: The temporary file written in the shared parts folder, or ``None`` when ``data`` holds the bytes.
        data: The encoded segment (no shared folder), else ``None``.
        worker: ``host:pid`` of the worker that rendered it (for notes and tests).
        seconds: Time the worker spent on it.
        sha256: Content hash of the encoding, as the worker wrote it.
    """

    start: int
    stop: int
    temp: str | None
    data: bytes | None
    worker: str
    seconds: float
    sha256: str


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def sees_parts(spec: WorkerSpec) -> bool:
    """Whether this process reads the driver's probe file: the parts folder is on a filesystem both share."""
    try:
        return (Path(spec.parts) / PROBE_NAME).read_text() == spec.probe
    except OSError:
        return False


class SegmentRenderer:
    """Holds a loaded generator and renders whole segments with it (what every worker runs).

    Args:
        spec: The model and the parts folder.
    """

    def __init__(self, spec: WorkerSpec) -> None:
        from morphstudio.generators.loading import load_generator

        self.spec = spec
        self.generator = load_generator(spec.model, device=spec.device)
        self.shared = sees_parts(spec)

    def render(self, job: SegmentJob) -> SegmentResult:
        """Render ``job`` into its temporary file (shared folder) or into memory.

        Raises:
            EncoderError: ffmpeg failed (the temporary file is removed).
        """
        import tempfile
        import time

        from morphstudio.rendering.batcher import Batcher
        from morphstudio.rendering.noise import NoiseSource
        from morphstudio.scene.schema import NoiseSpec
        from morphstudio.rendering.plan import torch_threads

        t0 = time.perf_counter()
        # A name of its own per attempt: the ffmpeg of a worker killed mid-segment may still be finishing its
        # file when Ray retries the job on a restarted worker, and two encoders must never share one file.
        tag = f"{os.getpid()}-{secrets.token_hex(4)}"
        if self.shared:
            folder = Path(self.spec.parts)
            scratch = None
        else:
            scratch = tempfile.TemporaryDirectory(prefix="morphstudio-seg-")
            folder = Path(scratch.name)
        seg = job.segment()
        target = partial_file(seg, folder, tag)
        try:
            gen = self.generator
            noise = NoiseSource(NoiseSpec.model_validate(job.noise), gen.noise_shapes(), job.fps, job.duration,
                                gen.device)
            batcher = Batcher(gen, job.width, job.height, job.fit, _dtype(job.precision), noise)
            sink = segment_sink(seg, folder, tag)
            from morphstudio.sinks.base import StreamInfo

            sink.open(StreamInfo(job.width, job.height, job.fps, len(job), job.start))
            try:
                with batcher, torch_threads(job.threads):
                    # Batches start at the segment's first frame, as in a single-process render's lane, so
                    # every generator call sees the same frames and gives the same pixels.
                    i = 0
                    batch = job.batch
                    while i < len(job):
                        n = min(batch, len(job) - i)
                        idx = list(range(job.start + i, job.start + i + n))
                        pend, batch = batcher.submit_split(job.ws[i : i + n], idx, batch)
                        for p in pend:
                            frames = p.result()
                            sink.write(p.frames[0], frames)
                        i += n
                sink.close()
            except BaseException:
                sink.abort()
                target.unlink(missing_ok=True)
                raise
            data = target.read_bytes() if scratch is not None else None
            # The hash of what this process encoded: the driver refuses a file that arrives different (a torn
            # copy, a shared folder that lies), so a damaged segment is never committed.
            digest = hashlib.sha256(data).hexdigest() if data is not None else file_sha256(target)
            return SegmentResult(job.start, job.stop, None if data is not None else target.name, data, worker_id(),
                                 time.perf_counter() - t0, digest)
        finally:
            if scratch is not None:
                scratch.cleanup()


def _dtype(name: str) -> Any:
    import torch

    return {"torch.float32": torch.float32, "torch.float16": torch.float16, "torch.bfloat16": torch.bfloat16}[name]
