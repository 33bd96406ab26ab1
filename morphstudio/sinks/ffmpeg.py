"""Video through ffmpeg: raw RGB frames on stdin, one encoder process per output file.

ffmpeg is imageio-ffmpeg's bundled binary (``MORPHSTUDIO_FFMPEG`` overrides it, e.g. for tests). Its stderr is
drained on a thread so a chatty encoder can never block on a full pipe; the last lines are kept for the error
message. Output is written under a temporary name and renamed into place only after ffmpeg exited with status 0.
"""

from __future__ import annotations

import collections
import os
import subprocess
import threading
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from morphstudio.errors import EncoderError, RenderError
from morphstudio.formats import CODEC_INFO, CODECS, FOLDER_CODECS, MUXERS, crf_problem, size_problem
from morphstudio.sinks.base import Sink, StreamInfo

# The sink's tables, built from morphstudio.formats (the one place codecs are described).
# Which file extensions each ffmpeg codec can be written into (first = suggested).
CONTAINERS: dict[str, tuple[str, ...]] = {c: CODEC_INFO[c].extensions for c in CODECS if CODEC_INFO[c].extensions}
DEFAULT_CRF: dict[str, int] = {c: i.crf_default for c, i in CODEC_INFO.items() if i.crf_default is not None}
# The quality range each encoder accepts.
MAX_CRF: dict[str, int] = {c: i.crf_max for c, i in CODEC_INFO.items() if i.crf_max is not None}


STDERR_LINES = 40


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: ``$MORPHSTUDIO_FFMPEG`` if set, else imageio-ffmpeg's bundled one."""
    override = os.environ.get("MORPHSTUDIO_FFMPEG")
    if override:
        return override
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def fps_arg(fps: float) -> str:
    """ffmpeg rate as an exact fraction (29.97 -> ``30000/1001``), so timestamps do not drift."""
    frac = Fraction(fps).limit_denominator(1001)
    return f"{frac.numerator}/{frac.denominator}"


def container_check(codec: str, path: str | Path, width: int, height: int) -> None:
    """Refuse codec/extension/size combinations ffmpeg would reject, before any work is done.

    Raises:
        RenderError: Unknown codec, a container that cannot hold the codec, or odd sizes for 4:2:0 codecs.
    """
    if codec not in CODECS:
        raise RenderError(f"output.codec: unknown codec {codec!r} (use one of {', '.join(CODECS)})")
    if codec in FOLDER_CODECS:
        return
    ext = Path(path).suffix.lower()
    allowed = CONTAINERS[codec]
    if ext not in allowed:
        raise RenderError(
            f"output.path: {codec} video cannot be written to a {ext or 'extension-less'} file ({path}); "
            f"use {' or '.join(allowed)}"
        )
    problem = size_problem(width, height, codec)
    if problem:
        raise RenderError(f"output.size: {problem}")


def crf_check(codec: str, crf: int | None) -> None:
    """Refuse a quality the codec's encoder would reject (or silently clamp).

    Raises:
        RenderError: ``crf`` outside the encoder's range.
    """
    problem = crf_problem(codec, crf)
    if problem:
        raise RenderError(f"output.crf: {problem}")


def codec_args(codec: str, crf: int | None = None, threads: int | None = None) -> list[str]:
    """Encoder arguments for ``codec`` (everything after the input, before the output name).

    Args:
        codec: One of :data:`CODECS` except ``png``.
        crf: Quality (lower = better); ``None`` = the codec's default. Ignored by lossless/intra codecs.
        threads: Encoder threads (``None`` = ffmpeg decides); set when several encoders share the CPU.
    """
    info = CODEC_INFO.get(codec)
    if info is None or info.encoder is None:
        raise RenderError(f"output.codec: {codec!r} is not a video codec ffmpeg can write here")
    t = ["-threads", str(threads)] if threads else []
    # Encoder and pixel format from morphstudio.formats; the tuning below is this sink's own.
    enc, pix = ["-c:v", info.encoder], ["-pix_fmt", str(info.pix_fmt)]
    q = str(info.crf_default if crf is None else crf)
    if codec == "h264":
        return [*enc, *pix, "-crf", q, "-preset", "medium", *t]
    if codec == "h265":
        return [*enc, *pix, "-crf", q, "-preset", "medium", "-x265-params", "log-level=error", "-tag:v", "hvc1", *t]
    if codec == "vp9":
        return [*enc, *pix, "-crf", q, "-b:v", "0", "-row-mt", "1", "-deadline", "good", "-cpu-used", "4", *t]
    if codec == "prores":
        return [*enc, "-profile:v", "3", *pix, *t]
    if codec == "ffv1":
        return [*enc, "-level", "3", "-g", "1", *pix, *t]
    if codec == "gif":
        # One pass: palettegen sees every frame (ffmpeg buffers them), then paletteuse maps them. ffmpeg picks
        # its gif encoder for the gif muxer, so no -c:v.
        return ["-filter_complex", "split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse", "-loop", "0"]
    raise RenderError(f"output.codec: {codec!r} is not a video codec ffmpeg can write here")


