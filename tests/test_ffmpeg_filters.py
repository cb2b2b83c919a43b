"""``ffmpeg_filters``: presets, probe, the three commands and ``pomagan-ffmpeg`` with the real ffmpeg.

Specification: every preset turns a small generated clip (testsrc2 + sine audio + timecode) into
a file whose codec and pixel format (with alpha) ffprobe confirms, with as many frames as the
input, the audio kept and the timecode carried; the lossless presets hold the same matte to the
bit; a failing stage is named, the others stopped and nothing is left at the output.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from ffmpeg_filters import PRESETS, StageFailedError, build_commands, probe, run
from ffmpeg_filters import pipeline
from ffmpeg_filters.cli import main
from pomagan_post import Engine, load_checkpoint
from pomagan_post.errors import BadInputError, MissingFramesError, UnsupportedFormatError
from pomagan_post.renderer import render

from .imaging import cut_short, write_avi_with_dropped_frames, write_turned_clip, write_vfr_clip

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                reason="needs the ffmpeg and ffprobe binaries")
W, H, FRAMES = 96, 54, 3
PIPE = dict(working_size=32, batch_size=2, device="cpu")
EXPECTED = {  # preset -> (codec, pixel format ffprobe reports, decoder for the second decode)
    "prores4444": ("prores", ("yuva444p10le", "yuva444p12le"), None),
    "prores4444-fast": ("prores", ("yuva444p10le", "yuva444p12le"), None),
    "png-mov": ("png", ("rgba64be",), None),
    "ffv1": ("ffv1", ("gbrap16le",), None),
    "vp9-alpha": ("vp9", ("yuva420p", "yuv420p"), "libvpx-vp9"),  # alpha rides in a side stream
    "matte": ("ffv1", ("gray16le",), None),
    "review": ("h264", ("yuv420p",), None),
}


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-print_format", "json",
                          "-show_streams", "-show_format", str(path)], capture_output=True, check=True)
    return json.loads(out.stdout)


def decode(path: Path, pix_fmt: str, decoder: str | None = None) -> bytes:
    cmd = ["ffmpeg", "-v", "error", *(["-c:v", decoder] if decoder else []), "-i", str(path),
           "-map", "0:v:0", "-vsync", "passthrough", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]
    return subprocess.run(cmd, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 frames of testsrc2 (H.264 yuv420p, 24 fps) with AAC sine audio and timecode 01:00:00:00."""
    path = tmp_path_factory.mktemp("clip") / "shot.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-frames:v", str(FRAMES),
                    "-t", str(FRAMES / 24), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-timecode", "01:00:00:00", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def outputs(clip: Path) -> dict[str, Path]:
    """Every preset run once on the clip (vp9-alpha only where ffmpeg has libvpx-vp9)."""
    done = {}
    for name, preset in PRESETS.items():
        if preset.encoder not in pipeline.ffmpeg_encoders():
            continue
        out = clip.parent / f"out_{name}{preset.extensions[0]}"
        run(clip, out, name, quiet=True, **PIPE)
        done[name] = out
    return done


def test_probe_reads_size_rate_depth_audio_and_timecode(clip: Path) -> None:
    info = probe(clip)
    assert (info["width"], info["height"], info["fps"], info["bits"]) == (W, H, 24, 8)
    assert info["pix_fmt"] == "yuv420p" and not info["has_alpha"]
    assert info["has_audio"] and info["audio_codecs"] == ["aac"]
    assert info["timecode"] == "01:00:00:00"
    assert info["frames"] == FRAMES


