"""The segmented video writer: everything between "here are frames" and "here is one finished video file".

:class:`SegmentedVideoWriter` (in the spirit of manim's ``SceneFileWriter``) owns

- the output lock (one render per output, :mod:`morphstudio.sinks.lock`);
- the parts folder ``.OUT.parts/`` beside the output, its manifest and the render's fingerprint
  (:mod:`morphstudio.sinks.manifest`);
- the segment encoders: each segment is its own ffmpeg run (so it starts on a key frame), written under a
  temporary name and committed (moved into place, recorded with its frame count and content hash) only when its
  encoder succeeded;
- verified resume: a recorded segment is reused only if its file still has its hash and its latents their digest;
- the recorded render plan (batch and threads, which change a StyleGAN's floating-point sums), so a resumed or
  distributed render uses the same one;
- the lossless join (concat demuxer, ``-c copy``), audio muxing, and the final temp-then-rename: a failed or
  interrupted render never leaves a file that looks finished.

The renderer only asks :meth:`~SegmentedVideoWriter.missing_segments`, feeds each one's frames to the sink
:meth:`~SegmentedVideoWriter.segment_sink` gives it, and calls :meth:`~SegmentedVideoWriter.commit`,
:meth:`~SegmentedVideoWriter.finish` or :meth:`~SegmentedVideoWriter.abort`; it knows nothing of ffmpeg.

A :class:`Segment` is a plain, frozen, JSON-able unit of work (frame range, output settings, fingerprint, plan,
file name): any process can render it with :func:`segment_sink` into the parts folder under a temporary name of
its own, and the driver alone commits it. gif and png outputs are not segmented: they are one whole piece,
written straight to the output by a sink that renames itself into place (:attr:`Segment.whole`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from morphstudio.errors import RenderError
from morphstudio.formats import FOLDER_CODECS, STILL_CODECS
from morphstudio.sinks.base import Sink
from morphstudio.sinks.ffmpeg import FfmpegSink, container_check, crf_check, muxer_for, partial_name, run_ffmpeg
from morphstudio.sinks.image_folder import ImageFolderSink
from morphstudio.sinks.lock import OutputClaim
from morphstudio.sinks.manifest import (
    Manifest,
    LatentsHasher,
    latents_digest,
    open_parts,
    parts_dir_for,
)
from morphstudio.sinks.manifest import recorded_plan as _recorded_plan

__all__ = [
    "LatentsHasher",
    "Segment",
    "SegmentedVideoWriter",
    "check_encodable",
    "latents_digest",
    "parts_dir_for",
    "recorded_plan",
    "segment_sink",
    "whole_file_codec",
]

AUDIO_CODEC: dict[str, list[str]] = {
    ".mp4": ["-c:a", "aac", "-b:a", "192k"],
    ".mov": ["-c:a", "aac", "-b:a", "192k"],
    ".mkv": ["-c:a", "aac", "-b:a", "192k"],
    ".webm": ["-c:a", "libopus", "-b:a", "160k"],
    ".avi": ["-c:a", "libmp3lame", "-b:a", "192k"],
    ".nut": ["-c:a", "aac", "-b:a", "192k"],
}


def whole_file_codec(codec: str) -> bool:
    """True for outputs written in one piece (gif, png folder), False for segmented video.

    A gif's palette sees every frame and png is a folder: neither has a parts folder or a join.
    """
    return codec in STILL_CODECS


def check_encodable(codec: str, path: str | Path, width: int, height: int, crf: int | None,
                    audio: str | None) -> None:
    """Refuse, before any work, an output the encoders would reject: unknown codec, a container that cannot hold
    it, odd sizes for 4:2:0, a picture too large for ffmpeg, a quality outside the encoder's range, audio on a
    gif or png output.

    Raises:
        RenderError: Naming the field and the value.
    """
    container_check(codec, path, width, height)
    crf_check(codec, crf)
    if audio is not None and whole_file_codec(codec):
        raise RenderError(f"output.audio: cannot add audio to {codec} output ({path})")


@dataclass(frozen=True)
class Segment:
    """One independently encoded piece of the video: a plain unit of work any process can render.

    Attributes:
        start: First frame index.
        stop: One past the last frame index.
        file: Its file name in the parts folder (for a whole piece: the output's name).
        codec: Video codec.
        crf: Quality (``None`` = the codec's default).
        width: Frame width.
        height: Frame height.
        fps: Frames per second.
        encoder_threads: ffmpeg threads for its encoder (``None`` = ffmpeg decides).
        fingerprint: Identity of what determines the frames (the manifest's fingerprint).
        batch: Frames per generator call of the render plan (every process must use the same one).
        threads: Torch CPU threads of the render plan (``None`` = not planned, e.g. on a GPU).
        whole: True for a gif/png output written in one piece straight to the output.
    """

    start: int
    stop: int
    file: str
    codec: str
    crf: int | None
    width: int
    height: int
    fps: float
    encoder_threads: int | None
    fingerprint: str
    batch: int
    threads: int | None = None
    whole: bool = False

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def frames(self) -> range:
        return range(self.start, self.stop)

    @property
    def key(self) -> str:
        """The manifest's key of this segment (``"start-stop"``)."""
        return f"{self.start}-{self.stop}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (for another process: ``Segment.from_dict(json.loads(json.dumps(seg.to_dict())))``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Segment:
        """The inverse of :meth:`to_dict`.

        Raises:
            RenderError: Missing or unknown keys, or values of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise RenderError(f"segment: expected a mapping, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        unknown = sorted(set(data) - names)
        missing = sorted(required - set(data))
        if unknown or missing:
            raise RenderError("segment: " + "; ".join(
                ([f"unknown key(s) {', '.join(unknown)}"] if unknown else [])
                + ([f"missing key(s) {', '.join(missing)}"] if missing else [])))

        def whole_number(name: str, optional: bool = False) -> int | None:
            v = data.get(name)
            if v is None and optional:
                return None
            if isinstance(v, bool) or not isinstance(v, int):
                raise RenderError(f"segment.{name}: expected a whole number, got {v!r}")
            return v

        start, stop = whole_number("start"), whole_number("stop")
        assert start is not None and stop is not None
        if not 0 <= start < stop:
            raise RenderError(f"segment: frame range {start}..{stop} is empty or negative")
        file = data["file"]
        if not isinstance(file, str) or not file or Path(file).name != file:
            raise RenderError(f"segment.file: expected a plain file name, got {file!r}")
        for name in ("codec", "fingerprint"):
            if not isinstance(data[name], str):
                raise RenderError(f"segment.{name}: expected text, got {data[name]!r}")
        fps = data["fps"]
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
            raise RenderError(f"segment.fps: expected a positive number, got {fps!r}")
        width, height, batch = whole_number("width"), whole_number("height"), whole_number("batch")
        assert width is not None and height is not None and batch is not None
        return cls(start, stop, file, data["codec"], whole_number("crf", True), width, height, float(fps),
                   whole_number("encoder_threads", True), data["fingerprint"], batch, whole_number("threads", True),
                   bool(data.get("whole", False)))


def partial_file(seg: Segment, folder: Path, tag: str | None = None) -> Path:
    """Where an unfinished encoding of ``seg`` lives in ``folder``: hidden, ``.partial`` (so an abort or a later
    render sweeps it), and per ``tag`` when several processes might encode the same segment (a retried task)."""
    name = f".{seg.file}.{tag}.partial" if tag else f".{seg.file}.partial"
    return folder / name


def segment_sink(seg: Segment, folder: Path, tag: str | None = None) -> FfmpegSink:
    """An encoder writing ``seg`` to :func:`partial_file` in ``folder``, usable in any process; the driver's
    :meth:`SegmentedVideoWriter.commit` moves it into place."""
    target = folder / seg.file
    return FfmpegSink(target, seg.codec, seg.crf, threads=seg.encoder_threads,
                      temp_path=partial_file(seg, folder, tag))


def discard_partials(folder: Path) -> None:
    """Delete unfinished segment files (finished ones stay for ``--resume``)."""
    if folder.is_dir():
        for f in folder.glob(".*.partial"):
            f.unlink(missing_ok=True)


def join_segments(files: Sequence[Path], output: Path, audio: str | None, folder: Path) -> None:
    """Concatenate finished segment files (stream copy) and mux ``audio`` into ``output``, atomically.

    Raises:
        EncoderError: ffmpeg failed; no output file is left behind.
        RenderError: The audio file is missing.
    """
    listing = folder / "concat.txt"
    # Paths relative to the list file's folder; single quotes escaped the way the concat demuxer expects.
    listing.write_text("ffconcat version 1.0\n" + "".join(
        "file '{}'\n".format(f.name.replace("'", "'\\''")) for f in files))
    tmp = partial_name(output)
    ext = output.suffix.lower()
    args = ["-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
    if audio is not None:
        if not Path(audio).is_file():
            raise RenderError(f"output.audio: audio file not found: {audio}")
        args += ["-i", str(audio), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", *AUDIO_CODEC.get(ext, []),
                 "-shortest"]
    else:
        args += ["-map", "0:v:0", "-c", "copy"]
    if ext in (".mp4", ".mov"):
        args += ["-movflags", "+faststart"]
    args += ["-f", muxer_for(output), str(tmp)]
    try:
        run_ffmpeg(args, f"{output}: joining {len(files)} segment(s)", expect=tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, output)


def recorded_plan(output: str | Path, fingerprint: str) -> dict[str, Any] | None:
    """The render plan (batch, threads) an interrupted render of ``output`` with this fingerprint recorded in its
    manifest, or ``None``: ``--resume`` plans nothing new, so the rest is rendered exactly as the start was."""
    return _recorded_plan(parts_dir_for(output), fingerprint)


def remove_parts(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


DigestFn = Callable[[Segment], str]


class SegmentedVideoWriter:
    """Owns one render's output: lock, parts folder, manifest, segment encoders, resume, join, audio, rename.

    Args:
        path: The output file (a folder for png), absolute.
        codec: Video codec (``gif``/``png`` are written whole, everything else in segments).
        crf: Quality, ``None`` = the codec's default.
        width: Frame width.
        height: Frame height.
        fps: Frames per second.
        frames: The frame range this render covers.
        segments: ``(start, stop)`` of every segment (the renderer's plan; ignored for whole outputs).
        fingerprint: Identity of what determines the frames (scene, model, files).
        identity: Further settings that change the frames (fit, precision, noise, frame count): recorded in the
            manifest, so ``resume`` reuses nothing made with others.
        batch: The render plan's batch size (recorded; every segment is made with it).
        threads: The render plan's torch threads (recorded).
        audio: Audio file to mux, or ``None``.
        encoder_threads: ffmpeg threads per segment encoder (``None`` = ffmpeg decides).
        segment_frames: Frames per segment (recorded in the manifest).
        label: How messages name the output's field (``scene.yaml:4: output.path``, ``-o``).
        resume: Reuse verified segments of an interrupted render of the same output.
        note: Where notes for the user go (a lock taken over, resume decisions).
        claim: The output's folder and lock, already taken by the caller (before planning, so a second render
            of the output fails before any model or calibration work); the writer releases it when it ends.
            ``None``: :meth:`open` takes it.

    Call :meth:`open` first, then :meth:`missing_segments`; feed each missing segment's frames to
    :meth:`segment_sink` and :meth:`commit` it; end with :meth:`finish` or, on any failure, :meth:`abort`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        codec: str,
        crf: int | None,
        width: int,
        height: int,
        fps: float,
        frames: range,
        segments: Sequence[tuple[int, int]],
        fingerprint: str,
        identity: Mapping[str, Any] | None = None,
        batch: int = 1,
        threads: int | None = None,
        audio: str | None = None,
        encoder_threads: int | None = None,
        segment_frames: int | None = None,
        label: str = "output.path",
        resume: bool = False,
        note: Callable[[str], None] | None = None,
        claim: OutputClaim | None = None,
    ) -> None:
        self.path = Path(path)
        self.codec = codec
        self.crf = crf
        self.width = width
        self.height = height
        self.fps = fps
        self.frames = frames
        self.fingerprint = fingerprint
        self.identity = dict(identity or {})
        self.batch = batch
        self.threads = threads
        self.audio = audio
        self.encoder_threads = encoder_threads
        self.label = label
        self.resume = resume
        self._note = note or (lambda msg: None)
        self.segmented = not whole_file_codec(codec)
        if self.segmented and not segments:
            raise RenderError(f"internal: a {codec} render needs its segments planned")
        self.segment_frames = segment_frames if segment_frames is not None else \
            max((e - s for s, e in segments), default=len(frames))
        self.parts = parts_dir_for(self.path)
        ext = self.path.suffix.lower()

        def make(s: int, e: int, file: str, whole: bool) -> Segment:
            return Segment(s, e, file, codec, crf, width, height, fps, encoder_threads, fingerprint, batch, threads,
                           whole)

        self.segments: list[Segment] = (
            [make(s, e, f"seg_{s:06d}-{e:06d}{ext}", False) for s, e in segments] if self.segmented
            else [make(frames.start, frames.stop, self.path.name, True)])
        self.manifest: Manifest | None = None
        self.reused: list[Segment] = []
        self._missing: list[Segment] | None = None
        self._claim = claim if claim is not None else OutputClaim(self.path, label)

    # --- setting up ---------------------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """What the manifest records besides the fingerprint: everything that changes a segment's bytes."""
        return {"width": self.width, "height": self.height, "fps": self.fps, "codec": self.codec, "crf": self.crf,
                "segment_frames": self.segment_frames, **self.identity}

    def open(self) -> None:
        """Create the output's folder and take the output lock (unless the caller's claim already holds them),
        and prepare the parts folder (replaced, or kept with its finished segments when resuming a matching
        render).

        Raises:
            RenderError: The folder cannot be made or written, another render holds the output, or a parts
                folder morphstudio did not make is in the way.
        """
        if not self._claim.held:
            taken = self._claim.acquire()  # removes the folders it made if the lock is refused
            if taken:
                self._note(taken)
        try:
            if self.segmented:
                self.manifest, note = open_parts(self.parts, self.fingerprint, self.settings(), self.resume,
                                                 {"batch": self.batch, "threads": self.threads})
                if note:
                    self._note(note)
        except BaseException:
            self.abort()
            raise

    # --- the work -----------------------------------------------------------------------------------------------

    def missing_segments(self, digest_of: DigestFn | None = None) -> list[Segment]:
        """The segments still to render, in order.

        When resuming, a recorded segment is reused only if its file is there with its recorded size, frame
        count and content hash, and ``digest_of(segment)`` (the :func:`latents_digest` of its latents; called
        only for recorded segments) matches the recorded one. Each refusal is a note.
        """
        if self._missing is not None:
            return list(self._missing)
        missing: list[Segment] = []
        for seg in self.segments:
            if self.resume and self.manifest is not None and seg.key in self.manifest.segments:
                found, why = self.manifest.verify(seg.start, seg.stop, digest_of(seg) if digest_of else None)
                if why:
                    self._note(why)
                if found is not None:
                    self.reused.append(seg)
                    continue
            missing.append(seg)
        self._missing = missing
        return list(missing)

    def segment_sink(self, seg: Segment, tag: str | None = None) -> Sink:
        """The sink that encodes ``seg`` (a whole gif/png output: the sink of the output itself)."""
        if seg.whole:
            return ImageFolderSink(self.path) if self.codec in FOLDER_CODECS else FfmpegSink(self.path, self.codec, self.crf)
        return segment_sink(seg, self.parts, tag)

    def partial_file(self, seg: Segment, tag: str | None = None) -> Path:
        """Where :meth:`segment_sink` (with the same ``tag``) writes ``seg`` before it is committed."""
        return partial_file(seg, self.parts, tag)

    def commit(self, seg: Segment, digest: str, file: str | Path | None = None, sha256: str | None = None) -> None:
        """Make a finished segment part of the video: move its file into place and record it in the manifest with
        its frame count and content hash (thread-safe; encoder threads call it).

        Args:
            seg: The segment.
            digest: :func:`latents_digest` of the latents its frames were made from.
            file: The finished encoding (default: where :meth:`segment_sink` wrote it). Another process's file
                may be anywhere; it is moved into the parts folder.
            sha256: The content hash the encoding process reported: a file that differs is refused.

        Raises:
            RenderError: The file is missing or empty, or differs from ``sha256``.
        """
        if seg.whole:
            return  # written to the output by its own sink, which renamed it into place
        assert self.manifest is not None, "commit() before open()"
        src = Path(file) if file is not None else self.partial_file(seg)
        try:
            ok = src.is_file() and src.stat().st_size > 0
        except OSError:
            ok = False
        if not ok:
            raise RenderError(f"segment {seg.start}..{seg.stop - 1}: its encoding {src} is missing or empty")
        dest = self.parts / seg.file
        if src.parent.resolve() == self.parts.resolve():
            os.replace(src, dest)
        else:
            tmp = self.partial_file(seg, "incoming")
            shutil.copyfile(src, tmp)  # then a rename, so a torn copy never carries the final name
            os.replace(tmp, dest)
        try:
            self.manifest.record(seg.start, seg.stop, dest, digest, len(seg), sha256)
        except RenderError:
            dest.unlink(missing_ok=True)
            raise

    def committed(self) -> int:
        """Segments recorded in the manifest (reused ones included)."""
        return len(self.manifest.segments) if self.manifest is not None else 0

    # --- ending -------------------------------------------------------------------------------------------------

    def finish(self) -> None:
        """Join every segment losslessly in order (muxing the audio) into a temporary name, rename it to the
        output, remove the parts folder and release the lock.

        Raises:
            EncoderError: The join failed (nothing is left at the output; the segments stay for ``--resume``).
            RenderError: A segment was never committed, or the audio file is missing.
        """
        if self.segmented:
            assert self.manifest is not None, "finish() before open()"
            absent = [s for s in self.segments if s.key not in self.manifest.segments]
            if absent:
                raise RenderError(f"{self.path}: {len(absent)} segment(s) were never finished (first: frames "
                                  f"{absent[0].start}..{absent[0].stop - 1}); nothing was joined")
            join_segments([self.parts / s.file for s in self.segments], self.path, self.audio, self.parts)
            remove_parts(self.parts)
        self._release()

    def abort(self) -> None:
        """After any failure: delete unfinished encodings; keep committed segments for ``--resume``, but remove a
        parts folder (and the folders this render created) that holds no finished segment; release the lock.
        Safe to call more than once."""
        if self.segmented and self.manifest is not None:
            discard_partials(self.parts)
            if not self.manifest.segments:
                remove_parts(self.parts)  # only a manifest: nothing a resume could use
        self._release()
        if not self.segmented or self.manifest is None or not self.manifest.segments:
            self._claim.remove_created()

    def _release(self) -> None:
        self._claim.release()
