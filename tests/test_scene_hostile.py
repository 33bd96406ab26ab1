"""Hostile and careless scene inputs: YAML bombs, deep nesting, control characters, huge or odd latent and
direction files, FIFOs, huge frame numbers, walks that would need gigabytes.

Each case builds its hostile file here, runs the CLI, and checks the exit status (2), the one ``error:`` line naming
the file / field / value, that there is no traceback, and that nothing else in the test's folder changed. Cases
that would exhaust memory if their bound regressed run in a subprocess under ``RLIMIT_AS`` and a timeout, and
their peak RSS is checked; cases that would hang (FIFOs) run under an alarm.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import morphstudio
from morphstudio.cli import main
from morphstudio.errors import SceneError
from morphstudio.scene.yamlmap import load_yaml
from morphstudio.timeline.testing import fake_latent_space

ROOT = Path(__file__).resolve().parents[1]
AS_LIMIT = 10 * 2**30  # importing CUDA torch maps ~3 GiB of address space: well above that, far below the machine
PEAK_MARGIN_MIB = 300  # a refused hostile input may peak at most this much above the same command on a good scene
W_DIM = 100  # the built-in DCGAN: num_ws 1, w_dim = z_dim = 100

SEED_ONLY = "  b: {seed: 2}\n"

SCENE = """\
model: builtin:dcgan-faces64
output: {path: out.mp4, duration: 1, fps: 4, size: 64}
faces:
  a: {seed: 1}
  b: {latent: lat.npy}
timeline:
  - {at: 0, face: a}
  - {at: 0.5, face: b}
"""


# --- helpers --------------------------------------------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders and FIFOs), outputs (``out*``, ``.out*``)
    left aside."""
    out: dict[str, bytes | None] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if rel.startswith(("out", ".out")):  # the render's own output and parts folder
            continue
        out[rel] = p.read_bytes() if p.is_file() else None
    return out


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """The test's folder, with a decoy folder of files that no command may touch."""
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "keep.txt").write_text("keep me\n")
    (decoy / "photo.png").write_bytes(b"\x89PNG not really")
    yield tmp_path


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@contextlib.contextmanager
def _alarm(seconds: int, what: str) -> Iterator[None]:
    """Fail with TimeoutError instead of hanging (a blocked open() of a FIFO is interrupted by SIGALRM)."""
    def hung(signum: int, frame: object) -> None:
        raise TimeoutError(f"{what} hung for {seconds} s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_cli(work: Path, capsys: pytest.CaptureFixture, *argv: str, alarm: int = 0) -> tuple[int, str]:
    """``morphstudio ARGV`` in-process from ``work`` (under an alarm when given); returns (exit status, the one
    error line)."""
    before = _snapshot(work)
    cwd = os.getcwd()
    try:
        os.chdir(work)
        with _alarm(alarm, f"morphstudio {' '.join(argv)}") if alarm else contextlib.nullcontext():
            rc = main(list(argv))
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert _snapshot(work) == before, "a file outside the output changed"
    return rc, _one_error_line(err) if rc else err


def run_limited_peak(work: Path, *argv: str, timeout: float = 120) -> tuple[int, str, float]:
    """``morphstudio ARGV`` in a subprocess under RLIMIT_AS, with a timeout; returns (exit status, the one error
    line, peak RSS in MiB). A small helper process runs it, so the helper's RUSAGE_CHILDREN is this command's peak
    alone (pytest's own would include every earlier child)."""
    before = _snapshot(work)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    helper = (
        "import resource, subprocess, sys\n"
        f"lim = {AS_LIMIT}\n"
        "def limit():\n"
        "    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))\n"
        "try:\n"
        f"    p = subprocess.run([sys.executable, '-m', 'morphstudio'] + sys.argv[1:], preexec_fn=limit,"
        f" stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout={timeout})\n"
        "    rc, err = p.returncode, p.stderr\n"
        "except subprocess.TimeoutExpired:\n"
        "    rc, err = 'timeout', ''\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "sys.stdout.write(f'{rc}\\n{peak}\\n' + err)\n"
    )
    out = subprocess.run([sys.executable, "-c", helper, *argv], cwd=work, env=env, capture_output=True, text=True,
                         timeout=timeout + 60).stdout
    rc_text, peak_text, err = out.split("\n", 2)
    assert rc_text != "timeout", f"morphstudio {' '.join(argv)} ran past {timeout} s"
    assert _snapshot(work) == before, "a file outside the output changed"
    rc = int(rc_text)
    return rc, _one_error_line(err) if rc else err, float(peak_text)


@pytest.fixture(scope="module")
def peak_limit(tmp_path_factory: pytest.TempPathFactory) -> float:
    """Peak RSS (MiB) allowed for a hostile case: ``validate`` of a good scene (torch and the model loaded, about
    1 GiB) plus :data:`PEAK_MARGIN_MIB`. Every bound that regressed would add 512 MiB or far more."""
    work = tmp_path_factory.mktemp("good")
    np.save(work / "lat.npy", np.zeros(W_DIM, np.float32))
    (work / "scene.yaml").write_text(SCENE)
    rc, out, peak = run_limited_peak(work, "validate", "scene.yaml")
    assert rc == 0, out
    return peak + PEAK_MARGIN_MIB


def _scene(work: Path, text: str = SCENE, name: str = "scene.yaml") -> str:
    (work / name).write_text(text)
    return name


def _npy_header(shape: tuple[int, ...], descr: str = "<f4", version: tuple[int, int] = (1, 0)) -> bytes:
    buf = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buf, header)
    else:
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue()