def test_commands_follow_the_source(clip: Path) -> None:
    info = probe(clip)
    decode_cmd, pipe_cmd, encode_cmd = build_commands(clip, "x.mov", "prores4444", info=info)
    # Y'CbCr: the chroma upsampled by ffmpeg (at the stream's siting), the matrix the pipe's
    assert decode_cmd[decode_cmd.index("-pix_fmt") + 1] == "yuv444p"
    assert decode_cmd[decode_cmd.index("-vf") + 1] == "scale=flags=bilinear:in_h_chr_pos=0:in_v_chr_pos=128"
    assert pipe_cmd[pipe_cmd.index("--pix-fmt") + 1] == "yuv444p"
    assert pipe_cmd[pipe_cmd.index("--out-pix-fmt") + 1] == "yuva444p10le"  # ProRes's own format
    assert pipe_cmd[pipe_cmd.index("--matrix") + 1] == "smpte170m"  # untagged standard definition
    assert "scale" not in encode_cmd[encode_cmd.index("-vf") + 1]  # nothing converted on the way in
    assert pipe_cmd[:2] == ["pomagan-post", "pipe"] and "--premultiplied" in pipe_cmd
    assert encode_cmd[encode_cmd.index("-video_size") + 1] == f"{W}x{H}"
    assert encode_cmd[encode_cmd.index("-c:a") + 1] == "copy"
    assert encode_cmd[encode_cmd.index("-timecode") + 1] == "01:00:00:00"
    deep = {**info, "bits": 10, "pix_fmt": "yuv422p10le", "chroma_location": None}
    decode_cmd, pipe_cmd, encode_cmd = build_commands(clip, "x.mov", "png-mov", info=deep)
    assert decode_cmd[decode_cmd.index("-pix_fmt") + 1] == "yuv444p10le"
    assert decode_cmd[decode_cmd.index("-vf") + 1] == "scale=flags=bilinear"  # untagged siting
    assert pipe_cmd[pipe_cmd.index("--pix-fmt") + 1] == "yuv444p10le" and "--straight" in pipe_cmd
    assert pipe_cmd[pipe_cmd.index("--out-pix-fmt") + 1] == "rgba64le"  # PNG: RGB, tagged so
    assert encode_cmd[encode_cmd.index("-colorspace") + 1] == "rgb"
    left_422 = {**deep, "chroma_location": "left"}  # 4:2:2: co-sited on the luma lines
    assert "in_h_chr_pos=0:in_v_chr_pos=0 " in " ".join(build_commands(clip, "x.mov", "png-mov", info=left_422)[0])
    # 8-bit full range (MJPEG, many phones): Y'CbCr too, full-range 4:4:4
    for source in ({"pix_fmt": "yuvj420p"}, {"pix_fmt": "yuv420p", "color_range": "pc"}):
        decode_cmd, pipe_cmd, _ = build_commands(clip, "x.mov", "png-mov", info={**info, **source})
        assert decode_cmd[decode_cmd.index("-pix_fmt") + 1] == "yuvj444p" and "--matrix" in pipe_cmd, source
    # RGB and deeper full-range sources: ffmpeg converts to RGB (16-bit beyond 8 bits), no --matrix
    full_10 = {"pix_fmt": "yuv420p10le", "bits": 10, "color_range": "pc"}
    for source, fmt in (({"pix_fmt": "gbrp10le", "bits": 10}, "rgb48le"), (full_10, "rgb48le")):
        decode_cmd, pipe_cmd, _ = build_commands(clip, "x.mov", "png-mov", info={**info, **source})
        assert decode_cmd[decode_cmd.index("-pix_fmt") + 1] == fmt and "--matrix" not in pipe_cmd, source
        assert "in_color_matrix=" in decode_cmd[decode_cmd.index("-vf") + 1]
    _, _, encode_cmd = build_commands(clip, "x.webm", "vp9-alpha", info=info)
    assert encode_cmd[encode_cmd.index("-c:a") + 1] == "libopus"  # AAC does not go into WebM
    _, pipe_cmd, _ = build_commands(clip, "x.mp4", "review", info=info, comp="green")
    assert pipe_cmd[pipe_cmd.index("--comp") + 1] == "green"
    assert "--pixel-aspect" not in pipe_cmd  # square pixels
    _, pipe_cmd, _ = build_commands(clip, "x.mkv", "matte", info=info, garbage_matte="keep.png")
    assert pipe_cmd[pipe_cmd.index("--garbage-matte") + 1] == "keep.png"
    anamorphic = {**info, "sample_aspect_ratio": "2:1"}
    _, pipe_cmd, encode_cmd = build_commands(clip, "x.mov", "prores4444", info=anamorphic)
    assert pipe_cmd[pipe_cmd.index("--pixel-aspect") + 1] == "2:1"  # matted desqueezed
    assert "setsar=2/1" in encode_cmd[encode_cmd.index("-vf") + 1]  # and tagged so
    # prores_aw: an sRGB transfer (which it would write as "reserved") goes untagged; prores_ks
    # keeps it; an odd width is refused before anything runs.
    srgb = {**info, "color_transfer": "iec61966-2-1"}
    for preset, trc in (("prores4444", "iec61966-2-1"), ("prores4444-fast", "unknown")):
        _, _, encode_cmd = build_commands(clip, "x.mov", preset, info=srgb)
        assert encode_cmd[encode_cmd.index("-color_trc") + 1] == trc
        assert f"color_trc={trc}" in encode_cmd[encode_cmd.index("-vf") + 1]
    with pytest.raises(BadInputError, match=r"prores4444-fast needs an even frame width, .* is 97x54"):
        build_commands(clip, "x.mov", "prores4444-fast", info={**info, "width": 97})
    # no matrix tag: decoded as players (and render) read it, BT.601 at standard definition
    for size, matrix in (((720, 576), "smpte170m"), ((1920, 1080), "bt709"), ((W, H), "smpte170m")):
        untagged = {**info, "width": size[0], "height": size[1], "color_space": None}
        _, pipe_cmd, encode_cmd = build_commands(clip, "x.mov", "prores4444", info=untagged)
        assert pipe_cmd[pipe_cmd.index("--matrix") + 1] == matrix
        assert encode_cmd[encode_cmd.index("-colorspace") + 1] == matrix
        decode_cmd, _, _ = build_commands(clip, "x.mov", "prores4444", info={**untagged, **full_10})
        assert f"scale=in_color_matrix={matrix}:" in decode_cmd[decode_cmd.index("-vf") + 1]
    tagged = {**info, "width": 720, "height": 576, "color_space": "bt709"}
    assert "--matrix bt709" in " ".join(build_commands(clip, "x.mov", "prores4444", info=tagged)[1])


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_preset_makes_the_file_it_promises(name: str, clip: Path, outputs: dict[str, Path]) -> None:
    if name not in outputs:
        pytest.skip(f"ffmpeg has no {PRESETS[name].encoder}")
    codec, pix_fmts, decoder = EXPECTED[name]
    info = ffprobe(outputs[name])
    video = [s for s in info["streams"] if s["codec_type"] == "video"][0]
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert video["codec_name"] == codec and video["pix_fmt"] in pix_fmts
    assert (video["width"], video["height"], int(video["nb_read_frames"])) == (W, H, FRAMES)
    assert video["r_frame_rate"] == "24/1"
    if name == "vp9-alpha":
        assert video.get("tags", {}).get("alpha_mode") == "1"
    if name.startswith("prores4444"):
        assert video["profile"] == "4444"
    if name != "matte":  # colour tags as decoders read them (ProRes: from its frame headers)
        assert (video.get("color_primaries"), video.get("color_transfer")) == ("bt709", "bt709")
    assert len(audio) == 1, "audio stream kept"
    tags = {k.lower(): v for k, v in {**info["format"].get("tags", {}), **video.get("tags", {})}.items()}
    timecodes = [tags.get("timecode")] + [s.get("tags", {}).get("timecode") for s in info["streams"]]
    assert "01:00:00:00" in timecodes
    assert "pomagan-ffmpeg" in tags.get("comment", "")
    # A second decode gives every frame back, alpha included where the preset has it.
    fmt = "gray16le" if name == "matte" else ("rgb24" if name == "review" else "rgba64le")
    data = decode(outputs[name], fmt, decoder)
    channels = {"gray16le": 1, "rgb24": 3, "rgba64le": 4}[fmt]
    assert len(data) == FRAMES * W * H * channels * (1 if fmt == "rgb24" else 2)
    if channels == 4:
        alpha = np.frombuffer(data, "<u2").reshape(FRAMES, H, W, 4)[..., 3]
        assert alpha.min() < alpha.max(), "a real matte in the alpha channel"


def test_lossless_presets_hold_the_same_matte(outputs: dict[str, Path]) -> None:
    matte = np.frombuffer(decode(outputs["matte"], "gray16le"), "<u2").reshape(FRAMES, H, W)
    for name in ("ffv1", "png-mov"):
        alpha = np.frombuffer(decode(outputs[name], "rgba64le"), "<u2").reshape(FRAMES, H, W, 4)[..., 3]
        assert np.array_equal(alpha, matte), name


