"""Video sources and sinks through PyAV, on tiny clips the tests make themselves."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest

from pomagan_post.errors import BadInputError, MissingFramesError, PomaganError, UnsupportedFormatError
from pomagan_post.io.base import ClipInfo, FrameSink, FrameSource
from pomagan_post.io.video import (
    VIDEO_CODECS,
    VideoSink,
    VideoSource,
    is_video_path,
    partial_path,
    resumable_frames,
)

from .imaging import cut_short, write_avi_with_dropped_frames, write_clip, write_turned_clip, write_vfr_clip

W, H = 64, 48

# Kr, Kb of the YUV matrices, for writing test YUV by hand (independent of swscale).
KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}
TAG = {"bt709": 1, "bt601": 6}


def rgb_to_yuv(rgb: tuple[float, float, float], matrix: str, bits: int, full: bool) -> tuple[int, ...]:
    kr, kb = KR_KB[matrix]
    r, g, b = rgb
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb = (b - y) / (2 * (1 - kb))
    cr = (r - y) / (2 * (1 - kr))
    top = (1 << bits) - 1
    if full:
        return tuple(int(round(v)) for v in (y * top, (cb + 0.5) * top, (cr + 0.5) * top))
    s = 1 << (bits - 8)
    return tuple(int(round(v * s)) for v in (16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr))


def flat_yuv_frame(pix_fmt: str, yuv: tuple[int, ...]) -> av.VideoFrame:
    frame = av.VideoFrame(W, H, pix_fmt)
    dtype = np.uint16 if "p10" in pix_fmt else np.uint8
    for plane, value in zip(frame.planes, yuv):
        np.frombuffer(plane, dtype=dtype)[:] = value
    return frame


def make_clip(
    path: Path,
    frames: list[av.VideoFrame],
    codec: str,
    pix_fmt: str,
    fps: Fraction = Fraction(25),
    options: dict[str, str] | None = None,
    timecode: str | None = None,
    audio: str | None = None,
    matrix: str = "bt709",
    full_range: bool = False,
    first_pts: int = 0,
    trc: int = 1,
) -> Path:
    """Writes ``frames`` (already in ``pix_fmt``) and optionally 0.5 s of a 440 Hz tone."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        stream.options = dict(options or {})
        ctx = stream.codec_context
        ctx.colorspace = TAG[matrix]
        ctx.color_primaries, ctx.color_trc = 1, trc
        ctx.color_range = 2 if full_range else 1
        if timecode:
            stream.metadata["timecode"] = timecode
        astream = None
        if audio:
            astream = out.add_stream(audio, rate=48000, layout="mono")
        for i, frame in enumerate(frames):
            frame.pts = first_pts + i
            frame.colorspace, frame.color_range = TAG[matrix], ctx.color_range
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if astream is not None:
            t = np.arange(24000) / 48000
            tone = (0.25 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            fmt = astream.codec_context.format.name
            if fmt == "s16":
                samples = (tone * 32767).astype(np.int16)[None]
            else:
                samples = tone[None]
            for start in range(0, 24000, 1024):
                af = av.AudioFrame.from_ndarray(samples[:, start:start + 1024], format=fmt, layout="mono")
                af.sample_rate, af.pts = 48000, start
                out.mux(astream.encode(af))
            out.mux(astream.encode(None))
    return path


def rgb_frames(colours: list[tuple[float, float, float]], pix_fmt: str) -> list[av.VideoFrame]:
    """Flat RGB frames converted by swscale (BT.709, limited range)."""
    frames = []
    for colour in colours:
        rgb = np.empty((H, W, 3), np.uint16)
        rgb[:] = np.round(np.array(colour) * 65535)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le")
        frames.append(frame.reformat(format=pix_fmt, dst_colorspace="itu709", dst_color_range="MPEG"))
    return frames


def ramp_frames(n: int, pix_fmt: str) -> list[av.VideoFrame]:
    """Horizontal ramps, frame i offset by i/64, so every frame differs."""
    frames = []
    for i in range(n):
        x = (np.arange(W) / (W - 1) * 0.8 + i / 64)[None, :, None]
        rgb = np.broadcast_to(np.concatenate([x, x * 0.5 + 0.1, 0.9 - x], axis=2), (H, W, 3))
        frame = av.VideoFrame.from_ndarray(np.round(rgb * 65535).astype(np.uint16), format="rgb48le")
        frames.append(frame.reformat(format=pix_fmt, dst_colorspace="itu709", dst_color_range="MPEG"))
    return frames


COLOURS = [(0.8, 0.4, 0.2), (0.1, 0.7, 0.35), (0.5, 0.5, 0.5), (0.9, 0.1, 0.6), (0.2, 0.25, 0.9)]
PRORES_HQ = {"profile": "3"}
H264_LOSSLESS = {"qp": "0", "preset": "ultrafast", "g": "4", "bf": "2"}


@pytest.fixture(scope="module")
def prores_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prores") / "shot.mov"
    return make_clip(path, ramp_frames(6, "yuv422p10le"), "prores_ks", "yuv422p10le",
                     fps=Fraction(24000, 1001), options=PRORES_HQ, timecode="01:00:00:00",
                     audio="pcm_s16le")


@pytest.fixture(scope="module")
def h264_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames, frame i a flat grey of level 20*i (8-bit), GOP 4 with B-frames, AAC audio."""
    path = tmp_path_factory.mktemp("h264") / "shot.mp4"
    greys = [(20 * i / 255,) * 3 for i in range(12)]
    return make_clip(path, rgb_frames(greys, "yuv420p"), "libx264", "yuv420p",
                     fps=Fraction(30), options=H264_LOSSLESS, audio="aac")


# ---------------------------------------------------------------------------------------------
# Sources


def test_prores_10bit_source_info_and_16bit_decode(prores_clip: Path) -> None:
    with VideoSource(prores_clip) as source:
        assert isinstance(source, FrameSource)
        info = source.info
        assert (info.width, info.height, info.channels) == (W, H, 3)
        assert info.frames == [0, 1, 2, 3, 4, 5]
        assert info.fps == Fraction(24000, 1001)
        assert info.timecode == "01:00:00:00"
        assert info.colorspace == "rec709"
        meta = info.metadata
        assert (meta["codec"], meta["pix_fmt"], meta["bit_depth"]) == ("prores", "yuv422p10le", 10)
        assert meta["decode_format"] == "yuv444p10le"  # upsampled, then the matrix in float
        assert meta["has_audio"] and meta["audio_codec"] == "pcm_s16le"
        assert (meta["color_range"], meta["color_matrix"]) == ("tv", "bt709")
        decoded = list(source)
    assert [n for n, _ in decoded] == info.frames
    rgb = decoded[0][1]
    assert rgb.dtype == np.float32 and rgb.shape == (H, W, 3)
    # 16-bit path: most values fall between 8-bit code values.
    off_grid = np.abs(rgb * 255 - np.round(rgb * 255)) > 0.05
    assert off_grid.mean() > 0.5
    assert len(np.unique(rgb)) > 64


def test_h264_8bit_source(h264_clip: Path) -> None:
    source = VideoSource(h264_clip)
    info = source.info
    assert info.frames == list(range(12)) and info.fps == 30
    # the matrix in float all the same (see test_8bit_video_decodes_to_its_code_values)
    assert info.metadata["bit_depth"] == 8 and info.metadata["decode_format"] == "yuv444p"
    assert info.metadata["audio_codec"] == "aac" and info.timecode is None
    for number, rgb in source:
        assert abs(float(rgb.mean()) - 20 * number / 255) < 1.5 / 255  # pts order, not decode order
    source.close()


@pytest.mark.parametrize(
    "codec, pix_fmt, matrix, full, tolerance",
    [
        ("prores_ks", "yuv422p10le", "bt709", False, 1.5e-3),
        ("libx264", "yuv420p", "bt709", False, 1.2e-2),
        ("libx264", "yuv420p", "bt601", False, 1.2e-2),
        ("libx264", "yuv444p10le", "bt709", True, 2.5e-3),
    ],
)
def test_known_colour_round_trips(
    tmp_path: Path, codec: str, pix_fmt: str, matrix: str, full: bool, tolerance: float
) -> None:
    """YUV written by hand with the tagged matrix and range decodes to the colour it encodes."""
    bits = 10 if "p10" in pix_fmt else 8
    frames = [flat_yuv_frame(pix_fmt, rgb_to_yuv(c, matrix, bits, full)) for c in COLOURS]
    options = PRORES_HQ if codec == "prores_ks" else H264_LOSSLESS
    path = make_clip(tmp_path / "colours.mov", frames, codec, pix_fmt, options=options,
                     matrix=matrix, full_range=full)
    with VideoSource(path) as source:
        assert source.info.metadata["color_range"] == ("pc" if full else "tv")
        errors = [np.abs(rgb - COLOURS[n]).max() for n, rgb in source]
    assert len(errors) == len(COLOURS)
    assert max(errors) < tolerance, errors


@pytest.mark.parametrize("size, matrix", [((720, 480), "bt601"), ((720, 576), "bt601"), ((1280, 720), "bt709"),
                                          ((480, 720), "bt601")])  # (the last: an SD clip turned)
def test_untagged_video_is_read_as_players_read_it(tmp_path: Path, size: tuple[int, int], matrix: str) -> None:
    """A stream with no matrix tag is read with BT.601 at standard definition (DV, DVD, SD
    broadcast) and BT.709 above, as players and editors read it (BT.709 for all: a saturated
    SD clip's (0.8, 0.3, 0.2) came out 12 codes too bright in red and 11 in green)."""
    width, height = size
    colour = (0.8, 0.3, 0.2)
    path = tmp_path / "untagged.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        frame = av.VideoFrame(width, height, "yuv444p")
        for plane, code in zip(frame.planes, rgb_to_yuv(colour, matrix, 8, full=False)):
            np.frombuffer(plane, np.uint8)[:] = code
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with VideoSource(path) as source:
        (_, rgb), = list(source)
        assert np.abs(rgb - colour).max() < 3e-3, rgb[0, 0]
        assert source.info.metadata["color_matrix"] == "unknown"  # the tag, as probe shows it
        assert source.info.metadata["matrix_used"] == {"bt601": "smpte170m", "bt709": "bt709"}[matrix]


def test_first_pts_not_zero_and_demux_count(tmp_path: Path) -> None:
    """Matroska has no frame count (demux pass) and keeps a first pts of 100."""
    path = make_clip(tmp_path / "late.mkv", rgb_frames(COLOURS, "yuv420p"), "libx264", "yuv420p",
                     options=H264_LOSSLESS, first_pts=100)
    with VideoSource(path) as source:
        assert source.info.metadata["frame_count_from"] == "demux"
        assert source.info.metadata["start_time"] == pytest.approx(4.0)
        assert source.info.frames == [0, 1, 2, 3, 4]
        got = {n: rgb for n, rgb in source}
    assert sorted(got) == [0, 1, 2, 3, 4]
    assert np.abs(got[3] - COLOURS[3]).max() < 1.2e-2


def test_frames_subset_seeks_and_skips(h264_clip: Path) -> None:
    with VideoSource(h264_clip, frames=[9, 5, 6]) as source:
        assert source.info.frames == [5, 6, 9]
        got = list(source)
    assert [n for n, _ in got] == [5, 6, 9]
    for n, rgb in got:
        assert abs(float(rgb.mean()) - 20 * n / 255) < 1.5 / 255
    with pytest.raises(MissingFramesError) as caught:
        VideoSource(h264_clip, frames=[3, 40])
    assert caught.value.frames == [40]


def test_start_frame_numbers_every_frame_from_it(h264_clip: Path) -> None:
    """--start-frame 1001: frames, subsets, errors and the timecode origin count from 1001; the
    pixels of frame 1001 + n are the clip's frame n."""
    with VideoSource(h264_clip) as plain:
        whole = dict(plain)
    with VideoSource(h264_clip, start_frame=1001) as source:
        assert source.info.frames == [1001 + n for n in sorted(whole)]
        assert source.info.metadata["frame_origin"] == 1001
        got = dict(source)
    assert sorted(got) == [1001 + n for n in sorted(whole)]
    for n, rgb in whole.items():
        np.testing.assert_array_equal(got[1001 + n], rgb)
    with VideoSource(h264_clip, frames=[1010, 1006, 1005], start_frame=1001) as source:
        assert source.info.frames == [1005, 1006, 1010]
        assert [n for n, _ in source] == [1005, 1006, 1010]
    with pytest.raises(MissingFramesError, match=r"has no frame\(s\) 1000, 1040 \(clip frames 1001-") as caught:
        VideoSource(h264_clip, frames=[1000, 1003, 1040], start_frame=1001)
    assert caught.value.frames == [1000, 1040]
    with pytest.raises(BadInputError, match="--start-frame must be 0 or more, not -1"):
        VideoSource(h264_clip, start_frame=-1)


def _prores_mov_indexed(path: Path) -> Path:
    return write_clip(path.with_suffix(".mov"), n=12, codec="prores_ks", pix_fmt="yuv422p10le", index_first=True)


def _ffv1_mkv(path: Path) -> Path:
    import subprocess

    path = path.with_suffix(".mkv")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-frames:v", "12",
                    "-c:v", "ffv1", str(path)], check=True)
    return path


