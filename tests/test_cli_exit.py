"""The console entry point ends the process quickly but loses nothing: exit handlers, output and exit status."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT / "scenes" / "demo.yaml"


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MORPHSTUDIO_CACHE=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)


def test_exit_handlers_finalizers_and_piped_output_survive_the_fast_exit(tmp_path: Path) -> None:
    got = run_python(f"""
        import atexit, tempfile
        from morphstudio.cli import entry
        scratch = tempfile.TemporaryDirectory(dir={str(tmp_path)!r})
        print("scratch", scratch.name)
        atexit.register(print, "atexit ran")
        entry(["validate", {str(SCENE)!r}])
        print("never reached")
        """, tmp_path)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[-1] == "atexit ran" and "never reached" not in got.stdout
    assert any("demo.yaml" in line for line in lines)  # validate's own report reached the pipe
    scratch = Path(lines[0].split(" ", 1)[1])
    assert not scratch.exists()  # weakref.finalize clean-ups (temporary folders) ran


def test_a_user_error_keeps_its_status_and_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: builtin:dcgan-faces64\nfaces: {a: {seed: -1}}\ntimeline: [{at: 0, face: a}]\n")
    got = subprocess.run([sys.executable, "-m", "morphstudio", "validate", str(bad)], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert got.returncode == 2
    assert got.stderr.startswith("error: ") and "bad.yaml:2" in got.stderr


def test_a_live_non_daemon_thread_is_waited_for(tmp_path: Path) -> None:
    got = run_python(f"""
        import threading, time
        import morphstudio.cli as cli
        def late():
            time.sleep(0.5)
            print("thread finished", flush=True)
        real_main = cli.main
        def main(argv):
            code = real_main(argv)
            threading.Thread(target=late).start()  # still running when the exit begins
            return code
        cli.main = main
        cli.entry(["validate", {str(SCENE)!r}])
        """, tmp_path)
    assert got.returncode == 0, got.stderr
    assert "thread finished" in got.stdout