def test_phone_footage_is_matted_upright(tmp_path: Path) -> None:
    """A clip stored sideways with a display matrix: ffmpeg decodes it turned, so the pipe and the
    encoder must get the turned size (the stored one made every frame garbage of the right byte
    count) and the matte must be the upright clip's."""
    write_turned_clip(tmp_path / "phone.mov", -90, size=(W, H))
    write_turned_clip(tmp_path / "upright.mov", 0, size=(W, H))
    info = probe(tmp_path / "phone.mov")
    assert (info["width"], info["height"], info["rotation"]) == (W, H, 270)
    assert probe(tmp_path / "upright.mov")["rotation"] == 0
    run(tmp_path / "phone.mov", tmp_path / "phone_matte.mkv", "matte", quiet=True, **PIPE)
    run(tmp_path / "upright.mov", tmp_path / "upright_matte.mkv", "matte", quiet=True, **PIPE)
    stream = ffprobe(tmp_path / "phone_matte.mkv")["streams"][0]
    assert (stream["width"], stream["height"]) == (W, H) and not stream.get("side_data_list")
    turned = decode(tmp_path / "phone_matte.mkv", "gray16le")
    assert len(turned) == 3 * W * H * 2 and turned == decode(tmp_path / "upright_matte.mkv", "gray16le")


@pytest.mark.parametrize("rotation, pix_fmt", [(0, "yuv420p"), (90, "yuv420p"), (180, "yuv420p"), (270, "yuv420p"),
                                               (0, "yuvj420p"), (90, "yuvj420p")])
def test_the_pipe_gets_renders_pixels_from_subsampled_and_turned_video(tmp_path: Path, rotation: int,
                                                                        pix_fmt: str) -> None:
    """H.264 4:2:0 with chroma that changes from pixel to pixel, stored turned for display (phone
    footage), limited or full range: the decoder's frames, read as the pipe reads them, are the
    frames render decodes (limited: to float rounding; full range, which render converts with
    swscale's integer arithmetic: within one 8-bit code). (The chroma was upsampled at another
    siting than render's: 5 8-bit codes off on average, up to 60; turned before upsampling: 6;
    full range converted by ffmpeg to 8-bit RGB: 5, up to 59.)"""
    import av

    from pomagan_post.io.video import VideoSource
    from pomagan_post.pipe import PIXEL_FORMATS, decode_frame

    yy, xx = np.mgrid[0:48, 0:64]
    picture = np.stack([(xx * 7) % 256, (yy * 11) % 256, ((xx + yy) * 5) % 256], -1).astype(np.uint8)
    path = tmp_path / f"turned{rotation}.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt, stream.options = 64, 48, pix_fmt, {"qp": "0"}
        if rotation:
            stream.set_display_rotation(rotation)
        for shift in (0, 3):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.roll(picture, shift, 1), format="rgb24")
                                  .reformat(format=pix_fmt)))
        out.mux(stream.encode(None))
    info = probe(path)
    decode_cmd, pipe_cmd, _ = build_commands(path, tmp_path / "x.mov", "prores4444", info=info)
    raw = subprocess.run(decode_cmd[:-1] + ["-"], capture_output=True, check=True).stdout
    fmt = PIXEL_FORMATS[pipe_cmd[pipe_cmd.index("--pix-fmt") + 1]]
    matrix = {"smpte170m": 6, "bt709": 1}[pipe_cmd[pipe_cmd.index("--matrix") + 1]]
    width, height, size = info["width"], info["height"], fmt.frame_bytes(info["width"], info["height"])
    assert len(raw) == 2 * size
    with VideoSource(path) as source:
        for number, rendered in source:
            piped = decode_frame(raw[number * size:(number + 1) * size], fmt, width, height, matrix)
            assert piped.shape == rendered.shape == ((48, 64, 3) if rotation % 180 == 0 else (64, 48, 3))
            diff = np.abs(piped - rendered)
            if pix_fmt == "yuv420p":
                assert diff.max() < 1e-5, (number, diff.max() * 255)
            else:
                assert diff.max() <= 1.01 / 255 and diff.mean() < 0.05 / 255, (number, diff.max() * 255)


