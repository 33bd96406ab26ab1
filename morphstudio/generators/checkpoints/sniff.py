"""Tell a checkpoint's format from its first bytes, never from its name.

Users rename files, download HTML error pages as ``.pkl`` and keep Git LFS pointers instead of weights; the
first few bytes say what a file really is, and the error for a wrong one should say that too.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from morphstudio.errors import CheckpointError

#: ``torch.save``'s legacy (pre-1.6) format starts with this pickled magic number.
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
ZIP_MAGIC = b"PK\x03\x04"

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


def sniff(path: Path) -> Sniffed:
    """Identify the checkpoint format of ``path`` from its content.

    Raises:
        CheckpointError: Missing, a directory, empty, unreadable, or not a checkpoint format (the message says
            what the file looks like instead).
    """
    if not path.exists():
        raise CheckpointError(path, "no such file")
    if path.is_dir():
        raise CheckpointError(path, "is a directory, not a checkpoint file")
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
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
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (n,) = struct.unpack("<Q", head[:8])
    if n < 2 or n > 100_000_000:
        return False
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
