"""The console entry points (``pomagan_launch``): a Ctrl-C while a command's module (and torch)
is still loading ends it with one line and exit 130, as a Ctrl-C later does, not a traceback."""

from __future__ import annotations

import importlib
import os
import signal
import time

import pytest

import pomagan_launch


@pytest.mark.parametrize("entry, prog", [("post", "pomagan-post"), ("train", "pomagan-train"),
                                         ("ffmpeg", "pomagan-ffmpeg")])
def test_ctrl_c_while_starting_is_one_line_and_exit_130(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str],
                                                       entry: str, prog: str) -> None:
    def interrupted(name: str) -> None:
        raise KeyboardInterrupt  # what Ctrl-C during ``import torch`` raises

    monkeypatch.setattr(importlib, "import_module", interrupted)
    with pytest.raises(SystemExit) as stopped:
        getattr(pomagan_launch, entry)()
    assert stopped.value.code == 130
    assert capsys.readouterr().err == f"{prog}: stopped: SIGINT (while starting)\n"


def test_ctrl_c_while_starting_is_not_lost_to_code_that_catches_everything(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A real SIGINT in the middle of the import, inside a bare ``except`` (as some imported code
    has): the command still stops before its main runs, and Ctrl-C's handler is put back."""
    ran = []

    def swallowing(name: str) -> type:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here
        except BaseException:  # noqa: B036 - what the imported code does
            pass
        return type("M", (), {"main": staticmethod(lambda: ran.append(name))})

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(importlib, "import_module", swallowing)
    with pytest.raises(SystemExit) as stopped:
        pomagan_launch.post()
    assert stopped.value.code == 130 and ran == []
    assert capsys.readouterr().err == "pomagan-post: stopped: SIGINT (while starting)\n"
    assert signal.getsignal(signal.SIGINT) is before


def test_each_entry_point_runs_its_command(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = []
    monkeypatch.setattr(importlib, "import_module",
                        lambda name: type("M", (), {"main": staticmethod(lambda: ran.append(name))}))
    for entry in ("post", "train", "ffmpeg"):
        getattr(pomagan_launch, entry)()
    assert ran == ["pomagan_post.cli", "pomagan_train.cli", "ffmpeg_filters.cli"]


@pytest.mark.parametrize("module, args, message, command", [
    ("pomagan_post.cli", ["render", "shot.mov", "--tta", "maybe"],
     "Invalid value for '--tta': 'maybe' is not one of 'none', 'flip'.", "pomagan-post render"),
    ("pomagan_post.cli", ["render"], "Missing argument 'INPUT...'.", "pomagan-post render"),
    ("pomagan_post.cli", ["rendr", "shot.mov"], "No such command 'rendr'. Did you mean 'render'?", "pomagan-post"),
    ("pomagan_train.cli", ["seg", "--lr-g", "fast", "--out", "run"],
     "Invalid value for '--lr-g': 'fast' is not a valid float.", "pomagan-train seg"),
    ("ffmpeg_filters.cli", ["shot.mov", "out.mov", "--temporal", "-1"],
     "Invalid value for '--temporal': -1 is not in the range 0<=x<=8.", "pomagan-ffmpeg"),
])
def test_a_command_line_mistake_is_one_line_and_exit_2(module: str, args: list[str], message: str,
                                                        command: str) -> None:
    """As every other error: one line on stderr naming the command's help, exit 2, nothing on
    stdout (which may be a pipe)."""
    from click.testing import CliRunner

    result = CliRunner().invoke(importlib.import_module(module).main, args, prog_name=command.split()[0])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"{command.split()[0]}: error: {message} (see '{command} --help')\n"
