"""Small checkpoint files that ask for huge amounts of memory or work, for tests and ``bench/hostile_memory.py``.

Each builder writes one file of a few hundred bytes to a few MB into ``folder`` and returns its path. None of them
holds anything executable: they attack the *size* checks (claimed element counts, strides, storage growth through
``BUILD``, compressed zip members), not the allow-list. The sizes are parameters so the tests can use claims that
are large enough to matter and the benchmark the sizes reported against the unfixed loader.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import pickle_writer as pw

GiB = 2**30

REBUILD = pw.Global("torch._utils", "_rebuild_tensor_v2")
LOAD_FROM_BYTES = pw.Global("torch.storage", "_load_from_bytes")


def _generator_with_buffer(name: str, tensor: Any) -> pw.Persistent:
    """A minimal official-looking ``Generator`` persistent object holding one buffer (no other content)."""
    state = pw.module_state({}, {name: tensor}, {}, (), pw.to_easydict({"z_dim": 4, "w_dim": 4}), {})
    return pw.Persistent("Generator", pw.SRC_SG3_SG2, state)


def _storage_blob(values: torch.Tensor) -> bytes:
    """What torch pickles for a storage: ``torch.save`` of it in the legacy format."""
    blob = io.BytesIO()
    torch.save(values._typed_storage(), blob, _use_new_zipfile_serialization=False)
    return blob.getvalue()


def frombuffer_with_integer(folder: Path, nbytes: int = 3 * GiB // 2) -> Path:
    """numpy's ``_frombuffer`` handed an integer where the bytes go: ``bytes(n)`` would allocate ``n`` zeros."""
    payload = pw.Reduce(pw.Global("numpy.core.numeric", "_frombuffer"), (nbytes, np.dtype("u1"), (nbytes,), "C"))
    return pw.dump({"G_ema": payload}, folder / "frombuffer-int.pkl")


def frombuffer_with_huge_shape(folder: Path, count: int = 2**40) -> Path:
    """``_frombuffer`` given 8 real bytes and a shape claiming ``count`` values."""
    payload = pw.Reduce(pw.Global("numpy.core.numeric", "_frombuffer"), (b"\0" * 8, np.dtype("<f8"), (count,), "C"))
    return pw.dump({"G_ema": payload}, folder / "frombuffer-shape.pkl")


def stride0_half(folder: Path, count: int = 1_220_000_000) -> Path:
    """A one-value half storage viewed with stride 0 as ``count`` values (4.9 GB as float32 by default)."""
    expanded = torch.zeros(1, dtype=torch.float16).expand(count)
    return pw.dump(pw.snapshot(_generator_with_buffer("w_avg", expanded)), folder / "stride0.pkl")


def setstate_grow(folder: Path, count: int = 512) -> Path:
    """``BUILD`` on a rebuilt one-value tensor with ``(storage, 0, (count,), (1,))``: torch's
    ``Tensor.__setstate__`` calls ``set_`` with it, growing the storage to ``count`` uninitialised values."""
    storage = pw.Reduce(LOAD_FROM_BYTES, (_storage_blob(torch.ones(1)),))
    tensor = pw.Reduce(REBUILD, (storage, 0, (1,), (1,), False, OrderedDict()),
                       state=(storage, 0, (count,), (1,)))
    return pw.dump(pw.snapshot(_generator_with_buffer("w_avg", tensor)), folder / f"setstate-{count}.pkl")


def storage_blob_claiming(folder: Path, count: int = 2**34) -> Path:
    """A storage blob whose own header claims ``count`` float32 values but holds one."""
    blob = bytearray(_storage_blob(torch.ones(1)))
    # The persistent id's element count is a pickled int (BININT1 1) right before the location's end; rewrite it
    # as a LONG1 of ``count`` and fix nothing else: the loader must not trust it.
    head = bytes(blob)
    marker = b"X\x03\x00\x00\x00cpuq"
    at = head.index(marker) + len(marker) + 1  # skip the memo index after the location string
    assert head[at:at + 2] == b"K\x01", head[at - 16:at + 8]
    as_long = count.to_bytes((count.bit_length() + 8) // 8, "little")
    blob[at:at + 2] = pickle.LONG1 + bytes([len(as_long)]) + as_long
    payload = pw.Reduce(REBUILD, (pw.Reduce(LOAD_FROM_BYTES, (bytes(blob),)), 0, (1,), (1,), False, OrderedDict()))
    return pw.dump(pw.snapshot(_generator_with_buffer("w_avg", payload)), folder / "blob-claim.pkl")


class _PidPickler(pw.OfficialPickler):
    """Writes :class:`_Storage` markers as ``torch.save``'s storage persistent ids."""

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _Storage):
            return ("storage", pw.Global("torch", "FloatStorage"), obj.key, "cpu", obj.numel)
        return None


