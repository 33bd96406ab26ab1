"""Where rendered frames go: segmented ffmpeg video (:class:`SegmentedVideoWriter`), an image folder, a preview
window, nowhere (benchmarks), or several.

Every sink takes ``uint8 [N, H, W, 3]`` RGB batches with the index of their first frame; see :mod:`.base`.
"""

from morphstudio.sinks.base import Sink, StreamInfo
from morphstudio.sinks.ffmpeg import FfmpegSink, codec_args, container_check
from morphstudio.sinks.image_folder import ImageFolderSink
from morphstudio.sinks.null import NullSink
from morphstudio.sinks.segmented import Segment, SegmentedVideoWriter
from morphstudio.sinks.tee import TeeSink
from morphstudio.sinks.window import WindowSink

__all__ = [
    "FfmpegSink",
    "ImageFolderSink",
    "NullSink",
    "Segment",
    "SegmentedVideoWriter",
    "Sink",
    "StreamInfo",
    "TeeSink",
    "WindowSink",
    "codec_args",
    "container_check",
]
