"""The ``morphstudio`` command line.

Each subcommand lives in its own module under :mod:`morphstudio.commands` and exposes
``register(subparsers) -> None``, which adds an ``argparse`` parser whose default ``func(args) -> int`` runs it.
Modules are imported only when the CLI is built, so ``morphstudio --help`` stays quick.

User mistakes raise :class:`morphstudio.errors.MorphError`; they are printed by :func:`morphstudio.errors.report`
as one ``error:`` line (plus an optional hint) and exit with status 2. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
import threading
from typing import NoReturn, Sequence

from morphstudio.errors import MorphError, report

# Order is the order shown in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "render",
    "validate",
    "preview",
    "inspect",
    "convert",
    "align",
    "project",
    "encoder",
    "live",
    "score",
    "directions",
    "edit",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="morphstudio",
        description="Streaming face-morph renderer for StyleGAN-family generators.",
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show informational logs and native libraries' own log lines (mediapipe, TFLite)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"morphstudio.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    from morphstudio.commands.native_logs import NativeLogFilter

    verbose = bool(getattr(args, "verbose", False))
    if verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        with NativeLogFilter(enabled=not verbose):
            return int(args.func(args) or 0)
    except MorphError as err:
        text, code = report(err)
        print(text, file=sys.stderr)
        return code
    except KeyboardInterrupt:
        resumable = args.command == "render" and not (getattr(args, "watch", False) or getattr(args, "dry_run", False))
        print("interrupted" + ("; finished video segments are kept: run the same command with --resume to "
                               "continue from them" if resumable else ""), file=sys.stderr)
        return 130


def entry(argv: Sequence[str] | None = None) -> NoReturn:
    """The console entry point (``morphstudio``, ``python -m morphstudio``, ``render.py``): :func:`main`, then
    :func:`exit_now`."""
    exit_now(main(argv))


def exit_now(code: int) -> NoReturn:
    """End the process with ``code``, skipping the interpreter's teardown when nothing is left running.

    Once torch is imported, the ordinary exit spends 0.6-1.1 s on a 2-core CPU tearing down its modules and
    libraries after every output has already been closed and committed (``bench/peer.py``: a twentieth of a whole
    40-frame 256 px render). The exit handlers still run -- ``atexit`` functions, ``weakref.finalize`` clean-ups
    such as temporary folders, logging's flush -- and stdio is flushed; only the module teardown is skipped. If a
    non-daemon thread is still alive the ordinary exit runs instead, since it waits for such threads.
    """
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
    if any(not t.daemon for t in others):
        sys.exit(code)
    atexit._run_exitfuncs()  # what the ordinary exit would run first; CPython's own hook for embedders
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said there anyway
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