class _Storage:
    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


def _torch_data_pkl(numel: int) -> bytes:
    tensor = pw.Reduce(REBUILD, (_Storage("0", numel), 0, (numel,), (1,), False, OrderedDict()))
    out = io.BytesIO()
    _PidPickler(out, protocol=2).dump({"g_ema": {"style.1.weight": tensor}, "latent_avg": tensor})
    return out.getvalue()


def _deflated_zeros(nbytes: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(2**24)
    parts = []
    left = nbytes
    while left:
        n = min(left, len(chunk))
        parts.append(comp.compress(chunk[:n]))
        left -= n
    parts.append(comp.flush())
    return b"".join(parts)


def torch_zip_bomb(folder: Path, nbytes: int = 3 * GiB) -> Path:
    """A rosinality-looking ``torch.save`` zip whose tensor member is ``nbytes`` of deflated zeros (~1/1000)."""
    path = folder / "bomb.pt"
    numel = nbytes // 4
    deflated = _deflated_zeros(numel * 4)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", _torch_data_pkl(numel))
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
    # zipfile cannot add a pre-compressed member: append one by hand (local header, data, central directory).
    _append_raw_member(path, "archive/data/0", deflated, numel * 4)
    return path


def _append_raw_member(path: Path, name: str, deflated: bytes, size: int) -> None:
    """Rewrite the zip at ``path`` with an extra deflated member whose data is ``deflated`` (of ``size``)."""
    with zipfile.ZipFile(path) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    crc = 0
    chunk = bytes(2**24)
    left = size
    while left:
        n = min(left, len(chunk))
        crc = zlib.crc32(chunk[:n], crc)
        left -= n
    out = io.BytesIO()
    central = []
    for info, data in members:
        offset = out.tell()
        raw = zlib.compress(data, 9)[2:-4] if info.compress_type == zipfile.ZIP_DEFLATED else data
        method = info.compress_type
        out.write(_local_header(info.filename, method, zlib.crc32(data), len(raw), len(data)) + raw)
        central.append(_central_header(info.filename, method, zlib.crc32(data), len(raw), len(data), offset))
    offset = out.tell()
    out.write(_local_header(name, zipfile.ZIP_DEFLATED, crc, len(deflated), size) + deflated)
    central.append(_central_header(name, zipfile.ZIP_DEFLATED, crc, len(deflated), size, offset))
    cd_start = out.tell()
    for c in central:
        out.write(c)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), out.tell() - cd_start,
                          cd_start, 0))
    path.write_bytes(out.getvalue())


def _local_header(name: str, method: int, crc: int, csize: int, size: int) -> bytes:
    fn = name.encode()
    return struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, csize, size, len(fn), 0) + fn


def _central_header(name: str, method: int, crc: int, csize: int, size: int, offset: int) -> bytes:
    fn = name.encode()
    return struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, csize, size, len(fn), 0, 0, 0,
                       0, 0, offset) + fn


def torch_legacy_claiming(folder: Path, numel: int = 2**34) -> Path:
    """A legacy ``torch.save`` file whose storage claims ``numel`` float32 values and holds none."""
    out = io.BytesIO()
    for obj in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True,
                                               "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(obj, out, protocol=2)
    out.write(_torch_data_pkl(numel))
    pickle.dump(["0"], out, protocol=2)
    out.write(struct.pack("<q", numel) + b"\0" * 16)
    path = folder / "legacy-claim.pt"
    path.write_bytes(out.getvalue())
    return path


#: name -> builder with the default (large) sizes, as the benchmark runs them.
WORST_CASES: dict[str, Callable[[Path], Path]] = {
    "frombuffer given an integer (1.5 GiB)": frombuffer_with_integer,
    "frombuffer with a huge shape": frombuffer_with_huge_shape,
    "stride-0 half tensor (4.9 GB as float32)": stride0_half,
    "BUILD -> set_ grows a storage to 512 values": setstate_grow,
    "BUILD -> set_ asks for 64 GiB": lambda folder: setstate_grow(folder, 2**34),
    "storage blob claiming 64 GiB": storage_blob_claiming,
    ".pt zip bomb (3 GiB member)": torch_zip_bomb,
    "legacy .pt claiming 64 GiB": torch_legacy_claiming,
}


def size_of(path: Path) -> int:
    return os.stat(path).st_size
