"""POMAGAN Post benchmarks: model-only throughput, and end-to-end ``render`` next to I/O limits.

    python benchmarks/run.py                      # the whole set on CUDA when present (see README)
    python benchmarks/run.py --quick              # small CPU subset, under two minutes on 2 cores
    python benchmarks/run.py --device cuda --frames 48 --out results.json

Three tables (printed last, and written to ``--out`` as JSON with the environment):

1. **model**: the network alone (:meth:`Engine.infer`: segmentation + alpha, autocast,
   channels_last) on random [B, 3, 768, 1280] inputs already on the device, i.e. at the working
   resolution; on CUDA the fast variant also at HD [B, 3, 1080, 1920] (RVM's figures are at HD). ``ms/batch`` is the median of ``--repeats`` timed runs after warm-up (CUDA:
   events around each run); ``fps`` = B x 1000 / ms; ``x fp32`` its speed-up over fp32 at the same
   variant and batch; ``peak GB``: the most device memory allocated during the timed runs
   (not the warm-up's cuDNN autotuning).
2. **end to end**: a ProRes 422 HQ clip and an EXR half (zip, scene-linear) sequence generated
   into a temp folder, rendered to EXR and to ProRes 4444 (alpha + foreground, as
   ``pomagan-post render`` does, with the bundled checkpoint unless ``--e2e-variant`` names a
   variant). Beside each render, the stages measured alone by the same
   script: ``decode`` (the source read to float RGB, as render reads it), ``engine`` (colour
   conversion + network + guided upsampling + foreground estimation on decoded frames,
   :func:`pomagan_post.renderer.matte`), ``encode`` (both sinks fed synthetic frames). ``render``
   is the whole pipeline's fps and ``of slowest`` = render / min(decode, engine, encode): 100 %
   means the pipeline runs at its slowest stage's pace (target >= 85 %). ``GPU GB``: peak
   device memory during the render; ``RSS GB``: peak host resident memory sampled per frame
   during the render; ``RSS drift MB``: resident memory after all frames minus after half of
   them (flat: near 0).
3. **cpu**: one 1080p frame through ``render`` with the bundled (fast) checkpoint on the CPU:
   ``render s`` the render loop (read, matte, write), ``total s`` including loading the model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import av
import numpy as np
import torch

from pomagan_post import Engine, create_model, load_checkpoint
from pomagan_post.io.atomic import atomic_path
from pomagan_post.io.base import ClipInfo
from pomagan_post.io.images import ImageSequenceSink
from pomagan_post.renderer import matte, open_sink, open_source, output_frame, render

SIZES = {"540p": (540, 960), "1080p": (1080, 1920), "4K": (2160, 3840)}
WORKING = (768, 1280)  # the default working resolution (short side 768, 5:3)
HD = (1080, 1920)  # model-only rows of the fast variant at HD too: RVM's figures are at HD
# output -> (extension, render format, video codec)
SINKS = {"exr": (".exr", "exr", None), "prores4444": (".mov", "video", "prores4444"),
         "prores4444-fast": (".mov", "video", "prores4444-fast")}


# --- measuring --------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median time of ``fn`` in ms: CUDA events around each run on CUDA, else a host clock."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def rss_gb() -> float:
    """Current resident set size of this process (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None


def release(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --- 1. model only ----------------------------------------------------------------------------

def model_rows(device: torch.device, variants: list[str], precisions: list[str], batches: list[int],
               compile_modes: list[str], warmup: int, repeats: int,
               hd_variants: tuple[str, ...] = (), rows: list[dict[str, Any]] | None = None,
               saved: Callable[[], None] = lambda: None) -> list[dict[str, Any]]:
    rows = [] if rows is None else rows
    # Each variant at its HD size right after its working size (the fast variant's HD rows
    # answer the RVM comparison: they come before the slow paper rows, in case time runs out).
    plan = [(v, size) for v in variants for size in ([WORKING] + ([HD] if v in hd_variants else []))]
    for variant, size in plan:
        torch.manual_seed(0)
        model = create_model(variant)
        for precision in precisions:
            for mode in [""] + (compile_modes if precision != "fp32" else []):
                for batch in batches:
                    # working_size = the frame's short side: the network sees the frame as is.
                    engine = Engine(model, device=device, precision=precision, batch_size=batch,
                                    compile=mode or False, working_size=size[0])
                    # Two input sets in turn, so repeated runs do not just re-read a cache.
                    inputs = [torch.rand(batch, 3, *size, device=device) * 0.9 + 0.05 for _ in range(2)]
                    turn = iter(range(1 << 30))

                    def run_once(engine: Engine = engine, inputs: list[torch.Tensor] = inputs) -> Any:
                        return engine.infer(inputs[next(turn) % 2])

                    try:
                        for _ in range(warmup + (1 if mode else 0)):  # cuDNN autotuning, compiling
                            run_once()
                        # Peak of the timed runs only: cuDNN's autotuning tries algorithms with
                        # workspaces of tens of GB once per shape (53 GB for the paper variant
                        # in fp32 on an H200), memory a render does not keep.
                        reset_peak(device)
                        ms = median_ms(run_once, device, warmup=0, repeats=repeats)
                    except torch.cuda.OutOfMemoryError:
                        ms = float("nan")
                    rows.append({"variant": variant, "size": f"{size[1]}x{size[0]}", "precision": precision, "batch": batch,
                                 "compile": engine.compile_mode or "", "ms": ms,
                                 "fps": batch * 1e3 / ms, "peak_gb": peak_gb(device)})
                    print(_model_line(rows[-1], rows), flush=True)
                    saved()
                    del engine, inputs, run_once
                    release(device)
        del model
        release(device)
    return rows


def _speedup(row: dict[str, Any], rows: list[dict[str, Any]]) -> float | None:
    base = [r for r in rows if r["variant"] == row["variant"] and r["batch"] == row["batch"]
            and r.get("size") == row.get("size") and r["precision"] == "fp32" and not r["compile"]]
    return row["fps"] / base[0]["fps"] if base and base[0]["fps"] > 0 else None


MODEL_HEAD = f"{'variant':<8} {'size':<9} {'precision':<9} {'compile':<16} {'batch':>5} {'ms/batch':>9} {'fps':>8} {'x fp32':>7} {'peak GB':>8}"


def _model_line(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    speedup = _speedup(row, rows)
    peak = "-" if row["peak_gb"] is None else f"{row['peak_gb']:.2f}"
    return (f"{row['variant']:<8} {row.get('size', '1280x768'):<9} {row['precision']:<9} {row['compile'] or 'eager':<16} {row['batch']:>5} "
            f"{row['ms']:>9.2f} {row['fps']:>8.1f} {'-' if speedup is None else f'{speedup:.2f}':>7} {peak:>8}")


# --- 2. end to end ----------------------------------------------------------------------------

def synthetic_frames(height: int, width: int, count: int, linear: bool, seed: int = 0) -> list[np.ndarray]:
    """``count`` distinct float32 RGB frames: smooth gradients plus grain (codecs and zip see
    texture, as in real plates). Linear frames reach 4.0 (highlights above 1)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        base = 0.5 + 0.35 * np.sin(xx[..., None] / (97.0 + 13 * i) + yy[..., None] / 61.0 + np.arange(3))
        frame = np.clip(base + 0.03 * rng.standard_normal((height, width, 3), np.float32), 0.0, 1.0)
        frames.append((frame ** 2.2 * 4.0 if linear else frame).astype(np.float32))
    return frames


def write_prores_hq(path: Path, frames: list[np.ndarray], count: int) -> None:
    """A ProRes 422 HQ (yuv422p10le, BT.709) clip of ``count`` frames cycling ``frames``."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("prores_ks", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv422p10le"
        stream.options = {"profile": "3", "vendor": "apl0"}
        stream.codec_context.thread_type = "AUTO"
        codes = [np.round(f * 65535.0).astype(np.uint16) for f in frames]
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(codes[i % len(codes)], format="rgb48le")
            frame = frame.reformat(format="yuv422p10le", dst_colorspace="itu709", dst_color_range="MPEG")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_exr_sequence(directory: Path, frames: list[np.ndarray], count: int) -> Path:
    """``src.####.exr``, half float, zip, scene-linear, frames 1001.. cycling ``frames``."""
    height, width = frames[0].shape[:2]
    numbers = list(range(1001, 1001 + count))
    info = ClipInfo(width=width, height=height, frames=numbers, colorspace="linear",
                    fps=Fraction(24), metadata={"pixel_type": "half"})
    with ImageSequenceSink(directory / "src.####.exr", info, kind="comp") as sink:
        for i, number in enumerate(numbers):
            sink.write(number, frames[i % len(frames)])
    return directory / "src.####.exr"


def _fps(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def decode_fps(source_path: Path) -> tuple[float, ClipInfo]:
    """The source read alone, as render reads it (float RGB frames, its own threads)."""
    source = open_source(source_path)
    count = 0
    t0 = time.perf_counter()
    for _ in source:
        count += 1
    seconds = time.perf_counter() - t0
    source.close()
    return _fps(count, seconds), source.info


def engine_fps(engine: Engine, frames: list[np.ndarray], colorspace: str, count: int) -> float:
    """``matte`` (colour to model space, network, upsampling, foreground) on decoded-like
    frames, batch by batch as render calls it; after one warm-up batch."""
    batch = engine.batch_size
    stacks = [np.stack([frames[(i + j) % len(frames)] for j in range(batch)]) for i in range(2)]
    matte(engine, stacks[0], colorspace, True, print)  # warm-up (cuDNN autotuning, allocator)
    _sync(engine.device)
    done = 0
    t0 = time.perf_counter()
    while done < count:
        matte(engine, stacks[done // batch % 2], colorspace, True, print)
        done += batch
    _sync(engine.device)
    return _fps(done, time.perf_counter() - t0)


def encode_fps(sink: str, info: ClipInfo, frames: list[np.ndarray], out_dir: Path, count: int) -> float:
    """Both sinks (alpha + premultiplied foreground) fed ``count`` synthetic frames."""
    ext, _, codec = SINKS[sink]
    numbers = list(range(1001, 1001 + count))
    info = ClipInfo(width=info.width, height=info.height, frames=numbers, colorspace=info.colorspace,
                    fps=info.fps or Fraction(24), metadata=dict(info.metadata))
    alpha = np.clip(frames[0][..., 1] / max(float(frames[0].max()), 1e-6), 0.0, 1.0).astype(np.float32)
    fgs = [f * alpha[..., None] for f in frames]
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sinks = {kind: open_sink(kind, out_dir / (f"enc_{kind}.####{ext}" if ext == ".exr" else f"enc_{kind}{ext}"),
                             info, alpha_mode="premultiplied", codec=codec or "prores4444")
             for kind in ("alpha", "fg")}
    for i, number in enumerate(numbers):
        for kind, s in sinks.items():
            s.write(number, output_frame(kind, alpha, fgs[i % len(fgs)]))
    for s in sinks.values():
        s.close()
    return _fps(count, time.perf_counter() - t0)


def e2e_engine(variant: str, device: torch.device, batch_size: int | str) -> Engine:
    """``default``: the bundled checkpoint at its own working size, as ``pomagan-post render``
    runs it; a variant name: that variant with random weights at the default working size."""
    if variant == "default":
        return Engine(load_checkpoint(None), device=device, batch_size=batch_size)
    torch.manual_seed(0)
    return Engine(create_model(variant), device=device, batch_size=batch_size)


def e2e_rows(device: torch.device, variant: str, sizes: list[str], sources: list[str], sinks: list[str],
             count: int, batch_size: int | str, work: Path, rows: list[dict[str, Any]] | None = None,
             saved: Callable[[], None] = lambda: None) -> list[dict[str, Any]]:
    engine = e2e_engine(variant, device, batch_size)
    rows = [] if rows is None else rows
    for size in sizes:
        height, width = SIZES[size]
        engine.fit_batch(height, width)
        for kind in sources:
            linear = kind == "exr"
            frames = synthetic_frames(height, width, 4, linear=linear)
            folder = work / f"{size}_{kind}"
            folder.mkdir(parents=True, exist_ok=True)
            if kind == "prores422hq":
                source = folder / "src.mov"
                write_prores_hq(source, frames, count)
            else:
                source = write_exr_sequence(folder, frames, count)
            decode, info = decode_fps(source)
            engine_stage = engine_fps(engine, frames, info.colorspace, count)
            for sink in sinks:
                encode = encode_fps(sink, info, frames, folder / f"enc_{sink}", count)
                samples: list[float] = []
                marks: dict[int, float] = {}

                def sample(number: int, done: int, total: int) -> None:
                    samples.append(rss_gb())
                    if done in (total // 2, total):
                        marks[done] = samples[-1]

                reset_peak(device)
                report = render(source, engine=engine, output_dir=folder / f"out_{sink}",
                                format=SINKS[sink][1], codec=SINKS[sink][2] or "prores4444", audio=False,
                                callback=sample)
                slowest = min(decode, engine_stage, encode)
                row = {"variant": variant, "working_size": engine.working_size,
                       "size": size, "source": kind, "sink": sink, "frames": len(report.written),
                       "batch": engine.batch_size, "decode_fps": decode, "engine_fps": engine_stage,
                       "encode_fps": encode, "render_fps": report.fps,
                       "of_slowest": report.fps / slowest if slowest > 0 else float("nan"),
                       "slowest": ("decode", "engine", "encode")[[decode, engine_stage, encode].index(slowest)],
                       "gpu_peak_gb": peak_gb(device), "rss_peak_gb": max(samples) if samples else None,
                       "rss_drift_mb": (marks.get(count, 0.0) - marks.get(count // 2, 0.0)) * 1e3}
                rows.append(row)
                print(_e2e_line(row), flush=True)
                saved()
                shutil.rmtree(folder / f"out_{sink}", ignore_errors=True)
                shutil.rmtree(folder / f"enc_{sink}", ignore_errors=True)
            shutil.rmtree(folder, ignore_errors=True)
            release(device)
    return rows


E2E_HEAD = (f"{'size':<5} {'source':<11} {'sink':<15} {'batch':>5} {'decode':>7} {'engine':>7} {'encode':>7} "
            f"{'render':>7} {'of slowest':>13} {'GPU GB':>7} {'RSS GB':>7} {'RSS drift MB':>12}")


def _e2e_line(row: dict[str, Any]) -> str:
    gpu = "-" if row["gpu_peak_gb"] is None else f"{row['gpu_peak_gb']:.2f}"
    rss = "-" if row["rss_peak_gb"] is None else f"{row['rss_peak_gb']:.2f}"
    share = f"{row['of_slowest'] * 100:.0f}% ({row['slowest']})"
    return (f"{row['size']:<5} {row['source']:<11} {row['sink']:<15} {row['batch']:>5} {row['decode_fps']:>7.1f} "
            f"{row['engine_fps']:>7.1f} {row['encode_fps']:>7.1f} {row['render_fps']:>7.1f} {share:>13} "
            f"{gpu:>7} {rss:>7} {row['rss_drift_mb']:>12.0f}")


# --- 3. CPU: one 1080p frame ------------------------------------------------------------------

def cpu_row(work: Path) -> dict[str, Any]:
    """One 1080p EXR frame through render on the CPU with the bundled (fast) checkpoint."""
    folder = work / "cpu_1080p"
    folder.mkdir(parents=True, exist_ok=True)
    source = write_exr_sequence(folder, synthetic_frames(1080, 1920, 1, linear=True), 1)
    t0 = time.perf_counter()
    report = render(source, device="cpu", batch_size=1, output_dir=folder / "out")
    total = time.perf_counter() - t0
    shutil.rmtree(folder, ignore_errors=True)
    row = {"frame": "1080p", "variant": "fast (bundled)", "threads": torch.get_num_threads(),
           "render_s": report.seconds, "total_s": total}
    print(f"cpu 1080p: render {row['render_s']:.2f} s, total {row['total_s']:.2f} s", flush=True)
    return row


# --- main -------------------------------------------------------------------------------------

def environment(device: torch.device) -> dict[str, Any]:
    env = {"python": platform.python_version(), "torch": torch.__version__, "av": av.__version__,
           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": str(device),
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["gpu_memory_gb"] = torch.cuda.get_device_properties(device).total_memory / 1e9
    return env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--quick", action="store_true",
                        help="small CPU subset: fast variant, 540p, 4 frames, fp32 batch 1")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per end-to-end clip (default 48 on CUDA, 8 on CPU, 4 with --quick)")
    parser.add_argument("--sections", default="model,e2e,cpu", help="comma-separated: model, e2e, cpu")
    parser.add_argument("--variants", default=None, help="model variants (default paper,fast; quick: fast)")
    parser.add_argument("--e2e-variant", default="default",
                        help="end to end: default (the bundled checkpoint, as render runs it) or a variant "
                             "(random weights at the default working size), e.g. paper")
    parser.add_argument("--sinks", default=",".join(SINKS),
                        help=f"end-to-end outputs, comma-separated: {', '.join(SINKS)} (default all)")
    parser.add_argument("--sizes", default=None, help="end-to-end sizes: 540p, 1080p, 4K (default 1080p,4K)")
    parser.add_argument("--batch", default="4", help="end-to-end engine batch: N or auto (default 4, the default)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per model row (default 20 CUDA, 3 CPU)")
    parser.add_argument("--compile", default="", help="also time torch.compile modes for fp16/bf16, e.g. "
                        "default,reduce-overhead (CUDA graphs)")
    parser.add_argument("--out", type=Path, default=None, help="write all rows and the environment as JSON (after every row)")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if args.quick:
        device = torch.device("cpu")
    cuda = device.type == "cuda"
    variants = (args.variants or ("fast" if args.quick else "fast,paper")).split(",")
    precisions = ["fp32", "fp16", "bf16"] if cuda else ["fp32"]
    batches = [1, 4, 8] if cuda else [1]
    repeats = args.repeats or (20 if cuda else 3)
    frames = args.frames or (4 if args.quick else 48 if cuda else 8)
    sizes = (args.sizes or ("540p" if args.quick else "1080p,4K")).split(",")
    e2e_variant = args.e2e_variant
    batch = args.batch if args.batch == "auto" else int(args.batch)
    sections = set(args.sections.split(","))
    sinks = args.sinks.split(",")
    unknown = [name for name in sinks if name not in SINKS]
    if unknown:
        parser.error(f"unknown --sinks {', '.join(unknown)}; choose from {', '.join(SINKS)}")
    compile_modes = [m for m in args.compile.split(",") if m]

    env = environment(device)
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    results: dict[str, Any] = {"environment": env, "model": [], "e2e": [], "cpu": None}
    started = time.perf_counter()

    def saved() -> None:
        """Every row so far to --out (atomically), so a run stopped by a time limit keeps them."""
        results["seconds"] = time.perf_counter() - started
        results["host_peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        if args.out:
            with atomic_path(args.out) as partial:
                partial.write_text(json.dumps(results, indent=2, default=str))

    with tempfile.TemporaryDirectory(prefix="pomagan-bench-") as tmp:
        work = Path(tmp)
        # End to end first: its rows are what the main target is about.
        if "e2e" in sections:
            print(f"\n[end to end] {e2e_variant}, {frames} frames a clip\n{E2E_HEAD}", flush=True)
            e2e_rows(device, e2e_variant, sizes, ["prores422hq", "exr"], sinks,
                     frames, batch, work, rows=results["e2e"], saved=saved)
        if "model" in sections:
            print(f"\n[model] the network alone\n{MODEL_HEAD}", flush=True)
            hd = tuple(v for v in variants if v == "fast") if cuda else ()
            model_rows(device, variants, precisions, batches, compile_modes, warmup=2, repeats=repeats,
                       hd_variants=hd, rows=results["model"], saved=saved)
        if "cpu" in sections:
            print("\n[cpu] one 1080p frame, bundled fast checkpoint", flush=True)
            results["cpu"] = cpu_row(work)
    saved()
    print_tables(results)


def print_tables(results: dict[str, Any]) -> None:
    env = results["environment"]
    print("\n" + "=" * 100)
    print(f"POMAGAN Post benchmarks on {env.get('gpu', 'CPU')} ({env['cpu_count']} CPU cores, "
          f"torch {env['torch']}), {results['seconds']:.0f} s")
    if results["model"]:
        print("\nmodel only (fps = frames/s; x fp32: speed-up over fp32, same variant, size and batch)")
        print(MODEL_HEAD)
        for row in results["model"]:
            print(_model_line(row, results["model"]))
    if results["e2e"]:
        print("\nend to end (fps; 'of slowest' = render / slowest stage alone, target >= 85%)")
        print(E2E_HEAD)
        for row in results["e2e"]:
            print(_e2e_line(row))
    if results["cpu"]:
        cpu = results["cpu"]
        print(f"\ncpu, {cpu['threads']} threads, fast variant, one 1080p EXR frame: render "
              f"{cpu['render_s']:.2f} s (target < 5 s), {cpu['total_s']:.2f} s with model load")
    print(f"\nhost peak RSS of the whole run: {results['host_peak_rss_gb']:.2f} GB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
