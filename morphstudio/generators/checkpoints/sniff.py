"""Tell a checkpoint's format from its first bytes, never from its name.

Users rename files, download HTML error pages as ``.pkl`` and keep Git LFS pointers instead of weights; the
first few bytes say what a file really is, and the error for a wrong one should say that too.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from morphstudio.errors import CheckpointError

#: ``torch.save``'s legacy (pre-1.6) format starts with this pickled magic number.
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
ZIP_MAGIC = b"PK\x03\x04"
#: Largest safetensors header accepted. A generator's header lists a few hundred tensors (~100 KB); the
#: safetensors library's own limit is 100 MB, which Python's json would turn into gigabytes of objects.
MAX_SAFETENSORS_HEADER = 16 * 2**20

_OTHER_KINDS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF8", "a GIF image"),
    (0, b"BM", "a BMP image"),
    (0, b"\x1f\x8b", "a gzip archive (unpack it first)"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive (unpack it first)"),
    (0, b"\x89HDF", "an HDF5/Keras file"),
    (0, b"\x93NUMPY", "a NumPy .npy array"),
    (0, b"%PDF", "a PDF document"),
    (4, b"ftyp", "a video (MP4/MOV)"),
    (257, b"ustar", "a tar archive (unpack it first)"),
)


@dataclass(frozen=True)
class Sniffed:
    """What :func:`sniff` found.

    Attributes:
        format: ``"pickle"``, ``"torch-zip"``, ``"torch-legacy"`` or ``"safetensors"``.
    """

    format: str


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_regular(path: Path) -> os.stat_result:
    """``stat`` ``path`` and refuse anything but a regular file, without opening it (a FIFO would block).

    Raises:
        CheckpointError: Missing, unreadable, a directory, FIFO, socket or device.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CheckpointError(path, "no such file") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(path, f"is {_kind(st.st_mode)}, not a checkpoint file")
    return st


@contextlib.contextmanager
def open_regular(path: Path) -> Iterator[BinaryIO]:
    """Open ``path`` for reading only if it is a regular file.

    Checked before opening (:func:`check_regular`) and again on the open descriptor, which is opened
    non-blocking so that a file swapped for a FIFO in between cannot hang the open either.

    Raises:
        CheckpointError: Not a regular file, or unreadable.
    """
    check_regular(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CheckpointError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CheckpointError(path, f"is {_kind(mode)}, not a checkpoint file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def sniff(path: Path) -> Sniffed:
    """Identify the checkpoint format of ``path`` from its content.

    Raises:
        CheckpointError: Missing, not a regular file (directory, FIFO, device), empty, unreadable, or not a
            checkpoint format (the message says what the file looks like instead).
    """
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(4096)
    except OSError as exc:
        raise CheckpointError(path, f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise CheckpointError(path, "the file is empty (0 bytes): an interrupted download?")

    if head.startswith(LEGACY_TORCH_MAGIC):
        return Sniffed("torch-legacy")
    if head.startswith(ZIP_MAGIC):
        return Sniffed("torch-zip")
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return Sniffed("pickle")
    if _looks_like_safetensors(head, size, path):
        return Sniffed("safetensors")
    raise CheckpointError(path, f"not a checkpoint: it looks like {describe(head)}",
                          hint="supported: NVIDIA .pkl (PyTorch or TensorFlow), rosinality .pt, .safetensors")


def _looks_like_safetensors(head: bytes, size: int, path: Path) -> bool:
    """8-byte little-endian header length, then a JSON object. A cut-off file is reported as such."""
    if len(head) < 9 or head[8:9] not in (b"{", b"["):  # a list is no valid header, but say so (read_header)
        return False
    (n,) = struct.unpack("<Q", head[:8])
    if n < 2 or n >= 2**40:  # not a length: some other binary that happens to have "{" at byte 8
        return False
    if n > MAX_SAFETENSORS_HEADER:
        raise CheckpointError(path, f"safetensors header of {n} bytes; refusing headers over "
                                    f"{MAX_SAFETENSORS_HEADER // 2**20} MiB (a generator's is ~100 KB)")
    if 8 + n > size:
        raise CheckpointError(path, f"truncated safetensors file: its header alone should be {n} bytes, "
                                    f"the file has {size}")
    return True


def describe(head: bytes) -> str:
    """A few words on what ``head`` (a file's first bytes) looks like, for error messages."""
    for offset, magic, what in _OTHER_KINDS:
        if head[offset:offset + len(magic)] == magic:
            return what
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer (fetch the real file with `git lfs pull`)"
    if not head.strip(b"\x00"):
        return "only zero bytes (an incomplete download?)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        low = text.lstrip().lower()
        if low.startswith(("<!doctype html", "<html")):
            return "an HTML page (a failed download?)"
        if low.startswith(("{", "[")):
            try:
                json.loads(text)
                return "a JSON file"
            except ValueError:
                pass
        return "a text file"
    return f"an unknown binary format (starts with {head[:8].hex(' ')})"
