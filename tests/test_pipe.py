"""``pomagan-post pipe``: raw frames in, raw frames out, frame for frame.

Specification: every input pixel format decodes (8-bit, 16-bit, float, grey); each output kind
writes one frame per input frame in its pixel format and nothing else on stdout; 16-bit output
is bit-identical to what ``render`` writes to 16-bit PNG for the same frames and options; bad
flags are one line on stderr with exit code 2 before any output; a stream ending inside a frame
exits 3 naming the byte counts after writing the complete frames; a reader that goes away ends
the pipe quietly with exit code 141.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
from click.testing import CliRunner

import pomagan_post.pipe as pipe_module
from pomagan_post import Engine, render
from pomagan_post.cli import main
from pomagan_post.pipe import PIXEL_FORMATS, decode_frame, encode_frame

W, H, N = 64, 48, 3
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")


@pytest.fixture
def fast_engine(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> Engine:
    """The pipe builds its engine through pipe.build_engine; hand it the module's one."""
    monkeypatch.setattr(pipe_module, "build_engine", lambda *args, **kwargs: engine)
    return engine


def run_pipe(data: bytes, *args: str):
    return CliRunner().invoke(main, ["pipe", "--size", f"{W}x{H}", *args], input=data)


def ffmpeg_frames(pix_fmt: str, frames: int = N) -> bytes:
    """testsrc2 frames as raw ``pix_fmt`` bytes, from the real ffmpeg (made as 8-bit RGB, so
    every format holds the same values, with no chroma upsampling in between)."""
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24,format=rgb24",
           "-frames:v", str(frames), "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]
    return subprocess.run(cmd, capture_output=True, check=True).stdout


def frame_bytes(pix_fmt: str) -> int:
    return PIXEL_FORMATS[pix_fmt].frame_bytes(W, H)


def planes(data: bytes, pix_fmt: str) -> np.ndarray:
    """Raw output bytes -> float32 [N, H, W, C] (integer formats as codes / max)."""
    fmt = PIXEL_FORMATS[pix_fmt]
    raw = np.frombuffer(data, fmt.dtype)
    if fmt.planar:
        x = raw.reshape(-1, fmt.channels, H, W)
        x = np.stack([x[:, fmt.plane_order.index(c)] for c in range(fmt.channels)], axis=-1)
    else:
        x = raw.reshape(-1, H, W, fmt.channels)
    return x.astype(np.float32) / (1.0 if fmt.is_float else np.iinfo(fmt.dtype).max)


# --- formats ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [name for name, fmt in PIXEL_FORMATS.items() if not fmt.is_yuv])
def test_frame_codec_round_trips(name: str) -> None:
    fmt = PIXEL_FORMATS[name]
    rng = np.random.default_rng(0)
    image = rng.random((H, W, fmt.channels), dtype=np.float32)
    data = encode_frame(image, fmt)
    assert len(data) == fmt.frame_bytes(W, H)
    back = planes(data, name)[0]
    tol = 0 if fmt.is_float else 0.5 / np.iinfo(fmt.dtype).max + 1e-7
    np.testing.assert_allclose(back, image, atol=tol)
    rgb = decode_frame(data, fmt, W, H)
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb, back[..., [0, 0, 0] if fmt.channels == 1 else [0, 1, 2]], atol=1e-7)


# R'G'B' -> 10-bit BT.709 limited-range codes (Y', Cb, Cr): black, white, a super-white
# (luma 1000: 1.0685, as cameras record highlights), a super-black, a colour.
YUV_CASES = [((0.0, 0.0, 0.0), (64, 512, 512)), ((1.0, 1.0, 1.0), (940, 512, 512)),
             (((1000 - 64) / 876,) * 3, (1000, 512, 512)), (((40 - 64) / 876,) * 3, (40, 512, 512)),
             ((0.8, 0.4, 0.2), (476, 381, 699))]


