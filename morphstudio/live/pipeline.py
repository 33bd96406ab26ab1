"""The live pipeline: capture -> landmarks + smoothing + align -> encode + edit + generate -> blend -> sinks.

Every stage runs on its own thread, joined to the next by a bounded queue, so mediapipe, torch and the encoders
overlap (all three release the GIL in their native code). Two pacing modes share the stages:

- **file mode**: every frame is processed in order; a full queue blocks the stage before it, so nothing is
  dropped and the output has exactly the input's frames.
- **real time** (a camera, or ``--realtime``): capture writes into a one-frame slot, the newest frame wins, and a
  frame the pipeline had no time for is dropped and counted; the generator takes the newest aligned frame from a
  slot the same way (an aligned frame it had no time for is dropped and counted too).

Latency is measured per frame from capture to the moment the sinks have taken it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from morphstudio.faces.align import (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, MOUTH_IMAGE_LEFT, MOUTH_IMAGE_RIGHT,
                                     CropParams, FaceLandmarks, crop_quad, face_mask, warp_to_crop)
from morphstudio.live.blend import blend_back, feathered, match_colour
from morphstudio.live.capture import CameraLost, Frame, LatestSlot
from morphstudio.live.edits import LiveEdits
from morphstudio.live.smoothing import OneEuroFilter
from morphstudio.sinks.base import Sink, StreamInfo
from morphstudio.sinks.tee import TeeSink
from morphstudio.sinks.window import PreviewClosed

log = logging.getLogger(__name__)

_END = object()


@dataclass
class Work:
    """A frame on its way through the stages."""

    frame: Frame
    transform: np.ndarray | None = None
    crop: np.ndarray | None = None
    mask: np.ndarray | None = None
    generated: np.ndarray | None = None
    output: np.ndarray | None = None
    continues: bool = False
    """The frame before had a face too (the same face, as far as live mode knows): refinement warm-starts."""


@dataclass
class LiveStats:
    """What a run did: frames in and out, faces edited, drops, latencies (seconds) and wall time."""

    frames_in: int = 0
    frames_out: int = 0
    faces: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by: str = "end of input"

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")

    def summary(self) -> str:
        return (f"{self.frames_out} frames ({self.faces} with a face edited) in {self.seconds:.1f} s: "
                f"{self.fps:.1f} fps, latency p50 {self.percentile_ms(50):.0f} ms, p95 {self.percentile_ms(95):.0f} "
                f"ms, {self.dropped} dropped")


def landmarks_from_mesh(mesh: np.ndarray) -> FaceLandmarks:
    """The alignment points of :mod:`morphstudio.faces.align` from a ``[468, 2]`` mesh (pixels)."""
    return FaceLandmarks(eye_left=mesh[list(EYE_IMAGE_LEFT)].mean(0), eye_right=mesh[list(EYE_IMAGE_RIGHT)].mean(0),
                         mouth_left=mesh[MOUTH_IMAGE_LEFT], mouth_right=mesh[MOUTH_IMAGE_RIGHT], mesh=mesh)


REALTIME_IN_FLIGHT = 2
"""Frames inside the stages at once in real time by default (``--in-flight``)."""

ROI_MARGIN = 8
"""Source pixels kept around the crop's quad: the bilinear / bicubic taps and the anti-alias shrink's box."""


def warp_region(pixels: np.ndarray, transform: np.ndarray, quad: np.ndarray, size: int,
                params: CropParams) -> np.ndarray:
    """:func:`morphstudio.faces.align.warp_to_crop` on only the frame's box around the crop quad.

    The crop needs the pixels under its quad and a few around them; the full-frame version shrinks (anti-alias)
    and border-masks the whole frame for a crop that covers a fraction of it. Where the quad passes the frame's
    edge the box stops at the edge, so the border fill sees the same edge as before. (The anti-alias shrink's
    pixel grid starts at the box's corner instead of the frame's, so values can differ by a level or two.)
    """
    h, w = pixels.shape[:2]
    x0, y0 = np.floor(quad.min(0)).astype(int) - ROI_MARGIN
    x1, y1 = np.ceil(quad.max(0)).astype(int) + ROI_MARGIN
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:  # the quad lies (almost) entirely off the frame: nothing to save
        return warp_to_crop(pixels, transform, size, params)
    shift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)  # box pixel -> frame pixel
    return warp_to_crop(pixels[y0:y1, x0:x1], transform @ shift, size, params)


class VideoFaceMesh:
    """mediapipe's face mesh in video mode (it tracks from the previous frame instead of detecting afresh)."""

    def __init__(self, max_faces: int = 4) -> None:
        import mediapipe as mp  # slow to import, pulls in TFLite: only when live mode runs

        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=max_faces,
                                                     refine_landmarks=False, min_detection_confidence=0.5,
                                                     min_tracking_confidence=0.5)

    def __call__(self, pixels: np.ndarray) -> list[np.ndarray]:
        h, w = pixels.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(pixels))
        return [np.array([(p.x * w, p.y * h) for p in lms.landmark[:468]], dtype=np.float64)
                for lms in result.multi_face_landmarks or []]

    def close(self) -> None:
        self._mesh.close()


