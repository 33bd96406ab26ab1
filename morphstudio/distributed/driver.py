"""The driver of a distributed render: plans, locks, writes the manifest, commits and joins.

Exactly what a single-process render does with its output, with the generation and encoding of whole segments
handed to an :class:`~morphstudio.distributed.executor.Executor`. Latents are computed here, once per segment
(numpy, cheap next to the generator), and shipped with the job: every worker renders from the very same floats,
the manifest's latents digest is the driver's, and workers never need the scene's files (photos, latent and
direction files) — only the model.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from morphstudio.distributed.executor import Executor
from morphstudio.distributed.job import PROBE_NAME, SegmentJob, SegmentResult, WorkerSpec
from morphstudio.errors import RenderError


def render_distributed(
    scene: Any,
    executor: Executor,
    *,
    output: Any = None,
    frames: Any = None,
    batch: int | None = None,
    precision: str | None = None,
    threads: int | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> Any:
    """Render a scene's segments on ``executor`` and join them into the output.

    Args:
        scene: A loaded :class:`morphstudio.api.Scene`.
        executor: Where segments render (started and closed here).
        output: Override of the scene's output, as in ``render_scene``.
        frames: ``"A:B"`` / range of frames.
        batch: Frames per generator call (default: planned; with ``resume``, the interrupted render's).
        precision: ``fp32`` | ``fp16`` | ``bf16``.
        threads: Torch CPU threads per worker (default: the interrupted render's, else the cores shared
            among the executor's workers on a CPU).
        resume: Reuse the finished segments of an interrupted render (distributed or not) of the same output.
        progress: One progress bar (frames, fps, ETA) on a terminal.
        log: Where notes go (default: stderr).

    Returns:
        A :class:`morphstudio.rendering.renderer.RenderResult`.

    Raises:
        RenderError: No video output, a refused output, another render holding it, or a worker failure;
            finished segments stay in the parts folder for ``resume``.
    """
    from morphstudio.rendering.clock import segment_length
    from morphstudio.rendering.lock import OutputLock
    from morphstudio.rendering.noise import NoiseSettings
    from morphstudio.rendering.outputs import check_output
    from morphstudio.rendering.renderer import RenderResult, plan_render, prepare_output_folder
    from morphstudio.rendering.resume import latents_digest, open_parts, parts_dir_for, recorded_plan
    from morphstudio.rendering.segments import Segment, discard_partials, join_segments, remove_parts, segment_file

    t0 = time.perf_counter()
    say = log or (lambda msg: print(msg, file=sys.stderr))
    out = scene.resolved_output(output)
    if out is None or out.path is None:
        raise RenderError("--ray: a distributed render writes a video file; give an output path (-o)")
    if out.codec in ("gif", "png"):
        raise RenderError(f"--ray: {out.codec} output is not made of segments; use a video codec "
                          "(h264, h265, vp9, prores, ffv1) or render without --ray")
    inputs = scene.input_paths()
    check_output(out, inputs)
    gen = scene.generator()  # the driver plans with the model (resolution, noise layers, measured speed)
    fingerprint = scene.fingerprint()
    parts = parts_dir_for(Path(out.path))
    if resume and (batch is None or threads is None):
        rec = recorded_plan(parts, fingerprint)
        if rec is not None:
            batch = batch if batch is not None else rec.get("batch")
            threads = threads if threads is not None else rec.get("threads")
    if threads is None and gen.device.type == "cpu":
        from morphstudio.rendering.plan import usable_cores

        threads = max(1, usable_cores() // max(1, executor.workers))
    plan = plan_render(gen, scene.frame_count, scene.fps, out, frames=frames, batch=batch, precision=precision,
                       jobs=1, cpu_threads=threads)
    fps = scene.fps
    noise = NoiseSettings.from_spec(getattr(scene, "noise", None))
    result = RenderResult(Path(out.path), plan.frames, plan.width, plan.height, fps, 0.0, plan.batch)
    for note in out.notes:
        result.notes.append(note)
        say(note)
    check_output(out, inputs)
    prepare_output_folder(Path(out.path), out.codec)

    lock = OutputLock(out.path, out.label)
    note = lock.acquire()
    if note:
        result.notes.append(note)
        say(note)
    ext = Path(out.path).suffix.lower()
    try:
        # The same settings a single-process render records, so either can resume the other.
        settings = {"width": plan.width, "height": plan.height, "fit": out.fit, "fps": fps, "codec": out.codec,
                    "crf": out.crf, "precision": str(plan.precision), "noise": noise.as_dict(),
                    "segment_frames": segment_length(out.segment_seconds, fps), "frame_count": scene.frame_count}
        manifest, note = open_parts(parts, fingerprint, settings, resume, plan.record())
        if note:
            result.notes.append(note)
            say(note)
        token = secrets.token_hex(16)
        (parts / PROBE_NAME).write_text(token)
        segments = [Segment(s, e, segment_file(parts, s, e, ext)) for s, e in plan.segments]
        result.segments = len(segments)
        model = str(scene.model)
        if not model.startswith("builtin:"):
            model = str(Path(model).resolve())  # workers start in another folder
        spec = WorkerSpec(model=model, device=_device_name(getattr(scene, "device", None)), parts=str(parts),
                          probe=token)

        def jobs() -> Iterator[SegmentJob]:
            # Lazily, one segment's latents at a time: a long render never holds all of them.
            for seg in segments:
                ws = np.asarray(scene.latents(list(range(seg.start, seg.stop))), dtype=np.float32)
                digest = latents_digest(ws)
                if resume and f"{seg.start}-{seg.stop}" in manifest.segments:
                    found, why = manifest.verify(seg.start, seg.stop, digest)
                    if why:
                        result.notes.append(why)
                        say(why)
                    if found is not None:
                        seg.reused = True
                        result.reused_segments += 1
                        bar.update(len(seg))
                        continue
                yield SegmentJob(seg.start, seg.stop, ws, digest, seg.file.name, plan.width, plan.height, out.fit,
                                 fps, out.codec, out.crf, str(plan.precision), noise.as_dict(),
                                 float(scene.duration), scene.frame_count, plan.batch, plan.cpu_threads, None)

        from tqdm import tqdm

        bar = tqdm(total=len(plan.frames), unit="frame", disable=not (progress and sys.stderr.isatty()),
                   dynamic_ncols=True, smoothing=0.1, leave=True)
        try:
            with executor.start(spec):
                say(f"distributed: {executor.describe()}")
                for job, res in executor.results(jobs()):
                    _commit(parts, job, res, manifest)
                    bar.update(len(job))
        finally:
            bar.close()
        (parts / PROBE_NAME).unlink(missing_ok=True)
        join_segments(segments, Path(out.path), out.audio, parts)
        remove_parts(parts)
    except BaseException:
        if parts.is_dir():
            discard_partials(parts)
            (parts / PROBE_NAME).unlink(missing_ok=True)
        raise
    finally:
        lock.release()
    result.seconds = time.perf_counter() - t0
    return result


def _commit(parts: Path, job: SegmentJob, res: SegmentResult, manifest: Any) -> None:
    """Move a worker's finished segment into place (or write the bytes it sent) and record it: only the driver
    writes the manifest, so its entries never race."""
    final = parts / job.file
    if res.data is not None:
        tmp = parts / f".{job.file}.driver.partial"
        tmp.write_bytes(res.data)
    else:
        assert res.temp is not None
        tmp = parts / res.temp
        if tmp.parent != parts or not tmp.is_file():
            raise RenderError(f"--ray: the worker {res.worker} reported segment {job.start}..{job.stop - 1} as "
                              f"{tmp}, which is not in the parts folder {parts}")
    os.replace(tmp, final)
    manifest.record(job.start, job.stop, final, job.digest, len(job))


def _device_name(device: str | None) -> str:
    """The scene's device for a worker: ``auto`` unless one was asked for. A GPU index on the driver means
    nothing on a worker: Ray gives each actor its own GPU(s), seen as ``cuda:0``."""
    if not device:
        return "auto"
    return "cuda" if str(device).startswith("cuda") else str(device)
