"""`pomagan-post probe`: what render will see in an input, without rendering anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from pomagan_post.cli import main

from .imaging import (cut_short, make_exr_plate, ramp, write_avi_with_dropped_frames, write_clip, write_file,
                      write_turned_clip)


def probe(*args: object):
    return CliRunner().invoke(main, ["probe", *map(str, args)])


def test_probe_describes_video_sequence_and_image_and_writes_nothing(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "shot.mov", n=5, codec="prores_ks", pix_fmt="yuv422p10le",
                      timecode="01:00:00:00")
    turned = tmp_path / "phone.mp4"
    write_turned_clip(turned, -90)
    plate, _ = make_exr_plate(tmp_path, frames=(1001, 1002, 1004))
    still = tmp_path / "still.png"
    write_file(still, ramp(30, 40, 3), "uint8")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = probe(clip, turned, plate, still)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    lines = result.output.splitlines()
    assert lines[:5] == [
        f"{clip}: video (prores, yuv422p10le, 10-bit)",
        "  size: 64x48, pixel aspect 1",
        "  frames: 0-4 (5 frames), 24 fps, timecode 01:00:00:00",
        "  colour: rec709 (tags: transfer unknown, primaries unknown, matrix unknown, read as BT.601 as players read "
        "standard definition, tv range)",
        "  audio: none",
    ]
    assert f"{turned}: video (png, rgb24, 8-bit)" in lines
    assert ("  rotation: stored 48x64, display matrix 270 degrees; rendered upright as players "
            "show it") in lines  # and its size is the upright 64x48
    assert f"{plate}: sequence {plate} (openexr, half, 16-bit, 3 channel(s))" in lines
    assert "  frames: 1001-1004 (3 frames), 23.976 fps, timecode 01:00:00:00" in lines
    assert "  windows: data (5, 3, 37, 23), display (0, 0, 48, 30) (x, y, w, h)" in lines
    assert ("  missing, unreadable or another size: 1 frame(s): 1003 (render stops at the first "
            "unless --on-error skip)") in lines
    assert "    frame 1003: missing file" in lines
    assert lines[-4:] == [f"{still}: image (png, uint8, 8-bit, 3 channel(s))",
                          "  size: 40x30, pixel aspect 1", "  frames: one image, timecode none",
                          "  colour: srgb"]


def test_probe_reports_a_bad_input_and_goes_on(tmp_path: Path) -> None:
    still = tmp_path / "still.png"
    write_file(still, ramp(30, 40, 3), "uint8")
    result = probe(tmp_path / "gone.mov", still)
    assert result.exit_code == 2
    assert f"pomagan-post: error: {tmp_path / 'gone.mov'}: no such video file" in result.stderr
    assert result.stdout.startswith(f"{still}: image (png")


def test_probe_reads_every_frames_header_for_sizes_and_damage(tmp_path: Path) -> None:
    for frame in (1, 2, 3, 4):
        write_file(tmp_path / f"p.{frame:04d}.png", ramp(24, 20 if frame == 3 else 32, 3), "uint8")
    (tmp_path / "p.0004.png").write_bytes(b"not an image at all")
    result = probe(tmp_path / "p.####.png")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert ("  missing, unreadable or another size: 2 frame(s): 3-4 (render stops at the first unless "
            "--on-error skip)") in lines
    assert "    frame 3: p.0003.png is 20x24, the sequence is 32x24 (frame 1)" in lines
    assert any(line.startswith(f"    frame 4: cannot read {tmp_path / 'p.0004.png'}") for line in lines), lines


def test_probe_start_frame_numbers_a_video_and_is_refused_for_a_sequence(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "shot.mov", n=5, codec="prores_ks", pix_fmt="yuv422p10le",
                      timecode="01:00:00:00")
    plate, _ = make_exr_plate(tmp_path, frames=(1001, 1002))
    result = probe("--start-frame", 1001, clip, plate)
    assert result.exit_code == 2
    assert "  frames: 1001-1005 (5 frames), 24 fps, timecode 01:00:00:00" in result.stdout.splitlines()
    assert result.stderr.strip() == (f"pomagan-post: error: {plate.name}: --start-frame numbers a "
                                     "video's frames; an image sequence is numbered by its file names")
    assert probe("--start-frame", -1, clip).exit_code == 2


def test_probe_check_decodes_every_frame_and_exits_3_on_a_bad_one(tmp_path: Path) -> None:
    """--check finds what a header check cannot: an EXR cut inside its pixels, a video whose
    data ends before its index says; NaN pixels are counted, not failed."""
    for frame in range(1, 7):
        data = ramp(24, 32, 3, seed=frame)
        if frame == 2:
            data[3:5, 3:8] = np.nan
        write_file(tmp_path / f"p.{frame:04d}.exr", data, "half", compression="none")
    data = (tmp_path / "p.0004.exr").read_bytes()
    (tmp_path / "p.0004.exr").write_bytes(data[: len(data) * 2 // 3])
    clip = cut_short(write_clip(tmp_path / "shot.mov", n=12, codec="prores_ks",
                                pix_fmt="yuv422p10le", index_first=True))
    plain = probe(tmp_path / "p.####.exr")
    assert plain.exit_code == 0 and "missing" not in plain.stdout  # headers are all whole
    result = probe("--check", tmp_path / "p.####.exr", clip)
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert ("  missing, unreadable or another size: 1 frame(s): 4 (render stops at the first "
            "unless --on-error skip)") in lines
    assert any(line.startswith(f"    frame 4: cannot read {tmp_path / 'p.0004.exr'}: ") for line in lines)
    assert "  pixels: 5 frame(s) decoded, 1 not" in lines
    assert ("  NaN or infinite values: 30 in 1 frame(s): 2 (render reads NaN as 0, infinity as "
            "the brightest value)") in lines
    assert "    frames 5-11: did not decode: the file's data ends before it" in lines
    assert "  pixels: 5 frame(s) decoded, 7 not" in lines
    good = probe("--check", write_clip(tmp_path / "good.mov", n=3))
    assert good.exit_code == 0 and "  pixels: 3 frame(s) decoded" in good.stdout.splitlines()



def test_probe_check_names_an_avis_dropped_frames(tmp_path: Path) -> None:
    """An AVI's empty frame slots are no failure (render repeats the frame before, as players
    do), and --check names them, in the text and in --json."""
    import json

    avi = write_avi_with_dropped_frames(tmp_path / "capture.avi")
    result = probe("--check", avi)
    assert result.exit_code == 0, result.output
    assert "  pixels: 8 frame(s) decoded" in result.stdout.splitlines()
    assert ("  no picture in the file for frame(s) 3, 6 (dropped when it was recorded or converted): "
            "render repeats the frame before each, as players show them") in result.stdout.splitlines()
    record = json.loads(probe("--json", "--check", avi).stdout)[0]
    assert record["check"]["repeated"] == [3, 6] and record["check"]["bad"] == []


def test_probe_json_gives_pipeline_tools_the_same_facts(tmp_path: Path) -> None:
    """--json: one array, an object per input (an input that cannot be opened included with its
    error and exit code); rates as exact fractions, frames as numbers, gaps with reasons."""
    import json

    clip = write_clip(tmp_path / "shot.mov", n=5, codec="prores_ks", pix_fmt="yuv422p10le",
                      timecode="01:00:00:00")
    plate, _ = make_exr_plate(tmp_path, frames=(1001, 1002, 1004))
    result = probe("--json", clip, plate, tmp_path / "gone.mov")
    assert result.exit_code == 2  # the missing input
    video, sequence, gone = json.loads(result.stdout)
    assert video["kind"] == "video" and video["format"] == "prores" and video["bits"] == 10
    assert (video["width"], video["height"], video["frames"]) == (64, 48, [0, 1, 2, 3, 4])
    assert video["fps"] == "24/1" and video["timecode"] == "01:00:00:00" and video["audio_tracks"] == 0
    assert (video["color_matrix"], video["matrix_used"]) == ("unknown", "smpte170m")  # untagged SD
    assert sequence["kind"] == "sequence" and sequence["fps"] == "24000/1001"
    assert sequence["frames"] == [1001, 1002, 1004] and sequence["missing"] == {"1003": "missing file"}
    assert sequence["data_window"] == [5, 3, 37, 23] and sequence["display_window"] == [0, 0, 48, 30]
    assert gone["exit_code"] == 2 and "gone.mov" in gone["error"]
    checked = probe("--json", "--check", plate)
    assert checked.exit_code == 3
    (record,) = json.loads(checked.stdout)
    assert record["check"] == {"decoded": 3, "bad": [], "stopped_at": None, "non_finite": {},
                               "repeated": []}
