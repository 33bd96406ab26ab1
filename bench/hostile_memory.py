#!/usr/bin/env python3
"""Peak memory of reading small hostile checkpoints (issue 7): each file asks for gigabytes it does not contain.

Run: ``.venv/bin/python bench/hostile_memory.py [--limit-gib 10] [--only SUBSTRING]``

Every case is built by ``tests/hostile_files.py`` and read with ``read_checkpoint`` in a fresh child process
under ``RLIMIT_AS`` (default 10 GiB: importing torch alone maps ~3 GiB of address space), so an unfixed loader fails
with an allocation error instead of exhausting the machine. Prints, per case: file size, the child's peak RSS
(``ru_maxrss``), the time, and the first line of what it said. Set ``PYTHONPATH`` to the checkout to measure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import hostile_files  # noqa: E402

CHILD = r"""
import json, resource, sys
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
outcome = "loaded"
try:
    from morphstudio.generators.checkpoints import read_checkpoint
    from morphstudio.errors import MorphError
    try:
        read_checkpoint(sys.argv[1])
    except MorphError as exc:
        outcome = "error: " + str(exc).splitlines()[0]
except BaseException as exc:  # the point is to see what an unfixed loader does
    outcome = f"CRASH {type(exc).__name__}: " + (str(exc).splitlines() or [""])[0]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"outcome": outcome[:150], "peak": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-gib", type=float, default=10.0, help="RLIMIT_AS of each child (GiB)")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = parser.parse_args()
    limit = int(args.limit_gib * 2**30)
    worst = (0, "")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'case':46s} {'file':>10s} {'peak RSS':>10s} {'time':>7s}  outcome")
        for name, build in hostile_files.WORST_CASES.items():
            if args.only not in name:
                continue
            folder = Path(tmp) / str(abs(hash(name)))
            folder.mkdir()
            path = build(folder)
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(limit)], capture_output=True,
                                  text=True, timeout=600)
            elapsed = time.perf_counter() - t0
            try:
                result = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                result = {"outcome": f"child died (rc {proc.returncode}): {proc.stderr.strip()[-150:]}", "peak": 0}
            peak = result["peak"]
            worst = max(worst, (peak, name))
            print(f"{name:46s} {hostile_files.size_of(path):>10,d} {peak / 2**30:>8.2f} G {elapsed:>6.1f}s  "
                  f"{result['outcome']}", flush=True)
            path.unlink()
    print(f"worst case: {worst[1]}: peak RSS {worst[0] / 2**30:.2f} GiB (limit {args.limit_gib:g} GiB)")


if __name__ == "__main__":
    main()