def test_variable_frame_rate_is_conformed_like_render(tmp_path: Path) -> None:
    """Phone footage with frames at 0, 1, 2, 4, 6, 7 thirtieths of a second: the decoder conforms
    it to 30 fps as render does (8 frames, the source's duration), and the matte of every frame
    is render's matte of the same frame number (render writes 8-bit PNG for this 8-bit source)."""
    write_vfr_clip(tmp_path / "vfr.mov", size=(W, H))
    info = probe(tmp_path / "vfr.mov")
    assert info["frame_rate_mode"] == "variable" and info["fps"] == 30 and info["frames"] is None
    run(tmp_path / "vfr.mov", tmp_path / "vfr_matte.mkv", "matte", quiet=True, **PIPE)
    stream = ffprobe(tmp_path / "vfr_matte.mkv")["streams"][0]
    assert stream["nb_read_frames"] == "8" and stream["r_frame_rate"] == "30/1"
    matte = np.frombuffer(decode(tmp_path / "vfr_matte.mkv", "gray16le"), "<u2").reshape(8, H, W)
    engine = Engine(load_checkpoint(None), device="cpu", working_size=32, batch_size=2)
    render(tmp_path / "vfr.mov", engine=engine, outputs=["alpha"], format="png", output_dir=tmp_path / "r")
    for n in range(8):
        rendered = cv2.imread(str(tmp_path / "r" / f"vfr_alpha.{n:04d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.abs(matte[n] / 65535.0 - rendered / 255.0).max() <= 0.51 / 255, n
    assert not np.array_equal(matte[2], matte[4])
    # A span is cut from the conformed frames: slot 3 holds frame 2 (a seek to slot 3 would
    # start at the frame after it), and the span's mattes are the whole run's, bit for bit.
    run(tmp_path / "vfr.mov", tmp_path / "span.mkv", "matte", quiet=True, frames="3-6", **PIPE)
    span = np.frombuffer(decode(tmp_path / "span.mkv", "gray16le"), "<u2").reshape(-1, H, W)
    assert len(span) == 4 and np.array_equal(span, matte[3:7])


def test_super_whites_reach_the_prores_foreground_as_renders_do(tmp_path: Path) -> None:
    """A 10-bit ProRes 422 HQ clip whose highlights sit above video white (luma 1000 of 940, as
    cameras record them): the prores4444 preset's foreground keeps them above 1.0 (the pipe
    read and wrote 16-bit RGB, which clipped them to 1.0), and its matte and foreground are
    render's for the same frames (before, the two decoded the chroma differently)."""
    import av
    import OpenImageIO as oiio

    from pomagan_post.io.yuv import planes_of, planes_to_rgb

    hot = tmp_path / "hot.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24", "-frames:v", "2",
                    "-vf", "format=yuv422p10le,lutyuv=y='if(gt(val,700),1000,val)',setparams=colorspace=bt709",
                    "-c:v", "prores_ks", "-profile:v", "3", "-colorspace", "bt709", str(hot)], check=True)
    run(hot, tmp_path / "out.mov", "prores4444", quiet=True, **PIPE)
    engine = Engine(load_checkpoint(None), device="cpu", working_size=32, batch_size=2)
    render(hot, engine=engine, outputs=["fg"], format="exr", output_dir=tmp_path / "r")
    with av.open(str(tmp_path / "out.mov")) as container:
        for n, frame in enumerate(container.decode(video=0)):
            bits = frame.format.components[0].bits
            y, cb, cr, a = planes_of(frame, 4)
            fg, alpha = planes_to_rgb(y, cb, cr, bits, 1), a / float((1 << bits) - 1)
            rendered = oiio.ImageBuf(str(tmp_path / "r" / f"hot_fg.{n:04d}.exr")).get_pixels(oiio.FLOAT)
            assert np.abs(alpha - rendered[..., 3]).max() < 0.5 / 255
            assert np.abs(fg - rendered[..., :3]).mean() < 0.5 / 255
            solid = alpha > 0.2
            assert (fg[solid] / alpha[solid][:, None] > 1.03).any(axis=1).sum() > 50
            assert fg.max() > 1.03 and abs(fg.max() - rendered[..., :3].max()) < 0.01


def test_a_failing_stage_is_named_and_nothing_is_left(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "broken.mov"
    (tmp_path / ".broken.pomagan-99999.tmp.mov").write_bytes(b"a run killed outright left this")
    with pytest.raises(StageFailedError) as caught:
        run(clip, out, "prores4444", extra_args=["-c:v", "no_such_encoder"], quiet=True, **PIPE)
    assert caught.value.stage == "encode" and "no_such_encoder" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StageFailedError) as caught:
        run(clip, out.with_suffix(".mkv"), "matte", quiet=True, pipe_args=["--device", "cuda:99"], working_size=32)
    assert caught.value.stage == "pipe" and "cuda" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_pipe_that_cannot_start_is_the_cause_with_its_own_message_and_code(clip: Path, tmp_path: Path) -> None:
    """The decoder's broken pipe is the consequence: the pipe's own one-line error and exit
    code (5: weights) are what pomagan-ffmpeg says."""
    result = CliRunner().invoke(main, [str(clip), str(tmp_path / "o.mov"), "--preset", "prores4444", "-q",
                                       "--weights", str(tmp_path / "nosuch.pt")])
    assert result.exit_code == 5, result.stderr
    assert result.stderr.strip() == (f"pomagan-ffmpeg: error: pipe stage failed (exit 5): checkpoint not found: "
                                     f"{tmp_path / 'nosuch.pt'}")
    assert list(tmp_path.iterdir()) == []
    # Not quiet: the stages' messages are echoed, the decoder's broken pipe (a consequence) not
    loud = CliRunner().invoke(main, [str(clip), str(tmp_path / "o.mov"), "--preset", "prores4444",
                                     "--weights", str(tmp_path / "nosuch.pt")])
    assert loud.exit_code == 5
    assert f"[pipe] pomagan-post: error: checkpoint not found: {tmp_path / 'nosuch.pt'}\n" in loud.stderr
    assert "Broken pipe" not in loud.stderr and "[decode]" not in loud.stderr, loud.stderr
    assert loud.stderr.splitlines()[-1] == result.stderr.strip()


def test_a_stage_writing_to_a_stopped_one_is_not_echoed_but_kept_to_tell_the_cause() -> None:
    """ffmpeg 5.1's lines after the next stage exited (as a decoder prints them): not echoed,
    since the stage that stopped says why; kept in the tail, which tells cause from consequence."""
    import collections
    import io

    from ffmpeg_filters.pipeline import _drain

    lines = ["[mov @ 0x1] a warning worth seeing", "av_interleaved_write_frame(): Broken pipe",
             "    Last message repeated 1 times", "Error writing trailer of pipe:1: Broken pipe",
             "Error closing file pipe:1: Broken pipe", "    Last message repeated 2 times"]
    tail: collections.deque[str] = collections.deque(maxlen=50)
    echoed: list[str] = []
    _drain(io.BytesIO("".join(f"{line}\n" for line in lines).encode()), tail, echoed.append)
    assert echoed == ["[mov @ 0x1] a warning worth seeing"]
    assert list(tail) == lines


def test_encoder_options_that_end_the_output_early_are_honoured(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "short.mkv"
    run(clip, out, "matte", extra_args=["-frames:v", "2"], quiet=True, **PIPE)
    assert ffprobe(out)["streams"][0]["codec_name"] == "ffv1"
    counted = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                              "stream=nb_read_frames", "-of", "csv=p=0", str(out)], capture_output=True, text=True)
    assert counted.stdout.strip() == "2"
    # With the clip's sound: cut with the pictures (the encoder stopped by its own count used to
    # drop the audio it had not muxed yet), as --frames 0-1 cuts it.
    sounding = tmp_path / "sounding.mp4"  # half a second of pictures and of sound
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24", "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=48000", "-t", "0.5", "-c:v", "libx264", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", str(sounding)], check=True)
    with_sound = tmp_path / "short.mov"
    report = run(sounding, with_sound, "prores4444", extra_args=["-frames:v", "2"], quiet=True, **PIPE)
    assert report.frames == 2 and "-frames:v" not in report.commands[2]
    streams = {s["codec_type"]: s for s in ffprobe(with_sound)["streams"]}
    assert float(streams["video"]["duration"]) == pytest.approx(2 / 24, abs=1e-4)
    assert float(streams["audio"]["duration"]) == pytest.approx(2 / 24, abs=1e-4)


