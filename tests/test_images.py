"""Image sequences through OpenImageIO: real files written here, read back with tolerances."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
import numpy as np
import pytest

from pomagan_post.errors import BadInputError, MissingFramesError
from pomagan_post.io.base import ClipInfo, FrameSink, FrameSource
from pomagan_post.io.images import (
    ImageSequenceSink,
    ImageSequenceSource,
    read_image,
)
from pomagan_post.io.sequence import parse_pattern
from pomagan_post.io.streams import WriteBehind, prefetch

from .imaging import HALF_TOL, make_exr_plate, ramp, read_file, write_file

@pytest.fixture
def exr_plate(tmp_path: Path) -> tuple[Path, dict[int, np.ndarray]]:
    return make_exr_plate(tmp_path)


def test_exr_sequence_keeps_values_windows_and_metadata(exr_plate) -> None:
    pattern, frames = exr_plate
    with ImageSequenceSource(pattern) as source:
        assert isinstance(source, FrameSource)
        info = source.info
        assert (info.width, info.height, info.channels) == (37, 23, 3)
        assert info.frames == [1001, 1002, 1003] and info.colorspace == "linear"
        assert info.fps == Fraction(24000, 1001) and info.pixel_aspect == 2.0
        assert info.timecode == "01:00:00:00"
        assert info.metadata["data_window"] == (5, 3, 37, 23)
        assert info.metadata["display_window"] == (0, 0, 48, 30)
        got = dict(source)
    assert list(got) == [1001, 1002, 1003]
    for frame, rgb in got.items():
        assert rgb.shape == (23, 37, 3) and rgb.dtype == np.float32
        assert rgb.max() > 1.0  # scene-linear values above 1 survive
        np.testing.assert_allclose(rgb, frames[frame], rtol=HALF_TOL, atol=1e-4)


def test_data_windows_changing_mid_sequence_are_united_and_nothing_is_cropped(tmp_path: Path) -> None:
    """An autocropped EXR sequence: each frame's window elsewhere; the clip's region holds all."""
    write_file(tmp_path / "s.0001.exr", np.ones((4, 6, 3)), "float", origin=(2, 2), display=(0, 0, 16, 12))
    write_file(tmp_path / "s.0002.exr", np.full((4, 6, 3), 2.0), "float", origin=(4, 3), display=(0, 0, 16, 12))
    write_file(tmp_path / "s.0003.exr", np.full((2, 2, 3), 3.0), "float", origin=(1, 8), display=(0, 0, 16, 12))
    source = ImageSequenceSource(tmp_path / "s.####.exr")
    assert source.info.metadata["data_window"] == (1, 2, 9, 8)  # x 1-9, y 2-9
    assert (source.info.width, source.info.height) == (9, 8)
    assert source.info.metadata["display_window"] == (0, 0, 16, 12)
    first, second, third = source.read(1), source.read(2), source.read(3)
    assert first.shape == second.shape == third.shape == (8, 9, 3)
    assert first.sum() == 4 * 6 * 3 and np.all(first[0:4, 1:7] == 1.0)
    assert second.sum() == 4 * 6 * 3 * 2 and np.all(second[1:5, 3:9] == 2.0)  # its right columns kept
    assert third.sum() == 2 * 2 * 3 * 3 and np.all(third[6:8, 0:2] == 3.0)


def test_window_union_skips_frames_it_cannot_open_and_reads_report_them(tmp_path: Path) -> None:
    write_file(tmp_path / "s.0001.exr", np.ones((4, 6, 3)), "float", origin=(2, 2), display=(0, 0, 16, 12))
    (tmp_path / "s.0002.exr").write_bytes(b"not an exr")
    write_file(tmp_path / "s.0003.exr", np.ones((4, 6, 3)), "float", origin=(0, 0), display=(0, 0, 32, 12))
    source = ImageSequenceSource(tmp_path / "s.####.exr", on_error="skip")
    assert source.info.metadata["data_window"] == (2, 2, 6, 4)  # frame 3 is another picture size
    assert [f for f, _ in source] == [1]
    assert sorted(source.failed) == [2, 3] and "32x12" in source.failed[3]


@pytest.mark.parametrize(
    "name, data, pixel_type, extra, colorspace, bits",
    [
        ("png16", ramp(17, 31, 3), "uint16", {}, "srgb", 16),
        ("png8", ramp(17, 31, 3), "uint8", {}, "srgb", 8),
        ("gray", ramp(17, 31, 1), "uint16", {}, "srgb", 16),
        ("rgba", ramp(17, 31, 4), "uint16", {"oiio__UnassociatedAlpha": 1}, "srgb", 16),
        ("tif8", ramp(17, 31, 3), "uint8", {}, "srgb", 8),
        ("tif16", ramp(17, 31, 3), "uint16", {}, "srgb", 16),
        ("tif32", ramp(17, 31, 3, 4.0), "float", {}, "linear", 32),
        ("jpg", np.full((17, 31, 3), 0.5, np.float32), "uint8", {}, "srgb", 8),
        ("dpxlog", ramp(17, 31, 3), "uint16",
         {"oiio__BitsPerSample": 10, "dpx__Transfer": "Printing density"}, "cineon", 10),
        ("dpxvideo", ramp(17, 31, 3), "uint16",
         {"oiio__BitsPerSample": 10, "dpx__Transfer": "SMPTE 274M"}, "rec709", 10),
    ],
)
def test_formats_bit_depths_and_channel_layouts(
    tmp_path: Path, name: str, data: np.ndarray, pixel_type: str, extra: dict, colorspace: str, bits: int
) -> None:
    ext = {"png16": "png", "png8": "png", "gray": "png", "rgba": "png", "jpg": "jpg"}.get(
        name, "tif" if name.startswith("tif") else "dpx")
    path = tmp_path / f"{name}.0007.{ext}"
    write_file(path, data, pixel_type, **extra)
    source = ImageSequenceSource(tmp_path / f"{name}.%04d.{ext}")
    assert source.info.colorspace == colorspace
    assert source.info.metadata["bits"] == bits
    assert source.info.channels == data.shape[2]
    ((frame, rgb),) = list(source)
    assert frame == 7 and rgb.shape == (17, 31, 3)
    expected = np.repeat(data, 3, axis=2) if data.shape[2] == 1 else data[..., :3]
    tol = {8: 0.6 / 255, 10: 1.01 / 1023, 16: 0.6 / 65535, 32: 1e-6}[bits]  # DPX: OIIO shifts bits
    if ext == "jpg":
        tol = 2 / 255
    np.testing.assert_allclose(rgb, expected, atol=tol)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_tag_reads_the_image_as_viewers_show_it(tmp_path: Path, orientation: int) -> None:
    """A phone photo stored sideways (EXIF/TIFF Orientation 2-8) comes out the way OIIO's own
    reorient shows it; width, height and pixel aspect follow, outputs get no tag."""
    import OpenImageIO as oiio

    stored = ramp(6, 10, 3)
    write_file(tmp_path / "photo.tif", stored, "uint16", Orientation=orientation, PixelAspectRatio=2.0)
    shown = oiio.ImageBufAlgo.reorient(oiio.ImageBuf(str(tmp_path / "photo.tif")))
    expected = np.asarray(shown.get_pixels(oiio.FLOAT), np.float32)
    source = ImageSequenceSource(tmp_path / "photo.tif")
    assert (source.info.height, source.info.width) == expected.shape[:2]
    assert source.info.pixel_aspect == (0.5 if orientation >= 5 else 2.0)
    assert source.info.metadata["orientation"] == orientation
    (_, rgb), = list(source)
    np.testing.assert_array_equal(rgb, expected)
    sink = ImageSequenceSink(tmp_path / "out.#.tif", source.info, pixel_type="uint16")
    sink.write(1, rgb)
    sink.close()
    written, spec = read_file(tmp_path / "out.1.tif")
    np.testing.assert_allclose(written, expected, atol=1 / 65535)
    assert spec.get_int_attribute("Orientation", 1) == 1


def test_rgba_input_colour_is_not_premultiplied_on_read(tmp_path: Path) -> None:
    data = np.zeros((4, 4, 4), np.float32)
    data[..., :3], data[..., 3] = 0.8, 0.25
    write_file(tmp_path / "a.png", data, "uint16", oiio__UnassociatedAlpha=1)
    rgb, cs = read_image(tmp_path / "a.png")
    assert cs == "srgb"
    np.testing.assert_allclose(rgb, 0.8, atol=1e-4)


def _multipart_exr(path: Path, parts: list[tuple[str, tuple[str, ...], np.ndarray, tuple[int, int]]]) -> None:
    """An EXR with one part per (name, channels, pixels [H, W, C], data window origin)."""
    import OpenImageIO as oiio

    specs = []
    for name, channels, pixels, (x, y) in parts:
        spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], len(channels), "half")
        spec.channelnames, spec.x, spec.y = channels, x, y
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, 40, 30
        spec.attribute("name", name)
        specs.append(spec)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), specs)
    for index, (_, _, pixels, _) in enumerate(parts):
        if index:
            assert out.open(str(path), specs[index], "AppendSubimage")
        assert out.write_image(pixels.astype(np.float16))
    out.close()


def test_multipart_exr_reads_the_part_with_the_picture(tmp_path: Path) -> None:
    """A CG render's EXR with its passes as parts, depth first: the plate is the first part
    with R, G, B (plain names before a layer's), its own data window and size; a sequence of
    them renders from that part too."""
    depth = ramp(30, 40, 1, scale=100.0, seed=1)
    beauty = ramp(20, 32, 3, scale=4.0, seed=2)
    diffuse = ramp(20, 32, 3, seed=3)
    _multipart_exr(tmp_path / "cg.0001.exr", [("depth", ("Z",), depth, (0, 0)),
                                             ("diffuse", ("diffuse.R", "diffuse.G", "diffuse.B"), diffuse, (4, 5)),
                                             ("rgba", ("R", "G", "B"), beauty, (4, 5))])
    rgb, colorspace = read_image(tmp_path / "cg.0001.exr")
    assert colorspace == "linear" and rgb.shape == (20, 32, 3)
    np.testing.assert_allclose(rgb, beauty, rtol=HALF_TOL, atol=1e-3)
    with ImageSequenceSource(tmp_path / "cg.####.exr") as source:
        assert (source.info.width, source.info.height) == (32, 20)
        assert source.info.metadata["data_window"] == (4, 5, 32, 20)
        (number, frame), = list(source)
        np.testing.assert_allclose(frame, beauty, rtol=HALF_TOL, atol=1e-3)
    # Without a part of plain R, G, B: the first layered one.
    _multipart_exr(tmp_path / "layers.exr", [("depth", ("Z",), depth, (0, 0)),
                                           ("diffuse", ("diffuse.R", "diffuse.G", "diffuse.B"), diffuse, (4, 5))])
    np.testing.assert_allclose(read_image(tmp_path / "layers.exr")[0], diffuse, rtol=HALF_TOL, atol=1e-3)


def test_gaps_stop_by_default_and_skip_on_request(tmp_path: Path) -> None:
    for frame in (1, 2, 4):
        write_file(tmp_path / f"g.{frame:04d}.png", ramp(8, 8, 3), "uint8")
    with pytest.raises(MissingFramesError, match="missing frames 3 ") as info:
        ImageSequenceSource(tmp_path / "g.####.png")
    assert info.value.frames == [3]
    source = ImageSequenceSource(tmp_path / "g.####.png", on_error="skip")
    assert [f for f, _ in source] == [1, 2, 4] and list(source.failed) == [3]
    assert [f for f, _ in ImageSequenceSource(tmp_path / "g.####.png", frames="1-2")] == [1, 2]


def test_corrupt_frame_stops_with_its_number_or_is_skipped(tmp_path: Path) -> None:
    for frame in (1, 2, 3):
        write_file(tmp_path / f"c.{frame:04d}.exr", ramp(8, 8, 3), "half")
    data = (tmp_path / "c.0002.exr").read_bytes()
    (tmp_path / "c.0002.exr").write_bytes(data[: len(data) // 2])
    with pytest.raises(MissingFramesError, match="frame 2") as info:
        list(ImageSequenceSource(tmp_path / "c.####.exr"))
    assert info.value.frames == [2]
    source = ImageSequenceSource(tmp_path / "c.####.exr", on_error="skip")
    assert [f for f, _ in source] == [1, 3] and list(source.failed) == [2]


@pytest.mark.parametrize("workers", [1, 3, 8])
def test_frames_read_ahead_on_threads_come_in_order(tmp_path: Path, workers: int) -> None:
    """Frames are read several at a time but come out in order with their own pixels; a corrupt
    frame in the middle still stops at its number after the frames before it, or is skipped."""
    images = {frame: ramp(6, 10, 3) * (0.05 * frame) for frame in range(1, 11)}
    for frame, image in images.items():
        write_file(tmp_path / f"r.{frame:04d}.exr", image, "float")
    data = (tmp_path / "r.0006.exr").read_bytes()
    (tmp_path / "r.0006.exr").write_bytes(data[: len(data) // 2])
    source = ImageSequenceSource(tmp_path / "r.####.exr", on_error="skip", workers=workers)
    got = list(source)
    assert [f for f, _ in got] == [1, 2, 3, 4, 5, 7, 8, 9, 10] and list(source.failed) == [6]
    for frame, rgb in got:
        np.testing.assert_array_equal(rgb, images[frame])
    seen = []
    with pytest.raises(MissingFramesError, match="frame 6") as info:
        for frame, _ in ImageSequenceSource(tmp_path / "r.####.exr", workers=workers):
            seen.append(frame)
    assert seen == [1, 2, 3, 4, 5] and info.value.frames == [6]


def test_frame_of_another_size_is_refused_with_its_number(tmp_path: Path) -> None:
    """A frame whose picture is another size than the sequence's (a proxy or another render mixed
    in) is reported like a corrupt one, by number and size, not padded with black."""
    for frame in (1, 2, 3):
        write_file(tmp_path / f"m.{frame:04d}.png", ramp(24, 20 if frame == 2 else 32, 3), "uint8")
    with pytest.raises(MissingFramesError, match=r"frame 2: .*m\.0002\.png is 20x24, the sequence is "
                                                 r"32x24 \(frame 1\)") as info:
        list(ImageSequenceSource(tmp_path / "m.####.png"))
    assert info.value.frames == [2]
    source = ImageSequenceSource(tmp_path / "m.####.png", on_error="skip")
    assert [f for f, _ in source] == [1, 3] and list(source.failed) == [2]


def test_exr_sink_writes_half_zip_channels_windows_and_timecode(exr_plate) -> None:
    pattern, _ = exr_plate
    info = ImageSequenceSource(pattern).info
    out_dir = pattern.parent / "out"
    alpha_sink = ImageSequenceSink(parse_pattern(out_dir / "p_alpha.####.exr"), info, kind="alpha")
    fg_sink = ImageSequenceSink(parse_pattern(out_dir / "p_fg.####.exr"), info, kind="fg")
    assert isinstance(fg_sink, FrameSink) and fg_sink.alpha_mode == "premultiplied"
    rgba = ramp(23, 37, 4, scale=3.0)
    for frame in info.frames:
        alpha_sink.write(frame, rgba[..., 3])
        fg_sink.write(frame, rgba)
    alpha_sink.close()
    fg_sink.close()
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [f"p_alpha.{f}.exr" for f in info.frames] + [f"p_fg.{f}.exr" for f in info.frames])
    data, spec = read_file(out_dir / "p_fg.1003.exr")
    assert spec.channelnames == ("R", "G", "B", "A") and str(spec.format) == "half"
    assert (spec.x, spec.y, spec.width, spec.height) == (5, 3, 37, 23)
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, 48, 30)
    assert spec.get_string_attribute("compression") == "zip"
    assert spec.get_float_attribute("PixelAspectRatio") == 2.0
    assert spec.getattribute("FramesPerSecond") == (24000, 1001)
    assert spec.get_string_attribute("smpte:TimeCode") == "01:00:00:02"  # per-frame timecode
    assert spec.get_string_attribute("pomagan:alpha") == "premultiplied"
    np.testing.assert_allclose(data, rgba, rtol=HALF_TOL, atol=1e-4)
    alpha, spec = read_file(out_dir / "p_alpha.1001.exr")
    assert spec.channelnames == ("A",) and alpha.shape == (23, 37, 1)


def test_png_sink_is_straight_16_bit_and_written_as_given(tmp_path: Path) -> None:
    info = ClipInfo(5, 3, [0], "srgb", metadata={"bits": 16, "pixel_type": "uint16"})
    sink = ImageSequenceSink(tmp_path / "x_fg.png", info, kind="fg")
    assert sink.alpha_mode == "straight" and sink.pixel_type == "uint16"
    rgba = np.zeros((3, 5, 4), np.float32)
    rgba[..., :3], rgba[..., 3] = 0.8, 0.25
    sink.write(0, rgba)
    sink.close()
    data, spec = read_file(tmp_path / "x_fg.png")
    assert str(spec.format) == "uint16"
    np.testing.assert_allclose(data, rgba, atol=1 / 65535)  # OIIO did not divide by alpha
    info8 = ClipInfo(5, 3, [0], "srgb", metadata={"bits": 8, "pixel_type": "uint8"})
    assert ImageSequenceSink(tmp_path / "y.png", info8).pixel_type == "uint8"


@pytest.mark.parametrize("ext, pixel_type", [("dpx", "uint16"), ("tif", "float")])
def test_dpx_and_tiff_sinks(tmp_path: Path, ext: str, pixel_type: str) -> None:
    meta = {"bits": 32, "pixel_type": "float"} if ext == "tif" else {"bits": 10, "pixel_type": "uint16"}
    info = ClipInfo(6, 4, [5], "linear" if ext == "tif" else "cineon", metadata=meta)
    sink = ImageSequenceSink(parse_pattern(tmp_path / f"d.####.{ext}"), info, kind="fg",
                             alpha_mode="straight")
    rgba = ramp(4, 6, 4)
    sink.write(5, rgba)
    sink.close()
    data, spec = read_file(tmp_path / f"d.0005.{ext}")
    assert str(spec.format) == pixel_type and data.shape == (4, 6, 4)
    if ext == "dpx":
        assert spec.get_int_attribute("oiio:BitsPerSample") == 10
    np.testing.assert_allclose(data, rgba, atol=1 / 1023 if ext == "dpx" else 1e-6)


def test_sink_is_atomic_and_cleans_temps(tmp_path: Path) -> None:
    info = ClipInfo(4, 4, [1, 2], "srgb", metadata={"bits": 8, "pixel_type": "uint8"})
    pattern = parse_pattern(tmp_path / "a.####.png")
    stale = tmp_path / ".a.0002.png.999-0.tmp"  # a crashed run's half-written frame
    stale.write_bytes(b"partial")
    other = tmp_path / ".a.0009.png.999-0.tmp"  # another task's frame: not ours to remove
    other.write_bytes(b"partial")
    sink = ImageSequenceSink(pattern, info, kind="alpha")
    assert not stale.exists() and other.exists()
    sink.write(1, np.ones((4, 4)))
    sink.write(2, np.ones((4, 4)))
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.0009.png.999-0.tmp", "a.0001.png", "a.0002.png"]
    with pytest.raises(BadInputError, match="expected"):
        ImageSequenceSink(pattern, info).write(1, np.ones((5, 4, 3)))
    aborted = ImageSequenceSink(parse_pattern(tmp_path / "b.####.png"), info)
    aborted.write(1, np.ones((4, 4, 3)))
    aborted.abort()
    assert not any(p.name.endswith(".tmp") and p.name.startswith(".b") for p in tmp_path.iterdir())


def test_prefetch_and_write_behind_pass_errors_on() -> None:
    def items():
        yield 1
        yield 2
        raise RuntimeError("decode failed")

    got = []
    with pytest.raises(RuntimeError, match="decode failed"):
        for item in prefetch(items(), depth=1):
            got.append(item)
    assert got == [1, 2]

    pool = WriteBehind(workers=2)
    done = []
    pool.submit(done.append, 1)

    def fail() -> None:
        raise OSError("disk full")

    pool.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        pool.wait()
    assert done == [1]


def test_dpx_written_by_ffmpeg_reads_as_video_without_made_up_timecode(tmp_path: Path) -> None:
    """ffmpeg's DPX encoder (here through PyAV, the same libavcodec) writes the generic header
    alone, its pixels from byte 1,664, where the film and television headers would be, and
    "Linear" as transfer in every file. OIIO reads pixels as a timecode (ffmpeg's own DPX of a
    test card showed 00:00:00:20) and a frame rate, and the transfer as scene-linear: the frames
    of a video (display-referred) were matted as linear light. Now: rec709, no timecode, no
    rate, and the bogus transfer is not carried into outputs. A DPX with its headers (OIIO's)
    keeps its timecode."""
    import av
    import OpenImageIO as oiio

    from pomagan_post.io.timecode import timecode_words

    import struct

    # Pixel bytes (little-endian rgb48) that read as a film frame rate of 24 (byte 1,724 of the
    # file, 60 into the pixels) and a timecode of 00:00:00:20 (byte 1,920, 256 into them).
    data = bytearray((ramp(48, 64, 3) * 65535).astype("<u2").tobytes())
    data[60:64] = struct.pack("<f", 24.0)
    data[256:260] = struct.pack("<I", 0x20)
    pixels = np.frombuffer(bytes(data), "<u2").reshape(48, 64, 3)
    with av.open(str(tmp_path / "f.%04d.dpx"), "w", format="image2") as out:
        stream = out.add_stream("dpx", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb48le"
        for index in range(2):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb48le")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert (tmp_path / "f.0001.dpx").read_bytes()[:4] in (b"SDPX", b"XPDS")
    source = ImageSequenceSource(tmp_path / "f.####.dpx")
    assert source.info.colorspace == "rec709"
    assert source.info.timecode is None and source.info.fps is None
    assert "dpx:Transfer" not in [name for name, _, _ in source.info.metadata["attributes"]]
    ((_, rgb), _) = list(source)
    np.testing.assert_allclose(rgb, pixels / 65535.0, atol=1e-6)  # the pixels as stored
    # a foreground written from it says Rec.709 in its transfer field (OIIO alone: "Undefined")
    sink = ImageSequenceSink(tmp_path / "fg.####.dpx", source.info, kind="fg")
    sink.write(1, np.dstack([rgb, np.ones(rgb.shape[:2], np.float32)]))
    sink.close()
    _, spec = read_file(tmp_path / "fg.0001.dpx")
    assert spec.getattribute("dpx:Transfer") == "ITU-R 709-4"
    assert ImageSequenceSource(tmp_path / "fg.####.dpx").info.colorspace == "rec709"

    write_file(tmp_path / "o.0001.dpx", ramp(48, 64, 3), "uint16", typed={"smpte:TimeCode": (
        oiio.TypeTimeCode, timecode_words("10:00:00:00", 24))})
    assert ImageSequenceSource(tmp_path / "o.####.dpx").info.timecode == "10:00:00:00"


def test_dpx_scan_frames_carry_their_own_film_fields_and_pixels_are_never_taken_for_them(tmp_path: Path) -> None:
    """A film scan's DPX frames each name their own key code, frame id and slate, and the
    scanner: a DPX output frame given its input frame's attributes (as render gives them)
    carries them, an EXR one the key code (EXR keyCode). ffmpeg's DPX has pixels from byte
    1,664, where the film header would be: OIIO reads a frame position (byte 1,712) and the
    like there, and they are not taken for the frame's own."""
    import struct

    import av
    import OpenImageIO as oiio

    for frame in (1, 2):
        write_file(tmp_path / f"scan.{frame:04d}.dpx", ramp(6, 8, 3, seed=frame), "uint16",
                   oiio__BitsPerSample=10, dpx__FrameId=f"F{frame}", dpx__SlateInfo=f"slate {frame}",
                   dpx__InputDevice="Scanity", typed={"smpte:KeyCode": (oiio.TypeKeyCode, (22, 5, 12, 3400 + frame, 0, 4, 64))})
    source = ImageSequenceSource(tmp_path / "scan.####.dpx", carry=True)
    dpx = ImageSequenceSink(tmp_path / "fg.####.dpx", source.info, kind="fg")
    exr = ImageSequenceSink(tmp_path / "fg.####.exr", source.info, kind="fg")
    for frame, rgb in source:
        own = source.take_attributes(frame)
        for sink in (dpx, exr):
            sink.write(frame, np.dstack([rgb, np.ones(rgb.shape[:2], np.float32)]), own)
    assert source.take_attributes(1) == []  # taken: nothing held for frames written
    dpx.close()
    exr.close()
    for frame in (1, 2):
        spec = read_file(tmp_path / f"fg.{frame:04d}.dpx")[1]
        assert spec.getattribute("dpx:FrameId") == f"F{frame}" and spec.getattribute("dpx:SlateInfo") == f"slate {frame}"
        assert spec.getattribute("dpx:InputDevice") == "Scanity"
        assert spec.getattribute("smpte:KeyCode") == (22, 5, 12, 3400 + frame, 0, 4, 64)
        spec = read_file(tmp_path / f"fg.{frame:04d}.exr")[1]
        assert spec.getattribute("smpte:KeyCode") == (22, 5, 12, 3400 + frame, 0, 4, 64)
        assert spec.getattribute("dpx:FrameId") is None

    data = bytearray((ramp(48, 64, 3) * 65535).astype("<u2").tobytes())
    data[48:52] = struct.pack("<I", 7)  # read as the film header's frame position
    with av.open(str(tmp_path / "ff.%04d.dpx"), "w", format="image2") as out:
        stream = out.add_stream("dpx", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb48le"
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(
                np.frombuffer(bytes(data), "<u2").reshape(48, 64, 3), format="rgb48le")), *stream.encode()]:
            out.mux(packet)
    assert read_file(tmp_path / "ff.0001.dpx")[1].getattribute("dpx:FramePosition") == 7
    ffmpegs = ImageSequenceSource(tmp_path / "ff.####.dpx", carry=True)
    list(ffmpegs)
    assert not [name for name, _, _ in ffmpegs.take_attributes(1) if name.startswith("dpx:") or "Key" in name]


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="no CPU affinity here")
def test_thread_pools_follow_the_cores_a_farm_slot_pins() -> None:
    """A process pinned to one core (taskset, a scheduler's cpuset) sizes its reader, writer and
    batch pools from that core, not from the machine's count."""
    import subprocess
    import sys

    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from pomagan_post.io.streams import usable_cpus, default_writers; "
            "print(usable_cpus(), default_writers())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "2"]  # one core; writers keep their floor of 2
