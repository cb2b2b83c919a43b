"""``pomagan_post.render`` (module ``pomagan_post.renderer``): real files in, real files out, checked with stated tolerances.

The engine is the bundled (fast, untrained) checkpoint at a tiny working size, shared by the
module; only a few tests use a stand-in engine where they need to control it (out-of-memory).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio
import pytest
import torch

from pomagan_post import Engine, load_checkpoint
from pomagan_post.colour import srgb_eotf
from pomagan_post.errors import BadInputError, MissingFramesError, UnsupportedFormatError
from pomagan_post.io.images import read_render_settings
from pomagan_post.io.video import VideoSource
from pomagan_post.renderer import RenderReport, parse_background, render

from .conftest import TEST_DEVICE
from .imaging import (HALF_TOL, constant_matte_engine, make_exr_plate, ramp, read_file, write_clip, write_file,
                      write_turned_clip, write_vfr_clip)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return load_checkpoint(None)


@pytest.fixture(scope="module")
def engine(model: torch.nn.Module) -> Engine:
    """Foreground = alpha x image, so outputs can be checked against the input exactly."""
    return Engine(model, device="cpu", working_size=32, batch_size=2, foreground="multiply")


def test_premultiplied_exr_is_alpha_times_the_straight_colour(tmp_path: Path, model) -> None:
    """With the estimated (spill-free) foreground: rgb == alpha x straight colour, and the
    alpha channel is the matte, within half-float tolerance."""
    estimating = Engine(model, device="cpu", working_size=32, batch_size=2, foreground="estimate")
    pattern, _ = make_exr_plate(tmp_path, frames=(1,))
    render(pattern, engine=estimating, output_dir=tmp_path / "p")
    render(pattern, engine=estimating, output_dir=tmp_path / "s", premultiplied=False)
    premul, pspec = read_file(tmp_path / "p" / "plate_fg.0001.exr")
    straight, sspec = read_file(tmp_path / "s" / "plate_fg.0001.exr")
    alpha, _ = read_file(tmp_path / "p" / "plate_alpha.0001.exr")
    assert pspec.get_string_attribute("pomagan:alpha") == "premultiplied"
    assert sspec.get_string_attribute("pomagan:alpha") == "straight"
    np.testing.assert_array_equal(premul[..., 3], alpha[..., 0])
    np.testing.assert_array_equal(straight[..., 3], alpha[..., 0])
    expected = straight[..., :3] * alpha
    np.testing.assert_allclose(premul[..., :3], expected, rtol=3 * HALF_TOL, atol=2 * HALF_TOL)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_exr_sequence_defaults(tmp_path: Path, engine: Engine) -> None:
    pattern, pixels = make_exr_plate(tmp_path)
    messages: list[str] = []
    report = render(pattern, engine=engine, log=messages.append)
    assert any("pixel aspect 2 (anamorphic): matted as shown, desqueezed" in m for m in messages), messages
    out = tmp_path / "plate_pomagan"
    assert isinstance(report, RenderReport) and report.ok
    assert report.written == [1001, 1002, 1003] and report.frames_written == 3
    assert report.outputs == {"alpha": str(out / "plate_alpha.####.exr"),
                              "fg": str(out / "plate_fg.####.exr")}
    assert report.alpha_mode == "premultiplied" and report.colorspace == "linear"
    assert report.clip_fps == Fraction(24000, 1001)
    assert names(out) == [f"plate_{k}.{f}.exr" for k in ("alpha", "fg") for f in (1001, 1002, 1003)]

    for i, frame in enumerate((1001, 1002, 1003)):
        fg, spec = read_file(out / f"plate_fg.{frame}.exr")
        alpha, aspec = read_file(out / f"plate_alpha.{frame}.exr")
        # Channels, precision, compression, windows, pixel aspect, fps, timecode carried.
        assert spec.channelnames == ("R", "G", "B", "A") and aspec.channelnames == ("A",)
        assert str(spec.format) == "half" and spec.get_string_attribute("compression") == "zip"
        assert (spec.x, spec.y, spec.width, spec.height) == (5, 3, 37, 23)
        assert (spec.full_width, spec.full_height) == (48, 30)
        assert spec.get_float_attribute("PixelAspectRatio") == 2.0
        assert spec.getattribute("FramesPerSecond") == (24000, 1001)
        assert spec.get_string_attribute("smpte:TimeCode") == f"01:00:00:0{i}"
        assert spec.get_string_attribute("pomagan:alpha") == "premultiplied"
        assert spec.get_string_attribute("oiio:ColorSpace") == "lin_rec709_scene"
        # Premultiplied: rgb == alpha x straight colour (the input's own linear values).
        a = alpha[..., 0]
        np.testing.assert_array_equal(fg[..., 3], a)
        expected = pixels[frame] * a[..., None]
        np.testing.assert_allclose(fg[..., :3], expected, rtol=3 * HALF_TOL, atol=1e-3)
        assert 0.0 <= a.min() and a.max() <= 1.0
    assert fg[..., :3].max() > 1.0  # linear stays linear: values above 1 survive


def test_exr_windows_that_grow_during_the_shot_lose_no_pixel(tmp_path: Path, engine: Engine) -> None:
    """Autocropped CG-style plates: frame 2's window reaches past frame 1's; every output frame
    carries the windows' union and frame 2's pixels outside frame 1's window are in its fg."""
    first, second = ramp(12, 20, 3, 2.0, seed=1), ramp(16, 30, 3, 2.0, seed=2)
    write_file(tmp_path / "cg.0001.exr", first, "half", origin=(10, 8), display=(0, 0, 48, 32))
    write_file(tmp_path / "cg.0002.exr", second, "half", origin=(14, 12), display=(0, 0, 48, 32))
    report = render(tmp_path / "cg.####.exr", engine=engine, output_dir=tmp_path / "o")
    assert report.written == [1, 2]
    for frame in (1, 2):
        fg, spec = read_file(tmp_path / "o" / f"cg_fg.000{frame}.exr")
        alpha, aspec = read_file(tmp_path / "o" / f"cg_alpha.000{frame}.exr")
        assert (spec.x, spec.y, spec.width, spec.height) == (10, 8, 34, 20)  # x 10-44, y 8-28
        assert (aspec.x, aspec.y, aspec.width, aspec.height) == (10, 8, 34, 20)
        assert (spec.full_width, spec.full_height) == (48, 32)
    # Frame 2 sits at (4, 4) in the union; fg == alpha x its own pixels, right edge included.
    placed = np.zeros((20, 34, 3), np.float32)
    placed[4:20, 4:34] = second
    np.testing.assert_allclose(fg[..., :3], placed * alpha, rtol=3 * HALF_TOL, atol=1e-3)
    assert fg[4:20, 24:34, :3].max() > 0  # beyond frame 1's window: kept, not cropped
    # Farm chunks (frames 2-3, then frame 1 alone) see the whole shot's region, so each frame's
    # matte is the same bits as the whole render's.
    write_file(tmp_path / "cg.0003.exr", first, "half", origin=(12, 9), display=(0, 0, 48, 32))
    whole = render(tmp_path / "cg.####.exr", engine=engine, output_dir=tmp_path / "whole")
    chunk = render(tmp_path / "cg.####.exr", engine=engine, frames="2-3", output_dir=tmp_path / "chunk")
    # A one-frame chunk (a farm rendering a frame per task) still runs the full batch shape.
    single = render(tmp_path / "cg.####.exr", engine=engine, frames="1", output_dir=tmp_path / "chunk")
    assert whole.written == [1, 2, 3] and chunk.written == [2, 3] and single.written == [1]
    for frame in (1, 2, 3):
        for kind in ("alpha", "fg"):
            want, _ = read_file(tmp_path / "whole" / f"cg_{kind}.000{frame}.exr")
            got, gspec = read_file(tmp_path / "chunk" / f"cg_{kind}.000{frame}.exr")
            assert (gspec.x, gspec.y, gspec.width, gspec.height) == (10, 8, 34, 20)
            np.testing.assert_array_equal(got, want)


def test_outputs_without_windows_get_the_picture_as_shown(tmp_path: Path, engine: Engine) -> None:
    """PNG, TIFF, DPX and video cannot carry EXR's windows: an overscan plate (data window
    larger than the display window) gives display-sized outputs with the overscan cut off, an
    autocropped one (smaller) the full frame with its pixels in place; EXR outputs keep both."""
    over = ramp(30, 40, 3, seed=4)  # (-4, -3) 40x30 around a 32x24 picture
    write_file(tmp_path / "over.0001.exr", over, "float", origin=(-4, -3), display=(0, 0, 32, 24))
    crop = ramp(10, 12, 3, seed=5)  # (8, 6) 12x10 inside a 32x24 picture
    write_file(tmp_path / "crop.0001.exr", crop, "float", origin=(8, 6), display=(0, 0, 32, 24))
    messages: list[str] = []
    render(tmp_path / "over.####.exr", engine=engine, format="png", output_dir=tmp_path / "o",
           log=messages.append)
    render(tmp_path / "crop.####.exr", engine=engine, format="tiff", output_dir=tmp_path / "c")
    render(tmp_path / "crop.####.exr", engine=engine, format="video", output_dir=tmp_path / "v")
    render(tmp_path / "crop.####.exr", engine=engine, output_dir=tmp_path / "e")
    assert any("data window (-4, -3, 40, 30) is not the display window (0, 0, 32, 24)" in m
               for m in messages), messages
    fg, spec = read_file(tmp_path / "o" / "over_fg.0001.png")
    assert (spec.width, spec.height) == (32, 24)
    seen = fg[..., 3] > 0.05
    np.testing.assert_allclose(fg[..., :3][seen], over[3:27, 4:36][seen], atol=2e-3)  # straight PNG
    tif, tspec = read_file(tmp_path / "c" / "crop_fg.0001.tif")
    assert (tspec.width, tspec.height) == (32, 24)
    placed = np.zeros((24, 32, 3), np.float32)
    placed[6:16, 8:20] = crop
    np.testing.assert_allclose(tif[..., :3], placed * tif[..., 3:], rtol=1e-5, atol=1e-6)
    with VideoSource(tmp_path / "v" / "crop_fg.mov") as video:
        assert (video.info.width, video.info.height) == (32, 24)
    _, espec = read_file(tmp_path / "e" / "crop_fg.0001.exr")
    assert (espec.x, espec.y, espec.width, espec.height) == (8, 6, 12, 10)
    assert (espec.full_width, espec.full_height) == (32, 24)


