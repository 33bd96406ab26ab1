"""The streaming engine: latents -> batches on the device -> bounded queues -> the writer's sinks.

``render_latents`` renders any function from frame indices to latents with a generator. The loop on the calling
thread only computes: latents in bounded chunks, synthesis + resize + uint8 in batches. Each piece of the output
(a segment, or a whole gif/png) and each extra sink is fed by its own thread behind a bounded queue, so
generation, the device->host copy and encoding overlap. With several encoder jobs the loop interleaves batches
of up to ``jobs`` segments, always feeding the encoder with the shortest queue, so a generator faster than one
encoder keeps several busy.

What the output is made of — the lock, the segment files and their record, resume, the encoders, the join and
the audio — belongs to the writer (:class:`morphstudio.sinks.segmented.SegmentedVideoWriter`): the engine asks
it which segments are missing, feeds each one's sink, and commits, finishes or aborts.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from morphstudio.errors import RenderError
from morphstudio.generators.base import Generator
from morphstudio.rendering.batcher import Batcher, Pending
from morphstudio.rendering.clock import FrameSelection, segment_length
from morphstudio.rendering.noise import NoiseSource, noise_identity
from morphstudio.rendering.outputs import Inputs, OutputSettings, check_output
from morphstudio.rendering.plan import RenderPlan, default_jobs, plan_render, torch_threads
from morphstudio.rendering.worker import SinkWorker
from morphstudio.scene.schema import NoiseSpec
from morphstudio.sinks.base import Sink, StreamInfo
from morphstudio.sinks.lock import OutputClaim
from morphstudio.sinks.segmented import LatentsHasher, Segment, SegmentedVideoWriter, latents_digest, recorded_plan
from morphstudio.sinks.tee import TeeSink
from morphstudio.sinks.window import PreviewClosed

LatentsFn = Callable[[Sequence[int]], np.ndarray]

# Frames of latents fetched at once: a segment's latents are fetched in chunks too, so memory stays bounded
# however long a segment is (3,600 s at 240 fps on an 18 x 512 model would be 31 GB in one piece).
LATENT_CHUNK = 256


class OutputWriter(Protocol):
    """What the engine needs of a writer (:class:`SegmentedVideoWriter`, or a test double such as
    :class:`morphstudio.sinks.testing.RecordingSegmentWriter`)."""

    segmented: bool
    segments: list[Segment]
    reused: list[Segment]

    def open(self) -> None: ...

    def missing_segments(self, digest_of: Callable[[Segment], str] | None = None) -> list[Segment]: ...

    def segment_sink(self, seg: Segment, tag: str | None = None) -> Sink: ...

    def commit(self, seg: Segment, digest: str, file: str | Path | None = None, sha256: str | None = None) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...


@dataclass
class RenderResult:
    """What a render did.

    Attributes:
        output: The file/folder written, or ``None``.
        frames: Frame indices rendered (including reused segments).
        width: Frame width.
        height: Frame height.
        fps: Frames per second.
        seconds: Wall-clock time.
        batch: Final batch size (smaller than planned after an out-of-memory).
        segments: Number of encoded segments.
        reused_segments: How many came from an interrupted render (``--resume``).
        stopped: True when the preview window was closed before the end.
        notes: Messages for the user (resume decisions...).
    """

    output: Path | None
    frames: range
    width: int
    height: int
    fps: float
    seconds: float
    batch: int
    segments: int = 0
    reused_segments: int = 0
    stopped: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return len(self.frames) / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class _Lane:
    """A contiguous run of frames with its own sink worker (one segment, the whole output, or extra sinks only)."""

    start: int
    stop: int
    worker: SinkWorker | None = None
    segment: Segment | None = None
    next: int = field(init=False, default=0)
    dispatched: int = 0
    hasher: LatentsHasher | None = None  # a segment's latents digest (what resume checks), fed chunk by chunk
    ws: np.ndarray | None = None
    ws_start: int = 0

    def __post_init__(self) -> None:
        self.next = self.start

    def remaining(self) -> int:
        return self.stop - self.next


def chunk_frames(batch: int) -> int:
    """Latent frames fetched at once inside a segment: about :data:`LATENT_CHUNK`, a whole number of batches, so
    batches split exactly as if the segment's latents had been fetched in one go (a StyleGAN's sums, and so its
    pixels, depend on the batch a frame is computed in)."""
    return max(batch, LATENT_CHUNK // batch * batch)


def segment_digest(latents_fn: LatentsFn, seg: Segment, chunk: int = LATENT_CHUNK) -> str:
    """:func:`latents_digest` of a segment's latents, fetched in bounded chunks (what resume checks)."""
    h = LatentsHasher()
    for s in range(seg.start, seg.stop, chunk):
        h.update(latents_fn(list(range(s, min(seg.stop, s + chunk)))))
    return h.hexdigest()


