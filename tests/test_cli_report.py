"""One error reporter: ``cli.main`` and the watch loop print a user error the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from morphstudio.errors import MorphError, SceneError, report


def test_report_is_one_error_line_plus_an_optional_hint() -> None:
    assert report(MorphError("x.yaml:3: fps: must be positive")) == ("error: x.yaml:3: fps: must be positive", 2)
    text, code = report(SceneError("unknown face 'c'", file="x.yaml", line=9, field="timeline[2].face",
                                   hint="faces are: a, b"))
    assert text == "error: x.yaml:9: timeline[2].face: unknown face 'c'\nhint: faces are: a, b" and code == 2


def test_cli_and_watch_loop_print_the_same_lines(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from morphstudio.cli import build_parser, main
    from morphstudio.commands.scene_args import parse_common
    from morphstudio.commands.watch import watch_preview
    from morphstudio.sinks import window

    bad = tmp_path / "bad.yaml"
    bad.write_text("model: nothere.pkl\nfaces: {a: {seed: 1}}\ntimeline: [{at: 0, face: a}]\n")
    assert main(["validate", str(bad)]) == 2
    cli_err = capsys.readouterr().err.strip().splitlines()
    assert len(cli_err) == 2 and cli_err[0].startswith("error: ") and "nothere.pkl" in cli_err[0]
    assert cli_err[1].startswith("hint: ")  # an error with a hint: both lines must come through the watch too

    class NoWindow:
        def __init__(self, **kwargs) -> None:
            pass

        def idle(self, seconds: float) -> None:
            pass

        def destroy(self) -> None:
            pass

    monkeypatch.setattr(window, "WindowSink", NoWindow)
    monkeypatch.setattr(window, "check_display", lambda: None)
    args = build_parser().parse_args(["preview", str(bad), "--watch", "-q"])
    assert watch_preview(args, parse_common(args), max_cycles=1, poll=0.01) == 0
    watch_err = capsys.readouterr().err.strip().splitlines()
    assert watch_err[: len(cli_err)] == cli_err  # the same error (and hint) lines, then the "watching" line
    assert watch_err[len(cli_err)].startswith("watching ")
