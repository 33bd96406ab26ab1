"""One vocabulary (issue 8, item 2): the scene schema, the command line and the sinks all name what
``morphstudio/formats.py`` names, and nothing else in the package types those lists or limits again.

Expected values come from outside the code under test: the README's scene reference, the committed JSON schema,
literal sizes, and the real ffmpeg encoders.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest

from morphstudio import formats
from morphstudio.cli import main
from morphstudio.errors import MorphError, RenderError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "morphstudio"
SCHEMA_FILE = ROOT / "scenes" / "scene.schema.json"


# --- the vocabulary itself, pinned against what the README promises users -------------------------------------


def _readme_row(feature: str) -> str:
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(f"| {feature} |"))
    return row


def _readme_choices(feature: str, key: str) -> list[str]:
    """``key: a/b/c`` or ``key: a / b / c`` from the README's scene-reference row for ``feature``."""
    m = re.search(rf"\b{key}: ([\w-]+(?:\s*/\s*[\w-]+)+)", _readme_row(feature))
    assert m, f"README's {feature} row no longer lists {key}"
    return [s.strip() for s in m.group(1).split("/")]


def test_the_readme_lists_exactly_the_vocabulary() -> None:
    assert _readme_choices("output", "codec") == list(formats.CODECS)
    assert _readme_choices("output", "fit") == list(formats.FIT_MODES)
    assert sorted(_readme_choices("noise", "mode")) == sorted(formats.NOISE_MODES)


def test_vocabulary_literals() -> None:
    # What scenes in the wild say: a renamed or dropped name breaks them, so pin the names, not only their count.
    assert formats.CODECS == ("h264", "h265", "vp9", "prores", "gif", "png", "ffv1")
    assert formats.DEFAULT_CODEC == "h264" and formats.FIT_MODES[0] == "fill" and formats.NOISE_MODES[0] == "const"
    assert formats.STILL_CODECS == ("gif", "png") and formats.FOLDER_CODECS == ("png",)
    assert set(formats.LOSSLESS_CODECS) == {"png", "ffv1"}
    assert formats.PRECISIONS == ("fp32", "fp16", "bf16")
    assert formats.INTERPOLATIONS == ("cubic", "pchip", "akima", "linear", "slerp")
    assert formats.EASINGS == ("linear", "in", "out", "in-out")
    assert set(formats.SYNTHESIS_NOISE_MODES) < set(formats.NOISE_MODES)
    assert (formats.MIN_SIZE, formats.MAX_SIZE, formats.MAX_FPS, formats.CRF_MAX) == (8, 16384, 240, 63)
    assert formats.MAX_FRAME == 86400 * 240


def test_codec_table_is_consistent() -> None:
    for codec in formats.CODEC_TABLE:
        assert codec.folder == (not codec.extensions), codec.name  # a folder has no extension, a file has one
        assert all(ext in formats.MUXERS for ext in codec.extensions), codec.name
        assert (codec.crf_default is None) == (codec.crf_max is None), codec.name
        if codec.crf_default is not None:
            assert 0 <= codec.crf_default <= codec.crf_max, codec.name
    for ext, codec in formats.CODEC_FOR_EXTENSION.items():
        assert ext in formats.CODEC_INFO[codec].extensions
    assert all(not formats.CODEC_INFO[c].still for c in formats.VIDEO_FALLBACK)


# --- the schema's literals --------------------------------------------------------------------------------------


def test_schema_literals_are_the_vocabulary() -> None:
    from morphstudio.scene.schema import Keyframe, NoiseSpec, OutputSpec, SceneSpec

    def args(model: type, field: str) -> tuple[str, ...]:
        ann = model.model_fields[field].annotation  # Literal[...] or Literal[...] | None
        lit = next((a for a in (ann, *typing.get_args(ann)) if typing.get_origin(a) is typing.Literal), None)
        assert lit is not None, f"{model.__name__}.{field} is not a Literal"
        return typing.get_args(lit)

    assert args(OutputSpec, "codec") == formats.CODECS
    assert args(OutputSpec, "fit") == formats.FIT_MODES
    assert args(NoiseSpec, "mode") == formats.NOISE_MODES
    assert args(Keyframe, "interp") == formats.INTERPOLATIONS
    assert args(SceneSpec, "ease") == formats.EASINGS
    assert OutputSpec().codec == formats.DEFAULT_CODEC


