"""Keep native libraries' log chatter off the command line's stderr (unless ``--verbose``).

mediapipe's C++ side (absl, TFLite) writes lines such as
``W0000 00:00:1796119831.706534  9569 inference_feedback_manager.cc:114] Feedback manager requires ...`` and
``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` straight to file descriptor 2 on every ``align`` /
``project``: no Python logger or environment variable of mediapipe 0.10.21 turns them off (absl prints them
before its logging is initialised). So for the CLI's own process, fd 2 is pointed at a pipe and a thread copies
everything to the real stderr except lines of exactly those shapes. The library never does this: it would be a
process-wide side effect for whoever imports it.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from types import TracebackType

# Whole lines that are dropped: absl's "I0000 hh:mm:ss.micros  thread file.cc:line] ..." (any severity) and
# TFLite's two banners.
_DROP = re.compile(
    rb"(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] .*"
    rb"|INFO: Created TensorFlow Lite .*"
    rb"|INFO: Initialized TensorFlow Lite runtime\..*"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR)[\r\n]*"
)
# An unfinished piece of output that may still become a dropped line (it starts like one) is held back until its
# line ends; anything else (a progress bar redrawn after "\r") is passed on at once.
_MAYBE_FIRST = b"IWEF"
_LINE_END = re.compile(rb"[^\r\n]*(?:\r\n|\n|\r)")


class NativeLogFilter:
    """A context manager: while active, native log lines written to fd 2 are dropped, all else passes through.

    Args:
        enabled: False makes it do nothing (``--verbose``).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._saved: int | None = None
        self._read: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> NativeLogFilter:
        if not self.enabled:
            return self
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no fd 2 (embedded interpreter): nothing to filter
            return self
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._saved, self._read = saved, read
        self._thread = threading.Thread(target=self._pump, name="morphstudio-stderr-filter", daemon=True)
        self._thread.start()
        return self

    def _emit(self, data: bytes) -> None:
        assert self._saved is not None
        while data:
            try:
                n = os.write(self._saved, data)
            except OSError:
                return  # the real stderr is gone (closed pipe): nothing more can be shown
            data = data[n:]

    def _pump(self) -> None:
        assert self._read is not None
        held = b""
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                break
            if not chunk:
                break
            held += chunk
            out = []
            pos = 0
            for m in _LINE_END.finditer(held):
                line = m.group(0)
                pos = m.end()
                if not _DROP.fullmatch(line):
                    out.append(line)
            held = held[pos:]
            if held and held[:1] not in _MAYBE_FIRST:
                out.append(held)
                held = b""
            if out:
                self._emit(b"".join(out))
        if held and not _DROP.fullmatch(held):
            self._emit(held)
        os.close(self._read)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._saved is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)  # closes the pipe's write end: the pump reads the rest, then end of file
        if self._thread is not None:
            # A child process that inherited the pipe (an ffmpeg still exiting) keeps it open: do not wait on it,
            # and leave the pump its copy of the real stderr (closing it under a running thread could hand the
            # number to a new file).
            self._thread.join(timeout=2)
            if self._thread.is_alive():
                return
        os.close(self._saved)
        self._saved = None