def test_fps_sets_a_sequences_rate_and_dpx_states_its_own(tmp_path: Path, engine: Engine) -> None:
    """PNGs state no rate: a video from them runs at 24 fps and the render says so; --fps 23.976
    makes it NTSC's exact 24000/1001, also written into EXR outputs. A DPX's own frame rate
    field (25) is read and carried into DPX outputs. A video refuses --fps; a bad rate is named."""
    import av

    from pomagan_post.io.base import parse_rate

    for frame in (1, 2, 3):
        write_file(tmp_path / f"p.{frame:04d}.png", ramp(24, 32, 3, seed=frame), "uint8")
        write_file(tmp_path / f"d.{frame:04d}.dpx", ramp(24, 32, 3, seed=frame), "uint16",
                   oiio__BitsPerSample=10, dpx__FrameRate=25.0)
    messages: list[str] = []
    render(tmp_path / "p.####.png", engine=engine, format="video", output_dir=tmp_path / "a",
           log=messages.append)
    assert any("state no frame rate; the video is written at 24 fps (--fps sets it)" in m for m in messages)
    render(tmp_path / "p.####.png", engine=engine, format="video", fps="23.976", output_dir=tmp_path / "b")
    render(tmp_path / "p.####.png", engine=engine, format="exr", fps="23.98", output_dir=tmp_path / "c")
    for folder, rate in (("a", Fraction(24)), ("b", Fraction(24000, 1001))):
        with av.open(str(tmp_path / folder / "p_fg.mov")) as video:
            assert video.streams.video[0].average_rate == rate
    assert read_file(tmp_path / "c" / "p_fg.0002.exr")[1].getattribute("FramesPerSecond") == (24000, 1001)
    report = render(tmp_path / "d.####.dpx", engine=engine, output_dir=tmp_path / "d")
    assert report.clip_fps == 25
    assert read_file(tmp_path / "d" / "d_fg.0001.dpx")[1].get_float_attribute("dpx:FrameRate") == 25.0
    clip = write_clip(tmp_path / "shot.mov", n=2)
    with pytest.raises(BadInputError, match="--fps sets an image sequence's frame rate"):
        render(clip, engine=engine, fps=25, output_dir=tmp_path / "no")
    with pytest.raises(BadInputError, match="--fps must be a frame rate such as"):
        render(tmp_path / "p.####.png", engine=engine, fps="fast", output_dir=tmp_path / "no")
    assert not (tmp_path / "no").exists()
    assert [parse_rate(r) for r in ("25", "29.97", "59.94", "30000/1001", "12.5", float(np.float32(23.976)))] == [
        25, Fraction(30000, 1001), Fraction(60000, 1001), Fraction(30000, 1001), Fraction(25, 2),
        Fraction(24000, 1001)]
    with pytest.raises(BadInputError, match="between 1 and 1000"):
        parse_rate("0")


def test_straight_exr_and_frame_range(tmp_path: Path, engine: Engine) -> None:
    pattern, pixels = make_exr_plate(tmp_path, frames=(1, 2, 3, 4, 5))
    report = render(pattern, engine=engine, premultiplied=False, frames="1-5x2",
                    output_dir=tmp_path / "o")
    assert report.written == [1, 3, 5] and report.alpha_mode == "straight"
    fg, spec = read_file(tmp_path / "o" / "plate_fg.0003.exr")
    assert spec.get_string_attribute("pomagan:alpha") == "straight"
    visible = fg[..., 3] > 0.05
    np.testing.assert_allclose(fg[..., :3][visible], pixels[3][visible], rtol=4 * HALF_TOL, atol=1e-3)


def test_16bit_png_still_gives_straight_16bit_pngs(tmp_path: Path, engine: Engine) -> None:
    data = ramp(23, 37, 3, seed=3)
    write_file(tmp_path / "still.png", data, "uint16")
    report = render(tmp_path / "still.png", engine=engine)
    out = tmp_path / "still_pomagan"
    assert names(out) == ["still_alpha.png", "still_fg.png"] and report.alpha_mode == "straight"
    fg, spec = read_file(out / "still_fg.png")
    alpha, aspec = read_file(out / "still_alpha.png")
    assert str(spec.format) == "uint16" and str(aspec.format) == "uint16"
    assert fg.shape == (23, 37, 4) and alpha.shape == (23, 37, 1)
    np.testing.assert_allclose(fg[..., 3], alpha[..., 0], atol=1 / 65535)
    visible = fg[..., 3] > 0.05  # straight: colour is the input's colour
    np.testing.assert_allclose(fg[..., :3][visible], data[visible], atol=2 / 65535 + 1e-3)


@pytest.mark.parametrize("channels", [1, 4])
def test_gray_and_rgba_inputs_odd_sizes(tmp_path: Path, engine: Engine, channels: int) -> None:
    data = ramp(19, 33, channels, seed=channels)
    for frame in (7, 8):
        write_file(tmp_path / f"g_{frame}.tif", data, "uint8",
                   **({"oiio__UnassociatedAlpha": 1} if channels == 4 else {}))
    report = render(tmp_path / "g_#.tif", engine=engine, format="png")
    out = tmp_path / "g_pomagan"
    assert report.written == [7, 8]
    assert names(out) == ["g_alpha.7.png", "g_alpha.8.png", "g_fg.7.png", "g_fg.8.png"]
    fg, spec = read_file(out / "g_fg.8.png")
    assert fg.shape == (19, 33, 4) and str(spec.format) == "uint8"
    if channels == 1:  # gray input -> the same value in R, G and B
        assert np.array_equal(fg[..., 0], fg[..., 1]) and np.array_equal(fg[..., 1], fg[..., 2])


def test_gaps_stop_or_skip(tmp_path: Path, engine: Engine) -> None:
    for frame in (1, 2, 4):
        write_file(tmp_path / f"s.{frame:04d}.png", ramp(40, 40, 3), "uint8")
    with pytest.raises(MissingFramesError) as info:
        render(tmp_path / "s.####.png", engine=engine)
    assert info.value.frames == [3]
    assert not (tmp_path / "s_pomagan").exists()  # nothing started
    report = render(tmp_path / "s.####.png", engine=engine, on_error="skip")
    assert report.written == [1, 2, 4] and list(report.failed) == [3] and not report.ok


def test_corrupt_frame_stops_with_its_number_and_resume_finishes(tmp_path: Path, engine: Engine) -> None:
    for frame in range(1, 6):
        write_file(tmp_path / f"c.{frame:04d}.exr", ramp(40, 40, 3, seed=frame), "half")
    good = (tmp_path / "c.0004.exr").read_bytes()
    (tmp_path / "c.0004.exr").write_bytes(good[:200])
    with pytest.raises(MissingFramesError, match="frame 4") as info:
        render(tmp_path / "c.####.exr", engine=engine)
    assert info.value.frames == [4]
    out = tmp_path / "c_pomagan"
    # Frames before the bad one are finished and complete; nothing half-written is left.
    assert names(out) == [f"c_{k}.{f:04d}.exr" for k in ("alpha", "fg") for f in (1, 2, 3)]
    (tmp_path / "c.0004.exr").write_bytes(good)  # the frame is fixed
    report = render(tmp_path / "c.####.exr", engine=engine, skip_existing=True)
    assert report.written == [4, 5] and report.skipped_existing == [1, 2, 3] and report.ok


def test_resume_after_a_crash_rerenders_only_what_is_missing(tmp_path: Path, engine: Engine) -> None:
    pattern, _ = make_exr_plate(tmp_path, frames=(1, 2, 3, 4))

    def crash(frame: int, done: int, total: int) -> None:
        if frame == 2:
            raise KeyboardInterrupt  # the render node dies after frame 2 was queued

    with pytest.raises(KeyboardInterrupt):
        render(pattern, engine=engine, callback=crash)
    out = tmp_path / "plate_pomagan"
    # A crashed writer's temp file, and a finished frame whose timestamps must not change.
    (out / ".plate_fg.0003.exr.4242-0.tmp").write_bytes(b"half-written")
    finished = {n: (out / n).stat().st_mtime_ns for n in names(out) if not n.startswith(".")}
    assert "plate_fg.0001.exr" in finished and "plate_alpha.0004.exr" not in finished

    report = render(pattern, engine=engine, skip_existing=True)
    done = [f for f in (1, 2) if f"plate_fg.{f:04d}.exr" in finished and f"plate_alpha.{f:04d}.exr" in finished]
    assert report.skipped_existing == done and report.written == [f for f in (1, 2, 3, 4) if f not in done]
    assert names(out) == [f"plate_{k}.{f:04d}.exr" for k in ("alpha", "fg") for f in (1, 2, 3, 4)]
    for name, mtime in finished.items():
        if any(f".{f:04d}.exr" in name for f in done):
            assert (out / name).stat().st_mtime_ns == mtime
    again = render(pattern, engine=engine, skip_existing=True)
    assert again.written == [] and again.skipped_existing == [1, 2, 3, 4] and again.ok


