"""Small checkpoint files that claim huge sizes or endless structure: refused with one line, before any allocation.

The memory-bound cases run together in one child process under ``RLIMIT_AS`` (10 GiB: importing torch maps about
3 GiB), which reports the growth of its peak RSS across each case: a regression then fails here (an allocation
error, or a peak that grew by hundreds of MB) instead of exhausting the machine. Every other case is in-process.
Each test checks the one-line message and that nothing outside the test's own folder changed (a decoy folder is
snapshotted before and after).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

import hostile_files as hf
import pickle_writer as pw
from morphstudio.cli import main
from morphstudio.errors import CheckpointError
from morphstudio.generators.checkpoints import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]

#: A case may raise the child's peak RSS by at most this much (the claims below are 0.25-64 GiB).
RSS_GROWTH_LIMIT = 128 * 2**20


# --- helpers --------------------------------------------------------------------------------------------------


@pytest.fixture
def decoy(tmp_path: Path) -> Iterator[Path]:
    """A folder of user files beside the test's files: it must be byte-identical after each test."""
    folder = tmp_path / "decoy"
    folder.mkdir()
    (folder / "keep.txt").write_text("user data\n")
    (folder / "model.safetensors.bak").write_bytes(b"\x01" * 100)
    before = _snapshot(tmp_path)
    yield folder
    after = _snapshot(tmp_path)
    # Only files the test itself created (its hostile inputs, under work/) may differ.
    assert {k: v for k, v in after.items() if not k.startswith("work")} == \
           {k: v for k, v in before.items() if not k.startswith("work")}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def refused(path: Path, *fragments: str) -> str:
    """Read ``path``; assert one CheckpointError line naming the file and containing every fragment."""
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def generator_pickle(path: Path, buffers: dict[str, Any], kwargs: Any = None,
                     modules: dict[str, Any] | None = None) -> Path:
    """A minimal snapshot whose G_ema holds ``buffers`` / ``modules`` and ``kwargs`` as its _init_kwargs."""
    kwargs = pw.to_easydict({"z_dim": 4, "w_dim": 4}) if kwargs is None else kwargs
    state = pw.module_state({}, buffers, modules or {}, (), kwargs, {})
    return pw.dump(pw.snapshot(pw.Persistent("Generator", pw.SRC_SG3_SG2, state)), path)


# --- memory-bound cases, in one limited child ------------------------------------------------------------------

#: name -> (builder with test sizes, fragments of the expected message)
MEMORY_CASES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "frombuffer-int": (lambda d: hf.frombuffer_with_integer(d, 512 * 2**20), ("_frombuffer given a int",)),
    "frombuffer-shape": (hf.frombuffer_with_huge_shape, ("needs 8796093022208 bytes", "gives it 8")),
    "stride0-half": (lambda d: hf.stride0_half(d, 300_000_000), ("repeats values", "strides [0]")),
    "setstate-64gib": (lambda d: hf.setstate_grow(d, 2**34), ("set the state of a tensor",)),
    "blob-claims-64gib": (hf.storage_blob_claiming, ("claims 17179869184 values in its id and 1",)),
    "zip-bomb": (lambda d: hf.torch_zip_bomb(d, 256 * 2**20), ("zip bomb", "268435456")),
    "legacy-pt-claims-64gib": (hf.torch_legacy_claiming, ("claim 68719476736 bytes",)),
}

CHILD = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (10 * 2**30, 10 * 2**30))
from morphstudio.errors import MorphError
from morphstudio.generators.checkpoints import read_checkpoint
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
read_checkpoint("builtin:dcgan-faces64")  # warm up the loader so its own allocations are not counted
results = {}
for name, path in json.loads(sys.argv[1]).items():
    before = peak()
    try:
        read_checkpoint(path)
        outcome = "loaded"
    except MorphError as exc:
        outcome = "error: " + str(exc)
    except BaseException as exc:
        outcome = f"CRASH {type(exc).__name__}: {exc}"
    results[name] = {"outcome": outcome, "growth": peak() - before}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def memory_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("memory-cases")
    paths = {}
    for name, (build, _) in MEMORY_CASES.items():
        sub = folder / name
        sub.mkdir()
        paths[name] = str(build(sub))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(paths)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, path in paths.items():
        results[name]["path"] = path
        results[name]["size"] = Path(path).stat().st_size
    return results