# --- YAML -----------------------------------------------------------------------------------------------------


def _laughs() -> str:
    """The classic "billion laughs": 9 levels of 10 aliases, 10**9 strings from a 0.4 kB file."""
    names = "abcdefghi"
    rows = ['  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n']
    rows += [f"  {names[i]}: &{names[i]} [" + ",".join(["*" + names[i - 1]] * 10) + "]\n" for i in range(1, 9)]
    return "model: builtin:dcgan-faces64\nx:\n" + "".join(rows)


def test_billion_laughs_is_refused_while_composing(work: Path, peak_limit: float) -> None:
    name = _scene(work, _laughs())
    assert len((work / name).read_bytes()) < 700
    rc, line, peak = run_limited_peak(work, "validate", name, timeout=60)
    assert rc == 2
    # The message names the top-level key whose expansion passed the limit (x:, line 2).
    assert line == ("error: scene.yaml:2: x: the YAML expands to more than 200000 values (aliases repeat what they "
                    "point to: is this an alias bomb?)")
    assert peak < peak_limit, f"peak RSS {peak:.0f} MiB"


@pytest.mark.parametrize("command", ["validate", "render"])
def test_recursive_alias_in_a_list(work: Path, capsys: pytest.CaptureFixture, command: str) -> None:
    name = _scene(work, "model: builtin:dcgan-faces64\nfaces: &f\n  - *f\n")
    rc, line = run_cli(work, capsys, command, name)
    assert rc == 2
    assert line == "error: scene.yaml:2: faces[0]: a YAML alias refers to a value that contains it (recursive alias)"


def test_recursive_alias_in_a_mapping(work: Path, capsys: pytest.CaptureFixture) -> None:
    name = _scene(work, "model: builtin:dcgan-faces64\noutput: &o {path: x.mp4, more: *o}\n")
    rc, line = run_cli(work, capsys, "validate", name)
    assert rc == 2
    assert line == "error: scene.yaml:2: output.more: a YAML alias refers to a value that contains it " \
                   "(recursive alias)"


@pytest.mark.parametrize("command", ["validate", "render"])
def test_20000_deep_nesting(work: Path, capsys: pytest.CaptureFixture, command: str) -> None:
    name = _scene(work, "model: builtin:dcgan-faces64\nfaces: " + "[" * 20000 + "]" * 20000 + "\n")
    rc, line = run_cli(work, capsys, command, name)
    assert rc == 2
    assert line == "error: scene.yaml:2: the YAML nests deeper than 64 levels"