def _camera_original(directory: Path, frames: tuple[int, ...] = (1, 2, 3)) -> Path:
    """A camera original's EXR frames in miniature (32x24, PIZ): the same camera and lens in
    every header, and each frame's own exposure, focus, capture time, image counter and key
    code; also a print density, which describes the file, not the take."""
    for f in frames:
        write_file(directory / f"take.{f:04d}.exr", ramp(24, 32, 3, seed=f), "half", compression="piz",
                   cameraModel="ALEXA 35", lensModel="Supreme Prime 50", DateTime=f"2024:05:01 10:00:{f:02d}",
                   typed={"expTime": (oiio.TypeFloat, 1 / (48 * f)), "focus": (oiio.TypeFloat, 1.5 * f),
                          "imageCounter": (oiio.TypeInt, 100 + f), "xDensity": (oiio.TypeFloat, 300.0),
                          "smpte:KeyCode": (oiio.TypeKeyCode, (22, 5, 123456, 1000 + f, 0, 4, 64))})
    return directory / "take.####.exr"


def _carries_its_own_take(folder: Path, frames: tuple[int, ...]) -> None:
    """Each alpha and foreground frame in ``folder`` names the camera and lens and its own
    input frame's exposure, focus, capture time (EXR capDate), image counter and key code; the
    file's own attributes are the render's (zip, no print density)."""
    for frame in frames:
        for kind in ("alpha", "fg"):
            spec = read_file(folder / f"take_{kind}.{frame:04d}.exr")[1]
            assert spec.get_string_attribute("cameraModel") == "ALEXA 35", (kind, frame)
            assert spec.get_string_attribute("lensModel") == "Supreme Prime 50", (kind, frame)
            assert spec.get_float_attribute("ExposureTime") == pytest.approx(1 / (48 * frame)), (kind, frame)
            assert spec.get_float_attribute("focus") == 1.5 * frame, (kind, frame)
            assert spec.get_string_attribute("DateTime") == f"2024:05:01 10:00:{frame:02d}", (kind, frame)
            assert spec.get_int_attribute("imageCounter") == 100 + frame, (kind, frame)
            assert spec.getattribute("smpte:KeyCode") == (22, 5, 123456, 1000 + frame, 0, 4, 64)
            assert spec.get_string_attribute("compression") == "zip"
            assert spec.getattribute("XResolution") is None


def test_each_output_frame_carries_its_own_input_frames_camera_and_take(tmp_path: Path, engine: Engine) -> None:
    """A compositor reads an output frame's header for the take: the camera and lens, and the
    exposure, focus, capture time, image counter and key code of that frame, not of the first
    frame rendered, whether the whole shot, a --frames chunk, a resumed render or a --temporal
    one (which reads the neighbours too) wrote it."""
    pattern = _camera_original(tmp_path)
    render(pattern, engine=engine, output_dir=tmp_path / "whole")
    _carries_its_own_take(tmp_path / "whole", (1, 2, 3))
    render(pattern, engine=engine, frames="2-3", output_dir=tmp_path / "chunk")
    _carries_its_own_take(tmp_path / "chunk", (2, 3))
    for frame in (2, 3):  # a render stopped after frame 1: resuming writes frames 2 and 3
        for kind in ("alpha", "fg"):
            (tmp_path / "whole" / f"take_{kind}.{frame:04d}.exr").unlink()
    assert render(pattern, engine=engine, output_dir=tmp_path / "whole", skip_existing=True).written == [2, 3]
    _carries_its_own_take(tmp_path / "whole", (1, 2, 3))
    render(pattern, engine=engine, frames="3", temporal=1, output_dir=tmp_path / "steady")
    _carries_its_own_take(tmp_path / "steady", (3,))


def test_outputs_never_overwrite_inputs(tmp_path: Path, engine: Engine) -> None:
    pattern, _ = make_exr_plate(tmp_path)
    with pytest.raises(BadInputError, match="overwrite an input"):
        render(pattern, engine=engine, output_dir=tmp_path, alpha_name="plate.####.exr")
    with pytest.raises(BadInputError, match="both write"):
        render(pattern, engine=engine, alpha_name="x.####.exr", fg_name="x.####.exr")
    with pytest.raises(BadInputError, match="frame placeholder"):
        render(pattern, engine=engine, alpha_name="matte.exr")
    with pytest.raises(UnsupportedFormatError, match="cannot write"):
        render(pattern, engine=engine, alpha_name="matte.####.bmp")


