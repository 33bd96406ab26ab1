"""Segmented encoding: a video made of independently encoded pieces, joined losslessly at the end.

Each segment is its own ffmpeg run (so it starts with a key frame), written into the parts folder under a
temporary name and renamed when ffmpeg succeeded. Several segments encode at once, which lets a fast generator
feed more than one libx264. The join is ffmpeg's concat demuxer with ``-c copy`` (no re-encode), plus the audio
track if any, into a temporary file that is renamed to the output only on success.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from morphstudio.errors import RenderError
from morphstudio.rendering.resume import Manifest
from morphstudio.sinks.ffmpeg import FfmpegSink, muxer_for, partial_name, run_ffmpeg

AUDIO_CODEC: dict[str, list[str]] = {
    ".mp4": ["-c:a", "aac", "-b:a", "192k"],
    ".mov": ["-c:a", "aac", "-b:a", "192k"],
    ".mkv": ["-c:a", "aac", "-b:a", "192k"],
    ".webm": ["-c:a", "libopus", "-b:a", "160k"],
    ".avi": ["-c:a", "libmp3lame", "-b:a", "192k"],
    ".nut": ["-c:a", "aac", "-b:a", "192k"],
}


@dataclass
class Segment:
    """One piece of the video.

    Attributes:
        start: First frame index.
        stop: One past the last frame index.
        file: Where its finished encoding lives.
        reused: True when a previous (interrupted) render already encoded it.
    """

    start: int
    stop: int
    file: Path
    reused: bool = False

    def __len__(self) -> int:
        return self.stop - self.start


def segment_file(folder: Path, start: int, stop: int, ext: str) -> Path:
    return folder / f"seg_{start:06d}-{stop:06d}{ext}"


def segment_sink(seg: Segment, codec: str, crf: int | None, threads: int | None) -> FfmpegSink:
    """An ffmpeg sink writing ``seg`` to a temporary name in the parts folder (renamed by :func:`commit`)."""
    return FfmpegSink(seg.file, codec, crf, threads=threads, temp_path=partial_name(seg.file))


def commit(seg: Segment, manifest: Manifest, digest: str) -> None:
    """Move a finished segment into place and record it with its frame count and content hash (runs on the
    encoder's thread)."""
    os.replace(partial_name(seg.file), seg.file)
    manifest.record(seg.start, seg.stop, seg.file, digest, len(seg))


def discard_partials(folder: Path) -> None:
    """Delete unfinished segment files (finished ones stay for ``--resume``)."""
    if folder.is_dir():
        for f in folder.glob(".*.partial"):
            f.unlink(missing_ok=True)


def join_segments(segments: list[Segment], output: Path, audio: str | None, folder: Path) -> None:
    """Concatenate finished segments (stream copy) and mux ``audio`` into ``output``, atomically.

    Raises:
        EncoderError: ffmpeg failed; no output file is left behind.
        RenderError: The audio file is missing.
    """
    listing = folder / "concat.txt"
    # Paths relative to the list file's folder; single quotes escaped the way the concat demuxer expects.
    listing.write_text("ffconcat version 1.0\n" + "".join(
        "file '{}'\n".format(s.file.name.replace("'", "'\\''")) for s in segments))
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
        run_ffmpeg(args, f"{output}: joining {len(segments)} segment(s)", expect=tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, output)


def remove_parts(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