def render_latents(
    generator: Generator,
    latents_fn: LatentsFn,
    frame_count: int,
    fps: float,
    *,
    output: OutputSettings | None = None,
    noise: NoiseSpec | None = None,
    duration: float | None = None,
    frames: FrameSelection = None,
    batch: int | None = None,
    precision: str | torch.dtype | None = None,
    sinks: Sequence[Sink] = (),
    fingerprint: str | None = None,
    resume: bool = False,
    jobs: int | None = None,
    cpu_threads: int | None = None,
    progress: bool = True,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = None,
    inputs: Inputs = (),
    writer: OutputWriter | None = None,
    claim: OutputClaim | None = None,
    recalibrate: bool = False,
) -> RenderResult:
    """Render frames of ``latents_fn`` with ``generator`` to a file and/or sinks.

    Args:
        generator: The generator, on its device, in eval mode.
        latents_fn: ``frame indices -> float32 [T, num_ws, w_dim]`` (e.g. ``Scene.latents``).
        frame_count: Frames in the whole scene.
        fps: Frames per second (``output.fps`` is ignored in favour of this).
        output: The resolved output (:func:`morphstudio.rendering.outputs.resolve_output`); ``None`` or
            ``path=None`` writes no file.
        noise: The scene's noise; ``None`` = const.
        duration: Scene duration in seconds (animated-noise period default); default ``frame_count / fps``.
        frames: ``--frames`` selection (Python slice semantics); ``None`` = all.
        batch: Frames per generator call; ``None`` = automatic.
        precision: ``fp32`` (default), ``fp16`` or ``bf16``.
        sinks: Extra sinks that receive every frame (window, null, ...).
        fingerprint: Identity of what determines the frames; needed for ``resume`` (default: a hash of the
            first latents, which is weaker).
        resume: Reuse finished segments of an interrupted render of the same output.
        jobs: Segment encoders at once (default half the CPU cores).
        cpu_threads: Torch threads on CPU (default: planned from measured stage costs, see
            ``morphstudio.rendering.plan``; ``resume`` reuses the interrupted render's recorded plan).
        progress: Show a tqdm bar (only on a terminal).
        should_stop: Polled each batch; returning True stops the render like a closed preview window.
        log: Where notes go (default: stderr).
        inputs: ``(what, path)`` of the files the frames are made from (scene, model, audio, photos...): the
            output may be none of them, nor a folder holding one (see :func:`check_output`).
        writer: Write the output through this writer instead of a :class:`SegmentedVideoWriter` for ``output``
            (tests: :class:`morphstudio.sinks.testing.RecordingSegmentWriter`).
        claim: The output's folder and lock, already taken (``render_scene`` takes them before the model
            loads); released when the render ends, however it ends. ``None``: taken here, before any planning.
        recalibrate: Measure the generator and encoder costs again even when this machine's calibration has
            them (see :func:`morphstudio.rendering.plan.plan_cpu_render`).

    Returns:
        A :class:`RenderResult`.

    Raises:
        RenderError: Bad settings, an output that would destroy something the render did not make, another
            render writing the same output, or the render failed; EncoderError when an encoder failed. Nothing
            partial is left at the output path; finished segments are kept for ``--resume``.
    """
    t0 = time.perf_counter()
    out = output if output is not None else OutputSettings(path=None)
    say = log or (lambda msg: print(msg, file=sys.stderr))

    def default_fingerprint() -> str:
        return fingerprint or "latents:" + latents_digest(latents_fn(list(range(min(frame_count, 4)))))

    try:
        if out.path is None and not sinks and writer is None:
            raise RenderError("nothing to render to: give an output path or at least one sink")
        if out.path is not None:
            check_output(out, inputs)
        if writer is None and out.path is not None:
            # One render per output, decided first: a second render of this output fails here, before the
            # plan's calibration (seconds to minutes) or a resume's manifest is read.
            claim = claim if claim is not None else OutputClaim(out.path, out.label)
            claim.acquire()
        return _render(generator, latents_fn, frame_count, fps, out, noise, duration, frames, batch, precision,
                       sinks, resume, jobs, cpu_threads, progress, should_stop, say, writer, claim, recalibrate,
                       default_fingerprint, t0)
    except BaseException:
        if claim is not None:  # a no-op once the writer has released it; else nothing of the output was made
            claim.release()
            claim.remove_created()
        raise


