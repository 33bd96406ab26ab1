#!/usr/bin/env python
"""A small mutation tester: does the test selection notice when the code changes?

It applies one small change at a time to the given source files, runs a pytest selection against the changed
code, puts the file back, and reports which changes no test noticed (the *survivors*). A developer tool: slow by
nature, never part of ``make test``.

Mutations (``--ops``, all by default):

* ``cmp``     comparison flipped (``<`` -> ``>=``) or moved off by one (``<`` -> ``<=``); ``in`` <-> ``not in``,
  ``is`` <-> ``is not``
* ``int``     an integer constant +1 / -1
* ``bool``    ``and`` <-> ``or``
* ``not``     the condition of an ``if`` / ``while`` / conditional expression negated
* ``return``  a returned expression replaced with ``None``
* ``raise``   a ``raise`` statement dropped (replaced with ``pass``)
* ``arith``   ``+`` <-> ``-``, ``*`` <-> ``/``

Each mutant is a textual replacement of one AST node's source span (the rest of the file is untouched), so the
report can show exactly what changed. Code inside f-strings, docstrings and ``if __name__ == "__main__"`` /
``if TYPE_CHECKING`` blocks is left alone.

Safety: the tool refuses to start when any target file has uncommitted changes (``git status``), restores every
file from the bytes it read (``try/finally``, also on Ctrl-C and SIGTERM), and deletes the file's cached bytecode
around each run so neither the mutant nor the restored original is ever served a stale ``.pyc``.

Example (from the repository root)::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python scripts/mutate.py morphstudio/timeline/curves.py \\
        --tests "tests/test_timeline_curves.py tests/test_curves_formulas.py" --sample 30 --seed 1 \\
        --json /tmp/curves.json
    # later, after adding tests: re-run only what survived
    python scripts/mutate.py morphstudio/timeline/curves.py --tests "..." --rerun /tmp/curves.json
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
OPS = ("cmp", "int", "bool", "not", "return", "raise", "arith")

_CMP_SWAPS: dict[type, list[type]] = {
    ast.Lt: [ast.GtE, ast.LtE], ast.LtE: [ast.Gt, ast.Lt], ast.Gt: [ast.LtE, ast.GtE], ast.GtE: [ast.Lt, ast.Gt],
    ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.In: [ast.NotIn], ast.NotIn: [ast.In],
    ast.Is: [ast.IsNot], ast.IsNot: [ast.Is],
}
_ARITH_SWAPS: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


@dataclass
class Mutant:
    """One change to one file.

    Attributes:
        id: ``file:line:col:op:n`` - stable while the file is unchanged (used by ``--rerun``).
        file: Path relative to the repository root.
        line: 1-based line of the changed span.
        op: The mutation kind (one of :data:`OPS`).
        before: The original source of the span (first line).
        after: The replacement.
        start: ``(line, col)`` of the span (col in characters of the line).
        end: ``(end_line, end_col)``.
        status: ``killed``, ``survived``, ``timeout``, ``invalid`` (does not compile) or ``""`` (not run).
        seconds: Time the test run took.
    """

    id: str
    file: str
    line: int
    op: str
    before: str
    after: str
    start: tuple[int, int]
    end: tuple[int, int]
    status: str = ""
    seconds: float = 0.0


def _segment(lines: list[str], node: ast.AST) -> str:
    """Source text of ``node`` (``ast.get_source_segment`` with lines already split)."""
    l0, c0 = node.lineno - 1, node.col_offset  # type: ignore[attr-defined]
    l1, c1 = node.end_lineno - 1, node.end_col_offset  # type: ignore[attr-defined]
    if l0 == l1:
        return lines[l0].encode()[c0:c1].decode()
    parts = [lines[l0].encode()[c0:].decode()] + lines[l0 + 1:l1] + [lines[l1].encode()[:c1].decode()]
    return "\n".join(parts)


def _char_pos(lines: list[str], line: int, byte_col: int) -> int:
    """AST columns are UTF-8 byte offsets; convert to a character offset in the line."""
    return len(lines[line - 1].encode()[:byte_col].decode())


def _skipped_ranges(tree: ast.Module) -> list[tuple[int, int]]:
    """Line ranges never mutated: ``if __name__ == "__main__"`` and ``if TYPE_CHECKING`` blocks, docstrings."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            text = ast.unparse(node.test)
            if "__name__" in text or "TYPE_CHECKING" in text:
                out.append((node.lineno, node.end_lineno or node.lineno))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str):
                out.append((first.lineno, first.end_lineno or first.lineno))
    return out


