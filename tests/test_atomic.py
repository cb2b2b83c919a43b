"""atomic_path: the one temp-file-and-rename used by checkpoints, exports, results and datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pomagan_post.io.atomic import atomic_path


def test_success_replaces_with_the_usual_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "results.csv"
    with atomic_path(target, fsync=True) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".csv" and tmp != target
        tmp.write_text("a,b\n")
    assert target.read_text() == "a,b\n"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.csv"]


def test_failure_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