def test_interlaced_source_keeps_its_field_order_and_is_warned_about(tmp_path: Path) -> None:
    """As render: the fields stay woven in the frames, the output is labelled with the source's
    field order (not progressive), and the run says the matte is made from whole frames."""
    woven = tmp_path / "woven.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=50", "-vf",
                    "tinterlace=interleave_top,fieldorder=tff", "-frames:v", "2", "-c:v", "libx264", "-flags",
                    "+ildct+ilme", "-x264opts", "tff=1", "-pix_fmt", "yuv420p", str(woven)], check=True)
    assert probe(woven)["field_order"] == "tt"
    lines: list[str] = []
    out = tmp_path / "woven.mov"
    run(woven, out, "prores4444", log=lines.append, **PIPE)
    assert lines[0] == ("woven.mp4: interlaced: matted as whole frames, so a subject that moves between the two "
                        "fields gets a combed edge; deinterlace first for such shots (e.g. ffmpeg -vf bwdif)")
    assert ffprobe(out)["streams"][0]["field_order"] == "tt"
    # the review preset's H.264 too (coded progressive, players showed the combing undeinterlaced)
    run(woven, tmp_path / "review.mp4", "review", quiet=True, **PIPE)
    assert ffprobe(tmp_path / "review.mp4")["streams"][0]["field_order"] == "tt"
    bottom = build_commands(woven, "x.mp4", "review", info={**probe(woven), "field_order": "bb"})[2]
    assert bottom[bottom.index("-x264opts") + 1] == "bff=1"


def test_a_second_run_to_the_same_output_leaves_the_first_alone(clip: Path, tmp_path: Path) -> None:
    import sys

    out = tmp_path / "o.mkv"
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".o.pomagan-{busy.pid}.tmp.mkv"
        live.write_bytes(b"a running run's frames")
        with pytest.raises(BadInputError, match=f"o.mkv is being written by another run \\(process {busy.pid}"):
            run(clip, out, "matte", quiet=True, **PIPE)
        assert live.read_bytes() == b"a running run's frames" and not out.exists()
    finally:
        busy.kill()
        busy.wait()
    run(clip, out, "matte", quiet=True, **PIPE)  # its process gone, the file is a leftover: cleared
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mkv"]


def test_a_render_and_a_run_to_one_output_refuse_each_other(clip: Path, tmp_path: Path) -> None:
    """pomagan-ffmpeg takes the claim a render's video output takes: each refuses a file the
    other is writing (both exited 0 and the last to finish replaced the other's file)."""
    import os

    from pomagan_post.io.atomic import Claim

    out = tmp_path / "o.mkv"
    render = Claim(out, what="render")  # a render writing o.mkv right now
    try:
        with pytest.raises(BadInputError, match=f"o.mkv is being written by another render \\(process {os.getpid()}"):
            run(clip, out, "matte", quiet=True, **PIPE)
        assert not out.exists()
    finally:
        render.release()
    run(clip, out, "matte", quiet=True, **PIPE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mkv"]  # its lock gone too


def test_killing_pomagan_ffmpeg_outright_ends_its_stages(tmp_path: Path) -> None:
    """kill -9 (a farm's hard timeout): the decoder, the pipe and the encoder end with it."""
    import os
    import signal
    import sys
    import time

    long_clip = tmp_path / "long.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24",
                    "-frames:v", "3000", "-c:v", "libx264", "-preset", "ultrafast", str(long_clip)], check=True)
    proc = subprocess.Popen([sys.executable, "-c", "from ffmpeg_filters.cli import main; main()", str(long_clip),
                             str(tmp_path / "o.mkv"), "--preset", "ffv1", "--working-size", "32", "--device", "cpu",
                             "-q"], stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})

    def stages() -> list[int]:
        found = []
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            except OSError:
                continue
            if fields.get("PPid", "").strip() == str(proc.pid):
                found.append(int(status.parent.name))
        return found

    deadline = time.time() + 60
    while len(stages()) < 3 and time.time() < deadline:
        time.sleep(0.1)
    children = stages()
    assert len(children) == 3
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.time() + 30
    while any(running(pid) for pid in children) and time.time() < deadline:
        time.sleep(0.1)
    assert [pid for pid in children if running(pid)] == []


def test_a_matroska_source_cut_short_is_refused_by_frame(tmp_path: Path) -> None:
    whole = tmp_path / "shot.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24", "-frames:v",
                    "12", "-c:v", "ffv1", str(whole)], check=True)
    assert probe(whole)["frames"] == 12
    with pytest.raises(MissingFramesError, match="did not decode: its data ends before its index says"):
        run(cut_short(whole), tmp_path / "o.mkv", "matte", quiet=True, **PIPE)
    assert not (tmp_path / "o.mkv").exists()