def test_full_range_yuv_input_reads_jpegs_codes() -> None:
    """yuvj444p (MJPEG's and many phones' full range): black 0, white 255, chroma on 128;
    colours beyond black and white (from sharp chroma) are clipped, as render reads them."""
    fmt = PIXEL_FORMATS["yuvj444p"]
    codes = np.array([[0, 255, 128, 255], [128, 128, 128, 0], [128, 128, 255, 128]], np.uint8)  # Y, Cb, Cr
    rgb = decode_frame(codes.tobytes(), fmt, 4, 1, matrix=5)[0]
    np.testing.assert_allclose(rgb[0], 0.0, atol=1e-6)  # black
    np.testing.assert_allclose(rgb[1], 1.0, atol=1e-6)  # white
    np.testing.assert_allclose(rgb[2], [1.0, 0.5 - 0.714 * 127 / 255, 0.5], atol=2e-3)  # Cr 255: red, clipped
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0  # (white with Cb 0 is no colour: clipped too)


@pytest.mark.parametrize("name", ["yuv444p10le", "yuva444p10le", "yuv444p16le"])
def test_yuv_frames_keep_super_whites_at_their_codes(name: str) -> None:
    """Y'CbCr frames carry values above 1.0 and below 0.0 as the codes cameras write (integer
    RGB clips them): each case encodes to its BT.709 codes and decodes back; alpha is full
    range (0.25 -> 256 of 1023); the BT.601 matrix gives other codes for a colour."""
    fmt = PIXEL_FORMATS[name]
    rgb = np.array([[case[0] for case in YUV_CASES]], np.float32)  # [1, 5, 3]
    image = np.concatenate([rgb, np.full((1, len(YUV_CASES), 1), 0.25, np.float32)], axis=2)[..., :fmt.channels]
    data = encode_frame(image, fmt, matrix=1)
    assert len(data) == fmt.frame_bytes(len(YUV_CASES), 1)
    codes = np.frombuffer(data, fmt.dtype).reshape(fmt.channels, len(YUV_CASES)).T
    scale = 1 << (fmt.bits - 10)
    for got, (_, want) in zip(codes, YUV_CASES):
        assert np.abs(got[:3].astype(int) - np.multiply(want, scale)).max() <= scale, (got, want)
    if fmt.channels == 4:
        assert set(codes[:, 3]) == {round(0.25 * ((1 << fmt.bits) - 1))}
    back = decode_frame(data, fmt, len(YUV_CASES), 1, matrix=1)
    np.testing.assert_allclose(back, rgb, atol=1.5 / (876 * scale))
    assert back.max() > 1.06 and back.min() < -0.02
    assert not np.array_equal(encode_frame(image, fmt, matrix=6), data)


@needs_ffmpeg
def test_yuv_input_is_the_rgb_input_read_through_the_matrix(fast_engine: Engine) -> None:
    """The same testsrc2 frames as 16-bit RGB and as ffmpeg's own BT.709 Y'CbCr 4:4:4 (10-bit):
    the pipe's matrix undoes ffmpeg's, to the 10-bit codes' rounding (at most 1.5 8-bit codes);
    read as BT.601 the colours move. Through the pipe, the two give the same matte to within
    the network's response to that rounding (measured: mean 0.008 at working size 32)."""
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=24,format=rgb24",
           "-frames:v", "2", "-vf", "scale=out_color_matrix=bt709:out_range=tv:flags=accurate_rnd+full_chroma_int",
           "-f", "rawvideo", "-pix_fmt", "yuv444p10le", "-"]
    yuv_frames = subprocess.run(cmd, capture_output=True, check=True).stdout
    rgb_frames = ffmpeg_frames("rgb48le", 2)
    yuv, rgb = PIXEL_FORMATS["yuv444p10le"], PIXEL_FORMATS["rgb48le"]
    for n in range(2):
        want = decode_frame(rgb_frames[n * rgb.frame_bytes(W, H):][:rgb.frame_bytes(W, H)], rgb, W, H)
        data = yuv_frames[n * yuv.frame_bytes(W, H):][:yuv.frame_bytes(W, H)]
        diff = np.abs(decode_frame(data, yuv, W, H, matrix=1) - want)
        assert diff.max() < 1.5 / 255 and diff.mean() < 0.5 / 255
        assert np.abs(decode_frame(data, yuv, W, H, matrix=6) - want).mean() > 0.01
    by_rgb = run_pipe(rgb_frames, "--pix-fmt", "rgb48le", "--output", "alpha", "--out-pix-fmt", "grayf32le", "-q")
    by_yuv = run_pipe(yuv_frames, "--pix-fmt", "yuv444p10le", "--matrix", "bt709", "--output", "alpha",
                      "--out-pix-fmt", "grayf32le", "-q")
    assert by_rgb.exit_code == 0 and by_yuv.exit_code == 0, by_yuv.stderr
    alpha_rgb, alpha_yuv = planes(by_rgb.stdout_bytes, "grayf32le"), planes(by_yuv.stdout_bytes, "grayf32le")
    assert alpha_yuv.shape == (2, H, W, 1) and np.abs(alpha_yuv - alpha_rgb).mean() < 0.02


