"""The streaming renderer: latents -> batches on the device -> bounded queues -> encoder threads.

``render_latents`` is the engine (a generator plus a function from frame indices to latents); ``render_scene``
puts a :class:`morphstudio.api.Scene` on top of it. The loop on the calling thread only computes: latents in
chunks, synthesis + resize + uint8 in batches. Each encoded segment (and each extra sink) is fed by its own
thread behind a bounded queue, so generation, the device->host copy and encoding overlap. With several encoder
jobs the loop interleaves batches of up to ``jobs`` segments, always feeding the encoder with the shortest queue,
so a generator faster than one ffmpeg keeps several busy.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from morphstudio.devices import resolve_device, resolve_dtype
from morphstudio.errors import RenderError
from morphstudio.formats import STILL_CODECS
from morphstudio.generators.base import Generator
from morphstudio.rendering.batcher import (
    Batcher,
    Pending,
    auto_batch_size,
    output_size,
)
from morphstudio.rendering.clock import (
    FrameSelection,
    parse_frame_range,
    plan_segments,
    segment_length,
)
from morphstudio.rendering.lock import OutputLock
from morphstudio.rendering.noise import NoiseSettings, NoiseSource
from morphstudio.rendering.outputs import Inputs, OutputSettings, check_output, resolve_output  # noqa: F401 (re-exported)
from morphstudio.rendering.plan import plan_cpu_render, torch_threads
from morphstudio.rendering.resume import latents_digest, open_parts, parts_dir_for, recorded_plan
from morphstudio.rendering.segments import (
    Segment,
    commit,
    discard_partials,
    join_segments,
    remove_parts,
    segment_file,
    segment_sink,
)
from morphstudio.rendering.worker import SinkWorker
from morphstudio.sinks.base import Sink, StreamInfo
from morphstudio.sinks.ffmpeg import FfmpegSink, container_check, crf_check
from morphstudio.sinks.image_folder import ImageFolderSink
from morphstudio.sinks.tee import TeeSink
from morphstudio.sinks.window import PreviewClosed, preview_sinks

LatentsFn = Callable[[Sequence[int]], np.ndarray]

LATENT_CHUNK = 256  # frames of latents computed at once outside segments (memory: 256 x num_ws x w_dim floats)


@dataclass
class RenderPlan:
    """Everything decided before the first frame: shown by ``--dry-run``.

    Attributes:
        frames: The frame indices to render.
        fps: Frames per second.
        width: Output width.
        height: Output height.
        batch: Frames per generator call.
        precision: Compute dtype.
        device: Where the generator runs.
        output: Output settings (path ``None`` = no file).
        segments: Encoded segments (empty for gif/png/no file).
        jobs: Encoders running at once.
        cpu_threads: Torch CPU threads (CPU rendering only).
        encoder_threads: ffmpeg threads per segment encoder when several run at once (``None`` = ffmpeg decides).
        why: How threads and batch were chosen (``morphstudio.rendering.plan``), for ``--dry-run``.
    """

    frames: range
    fps: float
    width: int
    height: int
    batch: int
    precision: torch.dtype
    device: torch.device
    output: OutputSettings
    segments: list[tuple[int, int]] = field(default_factory=list)
    jobs: int = 1
    cpu_threads: int | None = None
    encoder_threads: int | None = None
    why: list[str] = field(default_factory=list)

    def record(self) -> dict[str, int | None]:
        """What the segment manifest keeps so ``--resume`` renders the rest identically."""
        return {"batch": self.batch, "threads": self.cpu_threads}

    def describe(self) -> list[str]:
        """Human-readable lines."""
        n = len(self.frames)
        lines = [
            (f"frames:    {self.frames.start}..{self.frames.stop - 1} ({n} frames, {n / self.fps:.2f} s at "
             f"{self.fps:g} fps)"),
            f"size:      {self.width}x{self.height} ({self.output.fit})",
            (f"device:    {self.device} ({str(self.precision).replace('torch.', '')}), batch {self.batch} "
             f"-> {-(-n // self.batch)} batches"
             + (f", {self.cpu_threads} torch thread(s)" if self.cpu_threads else "")),
        ]
        lines += [f"plan:      {line}" for line in self.why]
        if self.output.path is None:
            lines.append("output:    none (preview / sinks only)")
        else:
            lines.append(f"output:    {self.output.path} ({self.output.codec}"
                         + (f", crf {self.output.crf}" if self.output.crf is not None else "")
                         + (f", audio {self.output.audio}" if self.output.audio else "") + ")")
        if self.segments:
            lines.append(f"segments:  {len(self.segments)} of up to {segment_length(self.output.segment_seconds, self.fps)}"
                         f" frames, {self.jobs} encoder(s) at once"
                         + (f" ({self.encoder_threads} thread(s) each)" if self.encoder_threads else "")
                         + ", joined losslessly")
        return lines


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


def default_jobs() -> int:
    """Encoders at once: half the cores (the other half generate), at least 1."""
    return max(1, (os.cpu_count() or 2) // 2)


def plan_render(
    generator: Generator,
    frame_count: int,
    fps: float,
    output: OutputSettings | None,
    *,
    frames: FrameSelection = None,
    batch: int | None = None,
    precision: str | torch.dtype | None = None,
    jobs: int | None = None,
    cpu_threads: int | None = None,
) -> RenderPlan:
    """Decide frames, size, batch size, segments and threads (validating everything a user can get wrong).

    Raises:
        RenderError: Bad frame range, batch size, size, codec/container combination.
        DeviceError: A precision the device does not support.
    """
    out = output if output is not None else OutputSettings(path=None)
    rng = parse_frame_range(frames, frame_count)
    width, height = output_size(out.size, generator.resolution)
    device = generator.device
    dtype = resolve_dtype(precision, device)
    if out.path is not None:
        container_check(out.codec, out.path, width, height)
        crf_check(out.codec, out.crf)
        if out.audio is not None and out.codec in STILL_CODECS:
            raise RenderError(f"output.audio: cannot add audio to {out.codec} output ({out.path})")
    if batch is not None and batch < 1:
        raise RenderError(f"--batch must be at least 1, got {batch}")
    if jobs is not None and jobs < 1:
        raise RenderError(f"--jobs must be at least 1, got {jobs}")
    if cpu_threads is not None and cpu_threads < 1:
        raise RenderError(f"--threads must be at least 1, got {cpu_threads}")
    if fps <= 0:
        raise RenderError(f"output.fps must be positive, got {fps}")
    segmented = out.path is not None and out.codec not in STILL_CODECS
    segs = plan_segments(rng, segment_length(out.segment_seconds, fps)) if segmented else []
    n_jobs = jobs if jobs is not None else default_jobs()
    n_jobs = max(1, min(n_jobs, len(segs) or 1))
    threads = None
    why: list[str] = []
    if device.type == "cpu":
        # Threads and batch from measured generator and encoder costs (cached per machine and model).
        cpu = plan_cpu_render(generator, width, height, out.fit, dtype,
                              codec=out.codec if out.path is not None else None, crf=out.crf, fps=fps,
                              ext=Path(out.path).suffix.lower() if out.path is not None else "",
                              frames=min(len(rng), auto_batch_size(generator, width, height, dtype)),
                              threads=cpu_threads, batch=batch)
        bs, threads, why = cpu.batch, cpu.threads, cpu.why
    else:
        bs = batch if batch is not None else auto_batch_size(generator, width, height, dtype)
    bs = max(1, min(bs, len(rng)))
    # Several encoders at once share the cores; a single one is left to ffmpeg's own choice.
    encoder_threads = max(1, (os.cpu_count() or 2) // n_jobs) if n_jobs > 1 else None
    return RenderPlan(rng, fps, width, height, bs, dtype, device, out, segs, n_jobs, threads, encoder_threads, why)


@dataclass
class _Lane:
    """A contiguous run of frames with its own sink worker (one segment, or the whole range)."""

    start: int
    stop: int
    worker: SinkWorker | None = None
    segment: Segment | None = None
    next: int = field(init=False, default=0)
    dispatched: int = 0
    digest: str | None = None  # a segment's latents digest (resume manifest), set when its latents are loaded
    ws: np.ndarray | None = None
    ws_start: int = 0

    def __post_init__(self) -> None:
        self.next = self.start

    def remaining(self) -> int:
        return self.stop - self.next


def render_latents(
    generator: Generator,
    latents_fn: LatentsFn,
    frame_count: int,
    fps: float,
    *,
    output: OutputSettings | Any | None = None,
    noise: NoiseSettings | Any | None = None,
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
) -> RenderResult:
    """Render frames of ``latents_fn`` with ``generator`` to a file and/or sinks.

    Args:
        generator: The generator, on its device, in eval mode.
        latents_fn: ``frame indices -> float32 [T, num_ws, w_dim]`` (e.g. ``Scene.latents``).
        frame_count: Frames in the whole scene.
        fps: Frames per second (``output.fps`` is ignored in favour of this).
        output: Output settings (``OutputSpec``-like); ``None`` or ``path=None`` writes no file.
        noise: Noise settings (``NoiseSpec``-like); ``None`` = const.
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

    Returns:
        A :class:`RenderResult`.

    Raises:
        RenderError: Bad settings, an output that would destroy something the render did not make, another
            render writing the same output, or the render failed; EncoderError when ffmpeg failed. Nothing
            partial is left at the output path; finished segments stay in the parts folder for ``--resume``.
    """
    t0 = time.perf_counter()
    out = OutputSettings.from_spec(output) if output is not None else OutputSettings(path=None)
    say = log or (lambda msg: print(msg, file=sys.stderr))
    if resume and out.path is not None and (batch is None or cpu_threads is None):
        # The interrupted render's threads and batch: others would change a StyleGAN's pixels slightly.
        rec = recorded_plan(parts_dir_for(Path(out.path)), fingerprint or "latents:" + latents_digest(
            latents_fn(list(range(min(frame_count, 4))))))
        if rec is not None:
            batch = batch if batch is not None else rec.get("batch")
            cpu_threads = cpu_threads if cpu_threads is not None else rec.get("threads")
    plan = plan_render(generator, frame_count, fps, out, frames=frames, batch=batch, precision=precision,
                       jobs=jobs, cpu_threads=cpu_threads)
    if out.path is None and not sinks:
        raise RenderError("nothing to render to: give an output path or at least one sink")
    if out.path is not None:
        check_output(out, inputs)
        prepare_output_folder(Path(out.path), out.codec)
    rng = plan.frames
    info = StreamInfo(plan.width, plan.height, fps, len(rng), rng.start)
    noise_settings = NoiseSettings.from_spec(noise)
    source = NoiseSource(noise_settings, generator.noise_shapes(), fps,
                         duration if duration is not None else frame_count / fps, generator.device)
    batcher = Batcher(generator, plan.width, plan.height, out.fit, plan.precision, source)
    result = RenderResult(Path(out.path) if out.path else None, rng, plan.width, plan.height, fps, 0.0, plan.batch)
    for note in out.notes:
        result.notes.append(note)
        say(note)

    extra = None
    if sinks:
        extra_sink = sinks[0] if len(sinks) == 1 else TeeSink(sinks)
        extra = SinkWorker(extra_sink, info, depth=4, name="sink-extra")
    ordered = extra is not None and extra.sink.wants_order

    # --- lanes: what feeds which worker ---------------------------------------------------------------------
    lanes: list[_Lane] = []
    manifest = None
    parts = None
    segments: list[Segment] = []
    # One render per output: taken before the parts folder or the output is touched, held until the end.
    lock = OutputLock(out.path, out.label) if out.path is not None else None
    if lock is not None:
        note = lock.acquire()
        if note:
            result.notes.append(note)
            say(note)
    try:
        if plan.segments:
            assert out.path is not None
            output_path = Path(out.path)
            parts = parts_dir_for(output_path)
            fp = fingerprint or "latents:" + latents_digest(latents_fn(list(range(min(frame_count, 4)))))
            settings = {"width": plan.width, "height": plan.height, "fit": out.fit, "fps": fps, "codec": out.codec,
                        "crf": out.crf, "precision": str(plan.precision), "noise": noise_settings.as_dict(),
                        "segment_frames": segment_length(out.segment_seconds, fps), "frame_count": frame_count}
            manifest, note = open_parts(parts, fp, settings, resume, plan.record())
            if note:
                result.notes.append(note)
                say(note)
            ext = output_path.suffix.lower()
            for s, e in plan.segments:
                seg = Segment(s, e, segment_file(parts, s, e, ext))
                lane = _Lane(s, e, segment=seg)
                if resume and f"{s}-{e}" in manifest.segments:
                    # The latents fetched for the check feed the render if the segment cannot be reused.
                    lane.ws = np.asarray(latents_fn(list(range(s, e))), dtype=np.float32)
                    lane.ws_start = s
                    lane.digest = latents_digest(lane.ws)
                    found, why = manifest.verify(s, e, lane.digest)
                    seg.reused = found is not None
                    if why:
                        result.notes.append(why)
                        say(why)
                segments.append(seg)
                if not seg.reused:
                    lanes.append(lane)
            result.segments = len(segments)
            result.reused_segments = sum(s.reused for s in segments)
        else:
            lanes.append(_Lane(rng.start, rng.stop))

        def open_lane(lane: _Lane) -> None:
            lane_info = replace(info, frame_count=lane.stop - lane.start, first_frame=lane.start)
            if lane.segment is not None:
                seg = lane.segment

                def done(seg: Segment = seg, lane: _Lane = lane) -> None:
                    assert lane.digest is not None
                    commit(seg, manifest, lane.digest)

                sink = segment_sink(seg, out.codec, out.crf, plan.encoder_threads)
                lane.worker = SinkWorker(sink, lane_info, depth=3, on_closed=done, name=f"seg-{seg.start}")
            elif out.path is not None:
                sink = ImageFolderSink(out.path) if out.codec == "png" else FfmpegSink(out.path, out.codec, out.crf)
                lane.worker = SinkWorker(sink, lane_info, depth=4, name="sink-file")

        with batcher, torch_threads(plan.cpu_threads):  # restored when the render ends, however it ends
            result.stopped, result.batch = _run_loop(plan, lanes, open_lane, latents_fn, batcher, extra, ordered,
                                                     progress, should_stop,
                                                     len(rng) - sum(len(s) for s in segments if s.reused))
        if extra is not None:
            extra.finish()
            extra.join()
        if result.stopped:
            raise _Stopped()
        if plan.segments:
            assert out.path is not None and parts is not None
            join_segments(segments, Path(out.path), out.audio, parts)
            remove_parts(parts)
    except (_Stopped, PreviewClosed) as stop:
        _abort(lanes, extra, parts)
        closed = isinstance(stop, PreviewClosed)
        if closed:
            result.stopped = True
        if out.path is not None:
            lead = "the preview window was closed, so the render stopped" if closed else "render stopped before the end"
            raise RenderError(lead + "; no output was written"
                              + (" (finished segments are kept: --resume continues)" if plan.segments else "")) \
                from None
    except BaseException:
        _abort(lanes, extra, parts)
        raise
    finally:
        if lock is not None:
            lock.release()
    result.seconds = time.perf_counter() - t0
    return result


def prepare_output_folder(path: Path, codec: str) -> None:
    """Create the output's folder and check it is writable, so a bad path fails before any work is done.

    Raises:
        RenderError: The folder cannot be created or written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"output.path: cannot create the folder {path.parent}: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK):
        raise RenderError(f"output.path: the folder {path.parent} is not writable")