def _render(generator: Generator, latents_fn: LatentsFn, frame_count: int, fps: float, out: OutputSettings,
            noise: NoiseSpec | None, duration: float | None, frames: FrameSelection, batch: int | None,
            precision: str | torch.dtype | None, sinks: Sequence[Sink], resume: bool, jobs: int | None,
            cpu_threads: int | None, progress: bool, should_stop: Callable[[], bool] | None,
            say: Callable[[str], None], writer: OutputWriter | None, claim: OutputClaim | None, recalibrate: bool,
            default_fingerprint: Callable[[], str], t0: float) -> RenderResult:
    """:func:`render_latents` once the output is claimed: plan, then the loop."""
    plan = _plan(generator, latents_fn, frame_count, fps, out, frames=frames, batch=batch, precision=precision,
                 jobs=jobs, cpu_threads=cpu_threads, resume=resume and writer is None,
                 fingerprint=default_fingerprint, recalibrate=recalibrate)
    if writer is not None and out.path is None:
        plan.jobs = max(1, min(jobs if jobs is not None else default_jobs(), len(writer.segments)))
    rng = plan.frames
    info = StreamInfo(plan.width, plan.height, fps, len(rng), rng.start)
    noise_spec = noise if noise is not None else NoiseSpec()
    source = NoiseSource(noise_spec, generator.noise_shapes(), fps,
                         duration if duration is not None else frame_count / fps, generator.device)
    batcher = Batcher(generator, plan.width, plan.height, out.fit, plan.precision, source)
    result = RenderResult(Path(out.path) if out.path else None, rng, plan.width, plan.height, fps, 0.0, plan.batch)

    def note(msg: str) -> None:
        result.notes.append(msg)
        say(msg)

    for msg in out.notes:
        note(msg)
    if claim is not None and claim.note:
        note(claim.note)  # a stale lock of a render that died was taken over
    if writer is None and out.path is not None:
        writer = SegmentedVideoWriter(
            out.path, codec=out.codec, crf=out.crf, width=plan.width, height=plan.height, fps=fps, frames=rng,
            segments=plan.segments, fingerprint=default_fingerprint(),
            identity={"fit": out.fit, "precision": str(plan.precision), "noise": noise_identity(noise_spec),
                      "frame_count": frame_count},
            batch=plan.batch, threads=plan.cpu_threads, audio=out.audio, encoder_threads=plan.encoder_threads,
            segment_frames=segment_length(out.segment_seconds, fps), label=out.label, resume=resume, note=note,
            claim=claim)

    extra = None
    if sinks:
        extra_sink = sinks[0] if len(sinks) == 1 else TeeSink(sinks)
        extra = SinkWorker(extra_sink, info, depth=4, name="sink-extra")
    ordered = extra is not None and extra.sink.wants_order

    lanes: list[_Lane] = []
    try:
        if writer is not None:
            # The output's lock is held already (taken before planning); the writer prepares the parts folder.
            writer.open()
            todo = writer.missing_segments(lambda seg: segment_digest(latents_fn, seg))
            lanes = [_Lane(seg.start, seg.stop, segment=seg) for seg in todo]
            if writer.segmented:
                result.segments = len(writer.segments)
                result.reused_segments = len(writer.reused)
        else:
            lanes.append(_Lane(rng.start, rng.stop))

        def open_lane(lane: _Lane) -> None:
            if lane.segment is None or writer is None:
                return
            seg = lane.segment
            lane_info = replace(info, frame_count=len(seg), first_frame=seg.start)
            if seg.whole:
                lane.worker = SinkWorker(writer.segment_sink(seg), lane_info, depth=4, name="sink-file")
                return
            lane.hasher = LatentsHasher()

            def done(seg: Segment = seg, lane: _Lane = lane) -> None:
                assert lane.hasher is not None
                writer.commit(seg, lane.hasher.hexdigest())

            lane.worker = SinkWorker(writer.segment_sink(seg), lane_info, depth=3, on_closed=done,
                                     name=f"seg-{seg.start}")

        todo_frames = sum(ln.stop - ln.start for ln in lanes)
        with batcher, torch_threads(plan.cpu_threads):  # restored when the render ends, however it ends
            result.stopped, result.batch = _run_loop(plan, lanes, open_lane, latents_fn, batcher, extra, ordered,
                                                     progress, should_stop, todo_frames)
        if extra is not None:
            extra.finish()
            extra.join()
        if result.stopped:
            raise _Stopped()
        if writer is not None:
            writer.finish()
    except (_Stopped, PreviewClosed) as stop:
        _abort(lanes, extra, writer)
        closed = isinstance(stop, PreviewClosed)
        if closed:
            result.stopped = True
        if out.path is not None:
            lead = "the preview window was closed, so the render stopped" if closed else "render stopped before the end"
            raise RenderError(lead + "; no output was written"
                              + (" (finished segments are kept: --resume continues)" if plan.segments else "")) \
                from None
    except BaseException:
        _abort(lanes, extra, writer)
        raise
    result.seconds = time.perf_counter() - t0
    return result