def test_deep_nesting_in_block_style(work: Path, capsys: pytest.CaptureFixture) -> None:
    text = "model: builtin:dcgan-faces64\nfaces:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(100))
    rc, line = run_cli(work, capsys, "validate", _scene(work, text))
    assert rc == 2
    # The 64th level is opened by the key k62 on line 3 + 62.
    assert line == "error: scene.yaml:65: the YAML nests deeper than 64 levels"


def test_deep_nesting_through_aliases(work: Path, capsys: pytest.CaptureFixture) -> None:
    # Each list is written 30 deep (allowed); chaining them through aliases makes c's value 90 deep.
    a = "&a " + "[" * 30 + "]" * 30
    b = "&b " + "[" * 30 + "*a" + "]" * 30
    c = "[" * 30 + "*b" + "]" * 30
    rc, line = run_cli(work, capsys, "validate", _scene(work, f"model: builtin:dcgan-faces64\na: {a}\nb: {b}\n"
                                                               f"c: {c}\n"))
    assert rc == 2
    assert line == "error: scene.yaml:4: c: the YAML nests deeper than 64 levels (through aliases)"


@pytest.mark.parametrize("command", ["validate", "render"])
def test_nul_byte_in_the_scene(work: Path, capsys: pytest.CaptureFixture, command: str) -> None:
    text = SCENE.replace("  a: {seed: 1}", "  a: {seed: 1\x00}")
    rc, line = run_cli(work, capsys, command, _scene(work, text))
    assert rc == 2
    assert line == "error: scene.yaml:4: control character U+0000 (NUL) at column 14: a scene must be plain text"


def test_escape_character_in_the_scene(work: Path, capsys: pytest.CaptureFixture) -> None:
    text = SCENE.replace("path: out.mp4", "path: \x1b[31mout.mp4")
    rc, line = run_cli(work, capsys, "validate", _scene(work, text))
    assert rc == 2
    assert line == "error: scene.yaml:2: control character U+001B (ESC) at column 16: a scene must be plain text"


def test_exponent_floats_are_numbers() -> None:
    data, _ = load_yaml("a: 1e9\nb: 1E-3\nc: -2.5e+2\nd: 1.0e+3\ne: 1.5\nf: 3\ng: 1e\nh: e9\ni: .5e1\nj: '1e9'\n")
    # Values written out by hand: YAML 1.2 numbers; 1.0e+3, 1.5 and 3 are what they always were.
    assert data == {"a": 1e9, "b": 0.001, "c": -250.0, "d": 1000.0, "e": 1.5, "f": 3, "g": "1e", "h": "e9",
                    "i": 5.0, "j": "1e9"}
    assert isinstance(data["a"], float) and isinstance(data["f"], int)


def test_exponent_float_in_a_scene(work: Path, capsys: pytest.CaptureFixture) -> None:
    good = SCENE.replace("duration: 1,", "duration: 1e1,").replace("  b: {latent: lat.npy}\n", "  b: {seed: 2}\n")
    scene = morphstudio.load_scene(work / _scene(work, good, "good.yaml"))
    assert scene.frame_count == 40  # 10 s at 4 fps
    bad = good.replace("{at: 0.5, face: b}", "{at: 1e9, face: b}")
    rc, line = run_cli(work, capsys, "validate", _scene(work, bad))
    assert rc == 2
    assert line == "error: scene.yaml:8: timeline[1].at: must be less than or equal to 86400, got 1000000000.0"


# --- frames ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "render"])
def test_huge_frame_number(work: Path, capsys: pytest.CaptureFixture, command: str) -> None:
    text = SCENE.replace("{at: 0.5, face: b}", "{frame: " + str(10**30) + ", face: b}")
    rc, line = run_cli(work, capsys, command, _scene(work, text))
    assert rc == 2
    assert line == f"error: scene.yaml:8: timeline[1].frame: must be less than or equal to 20736000, got {10**30}"


def test_frame_number_later_than_any_time(work: Path, capsys: pytest.CaptureFixture) -> None:
    # Within the frame bound (a day at 240 fps) but 5 000 000 / 4 fps = 1 250 000 s, later than a day.
    text = SCENE.replace("  b: {latent: lat.npy}\n", SEED_ONLY)
    text = text.replace("{at: 0.5, face: b}", "{frame: 5000000, face: b}")
    rc, line = run_cli(work, capsys, "render", _scene(work, text))
    assert rc == 2
    assert line == ("error: scene.yaml:8: timeline[1].frame: frame 5000000 is 1.25e+06 s at 4 fps, after the latest "
                    "time a key may have (86400 s)")


