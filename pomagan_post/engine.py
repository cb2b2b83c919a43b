"""The inference engine: batches of frames in, full-resolution alpha and foreground out.

Frames arrive in model colour space (display-referred sRGB-encoded floats in [0, 1], any size).
Per batch: to the device -> resize to the working resolution (aspect kept, short side
``working_size``, never upscaled) -> pad to the network stride -> segmentation then alpha under
autocast (fp16/bf16 on CUDA, fp32 on CPU), channels_last -> crop -> alpha to the full frame by a fast
guided filter on the full-resolution frame (:func:`~pomagan_post.refine.guided_upsample`; bilinear
selectable) -> foreground colour estimated from the compositing equation
(:func:`~pomagan_post.refine.estimate_foreground`, in the image's own light; ``alpha x image``
selectable), returned premultiplied.

Speed (CUDA): cuDNN autotuning (``torch.backends.cudnn.benchmark``, switched on by an engine
built for a CUDA device: the working resolution is fixed, so each convolution is tuned once);
numpy frames go to the device through a reused pinned (page-locked) staging buffer with
non-blocking copies; resizing, padding and refinement run on the device; ``compile=True``
compiles the network with :func:`torch.compile` (falling back to eager, with a logged warning,
where that fails); ``batch_size="auto"`` picks a batch from free device memory
(:meth:`Engine.auto_batch_size`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import weakref
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .errors import BadInputError, DeviceError
from .io.streams import usable_cpus
from .models import Pomagan
from .refine import bilinear_upsample, guided_upsample, premultiplied_foreground
from .stopping import stop_point

__all__ = ["Engine", "PRECISIONS", "UPSAMPLERS", "FOREGROUNDS", "TTA_MODES", "resolve_batch_size", "resolve_device",
           "resolve_precision", "stride_padding", "working_shape", "with_mirror", "mirror_mean", "padded_batches"]

log = logging.getLogger(__name__)

UPSAMPLERS = {"guided": guided_upsample, "bilinear": bilinear_upsample}
FOREGROUNDS = ("estimate", "multiply")
TTA_MODES = ("none", "flip")
DEFAULT_WORKING_SIZE = 768

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# Device memory per frame, for ``batch_size="auto"`` (coarse and deliberately high: an
# out-of-memory error still halves the batch in ``render``; benchmarks/run.py prints the peak
# measured per frame, to check these against). Network activations at the working resolution:
# bytes per working pixel per stem channel (``widths[0]``) per byte of compute precision, i.e.
# about 24 stem-width feature maps alive at once (encoder skips of both networks, residual and
# ASPP temporaries). The paper variant (stem 64) in fp16 at 1280x768: 24 * 64 * 2 = 3 KiB a
# working pixel, 3.0 GB a frame; the fast variant (stem 16): 0.75 GB.
_NETWORK_BYTES_PER_PIXEL_CHANNEL = 24
# Full-resolution work in float32 (input, guided-filter box sums, multi-level foreground
# estimation, outputs): about 40 values a pixel, 160 bytes: 1.3 GB a UHD 4K frame.
_REFINE_BYTES_PER_PIXEL = 160
# The foreground solve runs on at most this many pixels at once (one UHD 4K frame): its
# working set (about 180 bytes a pixel: F/B estimates, neighbour weights, right-hand side)
# would otherwise grow with the batch, 6 GB for four 4K frames, past the card budget of a
# 4K render (issue 7: under 8 GB; an H200 measured 8.15 GB with two 4K frames a solve). A
# 1080p batch of 4 (8.3 MP) is still one solve. At this size a 4K solve also fits the CUDA
# graph (_GraphedSolve.MAX_PIXELS): replayed 19.9 ms a 4K frame against 43.3 ms eager (H200).
REFINE_CHUNK_PIXELS = 3840 * 2160
# Share of free device memory the auto batch may plan to use, and its ceiling.
_AUTO_MEMORY_FRACTION = 0.7
_AUTO_MAX_BATCH = 16


def resolve_batch_size(batch_size: int | str, name: str = "batch_size") -> int | str:
    """``"auto"`` stays ``"auto"``; anything else must be an integer >= 1 (``"4"`` -> 4).
    ``name`` is what error messages call the setting."""
    if isinstance(batch_size, str) and batch_size.strip().lower() == "auto":
        return "auto"
    try:
        value = int(batch_size)
    except (TypeError, ValueError):
        raise BadInputError(f"{name} must be an integer >= 1 or auto, got {batch_size!r}") from None
    if value < 1:
        raise BadInputError(f"{name} must be at least 1, got {batch_size}")
    return value


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> first CUDA device when there is one, else CPU; validates ``cuda:N``."""
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} requested but CUDA is not available on this machine")
        resolved = torch.device(name)
        index = resolved.index if resolved.index is not None else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
        return resolved
    raise BadInputError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` -> fp16 on CUDA, fp32 on CPU. fp16 on the CPU is refused (slow, inaccurate)."""
    name = str(precision).strip().lower()
    if name not in PRECISIONS:
        raise BadInputError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if name == "fp16" and device.type != "cuda":
        raise DeviceError("fp16 needs a CUDA device; use fp32 (or bf16) on the CPU")
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError(f"bf16 is not supported by {torch.cuda.get_device_name(device)}; use fp16")
    return _DTYPES[name]


def working_shape(height: int, width: int, working_size: int, pixel_aspect: float = 1.0) -> tuple[int, int]:
    """Size (h, w) the network sees for a frame: short side ``working_size``, aspect kept,
    never upscaled (before padding to the stride). A frame of non-square pixels (an anamorphic
    plate, ``pixel_aspect`` = pixel width / height) is seen desqueezed, as it is shown: people
    in their true proportions. TorchScript-compilable (the Nuke export)."""
    shown = width * pixel_aspect
    scale = min(1.0, working_size / min(float(height), shown))
    return max(1, int(round(height * scale))), max(1, int(round(shown * scale)))


def with_mirror(t: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[2N, C, H, W]``: the frames, then their left-right mirror images (one
    batch for ``tta="flip"``). TorchScript-able: the Nuke export calls it too."""
    return torch.cat([t, t.flip([-1])], 0)


def mirror_mean(t: torch.Tensor) -> torch.Tensor:
    """The network's ``[2N, C, H, W]`` output on :func:`with_mirror` input -> ``[N, C, H, W]``
    float32: each frame's result averaged with its mirror image's, mirrored back."""
    n = t.shape[0] // 2
    return 0.5 * (t[:n].float() + t[n:].float().flip([-1]))


def stride_padding(height: int, width: int, stride: int) -> tuple[int, int]:
    """Bottom and right padding that bring (height, width) to a multiple of ``stride``, and to
    at least two strides: instance norm needs > 1 value per channel at the 1/stride
    bottleneck. TorchScript-compilable (the Nuke export)."""
    pad_h = max(int(math.ceil(height / stride)), 2) * stride - height
    pad_w = max(int(math.ceil(width / stride)), 2) * stride - width
    return pad_h, pad_w


class _GraphedSolve:
    """``premultiplied_foreground(image, alpha)`` (the multi-level estimate) replayed from CUDA
    graphs, one per batch shape: the solve is a fixed sequence of ~2,500 small kernels, so on a
    GPU its time goes to launching them. Graphs keep their working memory (about 180 bytes a
    pixel), so only batches up to ``MAX_PIXELS`` and ``MAX_SHAPES`` shapes are captured (a
    render has one shape, plus its last, shorter batch). The first replay of each graph is
    compared with the eager solve on the same frames; a mismatch or any capture error turns
    graphs off for this engine (logged) and the caller solves eagerly."""

    MAX_PIXELS = 4 * 1920 * 1080
    MAX_SHAPES = 2

    def __init__(self) -> None:
        self.enabled = True
        self._graphs: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]] = {}

    def __call__(self, image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor | None:
        key = tuple(image.shape) + tuple(alpha.shape) + (image.device.index or 0,)
        entry = self._graphs.get(key)
        if entry is None:
            n, _, h, w = image.shape
            if not self.enabled or len(self._graphs) >= self.MAX_SHAPES or n * h * w > self.MAX_PIXELS:
                return None
            return self._capture(key, image, alpha)
        static_image, static_alpha, static_out, graph = entry
        static_image.copy_(image)
        static_alpha.copy_(alpha)
        graph.replay()
        return static_out.clone()

    def _capture(self, key: tuple[int, ...], image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor | None:
        try:
            static_image, static_alpha = image.clone(), alpha.clone()
            current = torch.cuda.current_stream(image.device)
            side = torch.cuda.Stream(image.device)
            side.wait_stream(current)
            with torch.cuda.stream(side):  # warm-up off the capture (allocator, kernels)
                for _ in range(2):
                    premultiplied_foreground(static_image, static_alpha)
            current.wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: the render's reader/writer threads may touch CUDA's host allocator.
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                static_out = premultiplied_foreground(static_image, static_alpha)
            graph.replay()
            eager = premultiplied_foreground(image, alpha)
            difference = float((static_out - eager).abs().max())
            if not difference <= 1e-4:
                raise RuntimeError(f"graph replay differs from the eager solve by {difference:g}")
        except Exception as exc:  # capture unsupported here, or a mismatch
            log.warning("CUDA graphs not used for the foreground solve (%s: %s); solving eagerly",
                        type(exc).__name__, exc)
            self.enabled = False
            self._graphs.clear()
            return None
        self._graphs[key] = (static_image, static_alpha, static_out, graph)
        return eager


@contextlib.contextmanager
def _setting(engine: Any, name: str, value: Any) -> Iterator[None]:
    """Within the block ``engine.name`` is ``value``; the engine's own setting comes back
    after. A no-op for engines without the setting (stand-ins, host applications' engines)."""
    before = getattr(engine, name, None)
    if before is None:
        yield
        return
    setattr(engine, name, value)
    try:
        yield
    finally:
        setattr(engine, name, before)


_TURNS: "weakref.WeakKeyDictionary[Any, threading.RLock]" = weakref.WeakKeyDictionary()
_TURNS_GUARD = threading.Lock()
_SHARED_TURN = threading.RLock()  # for engines that take no weak reference


@contextlib.contextmanager
def taking_turns(engine: Any) -> Iterator[None]:
    """Within the block no other thread renders with ``engine``: a render sets the engine's
    batch padding and pixel aspect for its shot (:func:`padded_batches`,
    :func:`shot_pixel_aspect`), so two overlapping renders sharing one engine would each see
    the other's and leave it changed. Renders sharing an engine take turns; give each thread
    its own engine (engines may share a model on one device) to render at once."""
    with _TURNS_GUARD:
        try:
            turn = _TURNS.setdefault(engine, threading.RLock())
        except TypeError:
            turn = _SHARED_TURN
    with turn:
        yield


@contextlib.contextmanager
def shot_pixel_aspect(engine: Any, pixel_aspect: float | None) -> Iterator[None]:
    """Within the block ``engine`` sees frames of ``pixel_aspect`` (a shot's; see
    :func:`working_shape`). Unset or implausible values leave the engine's own."""
    if not pixel_aspect or not 0.1 <= float(pixel_aspect) <= 10:
        yield
        return
    with _setting(engine, "pixel_aspect", float(pixel_aspect)):
        yield


@contextlib.contextmanager
def padded_batches(engine: Any, on: bool = True) -> Iterator[None]:
    """Within the block ``engine`` pads short batches to its batch shape (``pad_batches``), so
    every frame of a clip or stream gets the same bits whichever batch computes it. A no-op
    when ``on`` is false."""
    if not on:
        yield
        return
    with _setting(engine, "pad_batches", True):
        yield


def _is_torch(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


def _host_array(x: Any, dtype: Any = None) -> np.ndarray:
    """``x`` as a numpy array torch can take: a view with a negative stride (``img[..., ::-1]``,
    OpenCV's BGR to RGB) is copied, which ``torch.from_numpy`` refuses."""
    array = np.asarray(x, dtype=dtype)
    return np.ascontiguousarray(array) if any(stride < 0 for stride in array.strides) else array


def _float_frames(array: np.ndarray | torch.Tensor, what: str) -> None:
    """Integer pixels are refused: their values are codes, not the [0, 1] the network reads."""
    floating = array.is_floating_point() if _is_torch(array) else np.issubdtype(array.dtype, np.floating)
    if not floating:
        raise BadInputError(
            f"expected float frames in {what}, got dtype {array.dtype}; "
            "convert integer images first (e.g. uint8 / 255, uint16 / 65535)"
        )


def _as_frames(frames: Any) -> tuple[torch.Tensor, bool]:
    """numpy/torch [N,H,W,3] or [H,W,3] float -> (float32 tensor [N,H,W,3], was_single)."""
    tensor = frames if _is_torch(frames) else torch.from_numpy(_host_array(frames))
    if tensor.ndim not in (3, 4) or tensor.shape[-1] != 3:
        raise BadInputError(
            f"expected RGB frames shaped [N, H, W, 3] or [H, W, 3], got shape {tuple(tensor.shape)}"
        )
    _float_frames(tensor, "model colour space [0, 1]")
    single = tensor.ndim == 3
    if single:
        tensor = tensor.unsqueeze(0)
    if tensor.shape[0] == 0 or tensor.shape[1] < 2 or tensor.shape[2] < 2:
        raise BadInputError(f"frames too small to matte: shape {tuple(tensor.shape)}")
    return tensor, single


class Engine:
    """Runs a :class:`Pomagan` over frames.

    Args:
        model: the network (e.g. from :func:`pomagan_post.load_checkpoint`). The engine moves it
            to its device in place (``model.to``): give each engine on another device its own copy.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto`` (fp16 on CUDA, fp32 on CPU), ``fp32`` (true fp32: on CUDA without
            cuDNN's TF32 convolutions), ``fp16`` (CUDA only) or ``bf16``.
        working_size: short side of the working resolution the network runs at (frames are
            never upscaled). ``None``: the checkpoint's recorded ``working_size``, else 768
            (the paper's 1280x768 training size).
        batch_size: frames per forward pass, or ``"auto"``: on CUDA, as many as fit in 70 % of
            the free device memory by a per-megapixel estimate (:meth:`auto_batch_size`, at
            most 16), chosen for each new frame size; on the CPU, half the cores, 1 to 4.
        channels_last: run convolutions in NHWC memory format.
        upsample: ``guided`` (fast guided filter on the full frame, keeps hair) or ``bilinear``.
        foreground: ``estimate`` (solve I = aF + (1 - a)B for F, no background spill) or
            ``multiply`` (``alpha x image``).
        tta: ``none`` (the default): one pass, the paper's inference. ``flip`` runs the network
            on each frame and its mirror image in one batch and averages the two mattes: twice
            the network work (the full-resolution refinement is unchanged); lower errors on the
            synthetic test set, but where the two passes disagree the matte turns
            semi-transparent (MODEL_CARD.md has both).
        compile: compile the network with :func:`torch.compile` for the working resolution
            (``True``: the default mode; a string: that mode, e.g. ``"reduce-overhead"`` for
            CUDA graphs, ``"max-autotune"``). Compilation happens on the first batch of each
            shape; if it fails (no compiler, unsupported platform), the engine logs a warning
            and runs eager from then on. Results match eager within the precision's rounding.
        pad_batches: run a batch of fewer than ``batch_size`` frames (a clip's last one) through
            the network padded to ``batch_size`` with copies of its last frame, so every batch
            has one shape: a compiled network or CUDA graph is not rebuilt for the tail, and a
            frame's matte does not depend on where a render chunk ends (a batch of one can
            differ from a full batch in the last bits). ``None``: on when ``compile`` is; render
            turns it on for clips of more than one frame and pipe for its stream
            (:func:`padded_batches`).
        pixel_aspect: the frames' pixel width / height (2.0 for a 2x anamorphic plate): the
            network sees them desqueezed (see :func:`working_shape`; measured on the synthetic
            held-out set squeezed 2x: alpha MSE x1e3 20.0 squeezed, 4.55 desqueezed); mattes
            come back at the frames' own size. Render sets it from each shot's pixel aspect.
        cuda_graphs: on CUDA, replay the foreground solve (about 2,500 small kernels, so
            launch-bound) from a CUDA graph per batch shape, for batches of up to 8.3 MP (four
            1080p frames); each graph is checked against the eager solve once, and any failure
            or mismatch falls back to eager with a logged warning.
    """

    def __init__(
        self,
        model: Pomagan,
        device: str | torch.device = "auto",
        precision: str = "auto",
        working_size: int | None = None,
        batch_size: int | str = 4,
        channels_last: bool = True,
        upsample: str = "guided",
        foreground: str = "estimate",
        tta: str = "none",
        compile: bool | str = False,
        cuda_graphs: bool = True,
        pad_batches: bool | None = None,
        pixel_aspect: float = 1.0,
    ) -> None:
        if not isinstance(model, Pomagan):
            raise TypeError(f"Engine expects a Pomagan model, got {type(model).__name__}")
        if working_size is None:
            recorded = (model.checkpoint_info or {}).get("input", {}).get("working_size")
            working_size = recorded or DEFAULT_WORKING_SIZE
        if int(working_size) < model.stride:
            raise BadInputError(f"working_size must be at least {model.stride}, got {working_size}")
        batch = resolve_batch_size(batch_size)
        if upsample not in UPSAMPLERS:
            raise BadInputError(f"unknown upsample {upsample!r}; use one of {', '.join(UPSAMPLERS)}")
        if foreground not in FOREGROUNDS:
            raise BadInputError(f"unknown foreground {foreground!r}; use one of {', '.join(FOREGROUNDS)}")
        if tta not in TTA_MODES:
            raise BadInputError(f"unknown tta {tta!r}; use one of {', '.join(TTA_MODES)}")
        if not 0.1 <= float(pixel_aspect) <= 10:
            raise BadInputError(f"pixel aspect must be between 0.1 and 10, got {pixel_aspect}")
        self.pixel_aspect = float(pixel_aspect)
        self.upsample = upsample
        self.foreground_method = foreground
        self.tta = tta
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self._graphed_solve = _GraphedSolve() if cuda_graphs and self.device.type == "cuda" else None
        self.working_size = int(working_size)
        self.auto_batch = batch == "auto"
        self._auto_sized: tuple[int, int] | None = None  # frame size the auto batch was chosen for
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(self.device).eval().to(memory_format=self.memory_format)
        self.batch_size = self.auto_batch_size() if self.auto_batch else int(batch)
        if self.device.type == "cuda":
            # The working resolution is fixed, so autotuned convolution algorithms are chosen
            # once per shape and reused. A process-wide switch, set only for CUDA engines.
            torch.backends.cudnn.benchmark = True
        self.compile_mode = compile if isinstance(compile, str) else ("default" if compile else None)
        self.pad_batches = bool(self.compile_mode) if pad_batches is None else bool(pad_batches)
        self._network: Any = self.model
        if self.compile_mode is not None:
            try:
                self._network = torch.compile(self.model, mode=self.compile_mode, dynamic=False)
            except Exception as exc:  # torch.compile itself unavailable here
                self._compile_failed(exc)
        self._staging: dict[str, torch.Tensor] = {}  # pinned host buffers, by use
        self._staged: dict[str, Any] = {}  # the CUDA event of each buffer's last copy

    def __repr__(self) -> str:
        precision = {v: k for k, v in _DTYPES.items()}[self.dtype]
        return (
            f"Engine(variant={self.model.variant!r}, device={str(self.device)!r}, "
            f"precision={precision!r}, working_size={self.working_size}, batch_size={self.batch_size}, "
            f"upsample={self.upsample!r}, foreground={self.foreground_method!r}, tta={self.tta!r})"
        )

    def matte_settings(self) -> dict[str, Any]:
        """What decides the mattes this engine makes, beyond the frames themselves: the weights
        (a digest of their values), working size, upsampler, foreground method and test-time
        augmentation. Not the device, precision or batch size, which change a matte by float
        noise only. A render records these in its outputs so a resume with other settings is
        caught instead of mixing two mattes in one shot."""
        if getattr(self, "_weights_digest", None) is None:
            import hashlib

            digest = hashlib.sha256()
            for name, tensor in sorted(self.model.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            self._weights_digest = digest.hexdigest()[:12]
        return {"weights": self._weights_digest, "working_size": self.working_size,
                "upsample": self.upsample, "foreground": self.foreground_method, "tta": self.tta}

    def _compile_failed(self, exc: BaseException) -> None:
        log.warning("torch.compile is not usable here (%s: %s); running the network eagerly",
                    type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        self._network = self.model
        self.compile_mode = None

    def _exact_fp32(self) -> Any:
        """fp32 on CUDA means fp32: cuDNN's TF32 convolutions (PyTorch's default, 10 mantissa
        bits like fp16) are switched off around the network, so ``precision="fp32"`` is the
        reference the mixed precisions are compared with."""
        if self.device.type != "cuda" or self.dtype != torch.float32:
            return contextlib.nullcontext()
        cudnn = torch.backends.cudnn
        return cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark,
                           deterministic=cudnn.deterministic, allow_tf32=False)

    def _run_network(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network on a padded batch, compiled when asked for and working, else eager."""
        if self._network is self.model:
            return self.model(x)
        try:
            if self.compile_mode == "reduce-overhead":
                torch.compiler.cudagraph_mark_step_begin()
                alpha, seg = self._network(x)
                return alpha.clone(), seg.clone()  # CUDA-graph outputs are reused by the next run
            return self._network(x)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as exc:  # compilation failed at its first call: fall back for good
            self._compile_failed(exc)
            return self.model(x)

    def auto_batch_size(self, height: int | None = None, width: int | None = None) -> int:
        """Frames per batch for ``batch_size="auto"`` and frames of ``height`` x ``width``
        (default: a frame at the working resolution).

        CUDA: ``70 % of free memory / per-frame estimate``, 1 to 16, where the estimate is
        network activations (24 x stem width x bytes per value, per working pixel; twice that
        with ``tta="flip"``) plus
        full-resolution refinement (160 bytes per pixel, float32); e.g. the paper variant in
        fp16, 1080p: 3.0 + 0.3 GB a frame. CPU: half the cores, 1 to 4 (batching does not speed
        the CPU up; it only holds more frames).
        """
        if self.device.type != "cuda":
            return max(1, min(4, usable_cpus() // 2))
        short = self.working_size
        height, width = height or short, width or short * 5 // 3
        h, w = self.working_shape(height, width)
        pad_h, pad_w = stride_padding(h, w, self.model.stride)
        stem = int(self.model.config.widths[0])
        element = torch.empty((), dtype=self.dtype).element_size()
        passes = 2 if self.tta == "flip" else 1  # a flipped copy of each frame goes through too
        per_frame = (passes * (h + pad_h) * (w + pad_w) * stem * element * _NETWORK_BYTES_PER_PIXEL_CHANNEL
                     + height * width * _REFINE_BYTES_PER_PIXEL)
        free, _ = torch.cuda.mem_get_info(self.device)
        return max(1, min(_AUTO_MAX_BATCH, int(free * _AUTO_MEMORY_FRACTION // per_frame)))

    def fit_batch(self, height: int, width: int) -> int:
        """Batch size for frames of ``height`` x ``width``: with ``batch_size="auto"`` chosen
        (once per frame size) by :meth:`auto_batch_size`; else the fixed one."""
        if self.auto_batch and self._auto_sized != (height, width):
            self.batch_size = self.auto_batch_size(height, width)
            self._auto_sized = (height, width)
        return self.batch_size

    def _to_device(self, tensor: torch.Tensor, use: str) -> torch.Tensor:
        """A host tensor onto the engine's device; on CUDA through a pinned staging buffer
        (one per ``use``, grown as needed) and a non-blocking copy."""
        if self.device.type != "cuda" or tensor.device.type != "cpu":
            return tensor.to(self.device, non_blocking=True)
        buffer = self._staging.get(use)
        if buffer is None or buffer.dtype != tensor.dtype or buffer.numel() < tensor.numel():
            buffer = torch.empty(tensor.numel(), dtype=tensor.dtype, pin_memory=True)
            self._staging[use] = buffer
        elif use in self._staged:
            self._staged[use].synchronize()  # its previous copy has left the buffer
        staging = buffer[: tensor.numel()].view(tensor.shape)
        staging.copy_(tensor)
        out = staging.to(self.device, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        self._staged[use] = done
        return out

    def _solve(self, image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Premultiplied foreground of device frames, from a CUDA graph where one serves."""
        if self._graphed_solve is not None and self.foreground_method == "estimate":
            out = self._graphed_solve(image, alpha)
            if out is not None:
                return out
        return premultiplied_foreground(image, alpha, method=self.foreground_method)

    def _to_host(self, tensor: torch.Tensor) -> np.ndarray:
        """A result onto the host as a C-contiguous numpy array: on CUDA laid out on the device
        first, then one non-blocking copy into page-locked memory (PyTorch's caching host
        allocator reuses those blocks once the arrays holding them are gone)."""
        tensor = tensor.contiguous()
        if self.device.type != "cuda":
            return tensor.cpu().numpy()
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        host.copy_(tensor, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return host.numpy()

    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        """Size (h, w) the network sees for a ``height`` x ``width`` frame, before stride padding."""
        return working_shape(height, width, self.working_size, getattr(self, "pixel_aspect", 1.0))

    @torch.inference_mode()
    def infer(self, images: torch.Tensor, seg: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Network pass at the working resolution.

        Args:
            images: [N, 3, H, W] float in [0, 1] on the engine's device.
            seg: optional [N, 1, H, W] segmentation to feed the alpha network instead of the
                segmentation network's (a diagnostic: what a perfect first stage would give).
                With ``tta="flip"`` both outputs are the average of the frame's pass and its
                mirror image's pass (mirrored back).
        Returns:
            (alpha, segmentation), each [N, 1, h, w] float32 at the working resolution
            :meth:`working_shape` ``(H, W)``.
        """
        height, width = images.shape[-2:]
        h, w = self.working_shape(height, width)
        pad_h, pad_w = stride_padding(h, w, self.model.stride)

        def prepare(t: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N, C, h', w']
            t = t.float()
            if (h, w) != (height, width):
                t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
            if pad_h or pad_w:
                t = F.pad(t, (0, pad_w, 0, pad_h), mode="replicate")
            return t.contiguous(memory_format=self.memory_format)

        flip = self.tta == "flip"

        def mirrored(t: torch.Tensor) -> torch.Tensor:
            return with_mirror(t) if flip else t

        def merged(t: torch.Tensor) -> torch.Tensor:
            return (mirror_mean(t) if flip else t)[..., :h, :w].float()

        count = images.shape[0]
        short = self.batch_size - count if self.pad_batches and isinstance(self.batch_size, int) else 0

        def padded(t: torch.Tensor) -> torch.Tensor:  # a short batch filled with its last frame
            return torch.cat([t, t[-1:].expand(short, *t.shape[1:])]) if short > 0 and count else t

        x = mirrored(prepare(padded(images)))
        autocast = self.dtype != torch.float32
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=autocast), self._exact_fp32():
            if seg is None:
                alpha, seg = self._run_network(x)
            else:
                seg = mirrored(prepare(padded(seg)))
                alpha = self.model.matte(x, seg)
        return merged(alpha)[:count], merged(seg)[:count]

    @torch.inference_mode()
    def predict_alpha(self, frames: Any, seg: Any = None) -> Any:
        """Full-resolution alpha for frames in model colour space.

        Args:
            frames: float [N, H, W, 3] (or one [H, W, 3]) numpy array or torch tensor, values in
                [0, 1] (NaN and out-of-range values are clamped).
            seg: optional segmentation [N, H, W] (or [H, W]) in [0, 1] fed to the alpha network
                instead of the segmentation network's (a diagnostic, see :meth:`infer`).
        Returns:
            float32 alpha in [0, 1], [N, H, W] (or [H, W]); numpy in -> numpy out, torch in ->
            torch out on the input's device.
        """
        batch, single = _as_frames(frames)
        height, width = batch.shape[1:3]
        if seg is not None:
            seg = torch.as_tensor(seg, dtype=torch.float32).reshape(batch.shape[0], 1, height, width)
        step = self.fit_batch(height, width)
        out = []
        for start in range(0, batch.shape[0], step):
            chunk = self._to_device(batch[start : start + step], "frames")
            x = torch.nan_to_num(chunk.permute(0, 3, 1, 2).float(), nan=0.0, posinf=1.0, neginf=0.0)
            x = x.clamp_(0.0, 1.0)  # [n, H, W, 3] -> [n, 3, H, W]
            given = None if seg is None else seg[start : start + step].to(self.device)
            out.append(self._full_alpha(x, given)[:, 0].to(batch.device))  # [n, H, W]
        alpha = torch.cat(out)
        if single:
            alpha = alpha[0]
        return alpha if _is_torch(frames) else alpha.numpy()

    def _full_alpha(self, x: torch.Tensor, seg: torch.Tensor | None = None) -> torch.Tensor:
        """[n, 3, H, W] model-space frames on the device (and optionally the segmentation to
        use, see :meth:`infer`) -> alpha [n, 1, H, W] in [0, 1]."""
        alpha_low, _ = self.infer(x, seg)
        alpha = alpha_low
        if alpha_low.shape[-2:] != x.shape[-2:]:  # at full size already: nothing to upsample
            alpha = UPSAMPLERS[self.upsample](alpha_low, x)  # [n, 1, h, w] -> [n, 1, H, W]
        return alpha.clamp_(0.0, 1.0)

    @torch.inference_mode()
    def matte(self, frames: np.ndarray, colorspace: str = "srgb", need_fg: bool = True,
              seg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Alpha and premultiplied foreground for frames as a source decoded them: what
        ``render`` and the pipe call.

        Each batch goes to the device once; NaN/inf clean-up, the conversion to model space
        (for :data:`~pomagan_post.colour.TENSOR_COLORSPACES`; other spaces convert on the host
        first), the network, upsampling and the foreground solve all run there, and alpha and
        foreground come back in one copy.

        Args:
            frames: float [N, H, W, 3] numpy array in ``colorspace``'s own values (scene-linear
                plates stay linear: the foreground is solved in the image's own light).
            colorspace: the frames' colour space (any name :func:`~pomagan_post.colour.to_model`
                takes).
            need_fg: also compute the foreground.
            seg: optional [N, H, W] float matte in [0, 1] at the frames' size, fed to the alpha
                network in place of the segmentation network's output: a roto of the subject
                drawn on its edge (``render --roto``; hard, 0 or 1: the network reads its
                boundary as the subject's, so a feathered or offset shape moves the matte's
                edge). The alpha network still pulls the soft detail (hair, motion blur) from
                the picture.
        Returns:
            ``(alpha [N, H, W], fg [N, H, W, 3] or None)``, float32; NaN in the frames counts as
            0 for the foreground, infinities as +-65504.
        """
        from .colour import TENSOR_COLORSPACES, resolve_colorspace, to_model, to_model_tensor

        images = _host_array(frames)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise BadInputError(f"expected RGB frames shaped [N, H, W, 3], got shape {images.shape}")
        _float_frames(images, f"{colorspace}'s own values")
        if images.shape[0] == 0 or images.shape[1] < 2 or images.shape[2] < 2:
            raise BadInputError(f"frames too small to matte: shape {images.shape}")
        on_device = resolve_colorspace(colorspace) in TENSOR_COLORSPACES
        if seg is not None:
            seg = np.asarray(seg, dtype=np.float32)
            if seg.shape != images.shape[:3]:
                raise BadInputError(f"segmentation shaped {seg.shape}; the frames need {images.shape[:3]}")
        step = self.fit_batch(*images.shape[1:3])
        alphas, fgs = [], []
        for start in range(0, images.shape[0], step):
            stop_point()  # a CLI's SIGTERM / Ctrl-C: drop this batch (rendered again on resume)
            chunk = images[start : start + step]
            raw = self._to_device(torch.from_numpy(chunk), "frames").permute(0, 3, 1, 2)  # [n, 3, H, W]
            finite = torch.nan_to_num(raw.float(), nan=0.0, posinf=65504.0, neginf=-65504.0)
            if on_device:
                model = to_model_tensor(finite, colorspace)
            else:
                host = torch.from_numpy(to_model(chunk, colorspace))
                model = self._to_device(host, "model").permute(0, 3, 1, 2).float()
            given = None if seg is None else self._to_device(
                torch.from_numpy(np.ascontiguousarray(seg[start : start + step])), "seg")[:, None]
            alpha = self._full_alpha(model, given)  # [n, 1, H, W]
            if not need_fg:
                alphas.append(self._to_host(alpha[:, 0]))
                continue
            per_solve = max(1, REFINE_CHUNK_PIXELS // (finite.shape[-2] * finite.shape[-1]))
            solved = []
            for i in range(0, finite.shape[0], per_solve):  # the slow part on a CPU: a frame or so
                stop_point()
                solved.append(self._solve(finite[i : i + per_solve], alpha[i : i + per_solve]))
            fg = torch.cat(solved)
            both = self._to_host(torch.cat([fg, alpha], 1).permute(0, 2, 3, 1))  # one copy back
            alphas.append(np.ascontiguousarray(both[..., 3]))
            fgs.append(both[..., :3])  # a view: outputs copy it into their own layout anyway
        alpha_np = np.concatenate(alphas) if len(alphas) > 1 else alphas[0]
        if not need_fg:
            return np.ascontiguousarray(alpha_np, np.float32), None
        fg_np = np.concatenate(fgs) if len(fgs) > 1 else fgs[0]
        return alpha_np, fg_np

    @torch.inference_mode()
    def foreground(self, image: Any, alpha: Any) -> Any:
        """Premultiplied foreground ``alpha x F`` in the image's own colour values.

        F is estimated from the compositing equation (``foreground="estimate"``) so edges carry
        no background colour, or taken as the image itself (``"multiply"``).

        Args:
            image: [N, H, W, 3] (or [H, W, 3]) float, any light (scene-linear values > 1 kept;
                pass linear values for scene-linear sources: the equation holds in linear light).
            alpha: [N, H, W] (or [H, W]) in [0, 1].
        Returns:
            float32 premultiplied foreground with the image's shape and array type.
        """
        if _is_torch(image) != _is_torch(alpha):
            raise BadInputError("image and alpha must both be numpy arrays or both torch tensors")
        if tuple(image.shape[:-1]) != tuple(alpha.shape) or image.shape[-1] != 3 or image.ndim not in (3, 4):
            raise BadInputError(
                f"image {tuple(image.shape)} and alpha {tuple(alpha.shape)} do not match "
                "([N, H, W, 3] and [N, H, W], or one frame)"
            )
        images = image if _is_torch(image) else torch.from_numpy(_host_array(image, np.float32))
        alphas = alpha if _is_torch(alpha) else torch.from_numpy(_host_array(alpha, np.float32))
        single = images.ndim == 3
        if single:
            images, alphas = images.unsqueeze(0), alphas.unsqueeze(0)
        step = self.fit_batch(*images.shape[1:3])
        out = []
        for start in range(0, images.shape[0], step):
            chunk = slice(start, start + step)
            img = self._to_device(images[chunk], "frames").permute(0, 3, 1, 2).float()  # [n, 3, H, W]
            a = self._to_device(alphas[chunk], "alpha").unsqueeze(1).float()  # [n, 1, H, W]
            fg = premultiplied_foreground(img, a, method=self.foreground_method)
            out.append(fg.permute(0, 2, 3, 1).to(images.device))  # [n, H, W, 3]
        result = torch.cat(out)
        if single:
            result = result[0]
        return result if _is_torch(image) else result.numpy()

    def process(self, frames: Any) -> tuple[Any, Any]:
        """(alpha, premultiplied foreground) for frames in model colour space; see
        :meth:`predict_alpha` and :meth:`foreground`."""
        frames = frames if _is_torch(frames) else _host_array(frames)  # (a list too)
        alpha = self.predict_alpha(frames)
        return alpha, self.foreground(frames, alpha)