def _ffmpeg_clip(suffix: str, *codec: str) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        import subprocess

        path = path.with_suffix(suffix)
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24",
                        "-frames:v", "12", *codec, str(path)], check=True)
        return path
    return make


_mjpeg_avi = _ffmpeg_clip(".avi", "-c:v", "mjpeg")
_dnxhr_mxf = _ffmpeg_clip(".mxf", "-c:v", "dnxhd", "-profile:v", "dnxhr_lb", "-pix_fmt", "yuv422p", "-s", "256x144")


@pytest.mark.parametrize("make", [_prores_mov_indexed, _ffv1_mkv, _mjpeg_avi, _dnxhr_mxf],
                         ids=["mov-index", "mkv-duration-tag", "avi-header", "mxf-header"])
def test_a_file_cut_short_names_the_frames_it_lacks(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    """A file whose index (MOV), stream DURATION tag (Matroska, which counts no frames; FFmpeg
    writes the tag when it finishes a file), header frame count (AVI) or header duration (MXF)
    promises 12 frames but whose data stops half-way (an interrupted copy): the frames it holds
    come out, then the rest are named instead of the clip just ending early."""
    whole = make(tmp_path / "shot")
    pictures = dict(VideoSource(whole))
    assert len(pictures) == 12  # the whole file: every frame, no error
    source = VideoSource(cut_short(whole))
    assert source.info.frames == list(range(12))
    got: list[int] = []
    with pytest.raises(MissingFramesError, match=r"frame\(s\) .* could not be decoded") as caught:
        for number, rgb in source:
            got.append(number)
            # each frame that comes out is that frame (the packet cut in two is not concealed
            # with another frame's picture and passed off as it)
            assert np.array_equal(rgb, pictures[number]), number
    assert len(got) >= 3 and got == list(range(len(got))) and caught.value.frames == list(range(len(got), 12))


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p"])
def test_8bit_video_decodes_to_its_code_values(tmp_path: Path, pix_fmt: str) -> None:
    """Flat frames of known 8-bit BT.709 codes decode to BT.709's exact RGB: mid-tones too
    (swscale's fast path from 8-bit 4:2:0 / 4:2:2 came out up to 1.9 codes dark, Y=60)."""
    codes = [(126, 128, 128), (100, 90, 170), (180, 140, 100), (60, 128, 128), (200, 100, 150)]
    path = tmp_path / f"flat_{pix_fmt}.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        stream.options = {"qp": "0", "preset": "ultrafast"}
        stream.codec_context.colorspace, stream.codec_context.color_range = 1, 1
        for i, levels in enumerate(codes):
            frame = av.VideoFrame(W, H, pix_fmt)
            for plane, level in zip(frame.planes, levels):
                np.frombuffer(plane, np.uint8)[:] = level
            frame.pts, frame.colorspace, frame.color_range = i, 1, 1
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with VideoSource(path) as source:
        for number, rgb in source:
            y, cb, cr = codes[number]
            luma, blue, red = (y - 16) / 219, (cb - 128) / 224, (cr - 128) / 224
            r, b = luma + 1.5748 * red, luma + 1.8556 * blue
            want = np.clip([r, (luma - 0.2126 * r - 0.0722 * b) / 0.7152, b], 0, 1)
            assert np.abs(rgb[H // 2, W // 2] - want).max() * 255 < 0.05, (number, rgb[H // 2, W // 2] * 255, want * 255)


def test_a_mov_cut_before_its_index_is_called_cut_short(tmp_path: Path) -> None:
    """A MOV's writer puts its index last: a copy cut short has none, and FFmpeg cannot open
    it. That is a damaged file (exit 3), said as such, not an unknown format (exit 4)."""
    whole = write_clip(tmp_path / "shot.mov", n=6, codec="prores_ks", pix_fmt="yuv422p10le")
    with pytest.raises(MissingFramesError, match=r"shot_cut.mov: cut short: the file has no index"):
        VideoSource(cut_short(whole))
    (tmp_path / "notes.mov").write_bytes(b"not a movie at all, just some words" * 10)
    with pytest.raises(UnsupportedFormatError, match="not a video FFmpeg can read"):
        VideoSource(tmp_path / "notes.mov")


def test_h264_with_b_frames_in_avi_comes_out_in_order(tmp_path: Path) -> None:
    """AVI keeps no presentation times and FFmpeg invents them from the decode order, which
    B-frames reorder: every frame still comes out, each with its own number (frame i is a flat
    grey of level 20 * i), whole or from a seek."""
    greys = [(20 * i / 255,) * 3 for i in range(12)]
    avi = make_clip(tmp_path / "shot.avi", rgb_frames(greys, "yuv420p"), "libx264", "yuv420p",
                    fps=Fraction(30), options=H264_LOSSLESS)
    with VideoSource(avi) as source:
        assert source.info.frames == list(range(12))
        levels = {n: float(rgb.mean()) * 255 for n, rgb in source}
    assert sorted(levels) == list(range(12))
    assert all(abs(level - 20 * n) < 2 for n, level in levels.items()), levels
    with VideoSource(avi, frames=[6, 7, 8]) as source:
        assert [(n, round(float(rgb.mean()) * 255 / 20)) for n, rgb in source] == [(6, 6), (7, 7), (8, 8)]


def test_an_avis_dropped_frames_repeat_the_frame_before(tmp_path: Path) -> None:
    """An AVI's empty frame slots (no picture in the file) hold the frame before, as players
    show them (they stopped the render, 'no whole picture'), and the source names them."""
    avi = write_avi_with_dropped_frames(tmp_path / "capture.avi")
    with VideoSource(avi) as source:
        assert source.info.frames == list(range(8))
        greys = {n: round(float(rgb.mean()) * 255 / 30) for n, rgb in source}
        assert greys == {0: 0, 1: 1, 2: 2, 3: 2, 4: 3, 5: 4, 6: 4, 7: 5}
        assert sorted(source.repeated) == [3, 6]
    with VideoSource(avi, frames=[1004, 1008], start_frame=1001) as source:  # an empty slot asked alone
        assert [(n, round(float(rgb.mean()) * 255 / 30)) for n, rgb in source] == [(1004, 2), (1008, 5)]
        assert sorted(source.repeated) == [1004]


@pytest.mark.parametrize("start_frame", [0, 1001])
def test_worker_errors_reach_the_consumer_with_the_frame_number(
    h264_clip: Path, monkeypatch: pytest.MonkeyPatch, start_frame: int
) -> None:
    """The third frame fails to convert (on one of several conversion threads): the frames
    before it come out, in order, then the error names it, counted from --start-frame."""
    convert = VideoSource._convert

    def failing(self: VideoSource, frame: av.VideoFrame) -> np.ndarray:
        rgb = convert(self, frame)
        if abs(float(rgb.mean()) * 255 - 40) < 3:  # frame i is a flat grey of level 20 * i
            raise ValueError("simulated corrupt frame")
        return rgb

    monkeypatch.setattr(VideoSource, "_convert", failing)
    source = VideoSource(h264_clip, start_frame=start_frame, convert_workers=4)
    got = []
    with pytest.raises(BadInputError, match=rf"cannot decode frame {start_frame + 2} \(simulated"):
        for number, _ in source:
            got.append(number)
    assert got == [start_frame, start_frame + 1]


@pytest.mark.parametrize("clip", ["prores_clip", "h264_clip"])
def test_parallel_conversion_keeps_frames_in_order(clip: str, request: pytest.FixtureRequest) -> None:
    """Frames converted on several threads come out in order, the same as on one thread."""
    path = request.getfixturevalue(clip)
    one = list(VideoSource(path, convert_workers=1))
    many = list(VideoSource(path, convert_workers=4, prefetch=2))
    assert [n for n, _ in many] == [n for n, _ in one] == list(range(len(one)))
    for (_, a), (_, b) in zip(one, many):
        np.testing.assert_array_equal(a, b)
    subset = list(VideoSource(path, frames=[1, 3, 4], convert_workers=3))
    assert [n for n, _ in subset] == [1, 3, 4]
    np.testing.assert_array_equal(subset[1][1], one[3][1])


def test_conversion_threads_end_with_the_iteration(h264_clip: Path) -> None:
    """However an iteration ends (to the end, or left early after the decoder has reached the
    end), its conversion threads are gone when it is."""
    before = threading.active_count()
    assert len(list(VideoSource(h264_clip, convert_workers=4))) == 12
    assert threading.active_count() == before
    for _ in VideoSource(h264_clip, convert_workers=4, frames=[9, 10, 11]):
        break
    assert threading.active_count() == before


def test_breaking_out_early_stops_the_worker(h264_clip: Path) -> None:
    before = threading.active_count()
    with VideoSource(h264_clip, prefetch=1, convert_workers=3) as source:
        for n, _ in source:
            if n == 1:
                break
    assert threading.active_count() == before


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_phone_footage_is_turned_upright(tmp_path: Path, rotation: int) -> None:
    """Frames stored sideways with a display matrix come out as players show them."""
    shown = write_turned_clip(tmp_path / "phone.mov", rotation)
    with VideoSource(tmp_path / "phone.mov") as source:
        assert (source.info.width, source.info.height) == (64, 48)
        assert source.info.metadata["rotation"] == rotation % 360
        frames = list(source)
    assert [n for n, _ in frames] == [0, 1, 2]
    for (_, rgb), expected in zip(frames, shown):
        assert rgb.shape == (48, 64, 3) and rgb.flags.c_contiguous
        np.testing.assert_allclose(rgb, expected / 255.0, atol=1e-4)
    upright = write_turned_clip(tmp_path / "upright.mov", 0)
    with VideoSource(tmp_path / "upright.mov") as source:
        assert source.info.metadata["rotation"] == 0
        np.testing.assert_allclose(next(iter(source))[1], upright[0] / 255.0, atol=1e-4)


def test_variable_frame_rate_is_conformed_by_holding_frames(tmp_path: Path) -> None:
    """Phone footage: frames at 0, 1, 2, 4, 6, 7 thirtieths of a second come out as 8 frames at
    30 fps, each source frame on its own slot and held over the empty ones, so every output frame
    sits at its source frame's time (numbered by the average 22.5 fps they drifted)."""
    frames = write_vfr_clip(tmp_path / "vfr.mov")
    with VideoSource(tmp_path / "vfr.mov") as source:
        assert source.info.fps == 30 and source.info.frames == list(range(8))
        meta = source.info.metadata
        assert meta["frame_rate_mode"] == "variable" and meta["decoded_frames"] == 6
        assert meta["average_fps"] == Fraction(45, 2)
        got = list(source)
    shown = [0, 1, 2, 2, 3, 3, 4, 5]  # the source frame on screen at each slot
    assert [n for n, _ in got] == list(range(8))
    for (_, rgb), index in zip(got, shown):
        np.testing.assert_allclose(rgb, frames[index] / 255.0, atol=1e-4)
    with VideoSource(tmp_path / "vfr.mov", frames=[3, 5, 6]) as subset:
        for number, rgb in subset:
            np.testing.assert_allclose(rgb, frames[shown[number]] / 255.0, atol=1e-4)
    write_turned_clip(tmp_path / "cfr.mov", 0)  # frames every 1/24 s
    with VideoSource(tmp_path / "cfr.mov") as cfr:
        assert cfr.info.metadata["frame_rate_mode"] == "constant" and cfr.info.fps == 24


def test_unreadable_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mov"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UnsupportedFormatError) as caught:
        VideoSource(junk)
    message = str(caught.value)
    assert str(junk) in message and "\n" not in message
    with pytest.raises(BadInputError, match="no such video file"):
        VideoSource(tmp_path / "missing.mov")


def test_is_video_path() -> None:
    assert all(is_video_path(f"a{ext}") for ext in (".mov", ".MP4", ".mkv", ".mxf", ".ts", ".webm"))
    assert not any(is_video_path(f"a{ext}") for ext in (".exr", ".png", ".dpx", ""))


# ---------------------------------------------------------------------------------------------
# Sinks


def clip_info(n: int = 5, fps: Fraction = Fraction(24000, 1001), timecode: str | None = "01:02:03:04",
              first: int = 0) -> ClipInfo:
    return ClipInfo(width=W, height=H, frames=list(range(first, first + n)), colorspace="rec709",
                    fps=fps, timecode=timecode)


def rgba_frames(n: int) -> list[np.ndarray]:
    """Smooth RGBA frames with a different alpha ramp in each."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    out = []
    for i in range(n):
        alpha = np.clip(x / (W - 1) + 0.1 * i - 0.2, 0, 1)
        rgb = np.stack([0.2 + 0.6 * y / H, 0.5 + 0.0 * x, 0.9 - 0.5 * x / W], axis=2)
        out.append(np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=2).astype(np.float32))
    return out


def read_back(path: Path, fmt: str) -> tuple[av.video.stream.VideoStream, dict, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        facts = {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "profile": stream.codec_context.profile,
            "rate": stream.average_rate,
            "timecode": stream.metadata.get("timecode") or container.metadata.get("timecode")
            or stream.metadata.get("TIMECODE"),
            "audio": [s.codec_context.name for s in container.streams.audio],
            "audio_duration": (
                float(container.streams.audio[0].duration * container.streams.audio[0].time_base)
                if container.streams.audio and container.streams.audio[0].duration else None
            ),
            "comment": container.metadata.get("comment") or container.metadata.get("COMMENT"),
        }
        pixels = [f.to_ndarray(format=fmt) / 65535.0 for f in container.decode(stream)]
    return stream, facts, pixels


# codec -> (decoded pix_fmt, alpha tolerance, rgb tolerance). FFmpeg's ProRes decoder reports
# 4444 as 12-bit (yuva444p12le) whatever the encoder's 10-bit input.
SINK_EXPECT = {
    "prores4444": ("prores", ("yuva444p10le", "yuva444p12le"), 1.5 / 1023, 1e-2),
    "prores4444-fast": ("prores", ("yuva444p10le", "yuva444p12le"), 1.5 / 1023, 1e-2),
    "png": ("png", ("rgba64be",), 1 / 65535, 1 / 65535),
    "ffv1": ("ffv1", ("gbrap16le", "rgba64le"), 1 / 65535, 1 / 65535),
}


@pytest.mark.parametrize("codec", list(VIDEO_CODECS))
def test_sink_rgba_round_trip(tmp_path: Path, codec: str) -> None:
    path = tmp_path / f"fg{VIDEO_CODECS[codec].extensions[0]}"
    frames = rgba_frames(5)
    with VideoSink(path, clip_info(), kind="fg", codec=codec) as sink:
        assert isinstance(sink, FrameSink)
        for number, image in enumerate(frames):
            sink.write(number, image)
    assert path.exists() and not list(tmp_path.glob(".*partial*"))
    name, pix_fmts, alpha_tol, rgb_tol = SINK_EXPECT[codec]
    _, facts, pixels = read_back(path, "rgba64le")
    assert facts["codec"] == name and facts["pix_fmt"] in pix_fmts
    if codec.startswith("prores4444"):
        assert facts["profile"] == "4444"
    assert len(pixels) == 5
    assert facts["rate"] == Fraction(24000, 1001)
    assert facts["timecode"] == "01:02:03:04"
    assert "alpha=premultiplied" in facts["comment"]
    for got, want in zip(pixels, frames):
        assert np.abs(got[..., 3] - want[..., 3]).max() <= alpha_tol
        assert np.abs(got[..., :3] - want[..., :3]).max() <= rgb_tol
    with VideoSource(path) as source:  # our own reader agrees
        assert source.info.frames == [0, 1, 2, 3, 4] and source.info.channels == 4
        assert source.info.timecode == "01:02:03:04"
        n, rgb = next(iter(source))
        assert np.abs(rgb - frames[0][..., :3]).max() <= rgb_tol + 1e-4


@pytest.mark.parametrize("codec", list(VIDEO_CODECS))
def test_sink_alpha_only(tmp_path: Path, codec: str) -> None:
    path = tmp_path / f"alpha{VIDEO_CODECS[codec].extensions[0]}"
    mattes = [f[..., 3] for f in rgba_frames(3)]
    with VideoSink(path, clip_info(3), kind="alpha", codec=codec) as sink:
        for number, matte in enumerate(mattes):
            sink.write(number, matte[..., None] if number % 2 else matte)
    _, pix_fmts, alpha_tol, _ = SINK_EXPECT[codec]
    if codec.startswith("prores4444"):
        _, facts, pixels = read_back(path, "rgba64le")
        for got, want in zip(pixels, mattes):
            assert np.abs(got[..., 3] - want).max() <= alpha_tol  # alpha plane
            assert np.abs(got[..., :3] - want[..., None]).max() <= 1e-2  # grey picture = matte
    else:
        _, facts, pixels = read_back(path, "gray16le")
        assert facts["pix_fmt"].startswith("gray16")
        for got, want in zip(pixels, mattes):
            assert np.abs(got - want).max() <= alpha_tol
    assert len(pixels) == 3
    # a matte has no colour to premultiply: no alpha label, as in the image files
    assert facts["comment"].startswith("kind=alpha; first frame 0;") and "alpha=" not in facts["comment"]


def test_prores_sink_writes_standard_levels(tmp_path: Path) -> None:
    """Raw decoded planes (12-bit) hold the BT.709 limited-range codes of the written colours,
    white at exactly 940 << 2, whatever swscale's own 16-bit white is."""
    colours = COLOURS + [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0)]
    path = tmp_path / "levels.mov"
    with VideoSink(path, clip_info(len(colours))) as sink:
        for number, colour in enumerate(colours):
            rgba = np.empty((H, W, 4), np.float32)
            rgba[:] = (*colour, 0.75)
            sink.write(number, rgba)
    with av.open(str(path)) as container:
        for colour, frame in zip(colours, container.decode(video=0)):
            assert frame.format.name == "yuva444p12le"
            got = [float(np.frombuffer(p, np.uint16).reshape(H, -1)[:, :W].mean()) for p in frame.planes]
            want = rgb_to_yuv(colour, "bt709", 12, full=False) + (0.75 * 4095,)
            assert np.abs(np.subtract(got, want)).max() <= 4.5, (colour, got, want)


# 10-bit codes beyond the legal range that cameras record: luma 1000 (R'G'B' 1.0685, a super-white)
# and 40 (-0.0274, a super-black), with neutral chroma; and a colour within range.
BEYOND = [(1000, 512, 512), (40, 512, 512), rgb_to_yuv((0.8, 0.4, 0.2), "bt709", 10, full=False)]
BEYOND_RGB = [((1000 - 64) / 876,) * 3, ((40 - 64) / 876,) * 3, (0.8, 0.4, 0.2)]


def test_super_whites_and_blacks_decode_and_encode_unclipped(tmp_path: Path) -> None:
    """A limited-range source's codes above white and below black decode above 1.0 and below 0.0
    (they were clipped), and the ProRes sink writes them back to the same codes."""
    frames = [flat_yuv_frame("yuv444p10le", codes) for codes in BEYOND]
    lossless = make_clip(tmp_path / "beyond.mkv", frames, "ffv1", "yuv444p10le")
    with VideoSource(lossless) as source:
        decoded = dict(source)
    for number, want in enumerate(BEYOND_RGB):  # (the colour: within its 10-bit codes' rounding)
        tolerance = 1e-4 if number < 2 else 1.2e-3
        assert np.abs(decoded[number] - want).max() < tolerance, (number, decoded[number][0, 0], want)
    path = tmp_path / "fg.mov"
    with VideoSink(path, clip_info(len(BEYOND))) as sink:
        for number, rgb in decoded.items():
            sink.write(number, np.concatenate([rgb, np.ones((H, W, 1), np.float32)], axis=2))
    with av.open(str(path)) as container:  # the decoder's 12 bits: 10-bit codes << 2
        for codes, frame in zip(BEYOND, container.decode(video=0)):
            got = [float(np.frombuffer(p, np.uint16).reshape(H, -1)[:, :W].mean()) for p in frame.planes[:3]]
            assert np.abs(np.subtract(got, np.multiply(codes, 4))).max() <= 4.5, (codes, got)
    with VideoSource(path) as source:
        for number, rgb in source:
            assert np.abs(rgb - BEYOND_RGB[number]).max() < 5e-3


def test_transfer_tag_names_the_colorspace(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "pq.mov", rgb_frames(COLOURS[:2], "yuv422p10le"), "prores_ks",
                     "yuv422p10le", options=PRORES_HQ, trc=16)
    info = VideoSource(path).info
    assert info.colorspace == "pq" and info.metadata["color_trc"] == "smpte2084"


@pytest.mark.parametrize("codec", list(VIDEO_CODECS))
def test_colour_tags_are_in_the_bitstream(tmp_path: Path, codec: str) -> None:
    """An HLG BT.2020 source's tags reach what decoders read from the frames themselves (ProRes
    keeps them in its frame headers), not only the container's; a YUV output uses and names
    the source's BT.2020 matrix, and decodes back to the pixels written."""
    info = clip_info(2)
    info.colorspace, info.metadata["color_primaries"] = "hlg", "bt2020"
    info.metadata["color_matrix"] = "bt2020nc"
    path = tmp_path / f"hlg{VIDEO_CODECS[codec].extensions[0]}"
    written = rgba_frames(2)
    with VideoSink(path, info, kind="fg", codec=codec) as sink:
        for number, frame in enumerate(written):
            sink.write(number, frame)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    assert (frame.color_primaries, frame.color_trc) == (9, 18)  # bt2020, arib-std-b67
    assert frame.colorspace == (9 if VIDEO_CODECS[codec].yuv else 0)  # bt2020nc / RGB
    with VideoSource(path) as source:
        first = next(iter(source))[1]
    assert np.abs(first - written[0][..., :3]).mean() < 0.003


@pytest.mark.parametrize("codec, trc", [("prores4444", 13), ("prores4444-fast", 2)])
def test_a_transfer_the_encoder_cannot_write_is_left_unspecified(tmp_path: Path, codec: str, trc: int) -> None:
    """prores_aw writes only BT.709, PQ and HLG transfers into its frames (an sRGB one came out
    "reserved" while the container said sRGB): file and frames then both say unspecified."""
    info = clip_info(2)
    info.colorspace = "srgb"
    path = tmp_path / "srgb.mov"
    with VideoSink(path, info, kind="fg", codec=codec) as sink:
        for number, frame in enumerate(rgba_frames(2)):
            sink.write(number, frame)
    with av.open(str(path)) as container:
        stream_trc = container.streams.video[0].codec_context.color_trc
        frame = next(container.decode(video=0))
    assert frame.color_trc == stream_trc == trc


def test_prores_fast_refuses_an_odd_width_before_any_frame(tmp_path: Path) -> None:
    odd = ClipInfo(width=161, height=97, frames=[0], colorspace="rec709", fps=Fraction(24))
    with pytest.raises(BadInputError, match=r"prores4444-fast needs an even frame width, this clip is 161x97"):
        VideoSink(tmp_path / "odd.mov", odd, codec="prores4444-fast")
    assert list(tmp_path.iterdir()) == []
    VideoSink(tmp_path / "odd.mov", odd, codec="prores4444").abort()  # prores_ks takes it


def test_sink_comp_prores_has_no_alpha(tmp_path: Path) -> None:
    path = tmp_path / "comp.mov"
    frames = [f[..., :3] for f in rgba_frames(2)]
    with VideoSink(path, clip_info(2, timecode=None), kind="comp") as sink:
        for number, image in enumerate(frames):
            sink.write(number, image)
    _, facts, pixels = read_back(path, "rgb48le")
    assert facts["pix_fmt"].startswith("yuv444p1") and facts["timecode"] is None
    assert np.abs(pixels[1] - frames[1]).max() < 1e-2


@pytest.mark.parametrize("audio_clip", ["prores_clip", "h264_clip"])
def test_sink_carries_audio(tmp_path: Path, audio_clip: str, request: pytest.FixtureRequest) -> None:
    source_path: Path = request.getfixturevalue(audio_clip)
    source = VideoSource(source_path)
    info = source.info
    out = tmp_path / "fg.mov"
    with VideoSink(out, info, audio_from=source_path) as sink:
        for number in info.frames:
            sink.write(number, np.full((H, W, 4), 0.5, np.float32))
    _, facts, pixels = read_back(out, "rgba64le")
    assert facts["audio"] == [info.metadata["audio_codec"]]  # stream-copied
    assert len(pixels) == len(info.frames)
    assert facts["rate"] == info.fps and facts["timecode"] == info.timecode
    with av.open(str(out)) as container:
        seconds = sum(f.samples for f in container.decode(audio=0)) / 48000
    assert abs(seconds - len(info.frames) / info.fps) < 0.03  # trimmed to the video


def test_copied_aac_keeps_its_priming_and_its_tracks_their_language(tmp_path: Path) -> None:
    """A whole clip's AAC track is copied sample for sample: its first packet (the encoder's
    priming, before the first picture) stays, hidden by the edit list as in the clip, rather than
    dropped (the first 21 ms decoded wrong) or played (the sound 21 ms late). The track keeps its
    language (MOV and MP4 keep no track title)."""
    import subprocess

    src = tmp_path / "aac.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24", "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=48000", "-frames:v", "12", "-t", "0.5", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-metadata:s:a:0", "language=fra", str(src)],
                   check=True)

    def packets_and_sound(path: Path) -> tuple[list[int], np.ndarray]:
        with av.open(str(path)) as container:
            pts = [p.pts for p in container.demux(audio=0) if p.size]
        with av.open(str(path)) as container:
            sound = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
        return pts, sound

    info = VideoSource(src).info
    out = tmp_path / "fg.mov"
    with VideoSink(out, info, audio_from=src) as sink:
        for number in info.frames:
            sink.write(number, np.full((H, W, 4), 0.5, np.float32))
    assert sink.audio_mode == "copy aac"
    (src_pts, src_sound), (out_pts, out_sound) = packets_and_sound(src), packets_and_sound(out)
    assert src_pts[0] < 0 and out_pts == src_pts  # the priming packet, at its time
    assert out_sound.shape == src_sound.shape and np.array_equal(out_sound, src_sound)
    with av.open(str(out)) as container:
        tags = container.streams.audio[0].metadata
    assert tags.get("language") == "fra"


def test_sink_carries_every_audio_track(tmp_path: Path) -> None:
    """A camera or MXF file with several audio tracks (here two mono PCM tones) gets them all in
    the foreground, in order, sample for sample."""
    src = tmp_path / "tracks.mov"
    tones = [(0.25 * np.sin(2 * np.pi * f * np.arange(9600) / 48000) * 32767).astype(np.int16)
             for f in (440, 1000)]
    with av.open(str(src), "w") as out:
        video = out.add_stream("prores_ks", rate=25)
        video.width, video.height, video.pix_fmt = W, H, "yuv422p10le"
        tracks = [out.add_stream("pcm_s16le", rate=48000, layout="mono") for _ in tones]
        for i, frame in enumerate(ramp_frames(5, "yuv422p10le")):  # 0.2 s of video
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for track, tone in zip(tracks, tones):
            for start in range(0, len(tone), 960):
                frame = av.AudioFrame.from_ndarray(tone[None, start:start + 960], format="s16", layout="mono")
                frame.sample_rate, frame.pts = 48000, start
                out.mux(track.encode(frame))
            out.mux(track.encode(None))
    info = VideoSource(src).info
    with VideoSink(tmp_path / "fg.mov", info, audio_from=src) as sink:
        for number in info.frames:
            sink.write(number, np.full((H, W, 4), 0.5, np.float32))
    assert "2 tracks" in sink.audio_mode
    for index, tone in enumerate(tones):
        with av.open(str(tmp_path / "fg.mov")) as container:
            assert len(container.streams.audio) == 2
            got = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=index)])
        assert len(got) == 9600 and np.array_equal(got, tone), index