def _plan(generator: Generator, latents_fn: LatentsFn, frame_count: int, fps: float, out: OutputSettings, *,
          frames: FrameSelection, batch: int | None, precision: str | torch.dtype | None, jobs: int | None,
          cpu_threads: int | None, resume: bool, fingerprint: Callable[[], str], recalibrate: bool) -> RenderPlan:
    """The render's plan; with ``resume``, the interrupted render's recorded threads and batch are kept (others
    would change a StyleGAN's pixels slightly)."""
    if resume and out.path is not None and (batch is None or cpu_threads is None):
        rec = recorded_plan(Path(out.path), fingerprint())
        if rec is not None:
            batch = batch if batch is not None else rec.get("batch")
            cpu_threads = cpu_threads if cpu_threads is not None else rec.get("threads")
    return plan_render(generator, frame_count, fps, out, frames=frames, batch=batch, precision=precision,
                       jobs=jobs, cpu_threads=cpu_threads, recalibrate=recalibrate)


class _Stopped(Exception):
    """``should_stop`` asked for the render to end early."""


def _abort(lanes: list[_Lane], extra: SinkWorker | None, writer: OutputWriter | None) -> None:
    """Stop everything after a failure: segments fully handed over may finish (kept for --resume), the rest is
    killed and its partial files deleted; then the writer cleans up what this render made and releases the lock."""
    try:
        for lane in lanes:
            w = lane.worker
            if w is None:
                continue
            if lane.dispatched == lane.stop - lane.start and lane.segment is not None and not lane.segment.whole:
                try:
                    if w.join(timeout=30):
                        continue
                except BaseException:  # noqa: BLE001, S110 - this segment failed too: it is aborted just below
                    pass
            w.abort()
        if extra is not None:
            extra.abort()
    finally:
        if writer is not None:
            writer.abort()


