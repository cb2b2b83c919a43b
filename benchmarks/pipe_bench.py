"""``pomagan-post pipe``: how fast it turns raw frames into raw frames, and what its own
conversions allow, with one conversion thread and with several.

    python benchmarks/pipe_bench.py                         # 1080p, 16 frames, the CPU
    python benchmarks/pipe_bench.py --device cuda --frames 96 --sizes 1080p,4K

Two tables, for each size and pixel-format pair (``--formats IN:OUT,...``):

1. **conversions**: the pipe's per-frame work outside the network, timed alone on synthetic
   frames: raw bytes -> float RGB (:func:`pomagan_post.pipe.decode_frame`), the output frame
   (premultiplied rgba) and float -> raw bytes (:func:`pomagan_post.pipe.encode_frame`),
   on 1 thread and on ``--threads`` threads (default: the pipe's, the CPU cores, 2-8). This
   is the most frames a second the pipe can pass, however fast the network is.
2. **pipe**: :func:`pomagan_post.pipe.pipe` end to end, with the bundled checkpoint on
   ``--device``, the raw frames read from memory and the output thrown away (ffmpeg's stages
   are not in it), with ``--threads 1`` and with the default.

Frames are noise; the numbers are the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pomagan_post import Engine, load_checkpoint
from pomagan_post.pipe import PIXEL_FORMATS, conversion_threads, decode_frame, encode_frame, pipe
from pomagan_post.renderer import output_frame

SIZES = {"540p": (960, 540), "1080p": (1920, 1080), "4K": (3840, 2160)}


class _Null(io.RawIOBase):
    """A binary stdout that keeps nothing."""

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return len(data)


def raw_frames(in_fmt: str, width: int, height: int, count: int) -> bytes:
    fmt = PIXEL_FORMATS[in_fmt]
    rng = np.random.default_rng(0)
    top = 1023 if fmt.is_yuv and fmt.bits == 10 else np.iinfo(fmt.dtype).max if not fmt.is_float else 1
    values = rng.random(count * fmt.frame_bytes(width, height) // np.dtype(fmt.dtype).itemsize)
    return (values * top).astype(fmt.dtype).tobytes() if not fmt.is_float else values.astype(fmt.dtype).tobytes()


def conversions_fps(data: bytes, in_fmt: str, out_fmt: str, width: int, height: int, count: int,
                    threads: int) -> float:
    fin, fout = PIXEL_FORMATS[in_fmt], PIXEL_FORMATS[out_fmt]
    size = fin.frame_bytes(width, height)
    alpha = np.random.default_rng(1).random((height, width), dtype=np.float32)

    def one(index: int) -> int:
        rgb = decode_frame(data[index * size:(index + 1) * size], fin, width, height)
        frame = output_frame("fg", alpha, rgb * alpha[..., None], "premultiplied", None)
        return len(encode_frame(frame, fout))

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    return count / (time.perf_counter() - started)


def pipe_fps(data: bytes, in_fmt: str, out_fmt: str, width: int, height: int, count: int, threads: int | None,
             engine: Engine, batch: int) -> float:
    report = pipe(io.BufferedReader(io.BytesIO(data)), _Null(), size=(width, height), pix_fmt=in_fmt,
                  output="rgba", out_pix_fmt=out_fmt, batch_size=batch, threads=threads, engine=engine)
    assert report.frames == count, report.frames
    return report.fps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1080p", help="comma-separated: " + ", ".join(SIZES))
    parser.add_argument("--formats", default="rgb48le:rgba64le,yuv444p10le:yuva444p10le",
                        help="comma-separated IN:OUT pixel-format pairs")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="conversion threads [the pipe's default]")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--skip-pipe", action="store_true", help="the conversions table only")
    args = parser.parse_args(argv)
    threads = args.threads or conversion_threads()
    engine = None if args.skip_pipe else Engine(load_checkpoint(None), device=args.device, batch_size=args.batch_size)
    rows = []
    for size_name in args.sizes.split(","):
        width, height = SIZES[size_name]
        for pair in args.formats.split(","):
            in_fmt, out_fmt = pair.split(":")
            data = raw_frames(in_fmt, width, height, args.frames)
            row = {"size": size_name, "formats": pair}
            for label, count in (("conv 1", 1), (f"conv {threads}", threads)):
                row[label] = statistics.median(conversions_fps(data, in_fmt, out_fmt, width, height, args.frames,
                                                               count) for _ in range(args.repeats))
            if engine is not None:
                pipe_fps(data, in_fmt, out_fmt, width, height, args.frames, 1, engine, args.batch_size)  # warm-up
                for label, count in (("pipe 1", 1), (f"pipe {threads}", threads)):
                    row[label] = statistics.median(pipe_fps(data, in_fmt, out_fmt, width, height, args.frames,
                                                            count, engine, args.batch_size)
                                                   for _ in range(args.repeats))
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    print(f"\npomagan-post pipe, {args.frames} frames, device {args.device}, {os.cpu_count()} CPUs "
          f"(fps; 'conv N': the conversions alone on N threads; 'pipe N': the whole pipe with --threads N)")
    keys = [k for k in rows[0] if k not in ("size", "formats")]
    print("| size | in:out | " + " | ".join(keys) + " |")
    print("|---|---|" + "---:|" * len(keys))
    for row in rows:
        print(f"| {row['size']} | {row['formats']} | " + " | ".join(f"{row[k]:.1f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