def test_arguments_are_checked_before_running(clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadInputError, match="unknown preset 'h265'"):
        run(clip, tmp_path / "a.mov", "h265")
    with pytest.raises(BadInputError, match=r"writes \.mov files, not \.mp4"):
        run(clip, tmp_path / "a.mp4", "prores4444")
    existing = tmp_path / "a.mkv"
    existing.write_bytes(b"keep")
    with pytest.raises(BadInputError, match="exists; pass --overwrite"):
        run(clip, existing, "ffv1")
    assert existing.read_bytes() == b"keep"
    with pytest.raises(BadInputError, match="would overwrite the input"):
        run(clip, clip, "prores4444", overwrite=True)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.full((64, 64, 3), 128, np.uint8) + np.arange(64, dtype=np.uint8)[:, None, None])
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(still.read_bytes()[:60])
    with pytest.raises(UnsupportedFormatError, match="cannot read the size of its video stream"):
        run(damaged, tmp_path / "d.mov", "prores4444")
    text = tmp_path / "notes.mp4"  # not a video at all: ffprobe's reason, without its reader's address
    text.write_text("hello\n")
    with pytest.raises(BadInputError) as not_video:
        run(text, tmp_path / "n.mov", "prores4444")
    message = str(not_video.value)
    assert message.startswith(f"not a video ffprobe can read: {text} (moov atom not found")
    assert " @ 0x" not in message and message.count(str(text)) == 1
    with pytest.raises(BadInputError, match=rf"garbage matte .*still.png is 64x64, the shot is {W}x{H}"):
        run(clip, tmp_path / "g.mov", "prores4444", garbage_matte=str(still))
    with pytest.raises(BadInputError, match="--garbage-matte takes one image file"):
        run(clip, tmp_path / "g.mov", "prores4444", garbage_matte=str(tmp_path / "g.####.png"))
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".mov" or p.name.startswith(".")]
    monkeypatch.setattr(pipeline, "ffmpeg_encoders", lambda *a: frozenset({"ffv1"}))
    with pytest.raises(UnsupportedFormatError, match="needs the ffmpeg encoder libvpx-vp9"):
        run(clip, tmp_path / "a.webm", "vp9-alpha")


def test_cli_dry_run_prints_the_pipeline(clip: Path) -> None:
    result = CliRunner().invoke(main, [str(clip), "out.mp4", "--preset", "review", "--comp", "#00b140",
                                       "--dry-run", "--", "-crf", "23"])
    assert result.exit_code == 0, result.output
    stages = result.stdout.split(" \\\n  | ")
    assert len(stages) == 3
    assert stages[0].startswith("ffmpeg ") and stages[1].startswith("pomagan-post pipe ")
    assert "'#00b140'" in stages[1] and stages[2].endswith("-crf 23 -f mp4 out.mp4\n")
    assert "--tta" not in stages[1]  # the pipe's own default (none) unless asked
    flipped = CliRunner().invoke(main, [str(clip), "out.mp4", "--preset", "review", "--tta", "flip", "--dry-run"])
    assert " --tta flip" in flipped.stdout.split(" \\\n  | ")[1]
    assert "--temporal" not in stages[1]
    steadied = CliRunner().invoke(main, [str(clip), "out.mp4", "--preset", "review", "--temporal", "2", "--dry-run"])
    assert " --temporal 2" in steadied.stdout.split(" \\\n  | ")[1]
    too_far = CliRunner().invoke(main, [str(clip), "out.mp4", "--preset", "review", "--temporal", "9", "--dry-run"])
    assert too_far.exit_code == 2 and "0<=x<=8" in too_far.stderr
    bad = CliRunner().invoke(main, [str(clip), "out.mov", "--preset", "nope"])
    assert bad.exit_code == 2 and bad.stderr.strip().startswith("pomagan-ffmpeg: error: unknown preset")
    # A dry run makes the run's own path checks: what it prints is what the run would do.
    wrong = CliRunner().invoke(main, [str(clip), "out.mkv", "--preset", "prores4444", "--dry-run"])
    assert wrong.exit_code == 2 and "preset prores4444 writes .mov files, not .mkv" in wrong.stderr
    assert not wrong.stdout


def test_output_that_cannot_be_written_is_one_line_before_any_work(clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shot.mov"
    folder.mkdir()
    for args in (["-y"], [], ["-y", "--dry-run"]):  # a folder is no file to replace, -y or not
        as_folder = CliRunner().invoke(main, [str(clip), str(folder), "-p", "prores4444"] + args)
        assert as_folder.exit_code == 2, as_folder.output
        assert as_folder.stderr.strip() == (f"pomagan-ffmpeg: error: output {folder} is a folder; name a file in "
                                            f"it, e.g. {folder / 'shot.mov'}")
    assert folder.is_dir() and not list(folder.iterdir())
    # A folder that takes no files (/proc stands in for a read-only mount: root passes chmod)
    unwritable = CliRunner().invoke(main, [str(clip), "/proc/matte.mov", "-p", "prores4444"])
    assert unwritable.exit_code == 1 and "Traceback" not in unwritable.output
    assert unwritable.stderr.strip() == "pomagan-ffmpeg: error: cannot write to /proc: read-only or no permission"


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_a_signal_stops_every_stage_and_leaves_nothing(tmp_path: Path, how: str) -> None:
    """A farm's kill (SIGTERM to pomagan-ffmpeg) or Ctrl-C at a terminal (SIGINT to the whole
    process group, the stages too) mid-clip: exit 143 / 130 with a one-line 'stopped' message,
    not a stage's failure, the three stages stopped, no output and no hidden temporary file."""
    import os
    import signal
    import sys
    import time

    long_clip = tmp_path / "long.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24",
                    "-frames:v", "3000", "-c:v", "libx264", "-preset", "ultrafast", str(long_clip)], check=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "long_rgba.mkv"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "from ffmpeg_filters.cli import main; main()", str(long_clip),
                             str(out), "--preset", "ffv1", "--working-size", "32", "--device", "cpu", "-q"],
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    deadline = time.time() + 120
    def temps() -> list[Path]:  # (beside the run's claim on the output, .long_rgba.mkv.lock)
        return [p for p in out_dir.iterdir() if p.name != ".long_rgba.mkv.lock"]

    while not temps() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)  # frames are flowing through all three stages
    assert proc.poll() is None, proc.communicate()[1]
    [temp] = temps()
    assert temp.name.startswith(".long_rgba.pomagan-")
    signum = signal.SIGTERM if how == "SIGTERM" else signal.SIGINT
    if how == "SIGTERM":
        proc.send_signal(signum)
    else:
        os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert err.startswith(f"pomagan-ffmpeg: stopped: {signum.name}; nothing written to") and "Traceback" not in err
    assert list(out_dir.iterdir()) == []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):  # no stage still running on the temp file
        try:
            assert temp.name.encode() not in cmdline.read_bytes()
        except OSError:
            pass