@needs_ffmpeg
def test_8_bit_16_bit_and_float_inputs_give_the_same_matte(fast_engine: Engine) -> None:
    """The same ffmpeg frames as rgb24, rgb48le and gbrpf32le: frame for frame, same alpha."""
    alphas = {}
    for pix_fmt in ("rgb24", "rgb48le", "gbrpf32le"):
        result = run_pipe(ffmpeg_frames(pix_fmt, 2), "--pix-fmt", pix_fmt, "--output", "alpha",
                          "--out-pix-fmt", "grayf32le")
        assert result.exit_code == 0, result.stderr
        assert len(result.stdout_bytes) == 2 * frame_bytes("grayf32le")
        alphas[pix_fmt] = planes(result.stdout_bytes, "grayf32le")
    # 16-bit and float carry the same values: the same matte to float rounding.
    np.testing.assert_allclose(alphas["rgb48le"], alphas["gbrpf32le"], atol=1e-5)
    # 8-bit input is the same picture quantised to 1/255; the trained network's response to that
    # noise measured mean 0.0021, 99th percentile 0.023, max 0.046 (a wrongly decoded format,
    # e.g. swapped planes or bytes, moves the matte by far more).
    diff = np.abs(alphas["rgb24"] - alphas["rgb48le"])
    assert diff.mean() < 0.01 and np.percentile(diff, 99) < 0.05 and diff.max() < 0.1