class LivePipeline:
    """Run a source through the stages into sinks.

    Args:
        source: A :class:`~morphstudio.live.capture.FileSource` or :class:`~morphstudio.live.capture.CameraSource`.
        generator: The torch generator.
        encoder: A :class:`~morphstudio.faces.encoder.LatentEncoder` for the generator.
        edits: The latent edits.
        sinks: Where the output frames go (opened here, closed or aborted here).
        params: The model's crop framing.
        realtime: Newest frame wins (drops counted) instead of every frame in order.
        detector: Callable ``pixels -> list of [468, 2] meshes``; default mediapipe's video face mesh.
        smoother: The landmark filter; default One Euro with mediapipe's face settings.
        batch: Most frames the generator stage takes at once (only what is already waiting: never waits to fill).
        say: Where notes go (several faces, camera lost).
        refiner: A :class:`~morphstudio.live.refine.WarmRefiner` run after the encoder (``--refine N``), or None.
        in_flight: Most frames between entering the stages and the sinks receiving them; ``0``: no limit;
            ``None`` (default): 2 in real time, no limit in file mode. In real time the align stage admits a
            frame (capture keeps replacing the waiting one, so the newest goes in); two inside let the next frame's
            landmarks overlap this one's generator, more only queue (see ``bench/live.py``). In file mode the file
            is read only when there is room, so with a limit a frame's latency is its own way through the stages,
            not time spent queueing behind earlier frames; no limit gives the most frames per second (the
            generator batches frames that wait for it).
    """

    def __init__(self, source: Any, generator: Any, encoder: Any, edits: LiveEdits, sinks: Sequence[Sink], *,
                 params: CropParams, realtime: bool, detector: Callable[[np.ndarray], list[np.ndarray]] | None = None,
                 smoother: OneEuroFilter | None = None, batch: int = 4, queue_size: int = 4,
                 say: Callable[[str], None] = print, refiner: Any = None, in_flight: int | None = None) -> None:
        self.source = source
        self.G = generator
        self.encoder = encoder
        self.edits = edits
        self.sinks = list(sinks)
        self.params = params
        self.realtime = realtime
        self.detector = detector
        self.smoother = smoother or OneEuroFilter()
        self.batch = max(1, batch)
        self.queue_size = queue_size
        self.say = say
        self.refiner = refiner
        self._had_face = False
        self.size = int(generator.resolution)
        self.stats = LiveStats()
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._said_several = False
        if in_flight is not None and in_flight < 0:
            raise ValueError(f"in_flight must be >= 0 (0: no limit), not {in_flight}")
        limit = (REALTIME_IN_FLIGHT if realtime else 0) if in_flight is None else in_flight
        # Tokens for frames inside the stages: taken when a frame enters (real time: the align stage; file mode:
        # before the file is read), given back when the sinks have it.
        self._tokens = threading.Semaphore(limit) if limit else None

    # --- plumbing ---------------------------------------------------------------------------------------------------

    def _put(self, q: queue.Queue, item: Any) -> None:
        while True:
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    return

    def _get(self, q: queue.Queue) -> Any:
        while True:
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return _END

    def _hand_on(self, out: queue.Queue | LatestSlot, item: Any) -> None:
        """Give ``item`` to the next stage: into its queue (waiting for room), or into its one-frame slot in real
        time (an aligned frame the generator had no time for is replaced by the newer one, and counted)."""
        if isinstance(out, LatestSlot):
            out.put(item)
        else:
            self._put(out, item)

    def _end(self, out: queue.Queue | LatestSlot) -> None:
        """Tell the next stage there is nothing more: close its slot, or queue the end marker."""
        if isinstance(out, LatestSlot):
            out.close()
        else:
            self._put(out, _END)

    def _admit(self) -> bool:
        """Wait for room in the stages (with an ``in_flight`` limit: in real time the next frame waits in its slot,
        where newer frames replace it; in file mode the file is not read meanwhile); False when stopping."""
        if self._tokens is None:
            return True
        while not self._tokens.acquire(timeout=0.1):
            if self._stop.is_set():
                return False
        return True

    def _take(self, inp: queue.Queue | LatestSlot) -> Any:
        """The next item from a queue or a slot; ``_END`` at the end (or when stopping)."""
        if not isinstance(inp, LatestSlot):
            return self._get(inp)
        while True:
            got, item = inp.get()
            if got:
                return _END if item is None else item
            if self._stop.is_set():
                return _END

    def _fail(self, exc: BaseException) -> None:
        self._errors.append(exc)
        self._stop.set()

    # --- stages -----------------------------------------------------------------------------------------------------

    def _capture(self, out: queue.Queue | LatestSlot) -> None:
        frames: Any = None
        try:
            frames = iter(self.source.frames(self._stop))
            # Real time reads on regardless (the newest frame waits in the slot); file mode reads a frame only once
            # it may enter the stages, so its capture time is when it starts through them.
            while self.realtime or self._admit():
                frame = next(frames, None)
                if frame is None or self._stop.is_set():  # the end, Ctrl-C, the window closed, or a stage failed
                    break
                self.stats.frames_in += 1
                self._hand_on(out, frame)
        except CameraLost as exc:
            if not self._stop.is_set():  # a camera lost after Ctrl-C is not news
                self.stats.stopped_by = str(exc)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            self._fail(exc)
        finally:
            try:
                if hasattr(frames, "close"):  # stop the file's ffmpeg or release the camera now, not at collection
                    frames.close()
            finally:
                self._end(out)  # whatever closing did: the stages after must hear the end

    def _align(self, inp: queue.Queue | LatestSlot, out: queue.Queue | LatestSlot) -> None:
        try:
            detector = self.detector or VideoFaceMesh()
            while not self.realtime or self._admit():  # file mode admitted the frame before reading it
                frame = self._take(inp)
                if frame is _END:
                    break
                self._hand_on(out, self._align_one(frame, detector))
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._end(out)

    def _align_one(self, frame: Frame, detector: Callable[[np.ndarray], list[np.ndarray]]) -> Work:
        meshes = detector(frame.pixels)
        work = Work(frame, continues=self._had_face)
        self._had_face = bool(meshes)
        if not meshes:
            self.smoother.reset()  # the next face starts fresh, not dragged from where this one left
            return work
        areas = [float(np.ptp(m[:, 0]) * np.ptp(m[:, 1])) for m in meshes]
        idx = int(np.argmax(areas))
        if len(meshes) > 1 and not self._said_several:
            self._said_several = True
            self.say(f"note: {len(meshes)} faces in frame {frame.index}; editing the largest (this note is shown "
                     "once)")
        mesh = meshes[idx]
        mesh = self.smoother(mesh, frame.t_media, value_scale=1.0 / max(np.sqrt(areas[idx]), 1.0))
        lm = landmarks_from_mesh(mesh)
        quad = crop_quad(lm, self.params)
        dst = np.array([[0, 0], [0, self.size], [self.size, self.size], [self.size, 0]], np.float32)
        work.transform = cv2.getPerspectiveTransform(quad.astype(np.float32), dst).astype(np.float64)
        work.crop = warp_region(frame.pixels, work.transform, quad, self.size, self.params)
        work.mask = face_mask(lm, work.transform, self.size)
        return work

    def _generate(self, inp: queue.Queue | LatestSlot, out: queue.Queue) -> None:
        import torch

        from morphstudio.generators import to_uint8

        try:
            done = False
            while not done:
                item = self._take(inp)
                if item is _END:
                    break
                items = [item]
                # Take what is already waiting; never wait to fill a batch (a slot holds one frame: no batching).
                while isinstance(inp, queue.Queue) and len(items) < self.batch:
                    try:
                        nxt = inp.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _END:
                        done = True
                        break
                    items.append(nxt)
                faces = [w for w in items if w.crop is not None]
                if faces:
                    ws = self.encoder.encode_uint8(np.stack([w.crop for w in faces]))
                    if self.refiner is not None:
                        # One frame at a time, in order: each starts from the one before while the face continues.
                        ws = np.stack([self.refiner.refine(w.crop, w.mask, e, w.continues) for w, e in zip(faces, ws)])
                    ws = self.edits.apply(ws, np.array([w.frame.t_media for w in faces]))
                    with torch.no_grad():
                        img = self.G.synthesis(torch.from_numpy(ws).to(self.G.device), noise_mode="const")
                        gen = to_uint8(img).cpu().numpy()
                    for w, g in zip(faces, gen):
                        w.generated = g
                for w in items:
                    self._put(out, w)
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._end(out)

    def _blend(self, inp: queue.Queue, out: queue.Queue) -> None:
        try:
            while (work := self._get(inp)) is not _END:
                if work.generated is None:
                    work.output = work.frame.pixels  # no face: the frame passes through untouched
                else:
                    gen = work.generated
                    if gen.shape[0] != self.size:
                        gen = cv2.resize(gen, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
                    gen = match_colour(gen, work.crop, work.mask)
                    work.output = blend_back(work.frame.pixels, gen, work.transform, feathered(work.mask))
                self._put(out, work)
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._end(out)

    # --- run --------------------------------------------------------------------------------------------------------

    def run(self) -> LiveStats:
        """Process the whole source (or until Ctrl-C / camera loss / a sink asks to stop).

        Sinks are closed (outputs finalised) when the stream ends, the camera is lost or on Ctrl-C; they are
        aborted (partial output deleted) only when a stage fails.
        """
        info = StreamInfo(width=self.source.width, height=self.source.height, fps=self.source.fps)
        # One fan-out sink: opening aborts the sinks already opened if a later one fails (e.g. no virtual-camera
        # device: the recording already started must not stay behind half-written); closing closes them all.
        out = TeeSink(self.sinks)
        out.open(info)
        # In real time a frame waiting in a queue only gets older: one slot per stage keeps the latency at the
        # stages' own cost; file mode buffers a few so a slow frame in one stage does not idle the others.
        qs = 1 if self.realtime else self.queue_size
        first: queue.Queue | LatestSlot = LatestSlot() if self.realtime else queue.Queue(qs)
        # In real time the generator (the slowest stage) also takes the newest aligned frame: an aligned frame
        # waiting behind the one being generated would only reach the screen a generator's time late.
        # With admission limited (``in_flight``) few aligned frames can wait (one, at the default 2), and those
        # were admitted to be shown: a queue will do.
        q_gen: queue.Queue | LatestSlot = (LatestSlot() if self.realtime and self._tokens is None
                                           else queue.Queue(qs))
        q_blend: queue.Queue = queue.Queue(qs)
        q_out: queue.Queue = queue.Queue(qs)
        threads = [threading.Thread(target=self._capture, args=(first,), name="live-capture", daemon=True),
                   threading.Thread(target=self._align, args=(first, q_gen), name="live-align", daemon=True),
                   threading.Thread(target=self._generate, args=(q_gen, q_blend), name="live-generate", daemon=True),
                   threading.Thread(target=self._blend, args=(q_blend, q_out), name="live-blend", daemon=True)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        ok = False
        try:
            while (work := self._get(q_out)) is not _END:
                out.write(work.frame.index, work.output[None])
                self.stats.latencies.append(time.perf_counter() - work.frame.t_capture)
                self.stats.frames_out += 1
                self.stats.faces += work.generated is not None
                if self._tokens is not None:
                    self._tokens.release()
            ok = not self._errors
        except KeyboardInterrupt:
            self.stats.stopped_by = "Ctrl-C"
            ok = True
        except PreviewClosed:
            self.stats.stopped_by = "the window was closed"
            ok = True
        except BaseException as exc:
            self._errors.append(exc)
        finally:
            self._stop.set()
            for t in threads:
                t.join(timeout=10)
            self.stats.seconds = time.perf_counter() - t0
            self.stats.dropped = sum(q.dropped for q in (first, q_gen) if isinstance(q, LatestSlot))
            if ok:
                out.close()
            else:
                out.abort()
        if self._errors:
            raise self._errors[0]
        return self.stats
