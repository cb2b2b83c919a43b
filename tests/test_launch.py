"""The console entry points (``pomagan_launch``): a Ctrl-C while a command's module (and torch)
is still loading ends it with one line and exit 130, as a Ctrl-C later does, not a traceback."""

from __future__ import annotations

import importlib

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


def test_each_entry_point_runs_its_command(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = []
    monkeypatch.setattr(importlib, "import_module",
                        lambda name: type("M", (), {"main": staticmethod(lambda: ran.append(name))}))
    for entry in ("post", "train", "ffmpeg"):
        getattr(pomagan_launch, entry)()
    assert ran == ["pomagan_post.cli", "pomagan_train.cli", "ffmpeg_filters.cli"]