def test_sink_re_encodes_audio_the_container_refuses(tmp_path: Path) -> None:
    """Opus cannot go into AVI: it becomes 24-bit PCM, trimmed to the written frames."""
    src = make_clip(tmp_path / "opus.mkv", rgb_frames(COLOURS, "yuv420p"), "libx264", "yuv420p",
                    options=H264_LOSSLESS, audio="libopus", timecode="00:00:10:00")
    info = VideoSource(src).info
    out = tmp_path / "fg.avi"
    with VideoSink(out, info, kind="comp", codec="ffv1", audio_from=src) as sink:
        for number in (2, 3, 4):
            sink.write(number, np.zeros((H, W, 3), np.float32))
    assert sink.audio_mode == "opus re-encoded to pcm_s24le"
    _, facts, pixels = read_back(out, "rgb48le")
    assert facts["audio"] == ["pcm_s24le"] and len(pixels) == 3
    with av.open(str(out)) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
    assert samples == 3 * 48000 // 25  # 3 frames at 25 fps, to the sample
    assert facts["timecode"] is None or facts["timecode"] == "00:00:10:02"


def test_opus_into_mov_becomes_pcm(tmp_path: Path) -> None:
    """FFmpeg's mov muxer lists Opus and FLAC, then refuses them when it writes the header: a
    WebM/MKV clip's Opus track goes into the MOV foreground as PCM, every frame rendered."""
    src = make_clip(tmp_path / "opus.mkv", rgb_frames(COLOURS, "yuv420p"), "libx264", "yuv420p",
                    options=H264_LOSSLESS, audio="libopus")
    info = VideoSource(src).info
    with VideoSink(tmp_path / "fg.mov", info, audio_from=src) as sink:
        for number in info.frames:
            sink.write(number, np.full((H, W, 4), 0.5, np.float32))
    assert sink.audio_mode == "opus re-encoded to pcm_s24le"
    _, facts, pixels = read_back(tmp_path / "fg.mov", "rgba64le")
    assert facts["audio"] == ["pcm_s24le"] and len(pixels) == len(COLOURS)
    with av.open(str(tmp_path / "fg.mov")) as container:
        tone = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)]) / 2 ** 31
    assert len(tone) == 5 * 48000 // 25 and 0.2 < np.abs(tone).max() < 0.3  # the 0.25 tone