def _run_loop(
    plan: RenderPlan,
    lanes: list[_Lane],
    open_lane: Callable[[_Lane], None],
    latents_fn: LatentsFn,
    batcher: Batcher,
    extra: SinkWorker | None,
    ordered: bool,
    progress: bool,
    should_stop: Callable[[], bool] | None,
    todo_frames: int,
) -> tuple[bool, int]:
    """Generate every lane's frames and hand them to the workers.

    Returns:
        Whether it stopped early, and the batch size in use at the end (smaller after an out-of-memory).
    """
    from tqdm import tqdm

    show = progress and sys.stderr.isatty()
    bar = tqdm(total=len(plan.frames), initial=len(plan.frames) - todo_frames, unit="frame", disable=not show,
               dynamic_ncols=True, smoothing=0.1, leave=True)
    max_active = 1 if ordered else plan.jobs
    pending_q: deque[tuple[_Lane, Pending]] = deque()
    # On CUDA one batch stays in flight while the previous one is handed over; on CPU compute is synchronous.
    in_flight = 1 if batcher.is_cuda else 0
    waiting = list(lanes)
    active: list[_Lane] = []
    closing: list[_Lane] = []  # handed all their frames; their encoder is still finishing
    batch = plan.batch
    # Inside a segment, chunks are whole batches from the segment's start: the same batches as one fetch gave.
    seg_chunk = chunk_frames(plan.batch)
    try:
        while waiting or active or pending_q:
            if should_stop is not None and should_stop():
                return True, batch
            # A lane whose last batch is still in flight no longer counts: the next one starts generating now,
            # so the device does not idle at segment boundaries (the FIFO of pending batches keeps frame order).
            while sum(1 for ln in active if ln.remaining() > 0) < max_active and waiting:
                lane = waiting.pop(0)
                open_lane(lane)
                active.append(lane)
            gen_lanes = [ln for ln in active if ln.remaining() > 0]
            if gen_lanes:
                lane = min(gen_lanes, key=lambda ln: ln.worker.backlog() if ln.worker is not None else 0)
                if lane.ws is None or lane.next >= lane.ws_start + len(lane.ws):
                    chunk = seg_chunk if lane.hasher is not None else LATENT_CHUNK
                    end = min(lane.stop, lane.next + chunk)
                    lane.ws = np.asarray(latents_fn(list(range(lane.next, end))), dtype=np.float32)
                    lane.ws_start = lane.next
                    if lane.hasher is not None:
                        lane.hasher.update(lane.ws)
                n = min(batch, lane.remaining(), lane.ws_start + len(lane.ws) - lane.next)
                idx = list(range(lane.next, lane.next + n))
                ws = lane.ws[lane.next - lane.ws_start : lane.next - lane.ws_start + n]
                pend, batch = batcher.submit_split(ws, idx, batch)
                pending_q.extend((lane, p) for p in pend)
                lane.next += n
                if lane.remaining() == 0:
                    lane.ws = None
            while pending_q and (len(pending_q) > in_flight or not gen_lanes):
                lane, p = pending_q.popleft()
                frames = p.result()
                first = p.frames[0]
                if lane.worker is not None:
                    lane.worker.submit(first, frames)
                if extra is not None:
                    extra.submit(first, frames)
                lane.dispatched += len(frames)
                bar.update(len(frames))
                if lane.dispatched == lane.stop - lane.start:
                    if lane.worker is not None:
                        lane.worker.finish()
                        closing.append(lane)
                    active.remove(lane)
            for lane in active:
                if lane.worker is not None:
                    lane.worker.check()
            # A segment whose encoder fails while finishing (its exit status comes only then) stops the
            # render now, not when the last segment is joined.
            for lane in list(closing):
                ended = lane.worker.done()
                lane.worker.check()
                if ended:
                    closing.remove(lane)
            if extra is not None:
                extra.check()
        for lane in lanes:
            if lane.worker is not None:
                lane.worker.join()
        return False, batch
    finally:
        bar.close()