def test_files_it_did_not_write_are_not_replaced_without_overwrite(tmp_path: Path, engine: Engine) -> None:
    """A user's own picture or movie at an output's name is neither replaced nor taken as a
    finished frame; --overwrite replaces it. A render's own outputs are replaced as before."""
    pattern, _ = make_exr_plate(tmp_path, frames=(1, 2, 3))
    out = tmp_path / "plate_pomagan"
    render(pattern, engine=engine)
    assert render(pattern, engine=engine).written == [1, 2, 3]  # its own outputs: replaced
    theirs = np.full((30, 48, 3), 0.25, np.float32)
    write_file(out / "plate_alpha.0002.exr", theirs, "half")
    before = (out / "plate_alpha.0002.exr").read_bytes()
    for skip in (False, True):
        with pytest.raises(BadInputError, match=r"plate_alpha.0002.exr exists and was not written by "
                                                r"pomagan-post .*--overwrite to replace it"):
            render(pattern, engine=engine, skip_existing=skip)
        assert (out / "plate_alpha.0002.exr").read_bytes() == before
    write_file(out / "plate_alpha.0003.exr", theirs, "half")
    with pytest.raises(BadInputError, match=r"frames 2-3 of .*plate_alpha.####.exr exist and were not"):
        render(pattern, engine=engine, frames="1-3")
    report = render(pattern, engine=engine, skip_existing=True, overwrite=True)
    assert report.skipped_existing == [1] and report.written == [2, 3]
    assert read_render_settings(out / "plate_alpha.0002.exr") is not None
    # An empty file at the name holds nothing to lose: replaced; notes saved under a frame's
    # name are no EXR at all: someone's, refused (a cut-short EXR of its own is replaced).
    (out / "plate_alpha.0003.exr").write_bytes(b"")
    assert render(pattern, engine=engine).written == [1, 2, 3]
    (out / "plate_alpha.0002.exr").write_text("shot notes\n")
    with pytest.raises(BadInputError, match=r"plate_alpha.0002.exr exists and was not written"):
        render(pattern, engine=engine)
    assert (out / "plate_alpha.0002.exr").read_text() == "shot notes\n"
    whole = (out / "plate_alpha.0001.exr").read_bytes()
    (out / "plate_alpha.0002.exr").write_bytes(whole[: len(whole) // 3])
    assert render(pattern, engine=engine).written == [1, 2, 3]

    clip = write_clip(tmp_path / "shot.mp4", n=3)
    movie = tmp_path / "shot_pomagan" / "shot_fg.mov"
    movie.parent.mkdir()
    write_clip(movie, n=2)
    mine = movie.read_bytes()
    with pytest.raises(BadInputError, match=r"shot_fg.mov exists and was not written by pomagan-post"):
        render(clip, engine=engine)
    with pytest.raises(BadInputError, match="--fg-name"):
        render(clip, engine=engine, skip_existing=True)  # not kept as a finished video either
    assert movie.read_bytes() == mine
    assert render(clip, engine=engine, skip_existing=True, overwrite=True).written == [0, 1, 2]
    with VideoSource(movie) as fg:
        assert fg.info.frames == [0, 1, 2]
    assert render(clip, engine=engine).written == [0, 1, 2]


def test_a_video_another_render_is_writing_is_refused(tmp_path: Path, engine: Engine) -> None:
    """Two farm chunks into one movie: the second is refused, naming the first, and neither
    its up-front check nor its sink touches the first one's hidden partial file."""
    import os

    from pomagan_post.io.atomic import Claim
    from pomagan_post.io.video import VideoSink, partial_path

    clip = write_clip(tmp_path / "shot.mp4", n=4)
    out = tmp_path / "shot_pomagan"
    out.mkdir()
    alpha = out / "shot_alpha.mov"
    partial = partial_path(alpha)
    partial.write_bytes(b"the first render's frames")
    first = Claim(alpha)  # the other render, mid-way
    try:
        with pytest.raises(BadInputError, match=rf"shot_alpha.mov is being written by another render "
                                                rf"\(process {os.getpid()}\); wait for it"):
            render(clip, engine=engine, frames="2-3", skip_existing=True)
        with pytest.raises(BadInputError, match="being written by another render"):
            VideoSink(alpha, VideoSource(clip).info, kind="alpha")
        assert partial.read_bytes() == b"the first render's frames"
    finally:
        first.release()
    partial.unlink()
    assert render(clip, engine=engine).written == [0, 1, 2, 3]
    assert sorted(p.name for p in out.iterdir()) == ["shot_alpha.mov", "shot_fg.mov"]  # no lock left


def test_skip_existing_does_not_take_a_finished_video_of_other_frames_as_done(
        tmp_path: Path, engine: Engine) -> None:
    clip = write_clip(tmp_path / "shot.mp4", n=6)
    render(clip, engine=engine, frames="0-2")
    with pytest.raises(BadInputError, match=r"shot_alpha.mov: a finished video of frames 0-2 \(3\); this "
                                            r"render asks for 0-5 \(6\)\. --skip-existing keeps"):
        render(clip, engine=engine, skip_existing=True)
    with pytest.raises(BadInputError, match="frames 0-2 .* asks for 3-5"):
        render(clip, engine=engine, frames="3-5", skip_existing=True)
    assert render(clip, engine=engine, frames="0-2", skip_existing=True).skipped_existing == [0, 1, 2]


def test_phone_footage_renders_upright(tmp_path: Path, engine: Engine) -> None:
    """A clip stored sideways with a display matrix gets the matte of the upright picture,
    written upright (as players show the source), with no matrix left to turn it again."""
    write_turned_clip(tmp_path / "phone.mov", -90)
    write_turned_clip(tmp_path / "upright.mov", 0)
    messages: list[str] = []
    render(tmp_path / "phone.mov", engine=engine, outputs=["alpha"], log=messages.append)
    render(tmp_path / "upright.mov", engine=engine, outputs=["alpha"])
    assert any("stored 48x64 with a display matrix turning it 270 degrees" in m
               and "outputs are 64x48" in m for m in messages)
    with VideoSource(tmp_path / "phone_pomagan" / "phone_alpha.mov") as turned, \
            VideoSource(tmp_path / "upright_pomagan" / "upright_alpha.mov") as upright:
        assert (turned.info.width, turned.info.height) == (64, 48)
        assert turned.info.metadata["rotation"] == 0
        pairs = list(zip(turned, upright))
    assert len(pairs) == 3
    for (_, got), (_, want) in pairs:
        np.testing.assert_array_equal(got, want)


def test_variable_frame_rate_renders_in_sync(tmp_path: Path, engine: Engine) -> None:
    """Frames at 0, 1, 2, 4, 6, 7 thirtieths of a second: the matte video has 8 frames at 30 fps,
    as long as the source, the held slots repeating the matte of the frame on screen."""
    write_vfr_clip(tmp_path / "vfr.mov")
    messages: list[str] = []
    report = render(tmp_path / "vfr.mov", engine=engine, outputs=["alpha"], log=messages.append)
    assert report.written == list(range(8))
    assert any("variable frame rate (6 frames, 22.5 fps on average); conformed to its base rate, 30 fps"
               in m for m in messages)
    with VideoSource(tmp_path / "vfr_pomagan" / "vfr_alpha.mov") as out:
        assert out.info.fps == 30 and out.info.frames == list(range(8))
        assert out.info.metadata["frame_rate_mode"] == "constant"
        mattes = [alpha for _, alpha in out]
    for held, shown in ((3, 2), (5, 4)):
        np.testing.assert_array_equal(mattes[held], mattes[shown])


def _resume_equals_whole(clip: Path, engine: Engine, whole: RenderReport, frames: int,
                         held_within: tuple[int, int]) -> None:
    """Resumes the interrupted render of ``clip`` (outputs in shot_pomagan/) and checks it kept
    the first frames its partial files held, rendered only the rest, and equals ``whole`` frame
    for frame (the kept ones copied as encoded; the rest batched differently, but every batch
    runs at the full batch shape)."""
    out = clip.parent / "shot_pomagan"
    messages: list[str] = []
    resumed = render(clip, engine=engine, skip_existing=True, log=messages.append)
    held = frames - len(resumed.written)
    assert held_within[0] <= held <= held_within[1], messages
    assert resumed.written == list(range(held, frames)) and resumed.ok
    assert resumed.skipped_existing == list(range(held))
    assert any(f"resuming after frame {held - 1}: {held} frame(s) kept" in m for m in messages)
    assert sorted(p.name for p in out.iterdir()) == ["shot_alpha.mov", "shot_fg.mov"]
    for kind in ("alpha", "fg"):
        with VideoSource(out / f"shot_{kind}.mov") as got, VideoSource(whole.outputs[kind]) as want:
            assert got.info.frames == list(range(frames)) and got.info.timecode == "01:00:00:00"
            for (n, a), (_, b) in zip(got, want):
                np.testing.assert_array_equal(a, b, err_msg=f"{kind} frame {n}")


def test_interrupted_video_render_resumes_from_its_partial_file(tmp_path: Path, engine: Engine) -> None:
    """Stopped half-way, a video output keeps what it encoded in its hidden partial file;
    --skip-existing renders only the rest and the result equals an uninterrupted render."""
    clip = write_clip(tmp_path / "shot.mov", n=8, codec="prores_ks", pix_fmt="yuv422p10le",
                      timecode="01:00:00:00")
    whole = render(clip, engine=engine, output_dir=tmp_path / "whole")

    def stop(number: int, done: int, total: int) -> None:
        if number == 5:
            time.sleep(0.5)  # lets the encoder catch up, as a render's frames usually have
            raise KeyboardInterrupt

    out = tmp_path / "shot_pomagan"
    with pytest.raises(KeyboardInterrupt):
        render(clip, engine=engine, callback=stop)
    assert sorted(p.name for p in out.iterdir()) == [".shot_alpha.partial.mov", ".shot_fg.partial.mov"]
    _resume_equals_whole(clip, engine, whole, frames=8, held_within=(1, 6))
    # Stopped after its last frame was encoded but before the rename: the resume only finishes it.
    def stop_last(number: int, done: int, total: int) -> None:
        if number == 7:
            time.sleep(0.5)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render(clip, engine=engine, output_dir=tmp_path / "last", callback=stop_last)
    finished = render(clip, engine=engine, output_dir=tmp_path / "last", skip_existing=True)
    assert finished.written == [] and finished.skipped_existing == list(range(8))
    with VideoSource(tmp_path / "last" / "shot_fg.mov") as got, VideoSource(whole.outputs["fg"]) as want:
        assert [n for n, _ in got] == list(range(8))
        for (_, a), (_, b) in zip(got, want):
            np.testing.assert_array_equal(a, b)
    # Killed after the finished file was put in place but before its partial was cleared: the
    # next --skip-existing leaves the file and clears the partial.
    stale = tmp_path / "last" / ".shot_fg.partial.mov"
    stale.write_bytes(b"left by a kill")
    assert render(clip, engine=engine, output_dir=tmp_path / "last", skip_existing=True).written == []
    assert sorted(p.name for p in (tmp_path / "last").iterdir()) == ["shot_alpha.mov", "shot_fg.mov"]
    # A partial from another frame range is not taken: that render starts afresh.
    with pytest.raises(KeyboardInterrupt):
        render(clip, engine=engine, frames="2-7", output_dir=tmp_path / "range", callback=stop)
    again = render(clip, engine=engine, frames="3-7", output_dir=tmp_path / "range", skip_existing=True)
    assert again.written == [3, 4, 5, 6, 7]


def test_skip_existing_refuses_frames_rendered_with_other_settings(tmp_path: Path, model, engine: Engine) -> None:
    """A resume with another working size (or weights, test-time augmentation, window...) would
    mix two mattes in one shot: refused, naming the frames and the setting, nothing touched; the
    same settings resume. PNG, TIFF and DPX record the settings too."""
    pattern, _ = make_exr_plate(tmp_path, frames=(1, 2, 3, 4, 5, 6))
    render(pattern, engine=engine, frames="1-3")
    out = tmp_path / "plate_pomagan"
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    other = Engine(model, device="cpu", working_size=48, batch_size=2, foreground="multiply")
    with pytest.raises(BadInputError) as refused:
        render(pattern, engine=other, skip_existing=True)
    message = str(refused.value)
    assert "plate_alpha.####.exr: frame(s) 1-3 were rendered with other settings" in message
    assert "working_size 32 (this render: 48)" in message and "without --skip-existing" in message
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    with pytest.raises(BadInputError, match=r"window data \(this render: display\)"):
        render(pattern, engine=engine, skip_existing=True, display_window=True)
    resumed = render(pattern, engine=engine, skip_existing=True)
    assert resumed.skipped_existing == [1, 2, 3] and resumed.written == [4, 5, 6]
    recorded = json.loads(read_file(out / "plate_fg.0006.exr")[1].get_string_attribute("pomagan:settings"))
    assert recorded["working_size"] == 32 and recorded["tta"] == "none" and len(recorded["weights"]) == 12
    for fmt in ("png", "tiff", "dpx"):
        render(pattern, engine=engine, frames="1-3", format=fmt, output_dir=tmp_path / fmt)
        with pytest.raises(BadInputError, match="working_size 32 \\(this render: 48\\)"):
            render(pattern, engine=other, format=fmt, output_dir=tmp_path / fmt, skip_existing=True)
        again = render(pattern, engine=engine, format=fmt, output_dir=tmp_path / fmt, skip_existing=True)
        assert again.skipped_existing == [1, 2, 3] and again.written == [4, 5, 6]
    # Where TIFF and DPX keep the record: TIFF's Software tag, DPX's user data section.
    ext = {"tiff": "tif", "dpx": "dpx"}
    for fmt in ("tiff", "dpx"):
        frame = tmp_path / fmt / f"plate_alpha.0002.{ext[fmt]}"
        assert json.loads(read_render_settings(frame))["working_size"] == 32
    software = read_file(tmp_path / "tiff" / "plate_fg.0002.tif")[1].get_string_attribute("Software")
    assert software.startswith("pomagan-post; pomagan:settings={")


def _stopped_then_resumed(tmp_path: Path, clip: Path, first: Engine, **resume: Any) -> tuple[Path, Any, list[str]]:
    """An alpha-only video render with engine ``first`` stopped at frame 3 (its partial file
    left), then resumed with --skip-existing and ``resume``'s arguments: (output folder, the
    resumed report, its log)."""
    def stop(number: int, done: int, total: int) -> None:
        if number == 3:
            time.sleep(0.5)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render(clip, engine=first, outputs=["alpha"], callback=stop)
    out = tmp_path / "shot_pomagan"
    assert names(out) == [".shot_alpha.partial.mov"]
    messages: list[str] = []
    resumed = render(clip, outputs=["alpha"], skip_existing=True, log=messages.append, **resume)
    assert resumed.written == list(range(6)) and resumed.skipped_existing == []
    assert names(out) == ["shot_alpha.mov"]
    return out, resumed, messages


def _same_frames(got: Path, want: Path) -> None:
    with VideoSource(got) as a_frames, VideoSource(want) as b_frames:
        for (n, a), (_, b) in zip(a_frames, b_frames):
            np.testing.assert_array_equal(a, b, err_msg=f"frame {n}")


def test_a_video_partial_made_with_other_settings_is_rendered_afresh(
        tmp_path: Path, model, engine: Engine) -> None:
    """The partial file of a stopped video render is only an intermediate: resumed with other
    settings it is not kept (it would mix two mattes), the render says so and writes the whole
    clip, equal to an uninterrupted render with the new settings."""
    clip = write_clip(tmp_path / "shot.mov", n=6, codec="prores_ks", pix_fmt="yuv422p10le")
    other = Engine(model, device="cpu", working_size=48, batch_size=2, foreground="multiply")
    whole = render(clip, engine=other, output_dir=tmp_path / "whole", outputs=["alpha"])
    out, _, messages = _stopped_then_resumed(tmp_path, clip, engine, engine=other)
    assert any("made with other settings: working_size 32 (this render: 48); rendering it afresh" in m
               for m in messages), messages
    _same_frames(out / "shot_alpha.mov", whole.outputs["alpha"])


def test_a_video_from_the_other_prores_encoder_is_not_mixed_or_kept(tmp_path: Path, engine: Engine) -> None:
    """Both ProRes encoders decode as ProRes: a partial from the other one is rendered afresh,
    saying so, and a finished video from the other one is refused by --skip-existing."""
    clip = write_clip(tmp_path / "shot.mov", n=6, codec="prores_ks", pix_fmt="yuv422p10le")
    whole = render(clip, engine=engine, output_dir=tmp_path / "whole", outputs=["alpha"], codec="prores4444-fast")
    out, _, messages = _stopped_then_resumed(tmp_path, clip, engine, engine=engine, codec="prores4444-fast")
    assert any("was encoded with prores_ks (this render: prores_aw, --codec prores4444-fast); rendering it "
               "afresh" in m for m in messages), messages
    _same_frames(out / "shot_alpha.mov", whole.outputs["alpha"])
    with pytest.raises(BadInputError, match=r"a finished video encoded with prores_aw \(this render: prores_ks"):
        render(clip, engine=engine, outputs=["alpha"], skip_existing=True)
    assert render(clip, engine=engine, outputs=["alpha"], skip_existing=True,
                  codec="prores4444-fast").skipped_existing == list(range(6))


def test_start_frame_numbers_a_videos_outputs_and_resumes(tmp_path: Path, engine: Engine) -> None:
    """--start-frame 1001: a video's EXR outputs are numbered 1001.., each frame's timecode is
    still its own, pixels equal the 0-based render's; a stopped video render resumes; a
    garbage sequence numbered from 1001 lines up; a sequence input refuses it."""
    clip = write_clip(tmp_path / "shot.mov", n=8, codec="prores_ks", pix_fmt="yuv422p10le",
                      timecode="01:00:00:00")
    plain = render(clip, engine=engine, frames="2-5", format="exr", output_dir=tmp_path / "plain")
    shifted = render(clip, engine=engine, frames="1003-1006", start_frame=1001, format="exr",
                     output_dir=tmp_path / "vfx")
    assert plain.written == [2, 3, 4, 5] and shifted.written == [1003, 1004, 1005, 1006]
    for n in range(2, 6):
        for kind in ("alpha", "fg"):
            want, _ = read_file(tmp_path / "plain" / f"shot_{kind}.{n:04d}.exr")
            got, spec = read_file(tmp_path / "vfx" / f"shot_{kind}.{1001 + n:04d}.exr")
            np.testing.assert_array_equal(got, want)
            assert spec.get_string_attribute("smpte:TimeCode") == f"01:00:00:0{n}"
    # A video output stopped half-way resumes with the same numbering.
    def stop(number: int, done: int, total: int) -> None:
        if number == 5:
            time.sleep(0.5)
            raise KeyboardInterrupt

    whole = render(clip, engine=engine, start_frame=1, output_dir=tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        render(clip, engine=engine, start_frame=1, output_dir=tmp_path / "mov", callback=stop)
    resumed = render(clip, engine=engine, start_frame=1, output_dir=tmp_path / "mov", skip_existing=True)
    assert resumed.skipped_existing and resumed.skipped_existing[0] == 1
    assert sorted(resumed.skipped_existing + resumed.written) == list(range(1, 9))
    with VideoSource(tmp_path / "mov" / "shot_fg.mov") as got, VideoSource(whole.outputs["fg"]) as want:
        assert len(got.info.frames) == 8
        for (_, a), (_, b) in zip(got, want):
            np.testing.assert_array_equal(a, b)
    # A garbage matte sequence numbered as the shot is, from 1001.
    for n in range(1003, 1007):
        write_file(tmp_path / f"g.{n}.png", np.full((48, 64, 1), 0.0 if n == 1004 else 1.0), "uint8")
    masked = render(clip, engine=engine, frames="1003-1006", start_frame=1001, format="exr",
                    outputs=["alpha"], output_dir=tmp_path / "g", garbage_matte=tmp_path / "g.####.png")
    assert masked.written == [1003, 1004, 1005, 1006]
    assert read_file(tmp_path / "g" / "shot_alpha.1004.exr")[0].max() == 0.0
    np.testing.assert_array_equal(read_file(tmp_path / "g" / "shot_alpha.1005.exr")[0],
                                  read_file(tmp_path / "vfx" / "shot_alpha.1005.exr")[0])
    with pytest.raises(BadInputError, match="--start-frame numbers a video's frames"):
        render(tmp_path / "plain" / "shot_alpha.####.exr", engine=engine, start_frame=1,
               output_dir=tmp_path / "no")
    assert not (tmp_path / "no").exists()


def test_anamorphic_video_outputs_keep_the_aspect(tmp_path: Path, engine: Engine) -> None:
    """A 2:1 anamorphic ProRes clip: its ProRes 4444 and PNG-in-MOV outputs carry the same
    sample aspect ratio (players show them desqueezed, lined up with the source), after the
    finishing copy too."""
    clip = write_clip(tmp_path / "ana.mov", n=2, codec="prores_ks", pix_fmt="yuv422p10le",
                      sample_aspect=Fraction(2))
    with VideoSource(clip) as source:
        assert source.info.pixel_aspect == 2.0
    for codec in ("prores4444", "png"):
        report = render(clip, engine=engine, codec=codec, output_dir=tmp_path / codec)
        for kind in ("alpha", "fg"):
            with VideoSource(report.outputs[kind]) as out:
                assert out.info.pixel_aspect == 2.0, (codec, kind)


_KILLED_RENDER = """
import os, signal, sys, time
from pomagan_post import Engine, load_checkpoint
from pomagan_post.renderer import render
engine = Engine(load_checkpoint(None), device="cpu", working_size=32, batch_size=2,
                foreground="multiply")  # the module's engine

def kill(number, done, total):
    if number == 9:
        time.sleep(0.5)  # lets the encoder catch up, as a render's frames usually have
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind, as a farm's kill -9

render(sys.argv[1], engine=engine, callback=kill)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_render_killed_outright_resumes_from_its_partial_file(tmp_path: Path, engine: Engine) -> None:
    """A render killed with SIGKILL (or out of memory, or a lost machine) runs no clean-up, so
    its partial video files are never closed; --skip-existing still keeps their whole frames,
    renders the rest, and the result equals an uninterrupted render."""
    clip = write_clip(tmp_path / "shot.mov", n=12, codec="prores_ks", pix_fmt="yuv422p10le",
                      timecode="01:00:00:00")
    whole = render(clip, engine=engine, output_dir=tmp_path / "whole")
    killed = subprocess.run([sys.executable, "-c", _KILLED_RENDER, str(clip)], capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    out = tmp_path / "shot_pomagan"
    # (the lock files stay, held by no one: the kernel let go of the dead process's locks)
    assert sorted(p.name for p in out.iterdir()) == [".shot_alpha.mov.lock", ".shot_alpha.partial.mov",
                                                     ".shot_fg.mov.lock", ".shot_fg.partial.mov"]
    _resume_equals_whole(clip, engine, whole, frames=12, held_within=(3, 9))
    assert sorted(p.name for p in out.iterdir()) == ["shot_alpha.mov", "shot_fg.mov"]


def test_interlaced_video_is_flagged(tmp_path: Path, engine: Engine) -> None:
    """Interlaced ProRes (two fields per frame, as broadcast delivers it) is matted as whole frames
    and the render says so, with what to do for moving subjects; progressive video says nothing."""
    import av

    path = tmp_path / "interlaced.mov"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("prores_ks", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv422p10le"
        stream.codec_context.flags |= av.codec.context.Flags.interlaced_dct  # field-coded
        stream.codec_context.field_order = 2  # labelled top field first
        for i in range(2):
            pixels = (np.clip(ramp(48, 64, 3, seed=i), 0, 1) * 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame = frame.reformat(format="yuv422p10le")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with VideoSource(path) as source:
        assert source.info.metadata["interlaced"]
    messages: list[str] = []
    assert render(path, engine=engine, outputs=["alpha"], log=messages.append).ok
    assert any("interlaced: matted as whole frames" in m and "bwdif" in m for m in messages)
    with av.open(str(tmp_path / "interlaced_pomagan" / "interlaced_alpha.mov")) as output:
        assert output.streams.video[0].codec_context.field_order == 2  # its fields still woven, TFF
    progressive = write_clip(tmp_path / "progressive.mov", n=2, codec="prores_ks", pix_fmt="yuv422p10le")
    with VideoSource(progressive) as source:
        assert not source.info.metadata["interlaced"]


def test_relative_output_names_go_in_the_output_folder(tmp_path: Path, engine: Engine,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """--alpha-name mattes/m.####.exr -o OUT writes OUT/mattes/..., as the option's help says,
    wherever the render is started from (it went to ./mattes/ before)."""
    pattern, _ = make_exr_plate(tmp_path, frames=(1001,))
    monkeypatch.chdir(tmp_path)
    report = render(pattern, engine=engine, output_dir=tmp_path / "out", alpha_name="mattes/m.####.exr",
                    fg_name=str(tmp_path / "abs" / "f.####.exr"))
    assert report.ok and (tmp_path / "out" / "mattes" / "m.1001.exr").is_file()
    assert (tmp_path / "abs" / "f.1001.exr").is_file() and not (tmp_path / "mattes").exists()


def test_stopped_before_any_frame_leaves_no_folder_it_made(tmp_path: Path) -> None:
    """Stopped (Ctrl-C) before the first frame was written: the output folder and the folders
    named in --alpha-name / --fg-name that the render made are gone; folders that were there stay."""

    class _Interrupted:
        batch_size = 4

        def matte(self, frames: np.ndarray, colorspace: str, need_fg: bool) -> None:
            raise KeyboardInterrupt

    clip = write_clip(tmp_path / "shot.mov", n=3, codec="prores_ks", pix_fmt="yuv422p10le")
    mine = tmp_path / "mine"
    mine.mkdir()
    for out, names in ((tmp_path / "new", {}), (mine, {"alpha_name": "sub/a/m.mov", "fg_name": "f/f.mov"}),
                       (mine, {"alpha_name": "seq/m.####.exr", "fg_name": "seq2/f.####.exr"})):
        with pytest.raises(KeyboardInterrupt):
            render(clip, engine=_Interrupted(), output_dir=out, **names)
    assert not (tmp_path / "new").exists() and mine.is_dir() and not any(mine.iterdir())


def test_composite_over_a_display_colour(tmp_path: Path, engine: Engine) -> None:
    pattern, pixels = make_exr_plate(tmp_path, frames=(1,))
    report = render(pattern, engine=engine, comp="#00b140", outputs=["alpha"])
    out = tmp_path / "plate_pomagan"
    assert names(out) == ["plate_alpha.0001.exr", "plate_comp.0001.exr"]
    comp, spec = read_file(out / "plate_comp.0001.exr")
    alpha, _ = read_file(out / "plate_alpha.0001.exr")
    bg = srgb_eotf(np.array([0, 0xB1 / 255, 0x40 / 255], np.float32))  # display sRGB to linear
    a = alpha[..., :1]
    np.testing.assert_allclose(comp, pixels[1] * a + (1 - a) * bg, rtol=3 * HALF_TOL, atol=2e-3)
    assert report.outputs["comp"].endswith("plate_comp.####.exr")
    # display white is linear 1.0 (it was the model's rolled-off highlight, 3.54)
    render(pattern, engine=engine, comp="white", outputs=["alpha"], output_dir=tmp_path / "white")
    comp, _ = read_file(tmp_path / "white" / "plate_comp.0001.exr")
    alpha, _ = read_file(tmp_path / "white" / "plate_alpha.0001.exr")
    a = alpha[..., :1]
    np.testing.assert_allclose(comp, pixels[1] * a + (1 - a), rtol=3 * HALF_TOL, atol=2e-3)


def test_parse_background() -> None:
    from pomagan_post.io.base import ClipInfo

    info = ClipInfo(4, 3, [0], "srgb")
    np.testing.assert_allclose(parse_background("0.25,0.5,1", info), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(parse_background("green", info), [0, 1, 0])
    np.testing.assert_allclose(parse_background("#ff8000", info), [1, 128 / 255, 0], atol=1e-6)
    for bad in ("blurple", "1,2,3", "nope.png"):
        with pytest.raises(BadInputError, match="--comp"):
            parse_background(bad, info)


def test_dpx_log_keeps_log_header_and_writes_straight_10bit(tmp_path: Path, engine: Engine) -> None:
    data = ramp(35, 41, 3, seed=9)
    write_file(tmp_path / "scan.0100.dpx", data, "uint16", oiio__BitsPerSample=10,
               dpx__Transfer="Printing density")
    report = render(tmp_path / "scan.####.dpx", engine=engine)
    assert report.colorspace == "cineon" and report.alpha_mode == "straight"
    fg, spec = read_file(tmp_path / "scan_pomagan" / "scan_fg.0100.dpx")
    assert spec.get_int_attribute("oiio:BitsPerSample") == 10 and fg.shape == (35, 41, 4)
    assert spec.get_string_attribute("dpx:Transfer") == "Printing density"


def test_colorspace_override_and_bad_name(tmp_path: Path, engine: Engine) -> None:
    pattern, _ = make_exr_plate(tmp_path, frames=(1,))
    assert render(pattern, engine=engine, colorspace="ACEScg").colorspace == "ACEScg"
    with pytest.raises(BadInputError, match="unknown colour space"):
        render(pattern, engine=engine, colorspace="not-a-space")


class _TightEngine:
    """Runs out of GPU memory above batch size 1, like a big frame on a small card."""

    def __init__(self) -> None:
        self.batch_size = 4
        self.calls: list[int] = []

    def matte(self, frames: np.ndarray, colorspace: str, need_fg: bool) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(self.batch_size)
        if self.batch_size > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        alpha = np.full(frames.shape[:3], 0.5, np.float32)
        return alpha, frames * alpha[..., None]


def test_out_of_memory_halves_the_batch(tmp_path: Path) -> None:
    for frame in range(1, 6):
        write_file(tmp_path / f"m.{frame}.png", ramp(8, 8, 3), "uint8")
    tight = _TightEngine()
    messages: list[str] = []
    report = render(tmp_path / "m.#.png", engine=tight, batch_size=4, log=messages.append)
    assert report.written == [1, 2, 3, 4, 5] and tight.batch_size == 1
    assert tight.calls[:3] == [4, 2, 1]
    assert any("batch size 2" in m for m in messages)


@pytest.mark.parametrize("codec, pix_fmt", [("libx264", "yuv420p"), ("prores_ks", "yuv422p10le")])
def test_video_in_video_out(tmp_path: Path, engine: Engine, codec: str, pix_fmt: str) -> None:
    clip = write_clip(tmp_path / ("shot.mp4" if codec == "libx264" else "shot.mov"), n=4,
                      codec=codec, pix_fmt=pix_fmt, timecode="01:00:00:00")
    report = render(clip, engine=engine)
    out = tmp_path / "shot_pomagan"
    assert names(out) == ["shot_alpha.mov", "shot_fg.mov"] and report.written == [0, 1, 2, 3]
    assert report.alpha_mode == "premultiplied"
    with VideoSource(out / "shot_fg.mov") as fg:
        assert fg.info.frames == [0, 1, 2, 3] and (fg.info.width, fg.info.height) == (64, 48)
        assert fg.info.metadata["has_alpha"] and fg.info.metadata["codec"] == "prores"
        assert fg.info.fps == 24 and fg.info.timecode == "01:00:00:00"
    again = render(clip, engine=engine, skip_existing=True)  # complete videos are kept
    assert again.written == [] and again.skipped_existing == [0, 1, 2, 3]
    # A video can also become an EXR sequence (frame numbers from the clip, 0-based).
    seq = render(clip, engine=engine, format="exr", outputs=["alpha"], output_dir=tmp_path / "seq")
    assert names(tmp_path / "seq") == [f"shot_alpha.{f:04d}.exr" for f in range(4)] and seq.ok


def test_composite_over_an_image_in_another_colour_space(tmp_path: Path, engine: Engine) -> None:
    pattern, pixels = make_exr_plate(tmp_path, frames=(1,))
    bg = np.zeros((10, 10, 3), np.float32)
    bg[..., 2] = 0.5  # an sRGB PNG background, resized to the plate and converted to linear
    bg[..., 0] = 1.0  # (display white: linear 1.0)
    write_file(tmp_path / "bg.png", bg, "uint8")
    render(pattern, engine=engine, comp=str(tmp_path / "bg.png"), outputs=["alpha"], format="tiff")
    out = tmp_path / "plate_pomagan"
    comp, spec = read_file(out / "plate_comp.0001.tif")
    alpha, _ = read_file(out / "plate_alpha.0001.tif")
    # TIFF has no data window: the 37x23 window at (5, 3) sits in the 48x30 picture.
    assert str(spec.format) == "float" and comp.shape == (30, 48, 3)
    a = alpha[..., :1]
    placed = np.zeros((30, 48, 3), np.float32)
    placed[3:26, 5:42] = pixels[1]
    blue = float(srgb_eotf(np.float32([0, 0, 128 / 255]))[2])
    np.testing.assert_allclose(comp, placed * a + (1 - a) * np.float32([1, 0, blue]),
                               rtol=3 * HALF_TOL, atol=2e-3)


def test_parallel_writers_keep_frame_numbers_and_pixels(tmp_path: Path, engine: Engine) -> None:
    """Several writer threads finish frames in any order; every file still carries its own
    frame's pixels and timecode, the same bytes one writer gives."""
    frames = tuple(range(1001, 1009))
    pattern, _ = make_exr_plate(tmp_path, frames=frames)
    one = render(pattern, engine=engine, writers=1, output_dir=tmp_path / "one")
    many = render(pattern, engine=engine, writers=4, output_dir=tmp_path / "many")
    assert one.written == many.written == list(frames)
    for i, frame in enumerate(frames):
        for kind in ("alpha", "fg"):
            expected, _ = read_file(tmp_path / "one" / f"plate_{kind}.{frame}.exr")
            got, spec = read_file(tmp_path / "many" / f"plate_{kind}.{frame}.exr")
            np.testing.assert_array_equal(got, expected)
            assert spec.get_string_attribute("smpte:TimeCode") == f"01:00:00:0{i}"
    with pytest.raises(BadInputError, match="writers must be at least 1"):
        render(pattern, engine=engine, writers=0, output_dir=tmp_path / "none")


def test_premultiplied_fg_output_reuses_the_engines_rgba_buffer(engine: Engine) -> None:
    """Engine.matte's foreground is a view of an RGBA buffer; the fg output hands that buffer
    on (no copy on the render thread) with exactly the values a concatenation gives."""
    from pomagan_post.renderer import output_frame

    frames = np.random.default_rng(5).random((2, 21, 34, 3)).astype(np.float32)
    alpha, fg = engine.matte(frames, "srgb")
    for i in range(2):
        rgba = output_frame("fg", alpha[i], fg[i])
        assert np.shares_memory(rgba, fg) and not rgba.flags.writeable
        np.testing.assert_array_equal(rgba, np.concatenate([fg[i], alpha[i][..., None]], axis=-1))
    # Anything else is concatenated: a plain array, or an RGBA whose 4th channel is not alpha.
    plain = np.ascontiguousarray(fg[0])
    assert not np.shares_memory(output_frame("fg", alpha[0], plain), plain)
    other = np.concatenate([fg[0], np.zeros_like(alpha[0])[..., None]], axis=-1)
    out = output_frame("fg", alpha[0], other[..., :3])
    assert not np.shares_memory(out, other) and np.array_equal(out[..., 3], alpha[0])
    straight = output_frame("fg", alpha[0], fg[0], alpha_mode="straight")
    assert not np.shares_memory(straight, fg)


def _plate_png(directory: Path, frames: tuple[int, ...] = (1, 2, 3), size: tuple[int, int] = (48, 40)) -> Path:
    for frame in frames:
        write_file(directory / f"plate.{frame:04d}.png", ramp(size[1], size[0], 3, seed=frame), "uint8")
    return directory / "plate.####.png"


def test_garbage_matte_keeps_only_what_lies_inside_it(tmp_path: Path, engine: Engine) -> None:
    """One image for every frame: the alpha and the premultiplied foreground are multiplied by
    it (white keeps, black removes); the rest of the matte is the render's own."""
    plate = _plate_png(tmp_path)
    garbage = np.zeros((40, 48), np.float32)
    garbage[:, :20] = 1.0
    garbage[:, 20:30] = 0.5
    write_file(tmp_path / "garbage.png", garbage[..., None], "uint16")
    plain = render(plate, engine=engine, output_dir=tmp_path / "plain", format="exr")
    limited = render(plate, engine=engine, output_dir=tmp_path / "limited", format="exr",
                     garbage_matte=tmp_path / "garbage.png")
    assert limited.written == [1, 2, 3]
    for frame in (1, 2, 3):
        want_a, _ = read_file(tmp_path / "plain" / f"plate_alpha.{frame:04d}.exr")
        got_a, _ = read_file(tmp_path / "limited" / f"plate_alpha.{frame:04d}.exr")
        want_fg, _ = read_file(tmp_path / "plain" / f"plate_fg.{frame:04d}.exr")
        got_fg, _ = read_file(tmp_path / "limited" / f"plate_fg.{frame:04d}.exr")
        np.testing.assert_allclose(got_a[..., 0], want_a[..., 0] * garbage, atol=HALF_TOL)
        np.testing.assert_allclose(got_fg, want_fg * garbage[..., None], atol=HALF_TOL)
        assert not got_a[:, 30:].any() and not got_fg[:, 30:].any()  # black removes everything
    assert plain.written == limited.written


def test_garbage_matte_sequence_or_video_goes_frame_by_frame(tmp_path: Path, engine: Engine) -> None:
    """A sequence gives each frame its own matte by number; a video by frame index."""
    from pomagan_post.io.base import ClipInfo
    from pomagan_post.io.video import VideoSink

    plate = _plate_png(tmp_path)
    levels = {1: 1.0, 2: 0.0, 3: 0.25}
    for frame, level in levels.items():
        write_file(tmp_path / f"g.{frame:04d}.png", np.full((40, 48, 1), level, np.float32), "uint16")
    info = ClipInfo(width=48, height=40, frames=[0, 1, 2, 3], colorspace="rec709", fps=Fraction(24))
    with VideoSink(tmp_path / "g.mkv", info, kind="alpha", codec="ffv1") as sink:
        for index, level in enumerate([0.0, 1.0, 0.0, 0.25]):  # frame index = the plate's number
            sink.write(index, np.full((40, 48), level, np.float32))
    plain = render(plate, engine=engine, output_dir=tmp_path / "plain", outputs=["alpha"], format="exr")
    for name, garbage in (("seq", tmp_path / "g.####.png"), ("video", tmp_path / "g.mkv")):
        report = render(plate, engine=engine, output_dir=tmp_path / name, outputs=["alpha"], format="exr",
                        garbage_matte=garbage)
        assert report.written == [1, 2, 3] and plain.written == [1, 2, 3]
        for frame, level in levels.items():
            want, _ = read_file(tmp_path / "plain" / f"plate_alpha.{frame:04d}.exr")
            got, _ = read_file(tmp_path / name / f"plate_alpha.{frame:04d}.exr")
            np.testing.assert_allclose(got, want * level, atol=HALF_TOL, err_msg=f"{name} frame {frame}")


def test_garbage_matte_with_an_alpha_channel_uses_it_when_it_says_something(tmp_path: Path) -> None:
    """A roto written from Nuke as RGBA (black RGB, the shape in alpha) limits by its alpha,
    even on a frame where the shape covers everything; a matte painted white/black and saved
    with an opaque alpha limits by its picture."""
    engine = constant_matte_engine(0.8, TEST_DEVICE)  # a matte on both sides of the shape's edge
    plate = _plate_png(tmp_path)
    plain = render(plate, engine=engine, output_dir=tmp_path / "plain", outputs=["alpha"], format="exr")
    roto = np.zeros((40, 48, 4), np.float32)
    roto[:, :20, 3] = 1.0
    whole = np.zeros((40, 48, 4), np.float32)
    whole[..., 3] = 1.0  # frame 2: the shape covers the frame
    for frame, data in ((1, roto), (2, whole), (3, roto)):
        write_file(tmp_path / f"roto.{frame:04d}.exr", data, "half", channels=("R", "G", "B", "A"))
    painted = np.ones((40, 48, 4), np.float32)
    painted[:, 20:, :3] = 0.0  # white left, black right, alpha opaque
    write_file(tmp_path / "painted.png", painted, "uint8", channels=("R", "G", "B", "A"))
    keep_left = np.zeros((40, 48, 1), np.float32)
    keep_left[:, :20] = 1.0
    for name, garbage, masks in (("roto", tmp_path / "roto.####.exr", {1: keep_left, 2: 1.0, 3: keep_left}),
                                 ("painted", tmp_path / "painted.png", {1: keep_left, 2: keep_left, 3: keep_left})):
        report = render(plate, engine=engine, output_dir=tmp_path / name, outputs=["alpha"], format="exr",
                        garbage_matte=garbage)
        assert report.written == plain.written == [1, 2, 3]
        for frame, mask in masks.items():
            want, _ = read_file(tmp_path / "plain" / f"plate_alpha.{frame:04d}.exr")
            got, _ = read_file(tmp_path / name / f"plate_alpha.{frame:04d}.exr")
            np.testing.assert_allclose(got, want * mask, atol=HALF_TOL, err_msg=f"{name} frame {frame}")
    # neither side is empty to begin with: there is something to keep and something to remove
    first, _ = read_file(tmp_path / "plain" / "plate_alpha.0001.exr")
    np.testing.assert_allclose(first, 0.8, atol=1e-3)


def test_garbage_matte_is_read_in_the_shots_region_by_pixel_coordinates(tmp_path: Path, engine: Engine) -> None:
    """An EXR plate whose data window (37x23 at (5, 3)) is not its 48x30 picture: a roto written
    from Nuke with its shape's bounding box as data window (10x8 at (12, 6)), and a PNG painted
    at the picture's size, both limit the matte where they lie in the picture."""
    pattern, _ = make_exr_plate(tmp_path, frames=(1, 2))
    plain = render(pattern, engine=engine, output_dir=tmp_path / "plain", outputs=["alpha"])
    shape = np.zeros((8, 10, 4), np.float32)
    shape[..., 3] = 1.0
    for frame in (1, 2):
        write_file(tmp_path / f"roto.{frame:04d}.exr", shape, "half", channels=("R", "G", "B", "A"),
                   origin=(12, 6), display=(0, 0, 48, 30))
    painted = np.zeros((30, 48, 1), np.float32)
    painted[6:14, 12:22] = 1.0  # the same box, drawn on the whole picture
    write_file(tmp_path / "painted.png", painted, "uint8")
    mask = np.zeros((23, 37, 1), np.float32)
    mask[3:11, 7:17] = 1.0  # the box in the plate's data window: (12 - 5, 6 - 3)
    for name, garbage in (("roto", tmp_path / "roto.####.exr"), ("painted", tmp_path / "painted.png")):
        render(pattern, engine=engine, output_dir=tmp_path / name, outputs=["alpha"], garbage_matte=garbage)
        for frame in (1, 2):
            want, _ = read_file(tmp_path / "plain" / f"plate_alpha.{frame:04d}.exr")
            got, spec = read_file(tmp_path / name / f"plate_alpha.{frame:04d}.exr")
            assert (spec.x, spec.y, spec.width, spec.height) == (5, 3, 37, 23)
            np.testing.assert_allclose(got, want * mask, atol=HALF_TOL, err_msg=f"{name} frame {frame}")
    assert plain.written == [1, 2]


def test_garbage_matte_of_another_size_or_without_a_frame_is_refused(tmp_path: Path, engine: Engine) -> None:
    plate = _plate_png(tmp_path)
    write_file(tmp_path / "small.png", np.ones((20, 24, 1), np.float32), "uint8")
    with pytest.raises(BadInputError, match=r"garbage matte .*small\.png is 24x20, the shot is 48x40"):
        render(plate, engine=engine, output_dir=tmp_path / "a", garbage_matte=tmp_path / "small.png")
    for frame in (1, 3):
        write_file(tmp_path / f"g.{frame:04d}.png", np.ones((40, 48, 1), np.float32), "uint8")
    with pytest.raises(BadInputError, match=r"garbage matte: input not found: .*gone\.png"):
        render(plate, engine=engine, output_dir=tmp_path / "a", garbage_matte=tmp_path / "gone.png")
    with pytest.raises(MissingFramesError, match="garbage matte: missing frames 2 of") as caught:
        render(plate, engine=engine, output_dir=tmp_path / "b", garbage_matte=tmp_path / "g.####.png")
    assert caught.value.frames == [2]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused before any work


def test_a_stray_pixel_far_outside_the_frame_is_named_and_display_window_mattes_the_picture(
        tmp_path: Path, engine: Engine) -> None:
    """One CG frame whose data window reaches far outside the picture (a stray pixel): the
    render warns that the network sees a region many times the picture; --display-window mattes
    the picture alone, so the other frames' mattes are the same bits as a clean shot's and every
    EXR output holds the display window."""
    display = (0, 0, 48, 32)
    frames = {f: ramp(32, 48, 3, 2.0, seed=f) for f in (1, 2, 3)}
    for f, pixels in frames.items():
        write_file(tmp_path / f"clean.000{f}.exr", pixels, "half", display=display)
        if f == 2:  # the picture, plus one pixel far down and to the right
            stray = np.zeros((320, 480, 3), np.float32)
            stray[:32, :48] = pixels
            stray[-1, -1] = 5.0
            write_file(tmp_path / "cg.0002.exr", stray, "half", display=display)
        else:
            write_file(tmp_path / f"cg.000{f}.exr", pixels, "half", display=display)
    messages: list[str] = []
    render(tmp_path / "cg.####.exr", engine=engine, frames="1", output_dir=tmp_path / "wide",
           log=messages.append)
    assert any("span 480x320 at (0, 0), 100 times the 48x32 picture" in m and "--display-window" in m
               for m in messages), messages
    _, wide = read_file(tmp_path / "wide" / "cg_alpha.0001.exr")
    assert (wide.width, wide.height) == (480, 320)
    render(tmp_path / "clean.####.exr", engine=engine, output_dir=tmp_path / "clean")
    messages.clear()
    report = render(tmp_path / "cg.####.exr", engine=engine, output_dir=tmp_path / "picture",
                    display_window=True, log=messages.append)
    assert report.written == [1, 2, 3] and not any("span" in m for m in messages)
    for f in (1, 2, 3):
        got, spec = read_file(tmp_path / "picture" / f"cg_alpha.000{f}.exr")
        assert (spec.x, spec.y, spec.width, spec.height) == display
        want, _ = read_file(tmp_path / "clean" / f"clean_alpha.000{f}.exr")
        np.testing.assert_array_equal(got, want)


def _feathered_edge(height: int, width: int, edge: int, feather: float) -> np.ndarray:
    """A roto inside left of column ``edge``, feathered: its value crosses 0.5 between column
    ``edge - 1`` and ``edge``, and runs from 1 to 0 over about ``feather`` pixels."""
    columns = np.arange(width, dtype=np.float32)
    row = np.clip(0.5 + (edge - 0.5 - columns) / feather, 0.0, 1.0)
    return np.broadcast_to(row, (height, width)).copy()


def test_roto_drives_the_matte_and_counts_from_its_mid_line(tmp_path: Path, engine: Engine) -> None:
    """--roto replaces the segmentation network's guess: a feathered roto gives the matte of the
    hard shape at its mid-line, frame for frame (a sequence by number, one image for every
    frame); the outputs record the roto's name."""
    plate = _plate_png(tmp_path)
    left = (_feathered_edge(40, 48, 20, 1.0) >= 0.5).astype(np.float32)
    right = 1.0 - left[:, ::-1]  # frame 2: the subject on the other side
    write_file(tmp_path / "still.png", left[..., None], "uint8")
    for frame in (1, 2, 3):
        hard, soft = (left, _feathered_edge(40, 48, 20, 8.0)) if frame != 2 else (right, right)
        write_file(tmp_path / f"hard.{frame:04d}.png", hard[..., None], "uint16")
        write_file(tmp_path / f"soft.{frame:04d}.exr", soft[..., None], "float")
    runs = {name: render(plate, engine=engine, output_dir=tmp_path / name, outputs=["alpha"], format="exr",
                         roto=roto)
            for name, roto in (("plain", None), ("hard", tmp_path / "hard.####.png"),
                               ("soft", tmp_path / "soft.####.exr"), ("still", tmp_path / "still.png"))}
    assert all(r.written == [1, 2, 3] for r in runs.values())
    alphas = {name: {f: read_file(tmp_path / name / f"plate_alpha.{f:04d}.exr")[0][..., 0] for f in (1, 2, 3)}
              for name in runs}
    for frame in (1, 2, 3):
        np.testing.assert_array_equal(alphas["soft"][frame], alphas["hard"][frame])
        if frame != 2:
            np.testing.assert_array_equal(alphas["still"][frame], alphas["hard"][frame])
        assert np.abs(alphas["hard"][frame] - alphas["plain"][frame]).max() > 0.2  # not the network's guess
    assert np.abs(alphas["still"][2] - alphas["hard"][2]).max() > 0.2  # frame 2 read its own roto
    _, spec = read_file(tmp_path / "soft" / "plate_alpha.0001.exr")
    assert json.loads(spec.get_string_attribute("pomagan:settings"))["roto"] == "soft.####.exr"


def test_roto_pulls_a_person_the_model_alone_gets_wrong(tmp_path: Path, model) -> None:
    """The synthetic test set's worst frame for the bundled model (#57 of seed 1 at 320x192: a
    patterned prop kept with the person) through the bundled model at its own working size:
    given the person's shape as a roto (feathered, as drawn in a compositing package), the
    matte is close to the true one; without, far off."""
    from pomagan_train.data import build_dataset, seg_from_alpha

    item = build_dataset("synthetic:200", (320, 192), split="test", seed=1, augment=False)[57]
    image = item["image"].permute(1, 2, 0).numpy()
    truth = item["alpha"][0].numpy()
    shape = seg_from_alpha(torch.as_tensor(truth[None])).numpy()[0].astype(np.float32)
    import cv2

    soft = np.clip((cv2.GaussianBlur(shape, (0, 0), 2.0) - 0.5) * 1.5 + 0.5, 0, 1)  # a 3-pixel feather
    write_file(tmp_path / "frame.png", image, "uint16")
    write_file(tmp_path / "roto.png", soft[..., None], "uint16")
    bundled = Engine(model, device="cpu", batch_size=1)
    errors = {}
    for name, roto in (("alone", None), ("roto", tmp_path / "roto.png")):
        render(tmp_path / "frame.png", engine=bundled, output_dir=tmp_path / name, outputs=["alpha"],
               format="exr", roto=roto)
        alpha = read_file(tmp_path / name / "frame_alpha.exr")[0][..., 0]
        errors[name] = float(np.mean((alpha - truth) ** 2) * 1e3)
    assert errors["alone"] > 40, errors
    assert errors["roto"] < 6, errors