@pytest.mark.parametrize("name", list(MEMORY_CASES))
def test_small_file_claiming_gigabytes_is_refused_without_allocating(memory_results: dict[str, Any],
                                                                     name: str) -> None:
    result = memory_results[name]
    outcome = result["outcome"]
    assert outcome.startswith("error: ") and "\n" not in outcome and result["path"] in outcome, outcome
    for fragment in MEMORY_CASES[name][1]:
        assert fragment in outcome, outcome
    assert result["size"] < 1_000_000  # the files really are small...
    assert result["growth"] < RSS_GROWTH_LIMIT, f"{name}: peak RSS grew by {result['growth'] / 2**20:.0f} MiB"


# --- tensors --------------------------------------------------------------------------------------------------


def test_build_growing_a_tensor_storage_is_refused(work: Path, decoy: Path) -> None:
    """The issue's case: BUILD with set_'s 4-tuple would grow a 1-value storage to 512 uninitialised values."""
    refused(hf.setstate_grow(work, 512), "tries to set the state of a tensor (BUILD)")


def test_overlapping_strides_that_repeat_values_are_refused(work: Path, decoy: Path) -> None:
    base = torch.arange(1999.0)
    overlapping = base.as_strided((1000, 1000), (1, 1))  # every row shifts by one value: 10^6 from 1999
    refused(generator_pickle(work / "overlap.pkl", {"w_avg": overlapping}),
            "tensor of shape [1000, 1000] (strides [1, 1]) repeats values: 1000000 values from a storage of 1999")


def test_many_tensors_sharing_one_storage_cannot_outgrow_the_file(work: Path, decoy: Path) -> None:
    storage = pw.Reduce(hf.LOAD_FROM_BYTES, (hf._storage_blob(torch.zeros(2**18)),))  # 1 MiB, stored once
    buffers = {f"b{i}": pw.Reduce(hf.REBUILD, (storage, 0, (2**18,), (1,), False, OrderedDict())) for i in range(8)}
    refused(generator_pickle(work / "shared.pkl", buffers), "more than the file holds (its tensors share storage)")


def test_tensor_view_beyond_its_storage_is_refused(work: Path, decoy: Path) -> None:
    tensor = pw.Reduce(hf.REBUILD, (pw.Reduce(hf.LOAD_FROM_BYTES, (hf._storage_blob(torch.ones(4)),)), 2, (3,), (1,),
                                    False, OrderedDict()))
    refused(generator_pickle(work / "beyond.pkl", {"w_avg": tensor}), "needs 5 values, its storage has 4")


def test_storage_blob_with_fewer_bytes_than_its_count_is_refused(work: Path, decoy: Path) -> None:
    blob = hf._storage_blob(torch.ones(8))[:-12]  # 8 values claimed (twice, consistently), 5 present
    tensor = pw.Reduce(hf.REBUILD, (pw.Reduce(hf.LOAD_FROM_BYTES, (blob,)), 0, (8,), (1,), False, OrderedDict()))
    refused(generator_pickle(work / "short.pkl", {"w_avg": tensor}),
            "a tensor storage of 8 torch.float32 values (32 bytes) holding only 20 bytes")


def test_numpy_reconstruct_with_a_huge_shape_is_refused(work: Path, decoy: Path) -> None:
    payload = pw.Reduce(pw.Global("numpy.core.multiarray", "_reconstruct"),
                        (pw.Global("numpy", "ndarray"), (2**40,), b"b"))
    refused(pw.dump({"G_ema": payload}, work / "reconstruct.pkl"), "_reconstruct asks for shape (1099511627776,)")


def test_numpy_scalar_from_the_wrong_bytes_is_refused(work: Path, decoy: Path) -> None:
    import numpy as np

    payload = pw.Reduce(pw.Global("numpy.core.multiarray", "scalar"), (np.dtype("<f8"), b"\0" * 3))
    refused(pw.dump({"G_ema": payload}, work / "scalar.pkl"), "float64 scalar from something other than its 8 bytes")