def test_committed_json_schema_enums_are_the_vocabulary() -> None:
    """What editors autocomplete (the committed file; test_scene_examples checks it is current)."""
    defs = json.loads(SCHEMA_FILE.read_text())["$defs"]
    out, noise = defs["OutputSpec"]["properties"], defs["NoiseSpec"]["properties"]
    assert tuple(out["codec"]["enum"]) == formats.CODECS
    assert tuple(out["fit"]["enum"]) == formats.FIT_MODES
    assert tuple(noise["mode"]["enum"]) == formats.NOISE_MODES
    interp = defs["Keyframe"]["properties"]["interp"]["anyOf"][0]
    assert tuple(interp["enum"]) == formats.INTERPOLATIONS
    square, pair = out["size"]["anyOf"][:2]
    for bounds in (square, pair["items"]):
        assert (bounds["minimum"], bounds["maximum"], bounds["multipleOf"]) == (8, 16384, 2)
    assert out["crf"]["anyOf"][0]["maximum"] == formats.CRF_MAX
    assert out["fps"]["maximum"] == formats.MAX_FPS
    # Every codec is explained in the field's description (a new codec needs its words there too).
    assert all(c in out["codec"]["description"] for c in formats.CODECS)


# --- the command line ---------------------------------------------------------------------------------------


def _error(capsys: pytest.CaptureFixture, *argv: str) -> str:
    rc = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


