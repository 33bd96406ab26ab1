"""The driver of a distributed render: plans, locks, writes the manifest, commits and joins.

Exactly what a single-process render does with its output, with the generation and encoding of whole segments
handed to an :class:`~morphstudio.distributed.executor.Executor`. Latents are computed here, once per segment
(numpy, cheap next to the generator), and shipped with the job: every worker renders from the very same floats,
the manifest's latents digest is the driver's, and workers never need the scene's files (photos, latent and
direction files) — only the model.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from morphstudio.distributed.executor import Executor
from morphstudio.distributed.job import PROBE_NAME, SegmentJob, SegmentResult, WorkerSpec
from morphstudio.errors import RenderError
from morphstudio.formats import CODECS, STILL_CODECS

if TYPE_CHECKING:
    from morphstudio.sinks.lock import OutputClaim


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
    recalibrate: bool = False,
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
        recalibrate: Measure the driver's calibration again even if cached.

    Returns:
        A :class:`morphstudio.rendering.renderer.RenderResult`.

    Raises:
        RenderError: No video output, a refused output, another render holding it, or a worker failure;
            finished segments stay in the parts folder for ``resume``.
    """
    from morphstudio.rendering.outputs import check_output
    from morphstudio.sinks.lock import OutputClaim

    t0 = time.perf_counter()
    say = log or (lambda msg: print(msg, file=sys.stderr))
    out = scene.resolved_output(output)
    if out is None or out.path is None:
        raise RenderError("--ray: a distributed render writes a video file; give an output path (-o)")
    if out.codec in STILL_CODECS:
        raise RenderError(f"--ray: {out.codec} output is not made of segments; use a video codec "
                          f"({', '.join(c for c in CODECS if c not in STILL_CODECS)}) or render without --ray")
    check_output(out, scene.input_paths())
    # Before the model loads or the plan is calibrated: a second render of this output fails at once.
    claim = OutputClaim(out.path, out.label)
    claim.acquire()
    try:
        return _render_claimed(scene, executor, out, claim, frames=frames, batch=batch, precision=precision,
                               threads=threads, resume=resume, progress=progress, say=say, t0=t0,
                               recalibrate=recalibrate)
    except BaseException:
        claim.release()  # a no-op once the writer has released it
        claim.remove_created()
        raise


