"""Evaluation: run a model (or any alpha predictor) over a test set, score it, tabulate it.

``evaluate(model_or_engine, dataset)`` predicts full-resolution alpha for every item through
:meth:`pomagan_post.Engine.predict_alpha` (or a predictor callable), scores each item with
:mod:`pomagan_train.metrics` on the whole image (or the trimap's unknown region) and returns an
:class:`EvalResult`. :func:`results_table` lays several results out as the paper's Table 1 (rows:
test sets; columns: MSE x1e3, MAE x1e3, SAD /1e3, Grad, Conn, plus dtSSD x1e2 when clips were
scored); :func:`write_results` writes that table as ``results.md`` and ``results.csv``.

Dataset items are dicts of float tensors (or arrays) in [0, 1]: ``"image"`` ``[3, H, W]`` and
``"alpha"`` ``[1, H, W]`` for a still, or ``[T, 3, H, W]`` / ``[T, 1, H, W]`` for a clip (scored
per frame, averaged, plus dtSSD over the clip). ``"trimap"`` is read only for
``region="unknown"``.

Baselines for the model card have the predictor interface ``f(frames) -> alpha`` (frames
``[N, H, W, 3]`` float32 sRGB in [0, 1] -> alpha ``[N, H, W]``): :func:`zero_alpha` and
:class:`ThresholdedSegmentation`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from pomagan_post import Engine, Pomagan
from pomagan_post.errors import BadInputError
from pomagan_post.io.atomic import atomic_path

from . import metrics

__all__ = [
    "EvalResult",
    "Predictor",
    "TABLE_COLUMNS",
    "ThresholdedSegmentation",
    "TrueSegmentationAlpha",
    "as_predictor",
    "evaluate",
    "results_table",
    "write_results",
    "zero_alpha",
]

#: ``f(frames [N, H, W, 3] float32 in [0, 1]) -> alpha [N, H, W]``.
Predictor = Callable[[np.ndarray], Any]

#: Table columns: (metric key, markdown header, CSV header). Values are ``raw * TABLE_SCALES``.
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("mse", "MSE (x1e3)", "mse_x1e3"),
    ("mae", "MAE (x1e3)", "mae_x1e3"),
    ("sad", "SAD (/1e3)", "sad_div1e3"),
    ("grad", "Grad", "grad"),
    ("conn", "Conn", "conn"),
)
_DTSSD_COLUMN = ("dtssd", "dtSSD (x1e2)", "dtssd_x1e2")


@dataclass
class EvalResult:
    """Scores of one test set.

    Attributes:
        samples: one dict per item: ``index``, ``frames`` (1 for a still) and the raw metrics
            (``mse``, ``mae``, ``sad``, ``grad``, ``conn``; clips also ``dtssd``), on the [0, 1]
            scale of :mod:`pomagan_train.metrics` (clip values are means over its frames).
        means: raw metric averages over the items (``dtssd`` over the clips only, absent when
            there were none); NaN items (empty unknown region) are skipped.
        seconds: wall time of the whole evaluation, prediction included.
    """

    samples: list[dict[str, float]] = field(default_factory=list)
    means: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.samples)

    def scaled(self) -> dict[str, float]:
        """Means in table units (MSE/MAE x1e3, SAD /1e3, Grad and Conn raw, dtSSD x1e2)."""
        return {k: v * metrics.TABLE_SCALES[k] for k, v in self.means.items()}


def zero_alpha(frames: Any) -> np.ndarray:
    """Baseline predictor: alpha 0 everywhere (``[N, H, W, 3]`` -> ``[N, H, W]`` float32).

    Its MSE is ``mean(gt^2)`` and its SAD ``sum(gt)``: the floor a model must beat."""
    return np.zeros(np.shape(frames)[:-1], dtype=np.float32)


class _EnginePredictor:
    """A predictor that runs an :class:`pomagan_post.Engine`: the given one, or one built around
    a model with ``device``, ``precision``, ``working_size``, ``batch_size``."""

    def __init__(
        self,
        model_or_engine: Pomagan | Engine,
        device: str | torch.device = "auto",
        precision: str = "auto",
        working_size: int | None = None,
        batch_size: int = 1,
    ) -> None:
        self.engine = _as_engine(model_or_engine, device, precision, working_size, batch_size)


class ThresholdedSegmentation(_EnginePredictor):
    """Baseline predictor: the model's segmentation, binarised, as the alpha.

    The segmentation net runs at the engine's working resolution (through
    :meth:`Engine.infer`, which also runs the alpha net: this baseline costs a full forward
    pass); ``seg >= threshold`` is upsampled bilinearly to the frame size.

    Args:
        model_or_engine: a :class:`pomagan_post.Pomagan` or an :class:`pomagan_post.Engine`.
        threshold: segmentation probability counted as foreground.
        device, precision, working_size, batch_size: for the engine built around a model
            (ignored when an engine is given).
    """

    def __init__(self, model_or_engine: Pomagan | Engine, threshold: float = 0.5, **engine_options: Any) -> None:
        super().__init__(model_or_engine, **engine_options)
        self.threshold = float(threshold)

    @torch.inference_mode()
    def __call__(self, frames: Any) -> np.ndarray:
        batch = torch.as_tensor(np.asarray(frames, dtype=np.float32))
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise BadInputError(f"expected frames shaped [N, H, W, 3], got {tuple(batch.shape)}")
        height, width = batch.shape[1:3]
        out = []
        for start in range(0, batch.shape[0], self.engine.batch_size):
            chunk = batch[start : start + self.engine.batch_size].to(self.engine.device)
            x = chunk.permute(0, 3, 1, 2).clamp(0.0, 1.0)  # [n, H, W, 3] -> [n, 3, H, W]
            _, seg = self.engine.infer(x)  # [n, 1, h, w] at the working resolution
            binary = (seg >= self.threshold).float()
            up = F.interpolate(binary, size=(height, width), mode="bilinear", align_corners=False)
            out.append(up[:, 0].cpu())  # [n, H, W]
        return torch.cat(out).numpy()


class TrueSegmentationAlpha(_EnginePredictor):
    """Diagnostic predictor: the alpha stage fed each item's *true* segmentation
    (``opening(alpha >= 0.5)``, the segmentation stage's training target) instead of the
    segmentation stage's output. Its score is what the model would reach with a perfect first
    stage, so comparing it with the model's says which stage limits the model.

    Called as ``f(frames [N, H, W, 3], truth [N, H, W]) -> alpha [N, H, W]`` (``uses_truth``
    tells :func:`evaluate` to pass the ground-truth alpha). Same engine settings as
    :class:`ThresholdedSegmentation`.
    """

    uses_truth = True

    def __call__(self, frames: Any, truth: Any) -> np.ndarray:
        from .data import seg_from_alpha

        truth = torch.as_tensor(np.asarray(truth, dtype=np.float32))  # [N, H, W]
        return self.engine.predict_alpha(np.asarray(frames, dtype=np.float32), seg=seg_from_alpha(truth))


def _as_engine(
    model_or_engine: Any, device: Any, precision: str, working_size: int | None, batch_size: int
) -> Engine:
    if isinstance(model_or_engine, Engine):
        return model_or_engine
    if isinstance(model_or_engine, Pomagan):
        return Engine(
            model_or_engine,
            device=device,
            precision=precision,
            working_size=working_size,
            batch_size=batch_size,
        )
    raise TypeError(f"expected a Pomagan model or an Engine, got {type(model_or_engine).__name__}")


def as_predictor(
    model_or_engine: Pomagan | Engine | Predictor,
    device: str | torch.device = "auto",
    precision: str = "auto",
    working_size: int | None = None,
    batch_size: int = 1,
) -> Predictor:
    """A predictor ``f(frames) -> alpha`` from a model (wrapped in an :class:`Engine` with the
    given settings), an engine (its ``predict_alpha``) or a predictor (returned as is)."""
    if isinstance(model_or_engine, (Engine, Pomagan)):
        engine = _as_engine(model_or_engine, device, precision, working_size, batch_size)
        return engine.predict_alpha
    if callable(model_or_engine):
        return model_or_engine
    raise TypeError(
        "expected a Pomagan model, an Engine or a predictor f(frames) -> alpha, got "
        f"{type(model_or_engine).__name__}"
    )


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float32)


def _item_arrays(
    item: Mapping[str, Any], index: int, region: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """(frames [T, H, W, 3], alpha [T, H, W], trimap [T, H, W] or None, is_clip) of an item."""
    if "image" not in item or "alpha" not in item:
        raise BadInputError(f"dataset item {index} lacks 'image' or 'alpha' (keys: {sorted(item)})")
    image, alpha = _numpy(item["image"]), _numpy(item["alpha"])
    is_clip = image.ndim == 4
    if not is_clip:
        image = image[None]  # one frame: [3, H, W] -> [1, 3, H, W]
        alpha = alpha[None, None] if alpha.ndim == 2 else alpha[None]  # -> [1, 1, H, W]
    expected_alpha = (image.shape[0], 1, *image.shape[2:])
    if image.ndim != 4 or image.shape[1] != 3 or alpha.shape != expected_alpha:
        raise BadInputError(
            f"dataset item {index}: expected image [3, H, W] / alpha [1, H, W] (or [T, 3, H, W] / "
            f"[T, 1, H, W]), got {tuple(_numpy(item['image']).shape)} / "
            f"{tuple(_numpy(item['alpha']).shape)}"
        )
    trimap = None
    if region == "unknown":
        if "trimap" not in item:
            raise BadInputError(f"region='unknown' needs a 'trimap' in dataset item {index}")
        trimap = _numpy(item["trimap"]).reshape(alpha.shape)[:, 0]
    frames = np.ascontiguousarray(image.transpose(0, 2, 3, 1))  # [T, 3, H, W] -> [T, H, W, 3]
    return frames, alpha[:, 0], trimap, is_clip


def _score(
    pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None, is_clip: bool
) -> dict[str, float]:
    """Raw metrics of one item (clip: per-frame metrics averaged, plus dtSSD)."""
    per_frame = {name: [] for name in metrics.METRICS}
    for t in range(gt.shape[0]):
        region = None if trimap is None else trimap[t]
        for name, fn in metrics.METRICS.items():
            per_frame[name].append(fn(pred[t], gt[t], trimap=region))
    scores = {name: float(np.mean(values)) for name, values in per_frame.items()}
    if is_clip and gt.shape[0] >= 2:
        scores["dtssd"] = metrics.dtssd(pred, gt, trimap=trimap)
    return scores


def _predict(predictor: Predictor, frames: np.ndarray, chunk: int, truth: np.ndarray) -> np.ndarray:
    """Alpha ``[T, H, W]`` float64 for frames ``[T, H, W, 3]``, ``chunk`` frames per call
    (predictors with ``uses_truth`` also get the ground-truth alpha ``truth[T, H, W]``)."""
    outs = []
    uses_truth = getattr(predictor, "uses_truth", False)
    for start in range(0, frames.shape[0], chunk):
        part = frames[start : start + chunk]
        raw = predictor(part, truth[start : start + chunk]) if uses_truth else predictor(part)
        alpha = _numpy(raw).reshape(part.shape[:-1])  # also accepts [n, H, W, 1]
        outs.append(np.clip(alpha, 0.0, 1.0))
    return np.concatenate(outs).astype(np.float64)


def _progress(total: int | None, enabled: bool, desc: str):
    if not enabled:
        return None
    from pomagan_post.progress import progress

    return progress(total, desc=desc, unit="item")


def evaluate(
    model_or_engine: Pomagan | Engine | Predictor,
    dataset: Iterable[Mapping[str, Any]],
    device: str | torch.device = "auto",
    precision: str = "auto",
    working_size: int | None = None,
    batch_size: int = 1,
    progress: bool = True,
    limit: int | None = None,
    region: str = "image",
    desc: str = "eval",
) -> EvalResult:
    """Score a model (or predictor) on a test set.

    Args:
        model_or_engine: a :class:`pomagan_post.Pomagan` (run through an :class:`Engine` built
            with ``device``, ``precision``, ``working_size``, ``batch_size``), an :class:`Engine`
            (used as configured) or a predictor ``f(frames [N, H, W, 3]) -> alpha [N, H, W]``
            such as :func:`zero_alpha` or :class:`ThresholdedSegmentation`.
        dataset: an iterable of dict items (a map-style ``torch.utils.data.Dataset``, a list),
            see the module docstring.
        device, precision, working_size: engine settings for a model.
        batch_size: frames per prediction call (consecutive stills of one size are batched;
            clips are predicted in chunks of this many frames).
        progress: show a progress bar on stderr (needs tqdm).
        limit: score only the first ``limit`` items.
        region: ``"image"`` (the paper: whole image) or ``"unknown"`` (the items' trimap
            unknown region, DIM-benchmark style).
        desc: progress bar label.
    Returns:
        The per-item and mean raw scores (:class:`EvalResult`).
    """
    if region not in ("image", "unknown"):
        raise BadInputError(f"region must be 'image' or 'unknown', got {region!r}")
    if int(batch_size) < 1:
        raise BadInputError(f"batch_size must be at least 1, got {batch_size}")
    if limit is not None and int(limit) < 0:
        raise BadInputError(f"limit must be >= 0, got {limit}")
    predictor = as_predictor(model_or_engine, device, precision, working_size, batch_size)
    try:
        total: int | None = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        total = None
    if limit is not None:
        total = int(limit) if total is None else min(total, int(limit))

    start_time = time.perf_counter()
    samples: list[dict[str, float]] = []
    bar = _progress(total, progress, desc)
    # stills awaiting a batch: (index, frames [1, H, W, 3], alpha [1, H, W], trimap or None)
    pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]] = []

    def flush() -> None:
        if not pending:
            return
        frames = np.concatenate([f for _, f, _, _ in pending])
        alphas = _predict(predictor, frames, batch_size, np.concatenate([gt for _, _, gt, _ in pending]))
        for k, (index, _, gt, trimap) in enumerate(pending):
            scores = _score(alphas[k : k + 1], gt, trimap, is_clip=False)
            samples.append({"index": index, "frames": 1, **scores})
        if bar is not None:
            bar.update(len(pending))
        pending.clear()

    try:
        for index, item in enumerate(dataset):
            if limit is not None and index >= int(limit):
                break
            frames, gt, trimap, is_clip = _item_arrays(item, index, region)
            if pending and (
                is_clip or len(pending) == batch_size or frames.shape != pending[0][1].shape
            ):
                flush()
            if is_clip:
                alphas = _predict(predictor, frames, batch_size, gt)
                samples.append(
                    {"index": index, "frames": frames.shape[0], **_score(alphas, gt, trimap, True)}
                )
                if bar is not None:
                    bar.update(1)
            else:
                pending.append((index, frames, gt, trimap))
        flush()
    finally:
        if bar is not None:
            bar.close()

    means: dict[str, float] = {}
    for name in (*metrics.METRICS, "dtssd"):
        values = [s[name] for s in samples if name in s and not math.isnan(s[name])]
        if values:
            means[name] = float(np.mean(values))
        elif name in metrics.METRICS:
            means[name] = float("nan")
    return EvalResult(samples=samples, means=means, seconds=time.perf_counter() - start_time)


def _columns(results: Mapping[str, EvalResult]) -> tuple[tuple[str, str, str], ...]:
    if any("dtssd" in r.means for r in results.values()):
        return (*TABLE_COLUMNS, _DTSSD_COLUMN)
    return TABLE_COLUMNS


def _markdown_number(key: str, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if key in ("grad", "conn") and abs(value) >= 100:
        return f"{value:.0f}"  # the paper prints Grad / Conn as integers
    return f"{value:.2f}"


def results_table(results: Mapping[str, EvalResult], fmt: str = "markdown") -> str:
    """The paper's Table 1 layout: one row per test set, in ``results``' order.

    Columns: MSE (x1e3), MAE (x1e3), SAD (/1e3), Grad, Conn (raw sums; see
    :mod:`pomagan_train.metrics` for why), and dtSSD (x1e2) when any set had clips.

    Args:
        results: test set name -> :class:`EvalResult`.
        fmt: ``"markdown"`` (2 decimals; Grad/Conn as integers from 100 up, like the paper)
            or ``"csv"`` (full precision, header ``test_set,mse_x1e3,...,n``).
    Returns:
        The table text, ending with a newline.
    """
    columns = _columns(results)
    if fmt == "markdown":
        lines = [
            "| Test set | " + " | ".join(header for _, header, _ in columns) + " |",
            "|---|" + "---:|" * len(columns),
        ]
        for name, result in results.items():
            scaled = result.scaled()
            cells = [_markdown_number(k, scaled.get(k, float("nan"))) for k, _, _ in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["test_set", *(key for _, _, key in columns), "n"])
        for name, result in results.items():
            scaled = result.scaled()
            writer.writerow(
                [name, *(repr(scaled.get(k, float("nan"))) for k, _, _ in columns), result.count]
            )
        return buffer.getvalue()
    raise BadInputError(f"unknown table format {fmt!r}; use 'markdown' or 'csv'")


def items_table(results: Mapping[str, EvalResult]) -> str:
    """Every item's scores as CSV (``test_set,index,frames,mse_x1e3,...``, table units), to
    find the frames a model fails on (``sort -t, -k4 -g``) rather than only the means."""
    columns = _columns(results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["test_set", "index", "frames", *(key for _, _, key in columns)])
    for name, result in results.items():
        for position, sample in enumerate(result.samples):
            values = [sample.get(k, float("nan")) * metrics.TABLE_SCALES[k] for k, _, _ in columns]
            writer.writerow([name, sample.get("index", position), sample.get("frames", 1),
                             *(repr(float(v)) for v in values)])
    return buffer.getvalue()


def worst_items(result: EvalResult, count: int = 5, key: str = "mse") -> list[tuple[int, float]]:
    """``(index, value in table units)`` of the ``count`` items with the highest ``key``."""
    scored = [(s.get("index", i), s[key]) for i, s in enumerate(result.samples)
              if not math.isnan(s.get(key, float("nan")))]
    scored.sort(key=lambda pair: pair[1], reverse=True)
    return [(int(i), v * metrics.TABLE_SCALES[key]) for i, v in scored[:count]]


def _write_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def write_results(
    results: Mapping[str, EvalResult], out_dir: str | os.PathLike[str]
) -> tuple[Path, Path]:
    """Write :func:`results_table` as ``out_dir/results.md`` and ``out_dir/results.csv``, and
    :func:`items_table` as ``out_dir/items.csv``.

    Each file is written to a temporary file beside it and renamed into place, so a reader
    never sees a half-written table. Returns the two table paths (markdown, CSV).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md_path, csv_path = out / "results.md", out / "results.csv"
    _write_atomic(md_path, results_table(results, "markdown"))
    _write_atomic(csv_path, results_table(results, "csv"))
    _write_atomic(out / "items.csv", items_table(results))
    return md_path, csv_path