@pytest.mark.parametrize("pix_fmt, output, out_pix_fmt", [
    ("rgb48le", "rgba", None), ("gbrpf32le", "rgba", None), ("gray", "alpha", None),
    ("rgba64le", "fg", "rgb48le"), ("grayf32le", "comp", "gbrpf32le"),
])
def test_one_output_frame_per_input_frame(fast_engine: Engine, pix_fmt: str, output: str,
                                          out_pix_fmt: str | None) -> None:
    n = 2
    data = np.random.default_rng(1).integers(0, 256, n * frame_bytes(pix_fmt), dtype=np.uint8)
    if PIXEL_FORMATS[pix_fmt].is_float:
        data = np.random.default_rng(1).random(n * frame_bytes(pix_fmt) // 4, dtype=np.float32).view(np.uint8)
    args = ["--pix-fmt", pix_fmt, "--output", output, "-q"]
    args += ["--out-pix-fmt", out_pix_fmt] if out_pix_fmt else []
    args += ["--comp", "green"] if output == "comp" else []
    result = run_pipe(data.tobytes(), *args)
    assert result.exit_code == 0, result.stderr
    default = {"rgb48le": "rgba64le", "gbrpf32le": "gbrapf32le", "gray": "gray"}
    expected = out_pix_fmt or default[pix_fmt]
    assert len(result.stdout_bytes) == n * frame_bytes(expected)
    assert result.stderr == ""


def test_output_kinds_agree(fast_engine: Engine) -> None:
    """rgba premultiplied = straight x alpha; fg = rgba's premultiplied colour; comp = fg over bg."""
    data = ffmpeg_frames("gbrpf32le", 2) if shutil.which("ffmpeg") else (
        np.random.default_rng(2).random(2 * frame_bytes("gbrpf32le") // 4, dtype=np.float32).tobytes())
    out = {}
    for name, args in {"pre": ["--output", "rgba", "--premultiplied"], "straight": ["--output", "rgba", "--straight"],
                       "fg": ["--output", "fg"], "comp": ["--comp", "0,0,1"]}.items():
        result = run_pipe(data, "--pix-fmt", "gbrpf32le", "-q", *args)
        assert result.exit_code == 0, result.stderr
        out[name] = planes(result.stdout_bytes, "gbrapf32le" if name in ("pre", "straight") else "gbrpf32le")
    alpha = out["pre"][..., 3:]
    np.testing.assert_array_equal(out["straight"][..., 3:], alpha)
    np.testing.assert_array_equal(out["fg"], out["pre"][..., :3])
    np.testing.assert_allclose(out["straight"][..., :3] * alpha, out["pre"][..., :3], atol=1e-5)
    np.testing.assert_allclose(out["comp"], out["fg"] + (1 - alpha) * np.float32([0, 0, 1]), atol=1e-6)


@pytest.mark.parametrize("extra", [[], ["--temporal", "1"], ["--comp", "green"]])
def test_frames_converted_on_threads_come_out_in_order_and_unchanged(fast_engine: Engine, extra: list[str]) -> None:
    """Seven distinct frames in batches of 2 (the last one short): converted on 4 threads they
    come out in their order and bit for bit as one thread converts them, each frame's output
    its own (the frames' mattes differ, so a swapped pair would show)."""
    data = np.random.default_rng(3).integers(0, 65536, 7 * frame_bytes("rgb48le") // 2, dtype=np.uint16).tobytes()
    args = ["--pix-fmt", "rgb48le", "--batch-size", "2", "-q", *extra]
    one, four = run_pipe(data, *args, "--threads", "1"), run_pipe(data, *args, "--threads", "4")
    assert one.exit_code == 0 and four.exit_code == 0, four.stderr
    fmt = "rgb48le" if "--comp" in extra else "rgba64le"
    assert len(four.stdout_bytes) == 7 * frame_bytes(fmt) and four.stdout_bytes == one.stdout_bytes
    outputs = planes(four.stdout_bytes, fmt)
    assert all(not np.array_equal(outputs[i], outputs[i + 1]) for i in range(6))


def test_empty_stream_is_zero_frames(fast_engine: Engine) -> None:
    result = run_pipe(b"", "-q")
    assert result.exit_code == 0 and result.stdout_bytes == b""


# --- the same numbers as render ---------------------------------------------------------------

@pytest.mark.parametrize("aspect", [1.0, 2.0])
def test_16_bit_output_is_bit_identical_to_render(tmp_path: Path, fast_engine: Engine, aspect: float) -> None:
    """16-bit PNG frames through render (alpha, straight fg, comp) and the same frames as
    rgb48le through pipe (gray16le, rgba64le --straight, rgb48le comp): equal codes; also for
    anamorphic frames (PNGs tagged with pixel aspect 2, pipe --pixel-aspect 2:1)."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    frames = []
    for i in range(N):
        img = np.stack([xx / W, yy / H, np.full_like(xx, 0.2 * i)], -1)
        img[12:36, 20 + i:44 + i] = [0.9, 0.7, 0.6]
        img = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
        frames.append(np.rint(img * 65535).astype(np.uint16))
        out = oiio.ImageOutput.create(str(tmp_path / f"plate.{1001 + i}.png"))
        spec = oiio.ImageSpec(W, H, 3, "uint16")
        spec.attribute("PixelAspectRatio", aspect)
        out.open(str(tmp_path / f"plate.{1001 + i}.png"), spec)
        out.write_image(frames[-1])
        out.close()
    report = render(tmp_path / "plate.####.png", output_dir=tmp_path / "out", outputs=("alpha", "fg"),
                    premultiplied=False, comp="#3366cc", engine=fast_engine, batch_size=2)
    assert report.ok and report.alpha_mode == "straight"

    def read16(kind: str) -> np.ndarray:
        files = sorted((tmp_path / "out").glob(f"plate_{kind}.*.png"))
        assert len(files) == N
        out = []
        config = oiio.ImageSpec()
        config.attribute("oiio:UnassociatedAlpha", 1)  # the codes as stored, not premultiplied on read
        for f in files:
            inp = oiio.ImageInput.open(str(f), config)
            assert inp.spec().format == oiio.UINT16
            out.append(np.asarray(inp.read_image(0, 0, 0, inp.spec().nchannels, oiio.UINT16)))
            inp.close()
        return np.stack(out).reshape(N, H, W, -1)

    data = np.stack(frames).astype("<u2").tobytes()
    common = ["--pix-fmt", "rgb48le", "--colorspace", "srgb", "--batch-size", "2", "-q",
              *(["--pixel-aspect", "2:1"] if aspect != 1 else [])]
    cases = {"alpha": (["--output", "alpha", "--out-pix-fmt", "gray16le"], 1),
             "fg": (["--output", "rgba", "--straight", "--out-pix-fmt", "rgba64le"], 4),
             "comp": (["--comp", "#3366cc", "--out-pix-fmt", "rgb48le"], 3)}
    for kind, (args, channels) in cases.items():
        result = run_pipe(data, *common, *args)
        assert result.exit_code == 0, result.stderr
        piped = np.frombuffer(result.stdout_bytes, "<u2").reshape(N, H, W, channels)
        rendered = read16(kind)
        assert rendered.shape == piped.shape
        assert np.array_equal(piped, rendered), f"{kind}: {np.count_nonzero(piped != rendered)} codes differ"
        assert len(np.unique(piped[..., -1])) > 10  # a real matte, not a constant


def test_garbage_matte_image_limits_every_frame(tmp_path: Path, fast_engine: Engine) -> None:
    """--garbage-matte IMAGE (a locked-off shot): every frame's matte and premultiplied colour
    are multiplied by it, as render does; a sequence or video is refused (a stream has no frame
    numbers) and so is an image of another size, before any output."""
    from .imaging import write_file

    data = bytes(np.random.default_rng(5).integers(0, 256, N * frame_bytes("rgb24"), dtype=np.uint8))
    keep = np.zeros((H, W, 1), np.float32)
    keep[:, : W // 2] = 1.0
    write_file(tmp_path / "keep_left.png", keep, "uint8")
    plain = run_pipe(data, "--output", "alpha", "--out-pix-fmt", "grayf32le", "-q")
    limited = run_pipe(data, "--output", "alpha", "--out-pix-fmt", "grayf32le", "-q",
                       "--garbage-matte", str(tmp_path / "keep_left.png"))
    assert plain.exit_code == 0 and limited.exit_code == 0, limited.stderr
    want = np.frombuffer(plain.stdout_bytes, "<f4").reshape(N, H, W)
    got = np.frombuffer(limited.stdout_bytes, "<f4").reshape(N, H, W)
    np.testing.assert_array_equal(got[..., : W // 2], want[..., : W // 2])
    assert np.all(got[..., W // 2:] == 0) and want[..., W // 2:].max() > 0.01
    write_file(tmp_path / "small.png", keep[:10, :10], "uint8")
    for garbage, message in ((tmp_path / "small.png", f"is 10x10, the shot is {W}x{H}"),
                             (tmp_path / "g.####.png", "takes one image file here")):
        bad = run_pipe(data, "--garbage-matte", str(garbage), "-q")
        assert bad.exit_code == 2 and bad.stdout_bytes == b"" and message in bad.stderr, bad.stderr


# --- errors -----------------------------------------------------------------------------------

def test_truncated_last_frame_names_the_byte_count(fast_engine: Engine) -> None:
    size = frame_bytes("rgb24")
    data = bytes(2 * size + 1234)
    result = run_pipe(data, "-q")
    assert result.exit_code == 3
    assert len(result.stdout_bytes) == 2 * frame_bytes("rgba")  # the complete frames are out
    assert result.stderr.strip() == (
        f"pomagan-post: error: stdin ended inside frame 2 (2 complete frame(s) before it): "
        f"got 1234 of {size} bytes (if every frame looks wrong, the stream is not --size {W}x{H} "
        "--pix-fmt rgb24)")


@pytest.mark.parametrize("args, message", [
    ([], "--size WIDTHxHEIGHT is required"),
    (["--size", "64by48"], "--size must be WIDTHxHEIGHT"),
    (["--size", "1x48"], "out of range"),
    (["--pix-fmt", "yuv420p10le"], "unknown --pix-fmt 'yuv420p10le'; use one of rgb24, rgb48le, rgba, rgba64le, "
     "gbrpf32le, gray, gray16le, grayf32le, yuv444p, yuv444p10le, yuv444p12le, yuv444p16le, yuvj444p (subsampled Y'CbCr: "
     "let ffmpeg upsample the chroma, -pix_fmt yuv444p10le)"),
    (["--output", "matte"], "unknown --output 'matte'"),
    (["--output", "alpha", "--out-pix-fmt", "rgba"], "--out-pix-fmt rgba cannot carry --output alpha"),
    (["--output", "rgba", "--out-pix-fmt", "rgb24"], "--out-pix-fmt rgb24 cannot carry --output rgba"),
    (["--out-pix-fmt", "yuva420p"], "--out-pix-fmt yuva420p is unknown for --output rgba"),
    (["--output", "fg", "--out-pix-fmt", "yuva444p10le"], "--out-pix-fmt yuva444p10le cannot carry --output fg"),
    (["--pix-fmt", "yuv444p10le", "--matrix", "bt601-6"], "unknown --matrix 'bt601-6'; use one of bt709, fcc"),
    (["--matrix", "bt709"], "--matrix applies to Y'CbCr frames (yuv444p...), and neither --pix-fmt rgb24 nor "
     "--out-pix-fmt rgba is one"),
    (["--output", "comp"], "--output comp needs --comp"),
    (["--output", "alpha", "--comp", "green"], "--comp is only used with --output comp"),
    (["--output", "alpha", "--straight"], "apply to --output rgba only"),
    (["--comp", "no-such-colour"], "neither a colour"),
    (["--colorspace", "nonsense"], "unknown colour space"),
    (["--pixel-aspect", "wide"], "--pixel-aspect must be a ratio such as 2, 1.333 or 4:3"),
    (["--threads", "0"], "--threads must be at least 1, got 0"),
])
def test_bad_flags_are_one_line_exit_2_before_any_output(monkeypatch: pytest.MonkeyPatch, args: list[str],
                                                          message: str) -> None:
    def no_engine(*a, **k):
        raise AssertionError("the engine must not be built for bad flags")

    monkeypatch.setattr(pipe_module, "build_engine", no_engine)
    if "--size" not in args and args != []:
        args = ["--size", f"{W}x{H}", *args]
    result = CliRunner().invoke(main, ["pipe", *args], input=bytes(frame_bytes("rgb24")))
    assert result.exit_code == 2, result.output
    assert result.stdout_bytes == b""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pomagan-post: error: ") and message in lines[0], lines


def test_ctrl_c_stops_the_pipe_with_130(tmp_path: Path) -> None:
    """Ctrl-C to a pipeline mid-stream: one 'stopped' line and 128 + SIGINT, as render's."""
    import signal
    import time

    # (SIGINT handled as an interactive shell leaves it: a suite started in the background of a
    # non-interactive shell passes SIGINT on ignored, as Unix does for background jobs, and the
    # pipe, like any filter, then keeps ignoring it)
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from pomagan_post.cli import main; sys.exit(main())")
    cmd = [sys.executable, "-c", code,
           "pipe", "--size", f"{W}x{H}", "--working-size", "32", "--batch-size", "1", "--device", "cpu"]
    frame = np.random.default_rng(5).integers(0, 256, frame_bytes("rgb24"), dtype=np.uint8).tobytes()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    proc.stdin.write(frame * 2)
    proc.stdin.flush()
    assert len(proc.stdout.read(frame_bytes("rgba"))) == frame_bytes("rgba")  # it is mid-stream
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.stdin.close()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "pomagan-post: stopped: SIGINT" and "Traceback" not in stderr


def test_closed_downstream_pipe_ends_quietly(tmp_path: Path) -> None:
    """A real process whose reader goes away after a few bytes: exit 141, no traceback."""
    frames = 8
    source = tmp_path / "in.raw"
    source.write_bytes(np.random.default_rng(4).integers(0, 256, frames * frame_bytes("rgb24"),
                                                          dtype=np.uint8).tobytes())
    cmd = [sys.executable, "-c", "import sys; from pomagan_post.cli import main; sys.exit(main())",
           "pipe", "--size", f"{W}x{H}", "--working-size", "32", "--batch-size", "1", "--device", "cpu"]
    with open(source, "rb") as stdin:
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert len(proc.stdout.read(100)) == 100
        proc.stdout.close()  # the downstream reader goes away mid-stream
        stderr = proc.stderr.read().decode()
        proc.wait(timeout=120)
    assert proc.returncode == 141
    assert "Traceback" not in stderr and "Exception ignored" not in stderr and "error" not in stderr, stderr


def test_temporal_pipe_gives_what_render_temporal_gives(tmp_path: Path, fast_engine: Engine) -> None:
    """``pipe --temporal 1`` over a moving subject: one frame out per frame in (the last one at
    the end of the stream), the same 16-bit codes as ``render --temporal 1``; a stream that ends
    inside a frame still gets the complete frames before it, steadied."""
    count = 5
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    frames = []
    for i in range(count):
        img = np.stack([xx / W, yy / H, np.full_like(xx, 0.3)], -1)
        img[12:36, 16 + 3 * i:40 + 3 * i] = [0.9, 0.7, 0.6]
        frames.append(np.rint(img * 65535).astype(np.uint16))
        out = oiio.ImageOutput.create(str(tmp_path / f"plate.{1 + i}.png"))
        out.open(str(tmp_path / f"plate.{1 + i}.png"), oiio.ImageSpec(W, H, 3, "uint16"))
        out.write_image(frames[-1])
        out.close()
    report = render(tmp_path / "plate.#.png", output_dir=tmp_path / "out", outputs=("alpha",),
                    engine=fast_engine, batch_size=2, temporal=1)
    assert report.ok
    rendered = np.stack([oiio.ImageBuf(str(tmp_path / "out" / f"plate_alpha.{1 + i}.png")).get_pixels(oiio.UINT16)
                         for i in range(count)]).reshape(count, H, W)
    data = np.stack(frames).astype("<u2").tobytes()
    args = ["--pix-fmt", "rgb48le", "--colorspace", "srgb", "--batch-size", "2", "--output", "alpha",
            "--out-pix-fmt", "gray16le", "--temporal", "1"]
    result = run_pipe(data, *args)
    assert result.exit_code == 0, result.stderr
    assert "temporal 1 (frames come out 1 behind)" in result.stderr
    piped = np.frombuffer(result.stdout_bytes, "<u2").reshape(count, H, W)
    assert np.array_equal(piped, rendered), f"{np.count_nonzero(piped != rendered)} codes differ"
    plain = np.frombuffer(run_pipe(data, *args[:-2], "-q").stdout_bytes, "<u2").reshape(count, H, W)
    assert not np.array_equal(plain, piped)  # it did steady
    cut = run_pipe(data[:len(data) * 3 // count + 100], *args, "-q")  # 3 frames and a bit
    assert cut.exit_code == 3 and "stdin ended inside frame 3" in cut.stderr
    assert np.array_equal(np.frombuffer(cut.stdout_bytes, "<u2").reshape(3, H, W)[:2], piped[:2])
