"""One loader for the array files a scene names (latents and directions, ``.npy`` or ``.npz``).

Everything a file claims is checked before anything is allocated: the file must be a regular file (a FIFO would
block the open forever), an ``.npz`` member's uncompressed size comes from the zip header and its ``.npy`` header's
shape times item size must fit both that size and a limit, the shape must be one the caller can use, and the dtype
must hold real numbers (no Python objects, no complex values). Only then is the array read, and its values must be
finite in float32, the precision latents are rendered in. Every problem is one :class:`SceneError` naming the
scene field and the file.
"""

from __future__ import annotations

import math
import os
import stat
import zipfile
import zlib
from pathlib import Path
from typing import IO, Callable

import numpy as np

from morphstudio.scene.yamlmap import Locator, Path_, file_kind

MAX_ARRAY_ELEMENTS = 2**24
"""Numbers an array file may hold (128 MiB as float64): far more than a batch of a thousand 18 x 512 W+ latents,
far less than a file's header can claim."""
MAX_NPZ_MEMBERS = 1024
"""Arrays an ``.npz`` may hold (``project`` writes two)."""
_NPY_HEADER_LIMIT = 10000  # bytes of .npy header numpy itself accepts by default
_FLOAT32_MAX = float(np.finfo(np.float32).max)

ChooseMember = Callable[[list[str]], str]
"""``choose(names) -> name``: which array of an ``.npz`` to read (raises a located error when it cannot tell)."""
CheckShape = Callable[[tuple[int, ...]], "str | None"]
"""``check(shape) -> problem or None``: refuse a shape the caller cannot use, before the data is read."""


def _dtype_problem(dtype: np.dtype) -> str | None:
    if dtype.hasobject:
        return "holds Python objects (dtype object), not numbers; refused"
    if np.issubdtype(dtype, np.complexfloating):
        return f"holds complex numbers (dtype {dtype}); latents and directions are real"
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        return f"does not hold numbers (dtype {dtype})"
    return None


def _read_header(fp: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the ``.npy`` stream at ``fp`` (ValueError when it is not one)."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp, max_header_size=_NPY_HEADER_LIMIT)
    if version in ((2, 0), (3, 0)):
        return np.lib.format.read_array_header_2_0(fp, max_header_size=_NPY_HEADER_LIMIT)
    raise ValueError(f"unsupported .npy format version {version}")


def _read_exact(fp: IO[bytes], nbytes: int) -> bytes:
    chunks = []
    left = nbytes
    while left > 0:
        chunk = fp.read(min(left, 2**24))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_npy(fp: IO[bytes], available: int, fail: Callable[[str], Exception], check_shape: CheckShape | None,
              max_elements: int) -> np.ndarray:
    """Read one ``.npy`` stream whose whole size is ``available`` bytes, checking its header first."""
    try:
        shape, fortran, dtype = _read_header(fp)
    except ValueError as exc:
        if "max_header_size" in str(exc):
            raise fail(f"has an .npy header longer than {_NPY_HEADER_LIMIT} bytes; refused") from None
        raise fail(f"is not a valid .npy array ({' '.join(str(exc).split())})") from None
    problem = _dtype_problem(dtype)
    if problem:
        raise fail(problem)
    count = math.prod(shape)
    if count > max_elements:
        raise fail(f"claims shape {list(shape)} ({count} numbers); at most {max_elements} are read")
    if check_shape is not None:
        problem = check_shape(tuple(int(n) for n in shape))
        if problem:
            raise fail(problem)
    nbytes = count * dtype.itemsize
    header_end = fp.tell()
    if nbytes > available - header_end:
        raise fail(f"is truncated: its header claims shape {list(shape)} ({nbytes} bytes of data), but only "
                   f"{max(available - header_end, 0)} bytes follow")
    raw = _read_exact(fp, nbytes)
    if len(raw) != nbytes:
        raise fail(f"is truncated: expected {nbytes} bytes of data, read {len(raw)}")
    arr = np.frombuffer(raw, dtype=dtype, count=count)
    return arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)


