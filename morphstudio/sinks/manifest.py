"""The parts folder's manifest: which encoded segments are finished, and for what exactly.

Owned by :class:`morphstudio.sinks.segmented.SegmentedVideoWriter` (nothing else reads or writes it).

A segment is reused by ``--resume`` only when the scene fingerprint and every output setting match the current
render, its frame range and frame count are the same, its file is there with the recorded size and still has the
recorded content hash (sha256 of the file: a segment damaged after it was written is re-rendered, not joined),
and the latents of its frames hash to the recorded digest. Anything else is re-rendered.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from morphstudio.errors import RenderError
from morphstudio.files import atomic_path

MANIFEST_NAME = "manifest.json"
FORMAT = "morphstudio-parts/2"  # /2: segments record their frame count and content hash


def parts_dir_for(output: str | Path) -> Path:
    """``dir/.NAME.parts/`` beside the output file."""
    out = Path(output)
    return out.with_name(f".{out.name}.parts")


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks (a segment can be hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def latents_digest(ws: np.ndarray) -> str:
    """sha256 of the float32 latents of a segment (bit-exact: any change of the frames' inputs shows)."""
    h = LatentsHasher()
    h.update(ws)
    return h.hexdigest()


class LatentsHasher:
    """:func:`latents_digest` fed in chunks: the latents of a long segment are fetched a bounded chunk at a
    time, and the digest of the chunks in order equals the digest of the whole array (same float32 bytes)."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, ws: np.ndarray) -> None:
        self._h.update(np.ascontiguousarray(ws, dtype=np.float32).tobytes())

    def hexdigest(self) -> str:
        return self._h.hexdigest()[:32]


@dataclass
class Manifest:
    """What is in a parts folder.

    Attributes:
        folder: The parts folder.
        fingerprint: Scene fingerprint the segments were rendered from.
        settings: Output settings (size, fit, fps, codec, crf, precision, noise, segment length...).
        segments: ``"start-stop"`` -> ``{"file", "bytes", "frames", "sha256", "latents"}`` for finished segments.
        plan: The render's batch size and torch threads (``morphstudio.rendering.plan.CpuPlan.record``): they
            change a StyleGAN's floating-point sums, so ``--resume`` renders the rest with the same ones.
    """

    folder: Path
    fingerprint: str
    settings: dict[str, Any]
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST_NAME

    def save(self) -> None:
        """Write atomically (temp file + rename), so a kill never leaves a torn manifest."""
        data = {"format": FORMAT, "fingerprint": self.fingerprint, "settings": self.settings,
                "segments": self.segments, "plan": self.plan}
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))

    def record(self, start: int, stop: int, file: Path, digest: str, frames: int, sha256: str | None = None) -> None:
        """Mark a segment finished: its frame count and the file's content hash (thread-safe: encoder threads
        call this; the hash is taken outside the lock, so parallel encoders do not wait on each other).

        Args:
            start: First frame.
            stop: One past the last frame.
            file: The committed segment file (in the parts folder).
            digest: :func:`latents_digest` of the segment's latents.
            frames: Frames in the file.
            sha256: The hash the process that encoded it reported, if any: a file that arrived changed (a torn
                copy from another machine) is refused instead of recorded.

        Raises:
            RenderError: ``sha256`` was given and the file's content hash differs.
        """
        actual = file_sha256(file)
        if sha256 is not None and sha256 != actual:
            raise RenderError(f"segment {start}..{stop - 1} ({file.name}): its content hash differs from the one "
                              "its encoder reported (the file was damaged on the way); it is not used")
        entry = {"file": file.name, "bytes": file.stat().st_size, "frames": frames, "sha256": actual,
                 "latents": digest}
        with self._lock:
            self.segments[f"{start}-{stop}"] = entry
            self.save()

    def finished(self, start: int, stop: int, digest: str | None = None) -> Path | None:
        """The file of a finished segment matching ``start``/``stop`` (and ``digest`` when given), else None."""
        return self.verify(start, stop, digest)[0]

    def verify(self, start: int, stop: int, digest: str | None = None) -> tuple[Path | None, str | None]:
        """Check a finished segment before it is reused.

        Returns:
            ``(file, None)`` when it can be reused; ``(None, why)`` when it must be re-rendered (``why`` is
            None when there was simply nothing recorded).
        """
        entry = self.segments.get(f"{start}-{stop}")
        if not entry:
            return None, None
        f = self.folder / str(entry.get("file", ""))
        name = f"resume: segment {start}..{stop - 1} ({f.name})"
        if f.parent != self.folder or not f.is_file():
            return None, f"{name} is missing; rendering it again"
        if entry.get("frames") != stop - start:
            return None, f"{name} records {entry.get('frames')} frames, not {stop - start}; rendering it again"
        if f.stat().st_size != entry.get("bytes") or file_sha256(f) != entry.get("sha256"):
            return None, f"{name} changed since it was written (its content hash differs); rendering it again"
        if digest is not None and entry.get("latents") != digest:
            return None, f"{name} was made from other latents; rendering it again"
        return f, None


def recorded_plan(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """The plan an interrupted render of the same scene recorded in its manifest, or ``None``."""
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("fingerprint") != fingerprint:
        return None
    plan = data.get("plan")
    return plan if isinstance(plan, dict) else None


def open_parts(folder: Path, fingerprint: str, settings: dict[str, Any], resume: bool,
               plan: dict[str, Any] | None = None) -> tuple[Manifest, str]:
    """Prepare the parts folder for a render.

    Without ``resume`` an existing folder is replaced. With it, a manifest whose fingerprint and settings match
    is kept (its finished segments become reusable) and everything else in the folder is deleted. Either way a
    folder is deleted only when morphstudio made it (it holds a manifest, or nothing).

    Returns:
        The manifest and a short note for the user about what happened.

    Raises:
        RenderError: The folder exists but is not a parts folder morphstudio made.
    """
    settings = json.loads(json.dumps(settings))  # normalise tuples -> lists so comparisons match the file
    note = ""
    if resume and (folder / MANIFEST_NAME).is_file():
        try:
            data = json.loads((folder / MANIFEST_NAME).read_text())
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict) or not isinstance(data.get("segments", {}), dict):
            data = {}
        if data.get("format") == FORMAT and data.get("fingerprint") == fingerprint and data.get("settings") == settings \
                and data.get("plan") in (None, plan):
            man = Manifest(folder, fingerprint, settings,
                           {k: v for k, v in data.get("segments", {}).items() if isinstance(v, dict)}, plan)
            keep = {MANIFEST_NAME} | {str(e.get("file")) for e in man.segments.values() if isinstance(e, dict)}
            for f in folder.iterdir():
                if f.name not in keep:
                    if f.is_dir():
                        shutil.rmtree(f, ignore_errors=True)
                    else:
                        f.unlink(missing_ok=True)
            return man, f"resuming: {len(man.segments)} finished segment(s) in {folder}"
        note = ("resume: the scene, output settings or plan (--batch, --threads) changed since the interrupted "
                "render; starting over")
    elif resume:
        note = f"resume: nothing to resume in {folder}; rendering everything"
    if folder.exists():
        if not folder.is_dir() or (any(folder.iterdir()) and not (folder / MANIFEST_NAME).is_file()):
            raise RenderError(f"output.path: {folder} is in the way: morphstudio keeps its segments there, but it "
                              "is not a parts folder morphstudio made; move it away")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    man = Manifest(folder, fingerprint, settings, plan=plan)
    man.save()
    return man, note