@pytest.mark.parametrize("claim, fragment", [(2**30, "truncated"), (2**50, "claims more memory than the machine")])
def test_bytes_opcode_claiming_more_than_the_file_is_one_line(work: Path, decoy: Path, claim: int,
                                                              fragment: str) -> None:
    """BINBYTES8 claiming 1 GiB or 1 PiB in a 30-byte file: reported as truncated / impossible."""
    path = work / "binbytes8.pkl"
    path.write_bytes(b"\x80\x04" + pickle.BINBYTES8 + struct.pack("<Q", claim) + b"abc")
    refused(path, fragment)


# --- structure --------------------------------------------------------------------------------------------------


def test_self_referencing_init_kwargs_are_refused(work: Path, decoy: Path) -> None:
    kwargs = pw.FakeEasyDict(z_dim=4, w_dim=4)
    kwargs["synthesis_kwargs"] = pw.FakeEasyDict(loop=kwargs)
    refused(generator_pickle(work / "selfref.pkl", {}, kwargs), "init_kwargs.synthesis_kwargs.loop.synthesis_kwargs: contains itself")


def test_very_deep_init_kwargs_are_refused(work: Path, decoy: Path) -> None:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # only the test's pure-Python pickler needs it
    try:
        deep: Any = 1
        for _ in range(2000):
            deep = {"x": deep}
        path = generator_pickle(work / "deep.pkl", {}, {"z_dim": 4, "w_dim": 4, "mapping_kwargs": deep})
    finally:
        sys.setrecursionlimit(old)
    refused(path, "init_kwargs.mapping_kwargs.x.x", "nested deeper than 16 levels")


def test_exponentially_shared_init_kwargs_are_refused(work: Path, decoy: Path) -> None:
    node: Any = [0]
    for _ in range(14):  # 4**14 = 268M values through the memo, in a few hundred bytes
        node = [node, node, node, node]
    refused(generator_pickle(work / "dag.pkl", {}, {"z_dim": 4, "w_dim": 4, "channels": node}),
            "more than 10000 values in the constructor arguments")


def test_a_module_appearing_twice_is_refused(work: Path, decoy: Path) -> None:
    child = pw.Persistent("SynthesisLayer", pw.SRC_SG3_SG2, pw.module_state({}, {}, {}, (), {}, {}))
    layer = pw.Persistent("SynthesisBlock", pw.SRC_SG3_SG2,
                          pw.module_state({}, {}, {"a": child, "b": child}, (), {}, {}))
    refused(generator_pickle(work / "shared-module.pkl", {}, modules={"synthesis": layer}),
            "module synthesis.b appears more than once")


# --- torch.save files -------------------------------------------------------------------------------------------


def _torch_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _rosinality_zip_members(numel: int = 4) -> dict[str, bytes]:
    return {"archive/data.pkl": hf._torch_data_pkl(numel), "archive/byteorder": b"little",
            "archive/version": b"3\n", "archive/data/0": b"\0" * (4 * numel)}


def test_zip_member_smaller_than_its_declared_storage_is_refused(work: Path, decoy: Path) -> None:
    members = _rosinality_zip_members(1000)
    members["archive/data/0"] = b"\0" * 40
    refused(_torch_zip(work / "short.pt", members),
            "tensor storage '0' claims 1000 torch.float32 values (4000 bytes); its zip entry unpacks to 40")


def test_zip_with_two_data_pickles_is_refused(work: Path, decoy: Path) -> None:
    members = _rosinality_zip_members()
    members["other/data.pkl"] = members["archive/data.pkl"]
    refused(_torch_zip(work / "two.pt", members), "2 data.pkl files")


def test_build_on_a_tensor_in_a_torch_file_never_reaches_torch_load(work: Path, decoy: Path) -> None:
    """torch.load's weights-only unpickler turns BUILD on a tensor into set_(): the scan refuses it first."""
    storage = hf._Storage("0", 1)
    tensor = pw.Reduce(hf.REBUILD, (storage, 0, (1,), (1,), False, OrderedDict()), state=(storage, 0, (512,), (1,)))
    import io

    out = io.BytesIO()
    hf._PidPickler(out, protocol=2).dump({"g_ema": {"style.1.weight": tensor}})
    members = _rosinality_zip_members(1)
    members["archive/data.pkl"] = out.getvalue()
    refused(_torch_zip(work / "build.pt", members), "set the state of a tensor")


# --- safetensors --------------------------------------------------------------------------------------------------