def test_frames_takes_a_span_with_its_audio_and_timecode(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """--frames 10-19 of a 48-frame clip: exactly those ten frames (the same mattes as the whole
    clip's frames 10-19, to the bit), the audio cut to the same 20,000 samples, the timecode of
    frame 10; an open end runs to the last frame; frames past the end are refused by number.
    Progress counts the frames the encoder wrote, out of the span's."""
    from pomagan_post.errors import MissingFramesError

    shot = tmp_path / "shot.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-t", "2", "-i", f"testsrc2=size={W}x{H}:rate=24",
                    "-f", "lavfi", "-t", "2", "-i", "sine=frequency=440:sample_rate=48000", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-timecode", "01:00:00:00", str(shot)], check=True)

    def frames(path: Path) -> np.ndarray:
        return np.frombuffer(decode(path, "rgba64le"), np.uint16).reshape(-1, H, W, 4)

    def samples(path: Path) -> np.ndarray:
        cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "s16le", "-ac", "1", "-"]
        return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, np.int16).astype(int)

    assert run(shot, tmp_path / "full.mkv", "ffv1", quiet=True, **PIPE).frames == 48
    monkeypatch.setenv("POMAGAN_PROGRESS_INTERVAL", "0")  # a line per update (not a terminal here)
    capsys.readouterr()
    assert run(shot, tmp_path / "part.mkv", "ffv1", quiet=True, progress=True, frames="10-19", **PIPE).frames == 10
    lines = capsys.readouterr().err.splitlines()
    counts = [int(re.match(r"shot\.mov: (\d+)/10 frames", line).group(1)) for line in lines]
    assert counts == sorted(counts) and lines[-1].startswith("shot.mov: 10/10 frames (100%) in "), lines
    assert run(shot, tmp_path / "tail.mov", "prores4444", quiet=True, frames="40-", **PIPE).frames == 8
    full, part = frames(tmp_path / "full.mkv"), frames(tmp_path / "part.mkv")
    assert len(full) == 48 and len(part) == 10
    np.testing.assert_array_equal(part, full[10:20])
    assert np.abs(part[..., 3].astype(int) - full[9:19, ..., 3]).max() > 1000  # not off by one
    source, cut = samples(shot), samples(tmp_path / "part.mkv")
    assert len(cut) == 20000 and np.abs(cut - source[20000:40000]).max() <= 1
    info = probe(tmp_path / "part.mkv")
    assert info["timecode"] == "01:00:00:10" and info["audio_codecs"] == ["flac"]
    tail = probe(tmp_path / "tail.mov")
    assert tail["frames"] == 8 and tail["timecode"] == "01:00:01:16" and tail["audio_codecs"] == ["pcm_s24le"]

    # An MKV written from it: no frame count in the container (the count comes from the stream's
    # DURATION tag, which includes the video's start), and its video starts 21 ms after the file
    # (the AAC priming); frame numbers still count from the first video frame.
    remux = tmp_path / "full.mkv"
    assert probe(remux)["frames"] == 48 and probe(remux)["video_offset"] > 0.01
    run(remux, tmp_path / "again.mkv", "ffv1", quiet=True, **PIPE)
    run(remux, tmp_path / "again_part.mkv", "ffv1", quiet=True, frames="10-19", **PIPE)
    np.testing.assert_array_equal(frames(tmp_path / "again_part.mkv"), frames(tmp_path / "again.mkv")[10:20])
    with pytest.raises(MissingFramesError,  # before running; the missing numbers named
                       match=r"full.mkv has no frame\(s\) 48, 49, 50 \(it has 48 frames, 0-47\)"):
        run(remux, tmp_path / "late.mkv", "matte", quiet=True, frames="40-50", **PIPE)
    with pytest.raises(MissingFramesError, match=r"no frame\(s\) 48, 49, 50, 51, 52, 53, 54, 55, \.\.\. "
                       r"\(52 in all\) \(it has 48 frames, 0-47\)") as many:  # a long list cut short
        run(remux, tmp_path / "late.mkv", "matte", quiet=True, frames="40-99", **PIPE)
    assert many.value.frames == list(range(48, 100))
    with pytest.raises(MissingFramesError, match=r"full.mkv has no frame\(s\) 60 \(it has 48 frames, 0-47\)"):
        run(remux, tmp_path / "late.mkv", "matte", quiet=True, frames="60-", **PIPE)
    with pytest.raises(MissingFramesError, match=r"^--frames 60: \S*full.mkv has no frame\(s\) 60 "):  # one frame: "60"
        run(remux, tmp_path / "late.mkv", "matte", quiet=True, frames="60", **PIPE)
    assert not (tmp_path / "late.mkv").exists() and not [q for q in tmp_path.iterdir() if q.name.startswith(".")]

    with pytest.raises(MissingFramesError, match=r"has 48 frames, 0-47\)") as caught:
        run(shot, tmp_path / "late.mkv", "ffv1", quiet=True, frames="40-50", **PIPE)
    assert caught.value.frames == [48, 49, 50] and not (tmp_path / "late.mkv").exists()
    bad = CliRunner().invoke(main, [str(shot), str(tmp_path / "x.mkv"), "-p", "ffv1", "--frames", "20-10"])
    assert bad.exit_code == 2 and "pomagan-ffmpeg: error: --frames: the range 20-10 is empty" in bad.stderr
    dry = CliRunner().invoke(main, [str(shot), "x.mkv", "-p", "ffv1", "--frames", "24-", "--dry-run"])
    decode_cmd = dry.stdout.split(" \\\n  | ")[0]
    assert "-ss 0.979167 -i" in decode_cmd and "-frames:v" not in decode_cmd