def generate(path: Path, ops: tuple[str, ...]) -> list[Mutant]:
    """Every mutant of one file, in source order."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    skipped = _skipped_ranges(tree)
    in_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            in_fstring.update(id(n) for n in ast.walk(node))
    rel = str(path.resolve().relative_to(ROOT))
    out: list[Mutant] = []
    counter: dict[tuple[int, int, str], int] = {}

    def add(node: ast.AST, op: str, after: str, span: ast.AST | None = None) -> None:
        span = span or node
        line = span.lineno  # type: ignore[attr-defined]
        if id(node) in in_fstring or any(a <= line <= b for a, b in skipped):
            return
        before = _segment(lines, span)
        key = (line, span.col_offset, op)  # type: ignore[attr-defined]
        n = counter.get(key, 0)
        counter[key] = n + 1
        start = (line, _char_pos(lines, line, span.col_offset))  # type: ignore[attr-defined]
        end = (span.end_lineno, _char_pos(lines, span.end_lineno, span.end_col_offset))  # type: ignore[attr-defined]
        out.append(Mutant(f"{rel}:{line}:{span.col_offset}:{op}:{n}", rel, line, op,  # type: ignore[attr-defined]
                          before.splitlines()[0] if before else before, after, start, end))

    def swapped(node: ast.AST, field: str, index: int | None, new: ast.AST) -> str:
        clone = ast.parse(ast.unparse(node), mode="eval").body
        if index is None:
            setattr(clone, field, new)
        else:
            getattr(clone, field)[index] = new
        return f"({ast.unparse(clone)})"

    for node in ast.walk(tree):
        if "cmp" in ops and isinstance(node, ast.Compare):
            for i, cmp in enumerate(node.ops):
                for new in _CMP_SWAPS.get(type(cmp), []):
                    add(node, "cmp", swapped(node, "ops", i, new()))
        elif "int" in ops and isinstance(node, ast.Constant) and type(node.value) is int:
            for delta in (1, -1):
                add(node, "int", repr(node.value + delta))
        elif "bool" in ops and isinstance(node, ast.BoolOp):
            add(node, "bool", swapped(node, "op", None, ast.Or() if isinstance(node.op, ast.And) else ast.And()))
        elif "arith" in ops and isinstance(node, ast.BinOp) and type(node.op) in _ARITH_SWAPS:
            add(node, "arith", swapped(node, "op", None, _ARITH_SWAPS[type(node.op)]()))
        if "not" in ops and isinstance(node, (ast.If, ast.While, ast.IfExp)):
            test = node.test
            text = _segment(lines, test).replace("\n", " ")
            add(test, "not", f"(not ({text}))")
        if "return" in ops and isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                add(node.value, "return", "None")
        if "raise" in ops and isinstance(node, ast.Raise):
            add(node, "raise", "pass")
    out.sort(key=lambda m: (m.line, m.start[1], m.id))
    return out


def apply(source: str, m: Mutant) -> str:
    """``source`` with the mutant's span replaced."""
    lines = source.split("\n")
    (l0, c0), (l1, c1) = m.start, m.end
    head = "\n".join(lines[:l0 - 1] + [lines[l0 - 1][:c0]])
    tail = "\n".join([lines[l1 - 1][c1:]] + lines[l1:])
    return head + m.after + tail


def _drop_bytecode(path: Path) -> None:
    cached = Path(importlib.util.cache_from_source(str(path)))
    cached.unlink(missing_ok=True)


