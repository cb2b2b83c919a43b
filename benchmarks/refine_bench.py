"""Edge refinement speed: ms per frame for alpha upsampling and foreground estimation.

Times :func:`pomagan_post.refine.guided_upsample` (from the engine's working resolution, short side
768, to the full frame), its bilinear baseline, and :func:`pomagan_post.refine.estimate_foreground`
at full resolution. Median of ``--repeats`` runs after one warm-up (CUDA: events around each
run; :func:`run.median_ms`). Content does not change the work done, so inputs are random.

    python benchmarks/refine_bench.py                 # 1080p and 4K, CPU and CUDA when available
    python benchmarks/refine_bench.py --device cuda   # CUDA only, fp32 and fp16 inputs
    python benchmarks/refine_bench.py --quick         # small CPU-only smoke run
"""

from __future__ import annotations

import argparse

import torch

from pomagan_post.engine import working_shape
from pomagan_post.refine import bilinear_upsample, estimate_foreground, guided_upsample
from run import median_ms  # benchmarks/run.py: this folder is on sys.path when run as a script

SIZES = {"540p": (540, 960), "1080p": (1080, 1920), "UHD 4K": (2160, 3840)}


def bench(
    size_name: str,
    device: torch.device,
    dtype: torch.dtype,
    batch: int,
    working_size: int,
    repeats: int,
) -> list[tuple[str, str, str, str, float]]:
    """(device, input dtype, frame, operation, ms per frame) rows for one size and precision."""
    height, width = SIZES[size_name]
    h, w = working_shape(height, width, working_size)
    generator = torch.Generator(device).manual_seed(0)
    image = torch.rand(batch, 3, height, width, device=device, generator=generator).to(dtype)
    alpha = torch.rand(batch, 1, height, width, device=device, generator=generator).to(dtype)
    alpha_low = torch.rand(batch, 1, h, w, device=device, generator=generator).to(dtype)
    cases = {
        f"guided_upsample from {w}x{h}": lambda: guided_upsample(alpha_low, image),
        f"bilinear_upsample from {w}x{h}": lambda: bilinear_upsample(alpha_low, image),
        "estimate_foreground": lambda: estimate_foreground(image, alpha),
    }
    if device.type == "cuda" and dtype == torch.float32:
        from pomagan_post.engine import _GraphedSolve  # what Engine.matte uses on CUDA

        graphed = _GraphedSolve()
        cases["premultiplied fg, CUDA graph (engine)"] = lambda: graphed(image, alpha)
    dtype_name = str(dtype).removeprefix("torch.")
    return [
        (str(device), dtype_name, size_name, name,
         median_ms(fn, device, warmup=1, repeats=repeats) / batch)
        for name, fn in cases.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="all", help="all (CPU, plus CUDA when available), cpu, cuda or cuda:N"
    )
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=["1080p", "UHD 4K"])
    parser.add_argument("--batch", type=int, default=1, help="frames per call")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case")
    parser.add_argument("--working-size", type=int, default=768, help="network short side")
    parser.add_argument("--quick", action="store_true", help="540p on the CPU, 3 repeats")
    args = parser.parse_args()

    if args.quick:
        args.device, args.sizes, args.repeats = "cpu", ["540p"], 3
    if args.device == "all":
        devices = [torch.device("cpu")]
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
    else:
        devices = [torch.device(args.device)]
        if devices[0].type == "cuda" and not torch.cuda.is_available():
            parser.error(f"--device {args.device}: CUDA is not available on this machine")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {args.batch}")
    for device in devices:
        if device.type == "cuda":
            print(f"{device}: {torch.cuda.get_device_name(device)}")
    print(f"{'device':<8} {'input':<8} {'frame':<7} {'operation':<36} {'ms/frame':>9}")
    for device in devices:
        dtypes = [torch.float32] + ([torch.float16] if device.type == "cuda" else [])
        for dtype in dtypes:
            for size_name in args.sizes:
                rows = bench(size_name, device, dtype, args.batch, args.working_size, args.repeats)
                for device_name, dtype_name, frame, name, ms in rows:
                    row = f"{device_name:<8} {dtype_name:<8} {frame:<7} {name:<36} {ms:>9.1f}"
                    print(row, flush=True)


if __name__ == "__main__":
    main()
