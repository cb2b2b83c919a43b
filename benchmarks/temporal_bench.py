"""Temporal steadying speed (``render --temporal N``): ms per frame on the CPU.

Times :class:`pomagan_post.temporal.TemporalSteady` alone (the flow between each frame and its
2N neighbours on a reduced copy, moving their mattes and pictures onto it, the weights), for
frames of a textured picture panning by a few pixels a frame, so the flow has real work to do.
What it adds to a render: this, on top of the network and the foreground solve (the same work
with or without it), plus the N frames beyond a chunk's ends that are matted and not written.

    python benchmarks/temporal_bench.py                  # 540p, 1080p, UHD 4K; radius 1, 2, 3
    python benchmarks/temporal_bench.py --quick          # 540p, radius 2
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from pomagan_post.temporal import TemporalSteady

SIZES = {"540p": (540, 960), "1080p": (1080, 1920), "UHD 4K": (2160, 3840)}


def frames(height: int, width: int, count: int, speed: float = 3.0) -> list[np.ndarray]:
    """A blurred random picture panning right by ``speed`` pixels a frame (float32 RGB 0-1)."""
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.random((height, width + int(speed * count) + 1, 3)).astype(np.float32),
                           (0, 0), 3.0)
    big = (big - big.min()) / (big.max() - big.min())
    return [np.ascontiguousarray(big[:, int(speed * t):int(speed * t) + width]) for t in range(count)]


def ms_per_frame(images: list[np.ndarray], radius: int) -> float:
    alpha = np.full(images[0].shape[:2], 0.5, np.float32)
    steady = TemporalSteady(radius)
    started = time.perf_counter()
    done = 0
    for number, image in enumerate(images):
        steady.push(number, image, alpha, image)
        done += len(steady.ready(through=number))
    done += len(steady.flush())
    return 1000 * (time.perf_counter() - started) / done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="540p,1080p,UHD 4K")
    parser.add_argument("--radii", default="1,2,3")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="540p, radius 2, 8 frames")
    args = parser.parse_args()
    sizes = ["540p"] if args.quick else args.sizes.split(",")
    radii = [2] if args.quick else [int(r) for r in args.radii.split(",")]
    count = 8 if args.quick else args.frames
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads")
    print("| frame | radius | ms/frame |")
    print("|---|---:|---:|")
    for size in sizes:
        images = frames(*SIZES[size], count)
        for radius in radii:
            print(f"| {size} | {radius} | {ms_per_frame(images, radius):.0f} |", flush=True)


if __name__ == "__main__":
    main()
