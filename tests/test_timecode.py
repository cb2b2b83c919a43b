"""Timecode: non-drop and drop-frame arithmetic, and per-frame timecode in written image headers."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pomagan_post.errors import BadInputError
from pomagan_post.io.base import ClipInfo
from pomagan_post.io.images import ImageSequenceSink, ImageSequenceSource
from pomagan_post.io.sequence import parse_pattern
from pomagan_post.io.timecode import (
    advance_timecode,
    frames_to_timecode,
    timecode_from_words,
    timecode_to_frames,
    timecode_words,
)

from .imaging import read_file

NTSC = Fraction(30000, 1001)


def test_non_drop_timecode_counts_at_the_nominal_rate() -> None:
    assert timecode_to_frames("01:00:00:00", 24) == 86400
    assert frames_to_timecode(86400 + 25, Fraction(24000, 1001)) == "01:00:01:01"
    assert frames_to_timecode(timecode_to_frames("23:59:59:23", 24) + 1, 24) == "00:00:00:00"
    assert advance_timecode("23:59:59:24", 1, Fraction(25)) == "00:00:00:00"
    with pytest.raises(BadInputError, match="expected HH:MM:SS:FF"):
        timecode_to_frames("1:2:3", 24)


def test_drop_frame_skips_two_labels_a_minute_except_every_tenth() -> None:
    assert advance_timecode("00:00:59;29", 1, NTSC) == "00:01:00;02"
    assert advance_timecode("00:09:59;29", 1, NTSC) == "00:10:00;00"
    assert advance_timecode("00:01:00;02", -1, NTSC) == "00:00:59;29"
    assert timecode_to_frames("00:01:00;02", NTSC) == 1800
    assert timecode_to_frames("00:10:00;00", NTSC) == 17982
    # One hour of drop-frame timecode is 107,892 frames: 3.6 s short of 108,000 at 29.97 fps.
    assert timecode_to_frames("01:00:00;00", NTSC) == 107892
    assert frames_to_timecode(107892, NTSC, drop=True) == "01:00:00;00"
    assert frames_to_timecode(107892, NTSC) == "00:59:56:12"  # the same count, non-drop labels
    assert advance_timecode("23:59:59;29", 1, NTSC) == "00:00:00;00"  # wraps at 24 hours
    assert advance_timecode("00:00:59;58", 3, Fraction(60000, 1001)) == "00:01:00;05"  # 59.94: 4 a minute
    # Every count maps to a label and back.
    for count in range(0, 40000, 37):
        assert timecode_to_frames(frames_to_timecode(count, NTSC, drop=True), NTSC) == count


def test_header_words_carry_the_drop_frame_flag() -> None:
    word, user = timecode_words("01:23:45;28", NTSC)
    assert word == 0x01234528 | 1 << 6 and user == 0
    assert timecode_from_words((word, user)) == "01:23:45;28"
    assert timecode_from_words(timecode_words("12:59:59:23", 24)) == "12:59:59:23"
    # Uninitialised header fields (ffmpeg's DPX encoder writes whatever was in memory): no time.
    assert timecode_from_words((283788363, 941757738)) is None  # read as 10:70:44;11 before
    assert timecode_from_words((0x25000000, 0)) is None  # 25 hours
    assert timecode_from_words((0x00006000, 0)) is None  # 60 seconds


@pytest.mark.parametrize("ext", ["exr", "dpx"])
def test_sequence_written_from_a_drop_frame_source_keeps_drop_frame_labels(tmp_path: Path, ext: str) -> None:
    """A 29.97 drop-frame clip rendered to files: each file's header holds the frame's own
    drop-frame timecode (across a minute boundary), and reading the files back gives it again."""
    first = timecode_to_frames("01:00:59;28", NTSC)
    info = ClipInfo(8, 6, list(range(first, first + 4)), "srgb", fps=NTSC, timecode="01:00:59;28")
    sink = ImageSequenceSink(parse_pattern(tmp_path / f"s_fg.#######.{ext}"), info, kind="fg")
    for frame in info.frames:
        sink.write(frame, np.full((6, 8, 4), 0.5, np.float32))
    sink.close()
    expected = ["01:00:59;28", "01:00:59;29", "01:01:00;02", "01:01:00;03"]
    got = [read_file(tmp_path / f"s_fg.{frame:07d}.{ext}")[1].getattribute("smpte:TimeCode")
           for frame in info.frames]
    assert [timecode_from_words(words) for words in got] == expected
    assert all(words[0] & 1 << 6 for words in got)  # the drop-frame flag is set in every header
    back = ImageSequenceSource(tmp_path / f"s_fg.#######.{ext}").info
    assert back.timecode == "01:00:59;28" and back.frames == info.frames


def test_a_frame_range_in_timecode_becomes_frame_numbers() -> None:
    from pomagan_post.io.timecode import has_timecode, timecodes_to_frames

    assert has_timecode("01:00:00:10-01:00:01:00") and not has_timecode("1001-1100:2")
    assert timecodes_to_frames("01:00:00:10-01:00:01:00", "01:00:00:00", 24, 0, "a.mov") == "10-24"
    assert timecodes_to_frames("01:00:00:00-01:00:00:10x2", "01:00:00:00", 25, 1001, "p") == "1001-1011x2"
    # a drop-frame clip: what the user types reads as drop-frame, as the editor shows it
    assert timecodes_to_frames("00:01:00:02", "00:00:59;28", Fraction(30000, 1001), 0, "a.mov") == "2"
    with pytest.raises(BadInputError, match=r"--frames 00:59:59:00: 00:59:59:00 is before a.mov's first frame \(01:00:00:00\)"):
        timecodes_to_frames("00:59:59:00", "01:00:00:00", 24, 0, "a.mov")
    with pytest.raises(BadInputError, match="a.mov has no timecode; give frame numbers instead"):
        timecodes_to_frames("01:00:00:00", None, 24, 0, "a.mov")
    # a label drop-frame skips (it read as the clip's first frame, two frames early) and others
    # that are no timecode are refused, not read as some other frame
    ntsc = Fraction(30000, 1001)
    with pytest.raises(BadInputError, match=r"01:01:00;00 does not exist in drop-frame timecode .* the "
                                            r"frame after it is 01:01:00;02"):
        timecodes_to_frames("01:01:00;00-01:01:00;03", "01:00:59;28", ntsc, 0, "a.mov")
    assert timecodes_to_frames("01:01:00;02-01:01:00;03", "01:00:59;28", ntsc, 0, "a.mov") == "2-3"
    assert timecodes_to_frames("01:10:00;00", "01:09:59;28", ntsc, 0, "a.mov") == "2"  # each tenth minute keeps ;00
    for bad in ("01:00:00:24", "01:00:60:00"):
        with pytest.raises(BadInputError, match=f"{bad} is not a timecode at 24 frames a second"):
            timecodes_to_frames(bad, "01:00:00:00", 24, 0, "a.mov")