def load_array(full: Path, shown: str, loc: Locator, field: Path_, *, choose: ChooseMember | None = None,
               check_shape: CheckShape | None = None, max_elements: int = MAX_ARRAY_ELEMENTS) -> np.ndarray:
    """Read an array file named in a scene, as float64.

    Args:
        full: The file.
        shown: The path as the scene wrote it (quoted in messages).
        loc: Where errors point.
        field: The scene field that names the file (``faces.a.latent``...).
        choose: For an ``.npz``: picks the member from the list of array names (default: the only one).
        check_shape: Refuses shapes the caller cannot use, before the data is read.
        max_elements: Most numbers the array may hold.

    Returns:
        The array, float64, every value finite in float32.

    Raises:
        SceneError: The file is missing, not a regular file, not .npy/.npz, corrupt, truncated, too large, of the
            wrong shape or dtype, or holds values that are not finite in float32.
    """

    def fail(problem: str) -> Exception:
        return loc.error(field, f"{shown!r} {problem}")

    try:
        st = os.stat(full)
    except FileNotFoundError:
        raise fail(f"not found (looked for {full})") from None
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        # Checked before opening: opening a FIFO for reading blocks until someone writes to it.
        raise fail(f"is not a regular file ({file_kind(st.st_mode)})")
    try:
        with open(full, "rb") as fh:
            magic = fh.read(6)
            fh.seek(0)
            if magic.startswith(b"PK"):
                arr = _read_npz(fh, fail, choose, check_shape, max_elements)
            elif magic == b"\x93NUMPY":
                arr = _read_npy(fh, st.st_size, fail, check_shape, max_elements)
            else:
                raise fail("is not an .npy or .npz file")
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror or exc}") from None
    values = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise fail("contains NaN or infinite values")
    biggest = float(np.max(np.abs(values))) if values.size else 0.0
    if biggest > _FLOAT32_MAX:
        raise fail(f"holds {biggest:g}, beyond float32's range (latents are rendered in float32)")
    return values


def _read_npz(fh: IO[bytes], fail: Callable[[str], Exception], choose: ChooseMember | None,
              check_shape: CheckShape | None, max_elements: int) -> np.ndarray:
    try:
        with zipfile.ZipFile(fh) as zf:
            infos = [i for i in zf.infolist() if i.filename.endswith(".npy")]
            if len(zf.infolist()) > MAX_NPZ_MEMBERS:
                raise fail(f"holds {len(zf.infolist())} files; an .npz of latents holds a few")
            if not infos:
                raise fail("is a zip file without .npy arrays in it")
            by_name = {i.filename[:-4]: i for i in infos}
            names = list(by_name)
            if choose is not None:
                name = choose(names)
            elif len(names) == 1:
                name = names[0]
            else:
                raise fail(f"holds several arrays ({', '.join(names)})")
            info = by_name[name]
            # The uncompressed size from the zip header bounds what is read: a zip bomb's member is refused here
            # (or by the .npy header's claim against it) before anything is decompressed.
            limit = max_elements * 16 + _NPY_HEADER_LIMIT + 128
            if info.file_size > limit:
                raise fail(f"member {name!r} is {info.file_size} bytes uncompressed; at most {limit} are read")
            with zf.open(info) as member:
                arr = _read_npy(member, info.file_size, lambda p: fail(f"member {name!r} {p}"), check_shape,
                                max_elements)
                if member.read(1):
                    raise fail(f"member {name!r} has bytes after its array")
            return arr
    except (zipfile.BadZipFile, zlib.error) as exc:
        raise fail(f"is a damaged .npz ({exc})") from None
    except (zipfile.LargeZipFile, NotImplementedError, EOFError, RuntimeError) as exc:
        raise fail(f"cannot be read as .npz ({exc})") from None
    except ValueError as exc:
        raise fail(f"cannot be read as .npz ({' '.join(str(exc).split())})") from None