class StderrTail:
    """Reads a pipe to the end on a daemon thread, keeping the last ``lines`` lines."""

    def __init__(self, pipe, lines: int = STDERR_LINES) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True, name="ffmpeg-stderr")
        self._thread.start()

    def _drain(self, pipe) -> None:
        for raw in iter(pipe.readline, b""):
            self._lines.append(raw.decode("utf-8", "replace").rstrip())
        pipe.close()

    def text(self, timeout: float = 5.0) -> str:
        self._thread.join(timeout)
        return "\n".join(self._lines)


def run_ffmpeg(args: Sequence[str], what: str, expect: Path | None = None) -> None:
    """Run a non-streaming ffmpeg command (concat, mux) and raise :class:`EncoderError` if it fails, or if it
    exits 0 without writing the file ``expect``."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    except OSError as exc:
        raise EncoderError(f"{what}: cannot start ffmpeg ({cmd[0]}): {exc}") from None
    if proc.returncode != 0:
        raise EncoderError(f"{what}: ffmpeg failed", returncode=proc.returncode,
                           stderr_tail="\n".join(proc.stderr.decode("utf-8", "replace").splitlines()[-STDERR_LINES:]))
    if expect is not None and not _written(expect):
        raise EncoderError(f"{what}: ffmpeg exited 0 but wrote nothing to {expect}", returncode=0,
                           stderr_tail="\n".join(proc.stderr.decode("utf-8", "replace").splitlines()[-STDERR_LINES:]))


def _written(path: Path) -> bool:
    """The file is there and not empty (an ffmpeg that exits 0 after writing nothing is a failure)."""
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


class FfmpegSink(Sink):
    """Encode frames to a video file with one ffmpeg process.

    Args:
        path: Final output file; ffmpeg writes ``<dir>/.<name>.partial<ext>`` and it is renamed on success.
        codec: One of :data:`CODECS` (not ``png``).
        crf: Quality, ``None`` = codec default.
        threads: Encoder threads, ``None`` = ffmpeg's choice.
        extra_args: More output arguments (e.g. ``-movflags +faststart``).
        temp_path: Write here instead of the default temporary name (the caller renames or keeps it).
    """

    def __init__(
        self,
        path: str | Path,
        codec: str = "h264",
        crf: int | None = None,
        *,
        threads: int | None = None,
        extra_args: Sequence[str] = (),
        temp_path: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.codec = codec
        self.crf = crf
        self.threads = threads
        self.extra_args = list(extra_args)
        self.temp_path = Path(temp_path) if temp_path is not None else partial_name(self.path)
        self.rename_on_close = temp_path is None
        self._proc: subprocess.Popen | None = None
        self._stderr: StderrTail | None = None

    def open(self, info: StreamInfo) -> None:
        container_check(self.codec, self.path, info.width, info.height)
        self.temp_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{info.width}x{info.height}",
            "-framerate", fps_arg(info.fps), "-i", "pipe:0",
            *codec_args(self.codec, self.crf, self.threads), *self.extra_args,
            "-f", muxer_for(self.path), str(self.temp_path),
        ]
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE)
        except OSError as exc:
            raise EncoderError(f"{self.path}: cannot start ffmpeg ({cmd[0]}): {exc}") from None
        self._stderr = StderrTail(self._proc.stderr)

    def write(self, first_index: int, frames: np.ndarray) -> None:
        assert self._proc is not None and self._proc.stdin is not None, "write() before open()"
        frames = np.ascontiguousarray(frames)
        try:
            self._proc.stdin.write(frames.data)
        except (BrokenPipeError, ValueError, OSError):
            # ffmpeg died (bad arguments, disk full...): its stderr says why.
            self._fail("ffmpeg stopped accepting frames")

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        rc = proc.wait()
        if rc != 0:
            self._fail("ffmpeg failed", rc)
        if not _written(self.temp_path):
            self._fail(f"ffmpeg exited 0 but wrote nothing to {self.temp_path}", 0)
        self._proc = None
        if self.rename_on_close:
            os.replace(self.temp_path, self.path)

    def abort(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            proc.wait()
        self.temp_path.unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.path)

    def _fail(self, what: str, rc: int | None = None) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                rc = proc.wait(timeout=10) if rc is None else rc
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
        tail = self._stderr.text() if self._stderr is not None else ""
        self.temp_path.unlink(missing_ok=True)
        raise EncoderError(f"{self.path}: {what}", returncode=rc, stderr_tail=tail)


def muxer_for(path: str | Path) -> str:
    """ffmpeg ``-f`` name for a path's extension (explicit, because temporary names hide the extension)."""
    ext = Path(path).suffix.lower()
    if ext not in MUXERS:
        raise RenderError(f"output.path: unknown video file type {ext or '(none)'} for {path}")
    return MUXERS[ext]


def partial_name(path: Path) -> Path:
    """Temporary name beside ``path``: hidden, clearly unfinished, same folder (so the rename is atomic)."""
    return path.with_name(f".{path.name}.partial")
