"""One render per output at a time: a lock file ``.NAME.lock`` beside the output.

The file holds the owner's host and pid (for the message a second render gets). On POSIX it is also held with
``flock``, which the kernel drops when the owner dies however it dies, so a lock file left by a killed render is
recognisably stale and is taken over with a note. Without ``fcntl`` (Windows) the pid alone decides: a lock of a
pid that no longer runs on this host is stale. A lock written on another host is never taken over: morphstudio
cannot tell whether that render still runs.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from morphstudio.errors import RenderError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def lock_path_for(output: str | Path) -> Path:
    """``dir/.NAME.lock`` beside the output (a file or a png folder alike)."""
    out = Path(output)
    return out.with_name(f".{out.name}.lock")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just someone else's
    except OSError:
        return False
    return True


def _owner(data: dict[str, Any]) -> str:
    return f"pid {data.get('pid', '?')} on {data.get('host', '?')}"


def _read(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 65536)
    try:
        data = json.loads(raw.decode("utf-8", "replace")) if raw.strip() else {}
    except ValueError:
        return {"unreadable": True}
    return data if isinstance(data, dict) else {"unreadable": True}


class OutputLock:
    """Exclusive claim on an output for the duration of a render.

    Args:
        output: The output file or folder.
        label: How messages name the output's field (``output.path``, ``-o``).

    Use :meth:`acquire` / :meth:`release`, or ``with``.
    """

    def __init__(self, output: str | Path, label: str = "output.path") -> None:
        self.output = Path(output)
        self.path = lock_path_for(output)
        self.label = label
        self.note: str | None = None
        self._fd: int | None = None

    def acquire(self) -> str | None:
        """Take the lock.

        Returns:
            A note when a stale lock (its render died) was taken over, else None.

        Raises:
            RenderError: Another render holds it, or a lock from another host is in the way.
        """
        for _ in range(20):  # only a lock removed or replaced between open and flock makes it go round
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not self._claim(fd):
                    continue
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            return self.note
        raise RenderError(f"{self.label}: could not take the lock {self.path} (it keeps changing)")

    def _claim(self, fd: int) -> bool:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._busy(_read(fd)) from None
            # A render finishing right now may have unlinked the file we opened: then ours is not the lock.
            try:
                if not os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    os.close(fd)
                    return False
            except FileNotFoundError:
                os.close(fd)
                return False
        old = _read(fd)
        host = socket.gethostname()
        if old and not old.get("unreadable"):
            if old.get("host") != host:
                raise RenderError(
                    f"{self.label}: {self.output} is locked by a render on another host ({_owner(old)}); if none "
                    f"is running there, delete {self.path}"
                )
            pid = old.get("pid")
            if fcntl is None and isinstance(pid, int) and pid != os.getpid() and pid_alive(pid):
                raise self._busy(old)
            self.note = (f"note: took over the lock {self.path} of an earlier render ({_owner(old)}) that is no "
                         "longer running")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"host": host, "pid": os.getpid(), "started": time.time(),
                                 "output": str(self.output)}).encode() + b"\n")
        return True

    def _busy(self, data: dict[str, Any]) -> RenderError:
        return RenderError(
            f"{self.label}: {self.output} is being written by another render ({_owner(data)}): wait for it to "
            f"finish or choose another output (lock file {self.path})"
        )

    def release(self) -> None:
        """Give the lock up (removes the file). Safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it, so nobody takes a lock that is going away
        finally:
            os.close(fd)

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class OutputClaim:
    """What a render holds on its output from before any planning or model work to its end: the output's folder
    (made if missing, removed again if this render made it and leaves nothing there) and the lock.

    Taken first, so a second render of the same output fails at once — before a model loads or a calibration
    runs — and hands over to the writer, which releases it when the render ends (:meth:`release`,
    :meth:`remove_created`).

    Args:
        output: The output file or folder (absolute).
        label: How messages name the output's field (``output.path``, ``-o``).
    """

    def __init__(self, output: str | Path, label: str = "output.path") -> None:
        self.output = Path(output)
        self.label = label
        self.lock = OutputLock(output, label)
        self.held = False
        self._created: list[Path] = []  # folders this claim made, deepest first

    @property
    def note(self) -> str | None:
        """A note when a stale lock (its render died) was taken over, else None."""
        return self.lock.note

    def acquire(self) -> str | None:
        """Make the output's folder if missing and take the lock (a second call does nothing).

        Returns:
            A note when a stale lock was taken over, else None.

        Raises:
            RenderError: The folder cannot be made or written, or another render holds the output (the
                folders made for it are removed again).
        """
        if self.held:
            return self.note
        self._prepare_folder()
        try:
            note = self.lock.acquire()
        except BaseException:
            self.remove_created()
            raise
        self.held = True
        return note

    def release(self) -> None:
        """Give the lock up. Safe to call more than once."""
        if self.held:
            self.lock.release()
            self.held = False

    def remove_created(self) -> None:
        """Remove the folders :meth:`acquire` made, while they are empty (anything put there is left alone)."""
        for folder in self._created:
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []

    def _prepare_folder(self) -> None:
        parent = self.output.parent
        missing: list[Path] = []
        p = parent
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RenderError(f"output.path: cannot create the folder {parent}: {exc.strerror or exc}") from None
        self._created = missing
        if not os.access(parent, os.W_OK):
            self.remove_created()
            raise RenderError(f"output.path: the folder {parent} is not writable")
