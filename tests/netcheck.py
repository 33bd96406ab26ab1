"""Network confinement check for the Ray tests: every TCP/UDP socket of a process tree stays on 127.0.0.1.

Reads ``ss`` (iproute2) for listening sockets (``-tnlp``), connections (``-tnp``) and UDP (``-unap``), keeps the
ones owned by the given processes, and fails on any local or peer address that is not loopback: a listener on
``0.0.0.0`` / ``*`` or a connection to another address.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_PID = re.compile(r"pid=(\d+)")


def descendants(root: int) -> set[int]:
    """``root`` and every process below it (from ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(text.split(" ", 1)[0]))
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    return seen


def is_loopback(address: str) -> bool:
    """``127.0.0.1:80``, ``[::ffff:127.0.0.1]:80``, ``[::1]:80`` are; ``*:80``, ``0.0.0.0:80``, others are not."""
    host = address.rsplit(":", 1)[0].strip("[]")
    if "%" in host:  # an interface suffix (127.0.0.1%lo)
        host = host.split("%", 1)[0]
    return host.startswith("127.") or host == "::1" or host.startswith("::ffff:127.")


def offending(ss_output: str, pids: set[int], *, listening: bool) -> tuple[list[str], int]:
    """Lines of ``ss -H`` output owned by ``pids`` with a non-loopback address, and how many were owned.

    Args:
        ss_output: ``ss -H -tnlp`` / ``-tnp`` / ``-unap`` text (``-unap`` lines start with a state too).
        pids: The processes to check.
        listening: Listeners have a wildcard peer (``0.0.0.0:*``, ``*:*``); only their local address counts.
    """
    bad, owned = [], 0
    for line in ss_output.splitlines():
        found = {int(p) for p in _PID.findall(line)}
        if not found & pids:
            continue
        owned += 1
        cols = line.split()
        local, peer = cols[3], cols[4]
        wildcard_peer = peer.endswith(":*")
        if not is_loopback(local) or (not (listening or wildcard_peer) and not is_loopback(peer)):
            bad.append(line.strip())
    return bad, owned


def assert_loopback_only(root: int) -> int:
    """Fail when a process under ``root`` listens on or talks to anything but loopback.

    Returns:
        How many sockets were checked (a caller asserts it is not 0, so the check cannot pass vacuously).
    """
    pids = descendants(root)
    problems: list[str] = []
    total = 0
    for args, listening in ((["-tnlp"], True), (["-tnp"], False), (["-unap"], False)):
        text = subprocess.run(["ss", "-H", *args], capture_output=True, text=True, check=True).stdout
        bad, owned = offending(text, pids, listening=listening)
        problems += bad
        total += owned
    assert not problems, "sockets off loopback:\n" + "\n".join(problems)
    return total