def test_cli_choices_are_the_vocabulary(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    scene = str(tmp_path / "never-read.yaml")  # the flag is refused before the scene is opened
    err = _error(capsys, "render", scene, "--codec", "divx")
    listed = re.search(r"expected one of (.*), got 'divx'", err).group(1).split(", ")
    assert tuple(listed) == formats.CODECS
    err = _error(capsys, "render", scene, "--precision", "fp8")
    listed = re.search(r"expected one of (.*), got 'fp8'", err).group(1).split(", ")
    assert tuple(listed) == formats.PRECISIONS
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert f"one of {', '.join(formats.CODECS)}" in helptext
    assert ", ".join(formats.PRECISIONS) in helptext


def test_cli_limits_are_the_vocabulary(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    scene = str(tmp_path / "never-read.yaml")
    assert "--fps: must be more than 0 and at most 240, got 241" in _error(capsys, "render", scene, "--fps", "241")
    assert "--crf: must be at most 63, got 64" in _error(capsys, "render", scene, "--crf", "64")


# --- the sinks' tables ----------------------------------------------------------------------------------------


def test_sink_tables_are_the_vocabulary() -> None:
    from morphstudio.sinks import ffmpeg

    assert ffmpeg.CODECS == formats.CODECS
    assert ffmpeg.CONTAINERS == {"h264": (".mp4", ".mkv", ".mov"), "h265": (".mp4", ".mkv", ".mov"),
                                 "vp9": (".webm", ".mkv", ".mp4"), "prores": (".mov", ".mkv"),
                                 "gif": (".gif",), "ffv1": (".mkv", ".avi", ".nut")}
    assert ffmpeg.DEFAULT_CRF == {"h264": 18, "h265": 22, "vp9": 30}
    assert ffmpeg.MAX_CRF == {"h264": 51, "h265": 51, "vp9": 63}
    assert set(ffmpeg.MUXERS) == {e for c in formats.CODEC_TABLE for e in c.extensions}
    for name in formats.VIDEO_CODECS:
        info = formats.CODEC_INFO[name]
        args = ffmpeg.codec_args(name)
        if name != "gif":  # ffmpeg picks the gif encoder for the gif muxer
            assert args[args.index("-c:v") + 1] == info.encoder
            assert args[args.index("-pix_fmt") + 1] == info.pix_fmt
        if info.crf_default is not None:
            assert args[args.index("-crf") + 1] == str(info.crf_default)
            assert ffmpeg.codec_args(name, crf=7)[args.index("-crf") + 1] == "7"
    for name in formats.FOLDER_CODECS:
        with pytest.raises(RenderError, match="not a video codec"):
            ffmpeg.codec_args(name)


def test_output_name_inference_uses_the_vocabulary() -> None:
    from morphstudio.rendering.outputs import resolve_codec

    assert resolve_codec("/x/a.webm", "h264") == ("vp9", "note: output.path: a.webm is a .webm file, so the "
                                                          "output is vp9 (not codec h264)")
    assert resolve_codec("/x/a.gif", "h265")[0] == "gif"
    assert resolve_codec("/x/a.mkv", "png")[0] == "h264"  # a still codec asked for a video file
    assert resolve_codec("/x/a.avi", "gif")[0] == "ffv1"  # the first fallback whose containers take .avi
    assert resolve_codec("/x/a.avi", "h264") == ("h264", None)  # a generic container does not pick a codec
    with pytest.raises(RenderError, match=r"name a file such as frames\.webm"):
        resolve_codec("/x/frames", "vp9")


def test_precisions_resolve_to_their_dtypes() -> None:
    import torch

    from morphstudio.devices import resolve_dtype

    cpu = torch.device("cpu")
    expected = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "BF16": torch.bfloat16,
                "bfloat16": torch.bfloat16}
    for spelling, dtype in expected.items():
        assert resolve_dtype(spelling, cpu) == dtype
    assert {formats.PRECISION_ALIASES[a] for a in ("half", "float16", "fp16")} == {"fp16"}
    with pytest.raises(MorphError, match="unknown precision 'fp8': use fp32, fp16 or bf16"):
        resolve_dtype("fp8", cpu)


# --- one size rule, wherever a size comes in ------------------------------------------------------------------

SIZES = [
    ((8, 8), True), ((16384, 8), True), ((640, 360), True), ((16384, 16384), True),
    ((6, 64), False), ((7, 8), False), ((16386, 8), False), ((8, 16386), False),
    ((64, 63), False), ((641, 360), False), ((0, 0), False),
]


@pytest.mark.parametrize(("size", "ok"), SIZES)
def test_one_size_rule_for_scene_cli_and_renderer(size: tuple[int, int], ok: bool) -> None:
    """The scene's output.size, --size and the renderer's output_size accept and refuse the same sizes, with the
    same words."""
    import morphstudio
    from morphstudio.commands.scene_args import parse_size
    from morphstudio.rendering.batcher import output_size

    w, h = size
    scene = {"output": {"duration": 1, "size": [w, h]}, "faces": {"a": {"seed": 1}},
             "timeline": [{"at": 0, "face": "a"}]}
    outcomes = []
    for call in (lambda: morphstudio.load_scene(scene).spec.output.size, lambda: parse_size(f"{w}x{h}"),
                 lambda: output_size((w, h), 64)):
        try:
            outcomes.append(tuple(call()))
        except MorphError as exc:
            outcomes.append(re.sub(r"^.*?(output\.size|--size): ", "", str(exc)))
    if ok:
        assert outcomes == [size] * 3
    else:
        assert len(set(outcomes)) == 1, outcomes
        assert outcomes[0].startswith(f"{w}x{h} is ")


def test_encoder_limits_come_with_the_codec() -> None:
    from morphstudio.sinks.ffmpeg import container_check

    container_check("h264", "a.mp4", 8, 8)
    with pytest.raises(RenderError, match=r"output\.size: 8x8 is too small for h265 .*at least 16 per side"):
        container_check("h265", "a.mp4", 8, 8)
    container_check("h265", "a.mp4", 16, 16)
    with pytest.raises(RenderError, match=r"output\.size: 16384x16384 is larger than ffmpeg can encode"):
        container_check("ffv1", "a.mkv", 16384, 16384)
    container_check("png", "frames", 16384, 16384)  # an image folder is not limited by ffmpeg's picture size


def _encodes(codec: str, size: int, folder: Path) -> bool:
    from morphstudio.sinks.ffmpeg import codec_args, ffmpeg_exe, muxer_for

    out = folder / f"t{size}{formats.CODEC_INFO[codec].default_extension}"
    frames = np.zeros((2, size, size, 3), np.uint8)
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{size}x{size}", "-framerate", "4", "-i", "pipe:0", *codec_args(codec), "-f", muxer_for(out),
           str(out)]
    return subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize("codec", formats.VIDEO_CODECS)