def _dirty(files: list[Path]) -> list[str]:
    res = subprocess.run(["git", "status", "--porcelain", "--", *map(str, files)], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return [line for line in res.stdout.splitlines() if line.strip()]


def run_tests(tests: list[str], timeout: float) -> tuple[str, float]:
    """Run the pytest selection; ``killed`` (a failure or error), ``survived`` (green) or ``timeout``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: pytest and anything it started
        proc.wait()
        return "timeout", time.monotonic() - t0
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM): stop the run in flight too, it sits in its own session.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return ("survived" if rc == 0 else "killed"), time.monotonic() - t0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the finally blocks that restore files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="source files to mutate")
    ap.add_argument("--tests", required=True, help='pytest selection, e.g. "tests/test_a.py tests/test_b.py -k x"')
    ap.add_argument("--sample", type=int, default=None, help="run a random sample of N mutants (default: all)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sample")
    ap.add_argument("--ops", default=",".join(OPS), help=f"comma-separated mutation kinds (default: all of {OPS})")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per test run (default: 3x the unmutated run, at least 30)")
    ap.add_argument("--json", type=Path, default=None, help="write the full report here")
    ap.add_argument("--rerun", type=Path, default=None,
                    help="a --json report: re-run only its survivors and timeouts")
    ap.add_argument("--list", action="store_true", help="print the mutants that would run, run nothing")
    args = ap.parse_args(argv)

    ops = tuple(o.strip() for o in args.ops.split(",") if o.strip())
    if unknown := [o for o in ops if o not in OPS]:
        ap.error(f"unknown mutation kind(s) {unknown}; known: {', '.join(OPS)}")
    files = [f.resolve() for f in args.files]
    for f in files:
        if not f.is_file() or f.suffix != ".py":
            ap.error(f"not a Python file: {f}")
        if ROOT not in f.parents:
            ap.error(f"{f} is outside the repository {ROOT}")
    tests = shlex.split(args.tests)

    mutants = [m for f in files for m in generate(f, ops)]
    generated = len(mutants)
    if args.rerun is not None:
        previous = json.loads(args.rerun.read_text())
        wanted = {m["id"] for m in previous["mutants"] if m["status"] in ("survived", "timeout")}
        mutants = [m for m in mutants if m.id in wanted]
        if len(mutants) != len(wanted):
            print(f"warning: {len(wanted) - len(mutants)} mutant(s) of the report no longer exist (source changed)")
    elif args.sample is not None and args.sample < len(mutants):
        mutants = sorted(random.Random(args.seed).sample(mutants, args.sample), key=lambda m: (m.file, m.line))
    if args.list:
        for m in mutants:
            print(f"{m.file}:{m.line}: [{m.op}] {m.before.strip()!s:.60} -> {m.after:.60}")
        print(f"{len(mutants)} of {generated} mutants")
        return 0

    if dirty := _dirty(files):
        print("refusing to start: these files have uncommitted changes (commit or stash them first):")
        print("\n".join("  " + line for line in dirty))
        return 2

    originals = {f: f.read_bytes() for f in files}
    signal.signal(signal.SIGTERM, _terminate)
    status, base_s = run_tests(tests, timeout=args.timeout or 600)
    if status != "survived":
        print(f"the unmutated code does not pass the selection ({status}): fix that first")
        return 2
    timeout = args.timeout or max(30.0, 3 * base_s)
    print(f"{generated} mutants generated in {len(files)} file(s); running {len(mutants)} "
          f"(tests: {' '.join(tests)}; unmutated run {base_s:.1f} s, timeout {timeout:.0f} s)", flush=True)

    interrupted = False
    try:
        for k, m in enumerate(mutants, 1):
            path = ROOT / m.file
            original = originals[path].decode("utf-8")
            mutated = apply(original, m)
            try:
                compile(mutated, str(path), "exec")
            except SyntaxError:
                m.status = "invalid"
                continue
            try:
                path.write_text(mutated, encoding="utf-8")
                _drop_bytecode(path)
                m.status, m.seconds = run_tests(tests, timeout)
            finally:
                path.write_bytes(originals[path])
                _drop_bytecode(path)
            mark = {"killed": ".", "survived": "S", "timeout": "T"}[m.status]
            print(f"[{k}/{len(mutants)}] {mark} {m.file}:{m.line} [{m.op}] {m.before.strip():.50} -> {m.after:.50}"
                  f" ({m.seconds:.1f} s)", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: files restored; partial report follows")
    finally:
        for path, data in originals.items():
            if path.read_bytes() != data:
                path.write_bytes(data)
            _drop_bytecode(path)

    ran = [m for m in mutants if m.status]
    counts = {s: sum(m.status == s for m in ran) for s in ("killed", "survived", "timeout", "invalid")}
    valid = counts["killed"] + counts["survived"] + counts["timeout"]
    score = 100.0 * (counts["killed"] + counts["timeout"]) / valid if valid else 100.0
    print()
    print(f"generated {generated}, ran {len(ran)}: killed {counts['killed']}, survived {counts['survived']}, "
          f"timeout {counts['timeout']}, invalid {counts['invalid']} (score {score:.0f}%)")
    for m in ran:
        if m.status in ("survived", "timeout"):
            print(f"  {m.status.upper():<8} {m.file}:{m.line} [{m.op}] {m.before.strip()} -> {m.after}")
    if args.json is not None:
        args.json.write_text(json.dumps({"generated": generated, "tests": tests, "counts": counts,
                                         "mutants": [asdict(m) for m in ran]}, indent=1))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