def test_hold_past_a_day(work: Path, capsys: pytest.CaptureFixture) -> None:
    text = SCENE.replace("  b: {latent: lat.npy}\n", SEED_ONLY).replace("output: {path: out.mp4, duration: 1,",
                                                                        "output: {path: out.mp4,") \
        .replace("{at: 0.5, face: b}", "{at: 86000, face: b, hold: 1000}")
    rc, line = run_cli(work, capsys, "validate", _scene(work, text))
    assert rc == 2
    assert line == "error: scene.yaml:8: timeline[1]: the scene would last 87000 s; at most 86400 s (a day)"


# --- latent and direction files -------------------------------------------------------------------------------


def _latent_case(work: Path, capsys: pytest.CaptureFixture, command: str = "validate") -> str:
    rc, line = run_cli(work, capsys, command, _scene(work))
    assert rc == 2
    return line


def test_npz_with_an_object_array(work: Path, capsys: pytest.CaptureFixture) -> None:
    np.savez(work / "lat.npz", ws=np.array([{"x": 1}], dtype=object))
    _scene(work, SCENE.replace("lat.npy", "lat.npz"))
    rc, line = run_cli(work, capsys, "validate", "scene.yaml")
    assert rc == 2
    assert line == ("error: scene.yaml:5: faces.b.latent: 'lat.npz' member 'ws' holds Python objects (dtype "
                    "object), not numbers; refused")


def test_npz_with_a_bad_crc(work: Path, capsys: pytest.CaptureFixture) -> None:
    np.savez(work / "lat.npz", ws=np.full(W_DIM, 0.125, np.float32))
    raw = bytearray((work / "lat.npz").read_bytes())
    at = raw.index(np.float32(0.125).tobytes() * 4)
    raw[at] ^= 0x01  # one bit of the stored data flipped: the zip's CRC-32 no longer matches
    (work / "lat.npz").write_bytes(bytes(raw))
    _scene(work, SCENE.replace("lat.npy", "lat.npz"))
    rc, line = run_cli(work, capsys, "render", "scene.yaml")
    assert rc == 2
    assert line == "error: scene.yaml:5: faces.b.latent: 'lat.npz' is a damaged .npz (Bad CRC-32 for file 'ws.npy')"


def test_npz_claiming_a_huge_shape(work: Path, capsys: pytest.CaptureFixture) -> None:
    with zipfile.ZipFile(work / "lat.npz", "w") as zf:
        zf.writestr("ws.npy", _npy_header((100000, 100000)) + bytes(64))
    _scene(work, SCENE.replace("lat.npy", "lat.npz"))
    rc, line = run_cli(work, capsys, "validate", "scene.yaml")
    assert rc == 2
    assert line == ("error: scene.yaml:5: faces.b.latent: 'lat.npz' member 'ws' claims shape [100000, 100000] "
                    "(10000000000 numbers); at most 16777216 are read")