def test_an_avis_dropped_frames_repeat_the_frame_before(tmp_path: Path) -> None:
    """An AVI's empty frame slots (dropped frames) hold the frame before, as render and players
    show them: every slot comes out, so the matte keeps the clip's length and sync (the run
    failed, 'its data ends before its index says', with the frames shifted)."""
    avi = write_avi_with_dropped_frames(tmp_path / "capture.avi")
    lines: list[str] = []
    report = run(avi, tmp_path / "out.mkv", "matte", log=lines.append, progress=False, **PIPE)
    assert report.frames == 8 and report.repeated == [3, 6]
    assert lines[-1] == ("capture.avi: frame(s) 3, 6 hold no picture in the file (dropped when it was recorded "
                         "or converted): each repeats the frame before, as players show it")  # render's line
    assert run(avi, tmp_path / "span.mkv", "matte", quiet=True, frames="4-7", **PIPE).repeated == [6]
    mattes = np.frombuffer(decode(tmp_path / "out.mkv", "gray16le"), np.uint16).reshape(8, -1)
    assert np.array_equal(mattes[3], mattes[2]) and np.array_equal(mattes[6], mattes[5])
    assert not np.array_equal(mattes[4], mattes[3]) and not np.array_equal(mattes[7], mattes[6])
    # A span seeks to the picture its first slot shows (slot 3 shows slot 2's): the span's mattes
    # are the whole run's, bit for bit, without decoding the AVI from its start.
    for span, picture in (("4-7", 4), ("3-5", 2)):
        decode_cmd = build_commands(avi, tmp_path / "x.mkv", "matte", info=probe(avi), frames=span)[0]
        assert decode_cmd[decode_cmd.index("-ss") + 1] == f"{(picture - 0.5) / 25:.6f}"
        out = tmp_path / f"span_{span}.mkv"
        run(avi, out, "matte", quiet=True, frames=span, **PIPE)
        got = np.frombuffer(decode(out, "gray16le"), np.uint16).reshape(-1, mattes.shape[1])
        first, last = (int(n) for n in span.split("-"))
        assert np.array_equal(got, mattes[first:last + 1]), span
    # H.264 with B-frames in an AVI: ffmpeg's seek lands two frames early there, so it is
    # decoded from its start, and the span is the whole run's frames all the same
    bframes = tmp_path / "bframes.avi"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25", "-frames:v", "24",
                    "-c:v", "libx264", "-bf", "2", "-g", "12", str(bframes)], check=True)
    assert "-ss" not in build_commands(bframes, tmp_path / "x.mkv", "matte", info=probe(bframes), frames="17-20")[0]
    run(bframes, tmp_path / "b_all.mkv", "matte", quiet=True, **PIPE)
    run(bframes, tmp_path / "b_span.mkv", "matte", quiet=True, frames="17-20", **PIPE)
    whole = np.frombuffer(decode(tmp_path / "b_all.mkv", "gray16le"), np.uint16).reshape(24, -1)
    span = np.frombuffer(decode(tmp_path / "b_span.mkv", "gray16le"), np.uint16).reshape(-1, whole.shape[1])
    assert np.array_equal(span, whole[17:21])


def test_frames_in_the_inputs_timecode(clip: Path, tmp_path: Path) -> None:
    """--frames typed in the input's timecode, as render takes it: the same frames as their
    numbers, the timecode of the first; a reversed range or one before the clip's start is said
    in the timecodes typed (exit 2)."""
    by_number = run(clip, tmp_path / "n.mkv", "ffv1", quiet=True, frames="1-2", **PIPE)
    by_timecode = run(clip, tmp_path / "t.mkv", "ffv1", quiet=True, frames="01:00:00:01-01:00:00:02", **PIPE)
    assert by_number.frames == by_timecode.frames == 2
    assert decode(tmp_path / "t.mkv", "rgba64le") == decode(tmp_path / "n.mkv", "rgba64le")
    assert probe(tmp_path / "t.mkv")["timecode"] == "01:00:00:01"
    for typed, said in [("01:00:00:02-01:00:00:01", "--frames 01:00:00:02-01:00:00:01: the range 2-1 is empty "
                                                    "(frame numbers of those timecodes)"),
                        ("00:59:59:23-", "--frames 00:59:59:23-: 00:59:59:23 is before shot.mov's first "
                                         "frame (01:00:00:00)")]:
        bad = CliRunner().invoke(main, [str(clip), str(tmp_path / "x.mkv"), "-p", "ffv1", "--frames", typed,
                                        "--dry-run"])
        assert bad.exit_code == 2 and bad.stderr.strip() == f"pomagan-ffmpeg: error: {said}", bad.stderr
    late = CliRunner().invoke(main, [str(clip), str(tmp_path / "x.mkv"), "-p", "ffv1", "--frames", "01:00:00:10-"])
    assert late.exit_code == 3 and "--frames 01:00:00:10-: " in late.stderr and "has no frame(s) 10 " in late.stderr


def test_a_source_cut_short_fails_by_frame_and_an_edit_list_trim_does_not(tmp_path: Path) -> None:
    """An interrupted copy (index first, data cut half-way): ffmpeg decodes what is there and
    exits 0, but the run fails naming the frames that are not there and writes nothing. An MP4
    cut with -c copy between keyframes keeps frames before the cut behind an edit list: they
    are not the clip's, so the 84 frames it plays are the whole clip."""
    from pomagan_post.errors import MissingFramesError
    from pomagan_post.io.video import VideoSource

    whole = tmp_path / "shot.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24",
                    "-frames:v", "24", "-c:v", "prores_ks", "-movflags", "+faststart", str(whole)], check=True)
    cut = cut_short(whole)
    with pytest.raises(MissingFramesError, match=r"frames \d+-23 did not decode: its data ends before its "
                       r"index says \(24 frames\); nothing was written. --frames 0-\d+ writes") as caught:
        run(cut, tmp_path / "out.mov", "prores4444", quiet=True, **PIPE)
    held = caught.value.frames[0]
    assert 6 <= held <= 18 and caught.value.frames == list(range(held, 24))
    assert sorted(tmp_path.iterdir()) == sorted([whole, cut])
    run(cut, tmp_path / "held.mov", "prores4444", quiet=True, frames=f"0-{held - 1}", **PIPE)
    assert int(ffprobe(tmp_path / "held.mov")["streams"][0]["nb_read_frames"]) == held

    source = tmp_path / "long.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24",
                    "-frames:v", "96", "-c:v", "libx264", "-g", "48", "-bf", "2", str(source)], check=True)
    trim = tmp_path / "trim.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-ss", "0.5", "-i", str(source), "-c", "copy", str(trim)], check=True)
    assert int(ffprobe(trim)["streams"][0]["nb_frames"]) == 96  # the container counts the hidden 12
    assert probe(trim)["frames"] == 84
    run(trim, tmp_path / "trim.mkv", "matte", quiet=True, **PIPE)
    assert int(ffprobe(tmp_path / "trim.mkv")["streams"][0]["nb_read_frames"]) == 84
    with VideoSource(trim) as video:  # render counts and decodes it the same way
        assert video.info.frames == list(range(84))
        assert [n for n, _ in video] == list(range(84))

