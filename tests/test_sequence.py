"""Frame-sequence notation, frame ranges and discovery (no image decoding involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pomagan_post.errors import BadInputError, MissingFramesError, UnsupportedFormatError
from pomagan_post.io.sequence import (
    SequencePattern,
    discover,
    find_sequences,
    format_frame_list,
    missing_frames,
    parse_frame_range,
    parse_pattern,
)


def touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_bytes(b"")


@pytest.mark.parametrize(
    "notation, padding",
    [
        ("plate.####.exr", 4),
        ("plate.%04d.exr", 4),
        ("plate.$F4.exr", 4),
        ("plate.@@@@.exr", 4),
        ("plate.#.exr", 1),
        ("plate.%d.exr", 1),
        ("plate.$F.exr", 1),
        ("plate.@.exr", 1),
        ("plate.%06d.exr", 6),
    ],
)
def test_every_notation_names_the_same_files(notation: str, padding: int) -> None:
    pattern = parse_pattern(f"/shots/{notation}")
    assert pattern == SequencePattern(Path("/shots"), "plate.", ".exr", padding)
    assert pattern.path(7).name == "plate." + "7".zfill(padding) + ".exr"
    assert pattern.path(12345678).name == "plate.12345678.exr"  # padding is a minimum
    assert pattern.stem == "plate"


def test_plain_paths_are_not_patterns_and_two_placeholders_are_refused() -> None:
    assert parse_pattern("/shots/plate.1001.exr") is None
    with pytest.raises(BadInputError, match="more than one"):
        parse_pattern("plate.####.%04d.exr")


def test_frame_of_accepts_only_what_the_pattern_would_write() -> None:
    pattern = parse_pattern("plate.####.exr")
    assert pattern.frame_of("plate.1001.exr") == 1001
    assert pattern.frame_of("plate.0007.exr") == 7
    assert pattern.frame_of("plate.12345.exr") == 12345
    assert pattern.frame_of("plate.-001.exr") == -1
    assert pattern.frame_of("plate.01001.exr") is None  # 5 digits for a 4-digit number
    assert pattern.frame_of("plate.7.exr") is None
    assert pattern.frame_of("plate.1001.exr.tmp") is None
    assert pattern.frame_of("other.1001.exr") is None


@pytest.mark.parametrize(
    "spec, frames",
    [
        ("1001", [1001]),
        ("1001-1005", [1001, 1002, 1003, 1004, 1005]),
        ("1001-1010x3", [1001, 1004, 1007, 1010]),
        ("1001-1009:4", [1001, 1005, 1009]),
        ("1001,1005-1007", [1001, 1005, 1006, 1007]),
        (" 5-6 , 1 ", [1, 5, 6]),
        ("1-3,2-4", [1, 2, 3, 4]),
        ("-2-1", [-2, -1, 0, 1]),
    ],
)
def test_frame_ranges(spec: str, frames: list[int]) -> None:
    assert parse_frame_range(spec) == frames


@pytest.mark.parametrize("spec", ["", "a-b", "1001-", "1010-1001", "1-5x0", "1..5", "1-5x"])
def test_bad_frame_ranges_are_one_clear_error(spec: str) -> None:
    with pytest.raises(BadInputError, match="frame range"):
        parse_frame_range(spec)


def test_format_frame_list_collapses_runs() -> None:
    assert format_frame_list([1001, 1002, 1003, 1007, 1009, 1010]) == "1001-1003, 1007, 1009-1010"
    assert "frames in all" in format_frame_list(list(range(0, 100, 2)), limit=4)


def test_find_sequences_uses_file_names_not_list_order(tmp_path: Path) -> None:
    # Created out of order, with a non-image and a hidden temp file that must be ignored.
    touch(tmp_path, "plate.1010.exr", "plate.0998.exr", "plate.1000.exr", "plate.0999.exr")
    touch(tmp_path, "notes.txt", ".plate.1001.exr.123.tmp")
    (seq,) = find_sequences(tmp_path)
    assert seq.pattern.prefix == "plate." and seq.pattern.padding == 4
    assert seq.frames == [998, 999, 1000, 1010]
    assert seq.gaps() == list(range(1001, 1010))


def test_unpadded_sequences_are_found(tmp_path: Path) -> None:
    touch(tmp_path, "f_9.png", "f_10.png", "f_11.png")
    (seq,) = find_sequences(tmp_path)
    assert seq.pattern.padding == 1 and seq.frames == [9, 10, 11]
    assert seq.pattern.path(10).name == "f_10.png"


def test_discover_pattern_with_range_and_gaps(tmp_path: Path) -> None:
    touch(tmp_path, *(f"plate.{f:04d}.exr" for f in (1001, 1002, 1004, 1005)))
    seq, wanted = discover(tmp_path / "plate.####.exr")
    assert seq.frames == [1001, 1002, 1004, 1005]
    assert wanted == [1001, 1002, 1003, 1004, 1005]
    assert missing_frames(seq, wanted) == [1003]

    seq, wanted = discover(tmp_path / "plate.%04d.exr", frames="1001-1005x2")
    assert wanted == [1001, 1003, 1005] and missing_frames(seq, wanted) == [1003]

    seq, wanted = discover(tmp_path / "plate.$F4.exr", frames=[1004, 1005])
    assert missing_frames(seq, wanted) == []


def test_discover_folder_and_single_file(tmp_path: Path) -> None:
    shot = tmp_path / "shot"
    shot.mkdir()
    touch(shot, "a.0001.png", "a.0002.png")
    seq, wanted = discover(shot)
    assert str(seq.pattern) == str(shot / "a.####.png") and wanted == [1, 2]

    touch(tmp_path, "still.png")
    seq, wanted = discover(tmp_path / "still.png")
    assert seq.pattern.is_single_file and wanted == [0]
    assert seq.pattern.path(0) == tmp_path / "still.png" and seq.pattern.stem == "still"
    assert seq.pattern.extension == ".png"


def test_discover_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="input not found"):
        discover(tmp_path / "nothing.exr")
    with pytest.raises(BadInputError, match="folder not found"):
        discover(tmp_path / "nowhere" / "plate.####.exr")
    with pytest.raises(MissingFramesError, match="no frames"):
        discover(tmp_path / "plate.####.exr")
    with pytest.raises(BadInputError, match="no numbered image sequence"):
        discover(tmp_path)
    touch(tmp_path, "a.0001.exr", "b.0001.exr", "b.0002.exr", "still.png")
    with pytest.raises(BadInputError, match="holds 2 sequences"):
        discover(tmp_path)
    with pytest.raises(MissingFramesError, match="none of the requested frames") as info:
        discover(tmp_path / "b.####.exr", frames="5-6")
    assert info.value.frames == [5, 6]
    with pytest.raises(BadInputError, match="single image"):
        discover(tmp_path / "still.png", frames="1-2")
    (tmp_path / "clip.txt").write_text("x")
    with pytest.raises(UnsupportedFormatError, match="clip.txt: not a picture or video this tool reads"):
        discover(tmp_path / "clip.txt")