def _safetensors(path: Path, header: Any, data: bytes = b"", raw: bytes | None = None) -> Path:
    body = raw if raw is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return path


def _morph_header(meta: Any) -> dict[str, Any]:
    return {"__metadata__": {"morphstudio": json.dumps(meta)},
            "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}


@pytest.mark.parametrize("kind, fragment", [
    ("deep", "the safetensors header is nested too deeply"),
    ("metadata-list", "safetensors __metadata__ is a JSON list; the format requires string values"),
    ("metadata-number", "safetensors __metadata__ is a JSON number"),
    ("metadata-nested", "safetensors __metadata__ is an object with non-string values"),
    ("embedded-list", "the embedded morphstudio metadata is a JSON list, not an object"),
    ("embedded-number", "the embedded morphstudio metadata is a JSON number, not an object"),
    ("embedded-deep", "the embedded morphstudio metadata is nested too deeply"),
    ("kwargs-number", "no 'init_kwargs' object (it has a JSON number)"),
    ("kwargs-deep", "nested deeper than 16 levels"),
    ("header-list", "the safetensors header is a JSON list, not an object"),
    ("huge-header", "safetensors header of 1073741824 bytes; refusing headers over 16 MiB"),
])
def test_hostile_safetensors_headers(work: Path, decoy: Path, kind: str, fragment: str) -> None:
    path = work / "model.safetensors"
    data = b"\0" * 4
    if kind == "deep":
        _safetensors(path, None, data, raw=b"{\"a\":" * 100_000 + b"1" + b"}" * 100_000)
    elif kind.startswith("metadata"):
        meta = {"list": ["x"], "number": 3, "nested": {"morphstudio": {"family": "dcgan"}}}[kind.split("-")[1]]
        _safetensors(path, {"__metadata__": meta, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, data)
    elif kind == "embedded-list":
        _safetensors(path, _morph_header([1, 2]), data)
    elif kind == "embedded-number":
        _safetensors(path, _morph_header(7), data)
    elif kind == "embedded-deep":
        header = _morph_header(0)
        header["__metadata__"]["morphstudio"] = "[" * 100_000 + "]" * 100_000
        _safetensors(path, header, data)
    elif kind == "kwargs-number":
        _safetensors(path, _morph_header({"family": "dcgan", "init_kwargs": 5}), data)
    elif kind == "kwargs-deep":
        deep: Any = 1
        for _ in range(200):
            deep = {"x": deep}
        _safetensors(path, _morph_header({"family": "dcgan", "init_kwargs": {"nz": deep}}), data)
    elif kind == "header-list":
        _safetensors(path, [1, 2, 3], data)
    else:
        path.write_bytes(struct.pack("<Q", 2**30) + b'{"w": ' + b" " * 100)
    refused(path, fragment)


def test_config_beside_a_safetensors_file_that_is_a_list(work: Path, decoy: Path) -> None:
    path = _safetensors(work / "bare.safetensors", {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                        b"\0" * 4)
    (work / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError, match=r"config\.json: model config is a JSON list, not an object"):
        read_checkpoint(path)


# --- files that are not files -------------------------------------------------------------------------------------


@pytest.fixture
def alarm() -> Iterator[None]:
    """Turn a hang into a failure: opening a FIFO blocks until a writer comes, which in a test is never."""
    def timeout(_signum: int, _frame: Any) -> None:
        raise TimeoutError("read_checkpoint blocked on a FIFO")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_fifo_as_model_is_refused_without_blocking(work: Path, decoy: Path, alarm: None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fifo = work / "model.pkl"
    os.mkfifo(fifo)
    refused(fifo, "is a named pipe (FIFO), not a checkpoint file")
    assert main(["inspect", str(fifo)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "named pipe (FIFO)" in err[0] and str(fifo) in err[0]


def test_fifo_named_config_json_beside_a_safetensors_file_is_not_opened(work: Path, decoy: Path,
                                                                          alarm: None) -> None:
    path = _safetensors(work / "bare.safetensors", {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                        b"\0" * 4)
    os.mkfifo(work / "config.json")
    refused(path, "no bare.json or config.json beside it")


def test_device_and_directory_as_model_are_refused(work: Path, decoy: Path) -> None:
    refused(Path(os.devnull), "is a device, not a checkpoint file")
    refused(work, "is a directory, not a checkpoint file")
