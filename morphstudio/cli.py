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
import importlib
import sys
from typing import Sequence

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


if __name__ == "__main__":
    sys.exit(main())