@pytest.mark.parametrize("codec, span", [("pcm_s24le", (3, 8)), ("aac", (3, 8)), ("pcm_s24le", (0, 5))])
def test_a_partial_render_keeps_the_sound_in_sync_to_the_sample(tmp_path: Path, codec: str,
                                                                 span: tuple[int, int]) -> None:
    """Frames 3-8 (or 0-5) of a 25 fps clip whose sound is a ramp of its own time: the
    foreground's sound starts at the span's first frame and lasts 6 frames, to the sample (a
    copied AAC packet spans 21 ms, which a copy would shift the sound by, and a copied span
    from frame 0 ran past its last frame by up to a packet)."""
    src = tmp_path / "ramp.mov"
    n = 48000 // 25 * 12  # 12 frames of sound
    ramp = np.arange(n, dtype=np.float64) / n / 4  # value = time / 1.92 s (AAC's overshoot stays below 1)
    with av.open(str(src), "w") as out:
        video = out.add_stream("prores_ks", rate=25)
        video.width, video.height, video.pix_fmt = W, H, "yuv422p10le"
        track = out.add_stream(codec, rate=48000, layout="mono")
        fmt = track.codec_context.format.name
        for i, frame in enumerate(ramp_frames(12, "yuv422p10le")):
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for start in range(0, n, 1024):
            part = ramp[start:start + 1024]
            data = (part * 2 ** 31).astype(np.int32) if fmt.startswith("s32") else part.astype(np.float32)
            frame = av.AudioFrame.from_ndarray(data[None], format=fmt, layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            out.mux(track.encode(frame))
        out.mux(track.encode(None))
    info = VideoSource(src).info
    out_path = tmp_path / "fg.mov"
    first, last = span
    info.frames = list(range(first, last + 1))  # (a source opened for the span says so)
    with VideoSink(out_path, info, audio_from=src) as sink:
        for number in range(first, last + 1):
            sink.write(number, np.full((H, W, 4), 0.5, np.float32))
    assert sink.audio_mode == (f"{codec} re-encoded to pcm_s24le" if codec == "aac"
                               else "pcm_s24le cut to the sample as pcm_s24le")
    with av.open(str(out_path)) as container:
        got = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)]) / 2 ** 31
    with av.open(str(src)) as container:  # the source's sound as decoded, placed by its time
        frames = list(container.decode(audio=0))
        start = round(float(frames[0].pts * frames[0].time_base) * 48000)
        decoded = np.concatenate([f.to_ndarray().ravel() for f in frames]).astype(np.float64)
    per_frame = 48000 // 25
    assert len(got) == 6 * per_frame
    want = decoded[span[0] * per_frame - start:(span[1] + 1) * per_frame - start]
    if codec == "pcm_s24le":
        want = want / 2 ** 31
        assert np.abs(want - ramp[span[0] * per_frame:(span[1] + 1) * per_frame]).max() < 2 ** -23
    assert np.abs(got - want).max() < 2 ** -23  # 24-bit