def test_npz_zip_bomb(work: Path, peak_limit: float) -> None:
    # 512 MiB of zeros deflate to ~2 MB; the member's uncompressed size in the zip header is refused unread.
    with zipfile.ZipFile(work / "lat.npz", "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("ws.npy", "w", force_zip64=True) as member:
            member.write(_npy_header((2**26,), "<f8"))
            zeros = bytes(2**24)
            for _ in range(32):
                member.write(zeros)
    assert (work / "lat.npz").stat().st_size < 4 * 2**20
    _scene(work, SCENE.replace("lat.npy", "lat.npz"))
    rc, line, peak = run_limited_peak(work, "validate", "scene.yaml")
    assert rc == 2
    assert re.fullmatch(r"error: scene\.yaml:5: faces\.b\.latent: 'lat\.npz' member 'ws' is 536871040 bytes "
                        r"uncompressed; at most \d+ are read", line), line
    assert peak < peak_limit, f"peak RSS {peak:.0f} MiB"


def test_npy_claiming_a_huge_shape(work: Path, peak_limit: float) -> None:
    (work / "lat.npy").write_bytes(_npy_header((10**9, W_DIM)) + bytes(400))
    rc, line, peak = run_limited_peak(work, "validate", _scene(work))
    assert rc == 2
    assert line == ("error: scene.yaml:5: faces.b.latent: 'lat.npy' claims shape [1000000000, 100] "
                    "(100000000000 numbers); at most 16777216 are read")
    assert peak < peak_limit, f"peak RSS {peak:.0f} MiB"


def test_npy_with_a_huge_header(work: Path, capsys: pytest.CaptureFixture) -> None:
    header = _npy_header((W_DIM,), version=(2, 0))
    # A 2.0 header may claim up to 4 GiB of header text: make it a megabyte of padding.
    size = 1_000_000
    pad = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }" + b" " * (size - 61) + b"\n"
    (work / "lat.npy").write_bytes(header[:8] + len(pad).to_bytes(4, "little") + pad + bytes(400))
    line = _latent_case(work, capsys)
    assert line == "error: scene.yaml:5: faces.b.latent: 'lat.npy' has an .npy header longer than 10000 bytes; refused"


def test_truncated_npy(work: Path, capsys: pytest.CaptureFixture) -> None:
    (work / "lat.npy").write_bytes(_npy_header((W_DIM,)) + bytes(40))
    line = _latent_case(work, capsys, "render")
    assert line == ("error: scene.yaml:5: faces.b.latent: 'lat.npy' is truncated: its header claims shape [100] "
                    "(400 bytes of data), but only 40 bytes follow")


def test_latent_beyond_float32(work: Path, capsys: pytest.CaptureFixture) -> None:
    np.save(work / "lat.npy", np.full(W_DIM, 1e300))  # finite in float64, inf in float32
    line = _latent_case(work, capsys, "render")
    assert line == ("error: scene.yaml:5: faces.b.latent: 'lat.npy' holds 1e+300, beyond float32's range "
                    "(latents are rendered in float32)")


def test_complex_latent(work: Path, capsys: pytest.CaptureFixture) -> None:
    np.save(work / "lat.npy", np.full(W_DIM, 1 + 2j))
    line = _latent_case(work, capsys)
    assert line == ("error: scene.yaml:5: faces.b.latent: 'lat.npy' holds complex numbers (dtype complex128); "
                    "latents and directions are real")


def test_direction_claiming_a_huge_shape(work: Path, peak_limit: float) -> None:
    (work / "dir.npy").write_bytes(_npy_header((10**9, W_DIM)) + bytes(400))
    np.save(work / "lat.npy", np.zeros(W_DIM, np.float32))
    text = SCENE + "attributes:\n  smile: {direction: dir.npy}\n"
    rc, line, peak = run_limited_peak(work, "validate", _scene(work, text))
    assert rc == 2
    assert line == ("error: scene.yaml:10: attributes.smile.direction: 'dir.npy' claims shape [1000000000, 100] "
                    "(100000000000 numbers); at most 16777216 are read")
    assert peak < peak_limit, f"peak RSS {peak:.0f} MiB"


def test_direction_of_the_wrong_shape_is_refused_unread(work: Path, capsys: pytest.CaptureFixture) -> None:
    (work / "dir.npy").write_bytes(_npy_header((3, W_DIM)))  # no data at all: the shape is refused first
    np.save(work / "lat.npy", np.zeros(W_DIM, np.float32))
    rc, line = run_cli(work, capsys, "validate", _scene(work, SCENE + "loops:\n  - {direction: dir.npy}\n"))
    assert rc == 2
    assert line == ("error: scene.yaml:10: loops[0].direction: 'dir.npy' has shape [3, 100]; a direction must be "
                    "[100] or [1, 100] for this model")


# --- FIFOs: refused before opening (opening one for reading blocks) ------------------------------------------


def test_fifo_as_latent(work: Path, capsys: pytest.CaptureFixture) -> None:
    os.mkfifo(work / "lat.npy")
    rc, line = run_cli(work, capsys, "validate", _scene(work), alarm=60)
    assert rc == 2
    assert line == "error: scene.yaml:5: faces.b.latent: latent file 'lat.npy' is not a regular file (a FIFO)"