def test_each_encoder_takes_its_smallest_size(codec: str, tmp_path: Path) -> None:
    """The table's floor is the real encoder's: the smallest size the rule lets through encodes, and where a codec
    raises the floor (libx265), the size just under it really fails."""
    floor = max(formats.MIN_SIZE, formats.CODEC_INFO[codec].min_side)
    assert _encodes(codec, floor, tmp_path)
    if floor > formats.MIN_SIZE:
        assert not _encodes(codec, floor - 2, tmp_path)


# --- exactly one definition -------------------------------------------------------------------------------------

VOCABULARIES = {
    "CODECS": formats.CODECS, "STILL_CODECS": formats.STILL_CODECS, "FIT_MODES": formats.FIT_MODES,
    "NOISE_MODES": formats.NOISE_MODES, "SYNTHESIS_NOISE_MODES": formats.SYNTHESIS_NOISE_MODES,
    "PRECISIONS": formats.PRECISIONS, "INTERPOLATIONS": formats.INTERPOLATIONS, "EASINGS": formats.EASINGS,
    "yuv420p codecs": ("h264", "h265", "vp9"), "video fallback": formats.VIDEO_FALLBACK,
    "extensions": tuple(formats.MUXERS),
}
LIMITS = {formats.MAX_SIZE: "MAX_SIZE", formats.MAX_SECONDS: "MAX_SECONDS", formats.MAX_FRAME: "MAX_FRAME"}


def _retyped(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)) and items:
            names = {k.value for k in items if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            for vocab_name, vocab in VOCABULARIES.items():
                if len(names) >= 2 and names == set(vocab):
                    found.append((node.lineno, vocab_name))
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in LIMITS:
            found.append((node.lineno, LIMITS[node.value]))
    return found


def test_no_vocabulary_is_typed_twice() -> None:
    """Outside formats.py no module spells out a whole vocabulary list (or a size/time limit) again."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "formats.py" and path.parent == PACKAGE:
            continue
        for line, what in _retyped(ast.parse(path.read_text(), str(path))):
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not offenders, "vocabulary typed outside morphstudio/formats.py:\n" + "\n".join(offenders)


def test_the_scan_finds_a_retyped_list() -> None:
    """The scan above is not vacuous: the lists it replaced are found when they come back."""
    old = 'CODEC_CHOICES = ("h264", "h265", "vp9", "prores", "gif", "png", "ffv1")\n' \
          'if codec in ("gif", "png"): pass\nMAX = 16384\n_EASE = {"linear": 0, "in": 1, "out": 2, "in-out": 3}\n'
    assert sorted(what for _, what in _retyped(ast.parse(old))) == ["CODECS", "EASINGS", "MAX_SIZE",
                                                                      "STILL_CODECS"]


def test_formats_imports_no_torch() -> None:
    code = "import sys, morphstudio.formats; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert res.stdout.strip() == "False"
