"""Hostile and broken checkpoint files: refused with one clear line, and nothing from them ever runs.

Every hostile payload would create a marker file if it were executed; each test asserts the marker is absent.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import pickle_writer as pw
from morphstudio.cli import main
from morphstudio.errors import CheckpointError, UnsafeCheckpointError
from morphstudio.generators.checkpoints import read_checkpoint


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "MARKER-payload-ran"


def _touch_cmd(marker: Path) -> str:
    return f"touch '{marker}'"


@pytest.fixture(scope="module")
def sg3_pkl(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pw.sg3_pickle(reference_dir, tmp_path_factory.mktemp("sg3") / "sg3.pkl")


# --- hostile: globals ---------------------------------------------------------------------------------------------


def _payloads(marker: Path) -> list[tuple[str, pw.Reduce]]:
    touch = _touch_cmd(marker)
    code = f"open({os.fspath(marker)!r}, 'w').write('x')"
    return [
        ("os.system", pw.Reduce(pw.Global("os", "system"), (touch,))),
        ("posix.system", pw.Reduce(pw.Global("posix", "system"), (touch,))),  # what pickle writes for os.system
        ("builtins.exec", pw.Reduce(pw.Global("builtins", "exec"), (code,))),
        ("builtins.eval", pw.Reduce(pw.Global("builtins", "eval"), (code,))),
        ("subprocess.Popen", pw.Reduce(pw.Global("subprocess", "Popen"), (["touch", os.fspath(marker)],))),
        ("subprocess.check_call", pw.Reduce(pw.Global("subprocess", "check_call"), (["touch", os.fspath(marker)],))),
        ("builtins.getattr", pw.Reduce(pw.Global("builtins", "getattr"), (0, "__class__"))),
        ("torch.load", pw.Reduce(pw.Global("torch", "load"), (os.fspath(marker),))),
    ]


@pytest.mark.parametrize("index", range(8))
def test_reduce_payload_at_top_level_is_refused(tmp_path: Path, marker: Path, index: int) -> None:
    name, payload = _payloads(marker)[index]
    path = pw.dump(payload, tmp_path / "evil.pkl")
    with pytest.raises(UnsafeCheckpointError) as info:
        read_checkpoint(path)
    assert info.value.global_name == name
    assert f"'{name}'" in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_payload_hidden_deep_inside_a_real_generator_is_refused(reference_dir: Path, tmp_path: Path,
                                                                marker: Path) -> None:
    state, kwargs = pw.reference_state(reference_dir, "sg3_t")
    g_ema = pw.generator_tree(state, kwargs, pw.SRC_SG3)
    layer = g_ema.meta["state"]["_modules"]["synthesis"].meta["state"]["_modules"]["L3_36_64"]
    layer.meta["state"]["activation"] = pw.Reduce(pw.Global("os", "system"), (_touch_cmd(marker),))
    path = pw.dump(pw.snapshot(g_ema, order="sg3"), tmp_path / "trojan.pkl")
    with pytest.raises(UnsafeCheckpointError, match="'os.system'"):
        read_checkpoint(path)
    assert not marker.exists()


def test_payload_inside_a_tensor_storage_blob_is_refused(tmp_path: Path, marker: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204 -- the classic payload, pickled by torch.save itself
            return os.system, (_touch_cmd(marker),)

    blob = io.BytesIO()
    torch.save(Evil(), blob, _use_new_zipfile_serialization=False)
    payload = pw.Reduce(pw.Global("torch.storage", "_load_from_bytes"), (blob.getvalue(),))
    path = pw.dump({"G_ema": payload}, tmp_path / "blob.pkl")
    with pytest.raises(UnsafeCheckpointError, match="system"):
        read_checkpoint(path)
    assert not marker.exists()


def test_module_src_is_never_executed(reference_dir: Path, tmp_path: Path, marker: Path) -> None:
    """A persistent object whose stored source would write a file: it loads (the source is only text)."""
    state, kwargs = pw.reference_state(reference_dir, "sg3_t")
    evil_src = pw.write_marker_src(marker)
    g_ema = pw.generator_tree(state, kwargs, evil_src)
    path = pw.dump(pw.snapshot(g_ema, order="sg3"), tmp_path / "src.pkl")
    ckpt = read_checkpoint(path)
    assert ckpt.family == "stylegan3" and len(ckpt.state) == len(state)
    assert not marker.exists()


def test_tf_build_module_src_is_never_executed(reference_dir: Path, tmp_path: Path, marker: Path) -> None:
    path = pw.tf_pickle(reference_dir, tmp_path / "tf.pkl", build_module_src=pw.write_marker_src(marker))
    ckpt = read_checkpoint(path)
    assert ckpt.format == "tensorflow-pkl (stylegan2)"
    assert not marker.exists()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_torch_save_file_with_malicious_pickle_is_refused(tmp_path: Path, marker: Path, zip_format: bool) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return os.system, (_touch_cmd(marker),)

    path = tmp_path / "550000.pt"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}, "args": Evil()}, path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(UnsafeCheckpointError) as info:
        read_checkpoint(path)
    assert info.value.global_name in ("posix.system", "os.system")
    assert not marker.exists()


def test_modifying_an_allowed_callable_is_refused(tmp_path: Path) -> None:
    """BUILD on an allow-listed global (to rewire it) must not be possible."""
    data = (b"\x80\x02" + pickle.GLOBAL + b"collections\nOrderedDict\n"
            + b"N}X\x08\x00\x00\x00__call__K\x01s\x86" + pickle.BUILD + pickle.STOP)
    path = tmp_path / "rewire.pkl"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="tried to modify"):
        read_checkpoint(path)


def test_persistent_ids_are_refused_in_plain_pickles(tmp_path: Path) -> None:
    path = tmp_path / "pid.pkl"
    path.write_bytes(b"\x80\x04X\x03\x00\x00\x00abcQ.")
    with pytest.raises(CheckpointError, match="external data"):
        read_checkpoint(path)


def test_tensor_asking_for_more_than_its_storage_is_refused(tmp_path: Path) -> None:
    storage = torch.arange(4.0)._typed_storage()  # a real 4-value storage, as torch pickles it
    blob = io.BytesIO()
    torch.save(storage, blob, _use_new_zipfile_serialization=False)
    load = pw.Reduce(pw.Global("torch.storage", "_load_from_bytes"), (blob.getvalue(),))
    huge = pw.Reduce(pw.Global("torch._utils", "_rebuild_tensor_v2"), (load, 0, (10**9,), (1,), False, {}))
    path = pw.dump({"G_ema": huge}, tmp_path / "huge.pkl")
    with pytest.raises(CheckpointError, match="needs 1000000000 values"):
        read_checkpoint(path)


# --- broken files -------------------------------------------------------------------------------------------------


def _one_line(err: BaseException, path: Path) -> str:
    text = str(err)
    assert "\n" not in text and str(path) in text
    return text


def test_empty_missing_and_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(empty)
    with pytest.raises(CheckpointError, match="no such file"):
        read_checkpoint(tmp_path / "missing.pkl")
    with pytest.raises(CheckpointError, match="directory"):
        read_checkpoint(tmp_path)


@pytest.mark.parametrize("fraction", [0.0005, 0.01, 0.3, 0.5, 0.9])
def test_truncated_pickle(sg3_pkl: Path, tmp_path: Path, fraction: float) -> None:
    data = sg3_pkl.read_bytes()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(data[: max(3, int(len(data) * fraction))])
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(cut)
    assert "truncated" in _one_line(info.value, cut)


def test_pickle_missing_only_its_last_byte(sg3_pkl: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(sg3_pkl.read_bytes()[:-1])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(cut)


@pytest.mark.parametrize("keep", [4, 100, 5000, -1000, -1])
def test_truncated_safetensors(reference_dir: Path, tmp_path: Path, keep: int) -> None:
    data = (reference_dir / "sg3_t" / "G_ema.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:keep])
    shutil.copy(reference_dir / "sg3_t" / "config.json", tmp_path / "config.json")
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(cut)
    text = _one_line(info.value, cut)
    assert "truncated" in text or "not a checkpoint" in text


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_truncated_torch_file(reference_dir: Path, tmp_path: Path, zip_format: bool) -> None:
    path = tmp_path / "full.pt"
    torch.save({"g_ema": {"a": torch.zeros(1000)}, "latent_avg": torch.zeros(8)}, path,
               _use_new_zipfile_serialization=zip_format)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(cut)
    text = _one_line(info.value, cut)
    assert "truncated" in text or "corrupt" in text


def test_header_shape_that_does_not_fit_its_bytes_names_the_tensor(reference_dir: Path, tmp_path: Path) -> None:
    import json
    import struct

    data = (reference_dir / "sg2ada" / "G_ema.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header["synthesis.b8.conv0.weight"]["shape"] = [128, 128, 3, 4]
    raw = json.dumps(header).encode()
    raw += b" " * (n - len(raw)) if len(raw) <= n else b""
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
    shutil.copy(reference_dir / "sg2ada" / "config.json", tmp_path / "config.json")
    with pytest.raises(CheckpointError, match=r"tensor 'synthesis\.b8\.conv0\.weight': shape \[128, 128, 3, 4\]"):
        read_checkpoint(bad)


def _png(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, format="PNG")
    return path


@pytest.mark.parametrize("kind, expected", [
    ("random", "unknown binary format"),
    ("png", "PNG image"),
    ("text", "text file"),
    ("html", "HTML page"),
    ("lfs", "Git LFS pointer"),
    ("zip", "no data.pkl"),
])
def test_files_of_other_kinds_say_what_they_look_like(tmp_path: Path, kind: str, expected: str) -> None:
    path = tmp_path / "model.pkl"
    if kind == "random":
        noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
        path.write_bytes(b"\x01" + noise)
    elif kind == "png":
        _png(path)
    elif kind == "text":
        path.write_text("these are not the weights you are looking for\n")
    elif kind == "html":
        path.write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    elif kind == "lfs":
        path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 364\n")
    else:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert expected in _one_line(info.value, path)


def test_a_pickle_of_something_else(tmp_path: Path) -> None:
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    with pytest.raises(CheckpointError, match="not a StyleGAN checkpoint: it holds a list of 3 items"):
        read_checkpoint(path)


# --- through the command line -------------------------------------------------------------------------------------


def _bad_files(tmp_path: Path, marker: Path, sg3_pkl: Path) -> dict[str, Path]:
    files = {}
    files["hostile"] = pw.dump(pw.Reduce(pw.Global("os", "system"), (_touch_cmd(marker),)), tmp_path / "hostile.pkl")
    (tmp_path / "truncated.pkl").write_bytes(sg3_pkl.read_bytes()[:50_000])
    files["truncated"] = tmp_path / "truncated.pkl"
    files["png"] = _png(tmp_path / "image.pkl")
    (tmp_path / "notes.pkl").write_text("hello\n")
    files["text"] = tmp_path / "notes.pkl"
    (tmp_path / "empty.pkl").write_bytes(b"")
    files["empty"] = tmp_path / "empty.pkl"
    files["missing"] = tmp_path / "missing.pkl"
    return files


@pytest.mark.parametrize("kind", ["hostile", "truncated", "png", "text", "empty", "missing"])
def test_cli_convert_refuses_bad_files_cleanly(tmp_path: Path, marker: Path, sg3_pkl: Path, kind: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = _bad_files(tmp_path, marker, sg3_pkl)[kind]
    out = tmp_path / "out" / "model.safetensors"
    out.parent.mkdir()
    assert main(["convert", str(bad), str(out)]) == 2
    captured = capsys.readouterr()
    err_lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 1 and str(bad) in err_lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert list(out.parent.iterdir()) == []  # no OUT, no sidecar, no temp file
    assert not marker.exists()


# --- control: the payloads above are live ---------------------------------------------------------------------------


def test_the_payloads_would_run_under_a_plain_unpickler(tmp_path: Path, marker: Path) -> None:
    """Proof that the markers mean something: the stock unpickler / exec *does* run these payloads."""
    pickle.loads((pw.dump(pw.Reduce(pw.Global("os", "system"), (_touch_cmd(marker),)), tmp_path / "p.pkl"))
                 .read_bytes())
    assert marker.exists()
    marker.unlink()
    exec(compile(pw.write_marker_src(marker), "module_src", "exec"), {})  # what the official loader does
    assert marker.exists()