def test_fifo_as_direction(work: Path, capsys: pytest.CaptureFixture) -> None:
    os.mkfifo(work / "dir.npy")
    np.save(work / "lat.npy", np.zeros(W_DIM, np.float32))
    rc, line = run_cli(work, capsys, "render", _scene(work, SCENE + "attributes:\n  smile: {direction: dir.npy}\n"),
                       alarm=60)
    assert rc == 2
    assert line == ("error: scene.yaml:10: attributes.smile.direction: direction file 'dir.npy' is not a regular "
                    "file (a FIFO)")


def test_fifo_as_audio(work: Path, capsys: pytest.CaptureFixture) -> None:
    os.mkfifo(work / "song.mp3")
    np.save(work / "lat.npy", np.zeros(W_DIM, np.float32))
    text = SCENE.replace("size: 64}", "size: 64, audio: song.mp3}")
    rc, line = run_cli(work, capsys, "render", _scene(work, text), alarm=60)
    assert rc == 2
    assert line == "error: scene.yaml:2: output.audio: audio file 'song.mp3' is not a regular file (a FIFO)"


def test_fifo_as_scene(work: Path, capsys: pytest.CaptureFixture) -> None:
    os.mkfifo(work / "scene.yaml")
    rc, line = run_cli(work, capsys, "validate", "scene.yaml", alarm=60)
    assert rc == 2
    assert line == "error: scene.yaml: is not a regular file (a FIFO), not a scene file"


def test_loader_refuses_a_fifo_even_after_validation(tmp_path: Path) -> None:
    # The file turns into a FIFO between validation and the timeline: the array loader checks again.
    np.save(tmp_path / "lat.npy", np.zeros(16, np.float32))
    (tmp_path / "scene.yaml").write_text(SCENE)
    scene = morphstudio.load_scene(tmp_path / "scene.yaml", latent_space=fake_latent_space())
    (tmp_path / "lat.npy").unlink()
    os.mkfifo(tmp_path / "lat.npy")
    with pytest.raises(SceneError, match=r"faces\.b\.latent: 'lat\.npy' is not a regular file \(a FIFO\)$"), \
            _alarm(60, "loading a FIFO latent"):
        scene.latents([0])


# --- walks ----------------------------------------------------------------------------------------------------


def test_walk_with_a_tiny_step(work: Path, peak_limit: float) -> None:
    text = "model: builtin:dcgan-faces64\noutput: {path: out.mp4, duration: 86400}\n" \
           "walks: [{kind: random, step: 0.001}]\n"
    rc, line, peak = run_limited_peak(work, "validate", _scene(work, text))
    assert rc == 2
    assert line == ("error: scene.yaml:3: walks[0].step: a random face every 0.001 s over 86400 s is 86400002 "
                    "faces; at most 100000 (use a step of at least 0.864 s)")
    assert peak < peak_limit, f"peak RSS {peak:.0f} MiB"


def test_walk_too_big_for_the_model() -> None:
    # 7202 faces pass the scene-level bound, but of 18 x 512 numbers each they exceed what a walk may hold.
    space = fake_latent_space(num_ws=18, w_dim=512)
    scene = morphstudio.load_scene({"output": {"duration": 7200}, "walks": [{"kind": "random", "step": 1}]},
                                   latent_space=space)
    with pytest.raises(SceneError, match=r"^walks\[0\]\.step: the walk passes through 7202 random faces of 18 x 512 "
                                         r"numbers on this model; at most 3640 \(33554432 numbers\)$"):
        scene.latents([0])


def test_loop_walk_too_big_for_the_model() -> None:
    space = fake_latent_space(num_ws=18, w_dim=512)
    scene = morphstudio.load_scene({"loop": True, "output": {"duration": 10},
                                    "walks": [{"kind": "loop", "faces": 10000}]}, latent_space=space)
    with pytest.raises(SceneError, match=r"^walks\[0\]\.faces: the walk passes through 10000 random faces"):
        scene.latents([0])