class _Stopped(Exception):
    """``should_stop`` asked for the render to end early."""


def _abort(lanes: list[_Lane], extra: SinkWorker | None, parts: Path | None) -> None:
    """Stop everything after a failure: segments fully handed over may finish (kept for --resume), the rest is
    killed and its partial files deleted."""
    for lane in lanes:
        w = lane.worker
        if w is None:
            continue
        if lane.dispatched == lane.stop - lane.start and lane.segment is not None:
            try:
                if w.join(timeout=30):
                    continue
            except BaseException:  # noqa: BLE001, S110 - this segment failed too: it is aborted just below
                pass
        w.abort()
    if extra is not None:
        extra.abort()
    if parts is not None:
        discard_partials(parts)


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
                # Latents for a whole segment at once (its resume digest covers exactly those), else in chunks.
                if lane.ws is None or lane.next >= lane.ws_start + len(lane.ws):
                    end = lane.stop if lane.segment is not None else min(lane.stop, lane.next + LATENT_CHUNK)
                    lane.ws = np.asarray(latents_fn(list(range(lane.next, end))), dtype=np.float32)
                    lane.ws_start = lane.next
                    if lane.segment is not None:
                        lane.digest = latents_digest(lane.ws)
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
            # A segment whose encoder fails while finishing (ffmpeg's exit status comes only then) stops the
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


