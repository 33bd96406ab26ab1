"""One vocabulary: every codec, container, mode and limit a scene, the command line or a sink can name.

The scene schema builds its ``Literal`` types from these tuples, the command line its choices and limits, the
sinks their codec and muxer tables, the output rules their extension -> codec inference and the device code its
precisions. A name or a number typed anywhere else is a second definition that will drift (it did: the codec list
existed four times and the output size had three different rules), so add a codec or a mode here and nowhere else.

Torch-free and free of side effects: ``scene/`` and ``timeline/`` import it.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- codecs and containers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """What morphstudio knows about one output codec.

    Attributes:
        name: The name a scene (``output.codec``) and ``--codec`` use.
        encoder: The ffmpeg encoder (``-c:v``) the video sink runs; ``None`` when ffmpeg does not write it (png is
            an image folder written by :mod:`morphstudio.sinks.image_folder`).
        pix_fmt: The pixel format it is encoded in (``None`` = the encoder's own; gif maps to a palette).
        extensions: File extensions the codec can be written into, first = the one suggested; empty for a folder.
        still: A sequence of still images rather than a video stream: it holds no audio, is written in one piece
            (no segments, no resume), and a video extension (``.mp4``) asked of it picks a video codec instead.
        folder: Written as a folder of image files, not one file.
        lossless: Decodes back to exactly the frames that were rendered (tests compare pixels through it).
        crf_default: Quality used when the scene gives none; ``None`` = the codec has no quality setting.
        crf_max: Highest quality value the encoder accepts (0 is the best); ``None`` = no quality setting.
        min_side: Smallest width or height the encoder accepts (libx265 refuses anything under 16 pixels).
    """

    name: str
    encoder: str | None
    pix_fmt: str | None
    extensions: tuple[str, ...]
    still: bool = False
    folder: bool = False
    lossless: bool = False
    crf_default: int | None = None
    crf_max: int | None = None
    min_side: int = 8

    @property
    def default_extension(self) -> str | None:
        """The extension suggested for this codec (``None`` for a folder)."""
        return self.extensions[0] if self.extensions else None


# Order matters: it is the order shown in messages, the JSON schema and --codec's help, default first.
# crf ranges are the encoders' own: libx265 refuses crf > 51 and libvpx-vp9 > 63; libx264 would silently clamp
# anything above 51, so 51 is its limit too. The defaults are each encoder's "visually lossless-ish" point.
CODEC_TABLE: tuple[Codec, ...] = (
    Codec("h264", "libx264", "yuv420p", (".mp4", ".mkv", ".mov"), crf_default=18, crf_max=51),
    Codec("h265", "libx265", "yuv420p", (".mp4", ".mkv", ".mov"), crf_default=22, crf_max=51, min_side=16),
    Codec("vp9", "libvpx-vp9", "yuv420p", (".webm", ".mkv", ".mp4"), crf_default=30, crf_max=63),
    Codec("prores", "prores_ks", "yuv422p10le", (".mov", ".mkv")),
    Codec("gif", "gif", None, (".gif",), still=True),
    Codec("png", None, None, (), still=True, folder=True, lossless=True),
    # bgr0 keeps RGB exact (no YUV round trip), so decoded frames compare bit for bit.
    Codec("ffv1", "ffv1", "bgr0", (".mkv", ".avi", ".nut"), lossless=True),
)

CODEC_INFO: dict[str, Codec] = {c.name: c for c in CODEC_TABLE}
CODECS: tuple[str, ...] = tuple(c.name for c in CODEC_TABLE)
DEFAULT_CODEC = "h264"
STILL_CODECS: tuple[str, ...] = tuple(c.name for c in CODEC_TABLE if c.still)
FOLDER_CODECS: tuple[str, ...] = tuple(c.name for c in CODEC_TABLE if c.folder)
LOSSLESS_CODECS: tuple[str, ...] = tuple(c.name for c in CODEC_TABLE if c.lossless)
VIDEO_CODECS: tuple[str, ...] = tuple(c.name for c in CODEC_TABLE if c.encoder is not None)
"""The codecs ffmpeg writes (everything but the image folder)."""

# File extension -> ffmpeg muxer (``-f``). Explicit because the encoder writes under a temporary name that hides
# the extension, and ffmpeg would otherwise guess the container from that name.
MUXERS: dict[str, str] = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
                          ".nut": "nut", ".gif": "gif"}

# Extensions whose name alone says the codec: the output name wins over the scene's codec (with a note). .avi and
# .nut hold only ffv1 here too, but they are generic containers, so a name like x.avi stays an error for h264
# instead of silently becoming lossless.
CODEC_FOR_EXTENSION: dict[str, str] = {".gif": "gif", ".webm": "vp9"}

# A still codec (gif, png) asked to write a video file becomes the first of these whose extensions take it.
VIDEO_FALLBACK: tuple[str, ...] = ("h264", "vp9", "ffv1", "prores")

# --- frame geometry, noise, precision, curves -----------------------------------------------------------------

FIT_MODES: tuple[str, ...] = ("fill", "fit", "letterbox")
"""Non-square output sizes: fill = cover and centre-crop, fit = stretch, letterbox = black bars."""

SYNTHESIS_NOISE_MODES: tuple[str, ...] = ("const", "random", "none")
"""What a generator's ``synthesis(noise_mode=...)`` takes."""
NOISE_MODES: tuple[str, ...] = (*SYNTHESIS_NOISE_MODES, "fixed", "animated")
"""What a scene's ``noise.mode`` takes: the generator's modes plus seeded maps made by the renderer."""

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16")
"""Compute precisions (``--precision``, ``precision=``), default first."""
PRECISION_DTYPES: dict[str, str] = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
"""Precision -> the name of its ``torch`` dtype (strings, so this module needs no torch)."""
PRECISION_ALIASES: dict[str, str] = {
    **{name: name for name in PRECISIONS},
    **{dtype: name for name, dtype in PRECISION_DTYPES.items()},
    "half": "fp16",
}
"""Every spelling the Python API accepts (``dtype="float16"``, ``"half"``) -> its precision."""

INTERPOLATIONS: tuple[str, ...] = ("cubic", "pchip", "akima", "linear", "slerp")
"""How a curve travels between keys (``interp:``)."""
EASINGS: tuple[str, ...] = ("linear", "in", "out", "in-out")
"""Easing of a segment (``ease:``). The curve code numbers them in this order (0 = linear ... 3 = in-out)."""

# --- limits ---------------------------------------------------------------------------------------------------

MAX_FPS = 240
"""Highest frame rate (scene ``output.fps`` and ``--fps``)."""
MAX_SECONDS = 86400
"""Latest time a key may sit at and the longest scene (a day)."""
MAX_FRAME = MAX_SECONDS * MAX_FPS
"""Latest frame number a key may sit at: the latest time at the highest frame rate, so frames are bounded like
times (an unbounded ``frame: 10**30`` validated, then overflowed in the renderer)."""

CRF_MAX: int = max(c.crf_max for c in CODEC_TABLE if c.crf_max is not None)
"""The widest quality range of any encoder (vp9's 63): what a scene or ``--crf`` may say before the codec is
known; :func:`crf_problem` narrows it per codec."""

# The one output-size rule, used by the scene schema, --size, the renderer and the encoder check alike:
# - every side at least MIN_SIZE: nothing smaller shows a face, and it is the floor the scene format has always had
#   (codecs with a higher floor say so: libx265 needs 16);
# - every side at most MAX_SIZE, and for ffmpeg-written codecs ffmpeg's own area limit below;
# - even width and height for every codec: the default codecs encode 4:2:0 (one chroma sample per 2x2 pixels),
#   where libx264 / libx265 / libvpx refuse odd sizes, and one rule for all codecs means a size that is fine in a
#   scene stays fine when an output name (.gif, .mp4) or --codec switches the codec.
MIN_SIZE = 8
MAX_SIZE = 16384
# ffmpeg refuses any picture whose padded area (width + 128) * (height + 128) reaches INT_MAX / 8
# (av_image_check_size): 16384x16384 passes the per-side limit yet fails in ffmpeg's rawvideo input.
FFMPEG_MAX_AREA = (2**31 - 1) // 8


def size_problem(width: int, height: int, codec: str | None = None) -> str | None:
    """Why ``width x height`` is not an output size, as a phrase for a message, or ``None`` when it is fine.

    Args:
        width: Frame width in pixels.
        height: Frame height in pixels.
        codec: The output codec when known (adds its own floor and ffmpeg's area limit); ``None`` = the rule
            every output shares (a scene's size, ``--size``, a window).
    """
    size = f"{width}x{height}"
    if not (MIN_SIZE <= width <= MAX_SIZE and MIN_SIZE <= height <= MAX_SIZE):
        return f"{size} is out of range ({MIN_SIZE}..{MAX_SIZE} per side)"
    if width % 2 or height % 2:
        return f"{size} is odd: every output needs an even width and height (4:2:0 video encoders refuse odd sizes)"
    info = CODEC_INFO.get(codec) if codec is not None else None
    if info is None:
        return None
    if width < info.min_side or height < info.min_side:
        return f"{size} is too small for {codec} (its encoder needs at least {info.min_side} per side)"
    if info.encoder is not None and (width + 128) * (height + 128) >= FFMPEG_MAX_AREA:
        return (f"{size} is larger than ffmpeg can encode "
                f"((width + 128) x (height + 128) must stay under {FFMPEG_MAX_AREA:,} pixels)")
    return None


def crf_problem(codec: str, crf: int | None) -> str | None:
    """Why ``crf`` is not a quality ``codec``'s encoder takes, or ``None`` (also for codecs without a quality)."""
    info = CODEC_INFO.get(codec)
    if crf is None or info is None or info.crf_max is None:
        return None
    if not 0 <= crf <= info.crf_max:
        return f"{codec} quality must be between 0 and {info.crf_max}, got {crf}"
    return None
