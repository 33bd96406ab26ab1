"""``morphstudio live``: edit the face in a camera stream or a video file, into a window, a recording and/or a
virtual camera."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from morphstudio.errors import DisplayError, EncoderError, MorphError, RenderError
from morphstudio.files import atomic_path
from morphstudio.formats import CODEC_FOR_EXTENSION, CODEC_INFO, DEFAULT_CODEC, VIDEO_CODECS
from morphstudio.live.refine import MAX_STEPS as MAX_REFINE
from morphstudio.sinks.base import Sink, StreamInfo
from morphstudio.sinks.ffmpeg import FfmpegSink, muxer_for, run_ffmpeg
from morphstudio.sinks.segmented import AUDIO_CODEC


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live", help="edit the face in a webcam stream or a video, live",
        description="Align, encode, edit, regenerate and blend back the face of every frame of a camera or a video. "
                    "A file is processed frame by frame (the output has its frame count, frame rate and audio) "
                    "unless --realtime; a camera always runs in real time (the newest frame wins, drops counted).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=None, metavar="N", help="camera index (default 0 without --input)")
    src.add_argument("--input", type=Path, default=None, metavar="VIDEO", help="a video file instead of a camera")
    p.add_argument("--output", "-o", type=Path, default=None, metavar="REC.mp4", help="record the edited stream")
    p.add_argument("--codec", default=None, help="codec of the recording (default h264; ffv1 for lossless .mkv)")
    p.add_argument("--crf", type=int, default=None, help="quality of the recording (lower = better)")
    p.add_argument("--virtual-cam", action="store_true", help="also send the stream to a virtual camera "
                                                              "(needs the optional extra: pip install 'morphstudio[live]')")
    p.add_argument("--no-window", action="store_true", help="no preview window (headless)")
    p.add_argument("--realtime", action="store_true", help="pace a file like a camera: newest frame wins")
    p.add_argument("--model", default="builtin:dcgan-faces64", help="generator (default: the built-in model)")
    p.add_argument("--encoder", default="auto", help="latent encoder: auto (the shipped one for the model) or a path")
    p.add_argument("--scene", type=Path, default=None, metavar="EDITS.yaml",
                   help="a scene whose attribute tracks and deform loops play on the face (its faces name --target)")
    p.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE",
                   help="a direction (a library name such as smile, or a file) and its strength, e.g. smile=1.5 or "
                        "scenes/directions/dcgan-light.npy=1.5; applied with the file's set / add semantics "
                        "(repeatable)")
    p.add_argument("--target", default=None, metavar="FACE",
                   help="morph toward: a --scene face name, seed:N, or a photo / latent file")
    p.add_argument("--morph", type=float, default=0.5, help="how far toward --target (0..1, default 0.5)")
    p.add_argument("--refine", type=int, default=0, metavar="N",
                   help="after the encoder, N projector steps on each face, warm-started from the previous frame's "
                        "result while the same face continues (closer likeness, slower; default 0)")
    p.add_argument("--in-flight", type=int, default=None, metavar="N",
                   help="most frames inside the stages at once (0: no limit; default 2 in real time, for the "
                        "lowest latency, and no limit for a file, which is fastest)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda...")
    p.add_argument("--batch", type=int, default=4, help="most frames the generator takes at once (default 4)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default 1 on a CPU: mediapipe, torch and ffmpeg run side by side, and a "
                        "pre-empted OpenMP thread stalls its whole team)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="show informational logs and mediapipe's own log lines")
    p.set_defaults(func=run)


class RecordingSink(Sink):
    """The ffmpeg sink plus, in file mode, the input's audio muxed in; the file appears under the output name only
    when both steps succeeded (see :class:`morphstudio.sinks.ffmpeg.FfmpegSink`).

    Args:
        path: The recording.
        codec, crf: As for the ffmpeg sink.
        audio_from: A video whose audio stream is copied in (file mode), or None.
    """

    wants_order = True

    def __init__(self, path: Path, codec: str, crf: int | None, audio_from: Path | None) -> None:
        self.path = path
        self.audio_from = audio_from
        self.video_tmp = path.with_name(f".{path.name}.partial-video{path.suffix}")
        self.inner = FfmpegSink(path, codec, crf, temp_path=self.video_tmp)

    def open(self, info: StreamInfo) -> None:
        self.inner.open(info)

    def write(self, first_index: int, frames: np.ndarray) -> None:
        self.inner.write(first_index, frames)

    def close(self) -> None:
        try:
            self.inner.close()
            if self.audio_from is None:
                os.replace(self.video_tmp, self.path)
                return
            with atomic_path(self.path) as tmp:
                def mux(audio_args: list[str]) -> None:
                    run_ffmpeg(["-y", "-i", str(self.video_tmp), "-i", str(self.audio_from), "-map", "0:v:0",
                                "-map", "1:a?", "-c:v", "copy", *audio_args, "-f", muxer_for(self.path),
                                str(tmp)], f"{self.path}: adding the input's audio", tmp)
                try:
                    mux(["-c:a", "copy"])
                except EncoderError:
                    # The input's audio codec does not fit this container (PCM into .mp4, AAC into .webm):
                    # re-encode it with the container's own audio codec, as the segmented writer does.
                    mux(AUDIO_CODEC.get(self.path.suffix.lower(), ["-c:a", "aac"]))
        finally:
            self.video_tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        self.inner.abort()
        self.video_tmp.unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.path)


def run(args: argparse.Namespace) -> int:
    import morphstudio
    from morphstudio.faces.align import crop_params_for
    from morphstudio.faces.encoder import resolve_encoder
    from morphstudio.live.capture import CameraSource, FileSource
    from morphstudio.live.edits import build_edits
    from morphstudio.live.overlay import OverlaySink
    from morphstudio.live.pipeline import LivePipeline
    from morphstudio.sinks.ffmpeg import container_check, crf_check
    from morphstudio.sinks.virtual_camera import VirtualCameraSink, import_pyvirtualcam
    from morphstudio.sinks.window import WindowSink, display_problem

    def say(msg: str) -> None:
        print(msg, file=sys.stderr)

    if not 0.0 <= args.morph <= 1.0:
        raise MorphError(f"--morph {args.morph}: must be between 0 and 1")
    if args.morph != 0.5 and args.target is None:
        raise MorphError("--morph needs --target (the face to morph toward)")
    if not 1 <= args.batch <= 64:
        raise MorphError(f"--batch {args.batch}: must be between 1 and 64")
    if not 0 <= args.refine <= MAX_REFINE:
        raise MorphError(f"--refine {args.refine}: must be between 0 and {MAX_REFINE} steps per frame")
    if args.in_flight is not None and args.in_flight < 0:
        raise MorphError(f"--in-flight {args.in_flight}: must be 0 (no limit) or more frames")
    if args.threads is not None and not 1 <= args.threads <= 256:
        raise MorphError(f"--threads {args.threads}: must be between 1 and 256")
    if args.virtual_cam:
        import_pyvirtualcam()  # fail now, with the install hint, before a camera or model is opened
    # Cheap checks of the output before any slow work (model, mediapipe, camera).
    codec = None
    if args.output is not None:
        codec = args.codec or CODEC_FOR_EXTENSION.get(args.output.suffix.lower(), DEFAULT_CODEC)
        if codec not in VIDEO_CODECS:
            raise RenderError(f"--codec {codec}: live mode records video: use one of {', '.join(VIDEO_CODECS)}")
        crf_check(codec, args.crf)
        if args.input is not None and args.output.resolve() == args.input.resolve():
            raise RenderError(f"--output {args.output}: is the input video; choose another name")
        if args.output.is_dir():
            raise RenderError(f"--output {args.output}: is a folder; give a video file name")
    window = not args.no_window
    if window and display_problem() is not None:
        if args.output is None and not args.virtual_cam:
            raise DisplayError(f"{display_problem()}", hint="pass --no-window with --output REC.mp4 or --virtual-cam")
        say(f"note: no window ({display_problem()}); continuing without it")
        window = False
    if not window and args.output is None and not args.virtual_cam:
        raise MorphError("nothing to show or record: give --output REC.mp4, --virtual-cam, or drop --no-window")

    if args.input is not None:
        source: Any = FileSource(args.input, realtime=args.realtime)
        realtime = args.realtime
    else:
        source = CameraSource(0 if args.camera is None else args.camera)
        realtime = True
    if args.output is not None:
        assert codec is not None
        container_check(codec, args.output, source.width, source.height)

    G = morphstudio.load_generator(args.model, device=args.device)
    enc = resolve_encoder(args.encoder, G)
    if enc is None:
        raise MorphError(f"--encoder {args.encoder}: no encoder for {args.model}; live mode needs one",
                         hint="train one with `morphstudio encoder train --model MODEL -o encoders/`, then pass "
                              "--encoder encoders/NAME")
    edits = build_edits(G, scene=None if args.scene is None else str(args.scene), attrs=args.attr,
                        target=args.target, morph=args.morph, model=args.model)

    sinks: list[Any] = []
    if args.output is not None:
        # A gif holds no audio; anything else gets the clip's.
        audio = args.input if (args.input is not None and not realtime and source.info.has_audio
                               and not CODEC_INFO[codec].still) else None
        sinks.append(RecordingSink(args.output, codec, args.crf, audio))
    if args.virtual_cam:
        sinks.append(VirtualCameraSink(pace=False))
    pipe_holder: dict[str, Any] = {}
    if window:
        def latest_latency() -> float | None:
            lat = pipe_holder["pipe"].stats.latencies
            return lat[-1] if lat else None

        # Strengths from the trackbars and keys (headless runs keep the command line's fixed strengths).
        controls = edits.make_controls()
        sinks.append(OverlaySink(WindowSink(title="morphstudio live", pace=False, controls=controls),
                                 latest_latency, controls=controls))
    refiner = None
    if args.refine:
        from morphstudio.live.refine import WarmRefiner

        refiner = WarmRefiner(G, args.refine, warn=lambda m: say(f"note: --refine: {m}"))
    pipe = LivePipeline(source, G, enc, edits, sinks, params=crop_params_for(G), realtime=realtime,
                        batch=args.batch, say=say, refiner=refiner, in_flight=args.in_flight)
    pipe_holder["pipe"] = pipe
    if not args.quiet:
        mode = "real time" if realtime else "file mode (every frame)"
        refine = f"; {args.refine} projector step(s) per face" if args.refine else ""
        say(f"live: {source.describe()} -> {', '.join(s.describe() for s in sinks)}; {mode}{refine}; "
            f"{edits.describe()}")
        if edits.controls is not None and len(edits.controls):
            say("live: in the window, keys 1-9 pick a strength, + / - change it by 0.1, 0 resets it (or drag its "
                "trackbar); q or Esc stops")
    from morphstudio.rendering.plan import blas_threads, torch_threads

    # On a CPU the stages run side by side on their own threads: torch gets one thread (``--threads`` overrides)
    # and numpy's BLAS one, so neither spreads over the cores the other stages are using.
    with torch_threads(args.threads or (1 if G.device.type == "cpu" else None)), blas_threads(1):
        stats = pipe.run()
    if not args.quiet:
        say(f"live: {stats.summary()}")
    if stats.stopped_by not in ("end of input", "Ctrl-C", "the window was closed"):
        kept = f"; the recording so far was finalised: {args.output}" if args.output is not None else ""
        say(f"error: {stats.stopped_by}{kept}")
        return 1
    if stats.stopped_by == "Ctrl-C":
        say("interrupted" + (f"; the recording so far was finalised: {args.output}" if args.output else ""))
        return 130
    return 0