def render_scene(
    scene: Any,
    *,
    output: Any = None,
    frames: FrameSelection = None,
    batch: int | None = None,
    device: str | torch.device | None = None,
    precision: str | torch.dtype | None = None,
    preview: bool = False,
    resume: bool = False,
    sinks: Sequence[Sink] | None = None,
    progress: bool = True,
    jobs: int | None = None,
    threads: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = None,
) -> RenderResult:
    """Render a :class:`morphstudio.api.Scene` (what ``morphstudio.render(scene, ...)`` calls).

    Args:
        scene: A loaded scene (``morphstudio.load_scene``).
        output: Override of the scene's output: a path, a dict of fields, ``False`` for no file, or ``None``.
        frames: ``"A:B"`` / range of frames to render (Python slice semantics).
        batch: Frames per generator call (default: automatic).
        device: Run the generator here instead of the scene's device.
        precision: ``fp32`` | ``fp16`` | ``bf16``.
        preview: Also show the frames in a window.
        resume: Reuse finished segments of an interrupted render.
        sinks: Extra sinks.
        progress: Progress bar on a terminal.
        jobs: Segment encoders at once.
        threads: Torch CPU threads (default: planned, see ``morphstudio.rendering.plan``).
        should_stop: Polled each batch; True stops the render.
        log: Where notes go.

    Returns:
        A :class:`RenderResult`.
    """
    out = scene.resolved_output(output)
    inputs = scene.input_paths()
    if out is not None:
        check_output(out, inputs)  # before the model loads: a refused output fails at once
    gen = scene.generator()
    if device is not None:
        dev = resolve_device(device)
        if gen.device != dev:
            gen = gen.to(dev)
    extra = list(sinks or [])
    if preview:  # no display: the file is still written, the window is skipped with a note
        writes_file = out is not None and out.path is not None
        extra += preview_sinks(preview_scale(out, gen.resolution), writes_file=writes_file, log=log)
    return render_latents(
        gen, scene.latents, scene.frame_count, scene.fps,
        output=out, noise=getattr(scene, "noise", None), duration=getattr(scene, "duration", None),
        frames=frames, batch=batch, precision=precision, sinks=extra, fingerprint=scene.fingerprint(),
        resume=resume, jobs=jobs, cpu_threads=threads, progress=progress, should_stop=should_stop, log=log,
        inputs=inputs,
    )


def preview_scale(out: OutputSettings | None, resolution: int, target: int = 512) -> float:
    """Window zoom so small renders are visible: the long side shown at about ``target`` pixels (never shrunk
    below 1:1 for large ones, beyond which the window would overflow a laptop screen)."""
    w, h = output_size(out.size if out is not None else None, resolution)
    return max(1.0, target / max(w, h)) if max(w, h) < target else min(1.0, 1024 / max(w, h))