def _render_claimed(scene: Any, executor: Executor, out: Any, claim: OutputClaim, *, frames: Any,
                    batch: int | None, precision: str | None, threads: int | None, resume: bool, progress: bool,
                    say: Callable[[str], None], t0: float, recalibrate: bool) -> Any:
    """:func:`render_distributed` once the output is claimed: plan, then the segments."""
    from morphstudio.rendering.clock import segment_length
    from morphstudio.rendering.noise import noise_identity
    from morphstudio.rendering.plan import plan_render
    from morphstudio.rendering.renderer import RenderResult
    from morphstudio.scene.schema import NoiseSpec
    from morphstudio.sinks.segmented import SegmentedVideoWriter, latents_digest, recorded_plan

    gen = scene.generator()  # the driver plans with the model (resolution, noise layers, measured speed)
    fingerprint = scene.fingerprint()
    if resume and (batch is None or threads is None):
        rec = recorded_plan(Path(out.path), fingerprint)
        if rec is not None:
            batch = batch if batch is not None else rec.get("batch")
            threads = threads if threads is not None else rec.get("threads")
    if threads is None and gen.device.type == "cpu":
        from morphstudio.rendering.plan import usable_cores

        threads = max(1, usable_cores() // max(1, executor.workers))
    plan = plan_render(gen, scene.frame_count, scene.fps, out, frames=frames, batch=batch, precision=precision,
                       jobs=1, cpu_threads=threads, recalibrate=recalibrate)
    fps = scene.fps
    noise = noise_identity(getattr(scene, "noise", None) or NoiseSpec())
    result = RenderResult(Path(out.path), plan.frames, plan.width, plan.height, fps, 0.0, plan.batch)

    def note(msg: str) -> None:
        result.notes.append(msg)
        say(msg)

    for msg in out.notes:
        note(msg)
    if claim.note:
        note(claim.note)  # a stale lock of a render that died was taken over
    # The writer a single-process render uses, with the same identity: either can resume the other.
    writer = SegmentedVideoWriter(
        out.path, codec=out.codec, crf=out.crf, width=plan.width, height=plan.height, fps=fps, frames=plan.frames,
        segments=plan.segments, fingerprint=fingerprint,
        identity={"fit": out.fit, "precision": str(plan.precision), "noise": noise,
                  "frame_count": scene.frame_count},
        batch=plan.batch, threads=plan.cpu_threads, audio=out.audio, encoder_threads=None,
        segment_frames=segment_length(out.segment_seconds, fps), label=out.label, resume=resume, note=note,
        claim=claim)

    def latents(seg: Any) -> np.ndarray:
        return np.asarray(scene.latents(list(range(seg.start, seg.stop))), dtype=np.float32)

    writer.open()
    parts = writer.parts
    try:
        missing = writer.missing_segments(lambda seg: latents_digest(latents(seg)))
        result.segments = len(writer.segments)
        result.reused_segments = len(writer.reused)
        token = secrets.token_hex(16)
        (parts / PROBE_NAME).write_text(token)
        model = str(scene.model)
        if not model.startswith("builtin:"):
            model = str(Path(model).resolve())  # workers start in another folder
        spec = WorkerSpec(model=model, device=_device_name(getattr(scene, "device", None)), parts=str(parts),
                          probe=token)
        by_start = {seg.start: seg for seg in missing}

        def jobs() -> Iterator[SegmentJob]:
            # Lazily, one segment's latents at a time: a long render never holds all of them.
            for seg in missing:
                ws = latents(seg)
                yield SegmentJob(seg.start, seg.stop, ws, latents_digest(ws), seg.file, plan.width, plan.height,
                                 out.fit, fps, out.codec, out.crf, str(plan.precision), noise,
                                 float(scene.duration), scene.frame_count, plan.batch, plan.cpu_threads, None)

        from tqdm import tqdm

        bar = tqdm(total=len(plan.frames), initial=sum(len(s) for s in writer.reused), unit="frame",
                   disable=not (progress and sys.stderr.isatty()), dynamic_ncols=True, smoothing=0.1, leave=True)
        try:
            with executor.start(spec):
                say(f"distributed: {executor.describe()}")
                for job, res in executor.results(jobs()):
                    _commit(writer, by_start[job.start], job, res)
                    bar.update(len(job))
        finally:
            bar.close()
        (parts / PROBE_NAME).unlink(missing_ok=True)
        writer.finish()
    except BaseException:
        (parts / PROBE_NAME).unlink(missing_ok=True)
        writer.abort()
        raise
    result.seconds = time.perf_counter() - t0
    return result


def _commit(writer: Any, seg: Any, job: SegmentJob, res: SegmentResult) -> None:
    """Hand a worker's finished segment to the writer (or write the bytes it sent first): only the driver
    commits, so the manifest's entries never race."""
    parts = writer.parts
    if res.data is not None:
        tmp = writer.partial_file(seg, "driver")
        tmp.write_bytes(res.data)
    else:
        assert res.temp is not None
        tmp = parts / res.temp
        if tmp.parent != parts or not tmp.is_file():
            raise RenderError(f"--ray: the worker {res.worker} reported segment {job.start}..{job.stop - 1} as "
                              f"{tmp}, which is not in the parts folder {parts}")
    writer.commit(seg, job.digest, file=tmp, sha256=res.sha256)


def _device_name(device: str | None) -> str:
    """The scene's device for a worker: ``auto`` unless one was asked for. A GPU index on the driver means
    nothing on a worker: Ray gives each actor its own GPU(s), seen as ``cuda:0``."""
    if not device:
        return "auto"
    return "cuda" if str(device).startswith("cuda") else str(device)