def test_sink_timecode_follows_the_first_written_frame(tmp_path: Path) -> None:
    path = tmp_path / "fg.mkv"
    with VideoSink(path, clip_info(5, fps=Fraction(25), timecode="01:00:00:00", first=1001),
                   kind="alpha", codec="ffv1") as sink:
        for number in (1004, 1005):
            sink.write(number, np.zeros((H, W), np.float32))
    _, facts, pixels = read_back(path, "gray16le")
    assert facts["timecode"] == "01:00:00:03" and len(pixels) == 2


def _top_level_boxes(path: Path) -> list[bytes]:
    """The types of a MOV/MP4 file's top-level boxes, in order."""
    data = path.read_bytes()
    boxes, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        if size == 1:
            size = int.from_bytes(data[at + 8:at + 16], "big")
        boxes.append(data[at + 4:at + 8])
        if size < 8:
            break
        at += size
    return boxes


@pytest.mark.parametrize("codec, suffix", [("prores4444", ".mov"), ("prores4444-fast", ".mov"), ("png", ".mov"),
                                           ("ffv1", ".mkv"), ("png", ".avi")])
def test_a_killed_writer_leaves_its_whole_frames_to_resume(tmp_path: Path, codec: str, suffix: str) -> None:
    """A render killed outright (SIGKILL, out of memory, a lost machine) never closes its
    partial file. Whatever the kill left on disk (copied here while the sink is still writing,
    then cut at several points, as a kill can cut it anywhere), a resume counts only the whole
    frames there and the finished file equals an uninterrupted one frame for frame."""
    info = clip_info(8)
    frames = rgba_frames(8)
    whole = tmp_path / f"whole{suffix}"
    with VideoSink(whole, info, codec=codec) as sink:
        for number, frame in enumerate(frames):
            sink.write(number, frame)
    _, _, want = read_back(whole, "rgba64le")

    sink = VideoSink(tmp_path / f"live{suffix}", info, codec=codec)
    for number in range(6):
        sink.write(number, frames[number])
    sink._writer.wait()  # six frames encoded and handed to the muxer; the file is still open
    on_disk = sink.tmp_path.read_bytes()
    sink.abort()
    held_at = {}
    for cut in (len(on_disk), len(on_disk) * 3 // 4, len(on_disk) // 2, len(on_disk) // 3):
        path = tmp_path / f"cut{cut}" / f"fg{suffix}"
        path.parent.mkdir()
        partial_path(path).write_bytes(on_disk[:cut])
        held = resumable_frames(path, info, list(range(8)), codec, "fg")
        held_at[cut] = held
        assert 0 <= held <= 6
        with VideoSink(path, info, codec=codec, resume=list(range(held))) as resumed:
            for number, frame in enumerate(frames):
                resumed.write(number, frame)
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
        _, facts, got = read_back(path, "rgba64le")
        assert facts["timecode"] == "01:02:03:04" and len(got) == 8, cut
        for number, (a, b) in enumerate(zip(got, want)):
            np.testing.assert_array_equal(a, b, err_msg=f"cut at {cut}: frame {number}")
    assert held_at[len(on_disk)] >= 3, held_at  # most of what was encoded survives the kill
    assert list(held_at.values()) == sorted(held_at.values(), reverse=True), held_at


_FULL_DISK_WRITER = """
import resource, sys
sys.path.insert(0, sys.argv[2])
from tests.test_video import clip_info, rgba_frames
from pomagan_post.errors import PomaganError
from pomagan_post.io.video import VideoSink
resource.setrlimit(resource.RLIMIT_FSIZE, (30000, 30000))  # files stop growing, as on a full disk
sink = VideoSink(sys.argv[1], clip_info(8), codec=sys.argv[3])
try:
    for number, frame in enumerate(rgba_frames(8)):
        sink.write(number, frame)
    sink.close()
except PomaganError as error:
    sink.abort()
    print(type(error).__name__, error)
"""


@pytest.mark.parametrize("codec, suffix", [("prores4444", ".mov"), ("ffv1", ".mkv")])
def test_a_full_disk_keeps_the_frames_written_before_it(tmp_path: Path, codec: str, suffix: str) -> None:
    """The disk filling up mid-render: one plain error naming the file, the frame and the
    partial file, whose whole frames are kept for a resume (after making room)."""
    import subprocess
    import sys

    path = tmp_path / f"fg{suffix}"
    done = subprocess.run([sys.executable, "-c", _FULL_DISK_WRITER, str(path), str(Path(__file__).parents[1]),
                           codec], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"PomaganError {path}: cannot write frame "), done.stdout
    assert f"(File too large); the frames written before it stay in .fg.partial{suffix} for a resume" in done.stdout
    assert [p.name for p in tmp_path.iterdir()] == [partial_path(path).name]
    held = resumable_frames(path, clip_info(8), list(range(8)), codec, "fg")
    assert 1 <= held < 8
    with VideoSink(path, clip_info(8), codec=codec, resume=list(range(held))) as sink:
        for number, frame in enumerate(rgba_frames(8)):
            sink.write(number, frame)
    whole = tmp_path / "whole" / f"fg{suffix}"
    with VideoSink(whole, clip_info(8), codec=codec) as sink:
        for number, frame in enumerate(rgba_frames(8)):
            sink.write(number, frame)
    (_, _, got), (_, _, want) = read_back(path, "rgba64le"), read_back(whole, "rgba64le")
    assert len(got) == 8 and all(np.array_equal(a, b) for a, b in zip(got, want))


def test_finished_mov_is_an_ordinary_mov(tmp_path: Path) -> None:
    """The partial MOV is fragmented so a kill cannot lose it; the finished file is an ordinary
    MOV (one index, no fragments, as editors expect) with ProRes 4444's own codec tag and a
    timecode track."""
    path = tmp_path / "fg.mov"
    with VideoSink(path, clip_info(3)) as sink:
        for number, frame in enumerate(rgba_frames(3)):
            sink.write(number, frame)
    boxes = _top_level_boxes(path)
    assert b"moov" in boxes and b"mdat" in boxes and b"moof" not in boxes, boxes
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert video.codec_tag == "ap4h" and video.frames == 3
        timecode_tracks = [s for s in container.streams if s.type == "data"]
        assert [s.metadata.get("timecode") for s in timecode_tracks] == ["01:02:03:04"]
        assert "kind=fg; first frame 0;" in container.metadata["comment"]


def test_a_failure_while_finishing_keeps_the_frames_for_a_resume(tmp_path: Path, monkeypatch) -> None:
    """The disk filling up while a finished MOV is copied into place: a plain error that names the
    partial file, which stays whole; a resume puts it in place without encoding again."""
    from pomagan_post.io import video

    def disk_full(source: Path, target: Path) -> None:
        target.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    path = tmp_path / "fg.mov"
    with monkeypatch.context() as patched:
        patched.setattr(video, "_defragment", disk_full)
        sink = VideoSink(path, clip_info(3))
        for number, frame in enumerate(rgba_frames(3)):
            sink.write(number, frame)
        with pytest.raises(PomaganError, match=r"cannot finish the file \(No space left on "
                                               r"device\); the frames stay in \.fg\.partial\.mov") as caught:
            sink.close()
        assert caught.value.exit_code == 1  # a failed write, not an unsupported format
    assert [p.name for p in tmp_path.iterdir()] == [".fg.partial.mov"]
    assert resumable_frames(path, clip_info(3), [0, 1, 2], "prores4444", "fg") == 3
    VideoSink(path, clip_info(3), resume=[0, 1, 2]).close()
    assert [p.name for p in tmp_path.iterdir()] == ["fg.mov"]
    _, _, got = read_back(path, "rgba64le")
    assert len(got) == 3


def test_abort_keeps_only_a_hidden_partial_to_resume(tmp_path: Path) -> None:
    """Nothing ever carries the final name unfinished; what was encoded before an abort stays
    in the hidden partial file, playable, for a resume."""
    path = tmp_path / "fg.mov"
    sink = VideoSink(path, clip_info())
    for number, frame in enumerate(rgba_frames(3)):
        sink.write(number, frame)
    sink._writer.wait()  # the three frames encoded, as after a render's last batch
    sink.abort()
    assert list(tmp_path.iterdir()) == [partial_path(path)] and sink.kept == partial_path(path)
    assert resumable_frames(path, clip_info(), [0, 1, 2, 3, 4], "prores4444", "fg") == 3
    assert resumable_frames(path, clip_info(), [1, 2, 3], "prores4444", "fg") == 0  # another start
    assert resumable_frames(path, clip_info(), [0, 1, 2], "prores4444", "alpha") == 0  # another kind
    assert resumable_frames(path, clip_info(), [0, 1, 2], "png", "fg") == 0  # another codec
    # The other ProRes encoder decodes the same, but one file keeps one encoder.
    assert resumable_frames(path, clip_info(), [0, 1, 2], "prores4444-fast", "fg") == 0
    with pytest.raises(RuntimeError):
        with VideoSink(path, clip_info()) as sink:
            sink.write(0, rgba_frames(1)[0])
            raise RuntimeError("render failed")
    assert not path.exists()


def test_encoder_errors_reach_the_writer_with_the_frame_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encode = VideoSink._encode_frame

    def failing(self: VideoSink, number: int, pixels: np.ndarray) -> None:
        if number == 2:
            raise av.error.InvalidDataError(1094995529, "simulated encoder failure")
        encode(self, number, pixels)

    monkeypatch.setattr(VideoSink, "_encode_frame", failing)
    sink = VideoSink(tmp_path / "fg.mov", clip_info())
    with pytest.raises(UnsupportedFormatError, match="cannot encode frame 2 with prores4444"):
        for number, image in enumerate(rgba_frames(5)):
            sink.write(number, image)
        sink.close()
    # nothing under the final name; the frames encoded before the failure, if any got to the
    # file, stay whole in the partial file for a resume
    left = [p.name for p in tmp_path.iterdir()]
    assert left in ([], [".fg.partial.mov"])
    if left:
        assert resumable_frames(tmp_path / "fg.mov", clip_info(), list(range(5)), "prores4444", "fg") in (1, 2)


def test_sink_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unknown video codec 'h265alpha'"):
        VideoSink(tmp_path / "a.mov", clip_info(), codec="h265alpha")
    with pytest.raises(BadInputError, match="ffv1 needs a .mkv or .avi file"):
        VideoSink(tmp_path / "a.mov", clip_info(), codec="ffv1")
    with pytest.raises(BadInputError, match="unknown video output kind"):
        VideoSink(tmp_path / "a.mov", clip_info(), kind="matte")
    sink = VideoSink(tmp_path / "a.mov", clip_info())
    with pytest.raises(BadInputError, match=r"takes \[H, W, 4\]"):
        sink.write(0, np.zeros((H, W, 3), np.float32))
    sink.write(3, rgba_frames(1)[0])
    with pytest.raises(BadInputError, match="frame 2 written after frame 3"):
        sink.write(2, rgba_frames(1)[0])
    sink.abort()
    with pytest.raises(BadInputError, match="no frames were written"):
        VideoSink(tmp_path / "b.mov", clip_info()).close()
    # no output under a final name; a.mov's encoded frame, if any, only in its hidden partial
    assert [p.name for p in tmp_path.iterdir()] in ([], [".a.partial.mov"])

