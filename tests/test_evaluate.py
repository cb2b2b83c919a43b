"""evaluate(): predictors, batching, clips, regions; the results table and its files."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
import torch

from pomagan_post import Engine, create_model
from pomagan_post.errors import BadInputError
from pomagan_train import metrics
from pomagan_train.evaluate import (
    EvalResult,
    ThresholdedSegmentation,
    TrueSegmentationAlpha,
    evaluate,
    results_table,
    write_results,
    zero_alpha,
)


def _still(alpha: np.ndarray) -> dict[str, torch.Tensor]:
    """A dataset item whose image carries its own alpha in every channel."""
    a = torch.from_numpy(alpha.astype(np.float32))[None]  # [1, H, W]
    return {"image": a.repeat(3, 1, 1), "alpha": a, "seg": (a > 0.5).float()}


def _alpha_from_image(frames: np.ndarray) -> np.ndarray:
    """Oracle predictor for :func:`_still` items: reads alpha back from the red channel."""
    return frames[..., 0].copy()


def _dataset() -> list[dict[str, torch.Tensor]]:
    rng = np.random.default_rng(0)
    shapes = [(8, 10), (8, 10), (8, 10), (6, 7), (8, 10)]  # mixed sizes break batches
    return [_still(rng.random(shape)) for shape in shapes]


def test_zero_alpha_mse_is_mean_gt_squared() -> None:
    data = _dataset()
    result = evaluate(zero_alpha, data, batch_size=2, progress=False)
    gts = [item["alpha"][0].numpy().astype(np.float64) for item in data]
    assert result.count == len(data)
    assert result.means["mse"] == pytest.approx(np.mean([np.mean(g**2) for g in gts]))
    assert result.means["mae"] == pytest.approx(np.mean([np.mean(g) for g in gts]))
    assert result.means["sad"] == pytest.approx(np.mean([np.sum(g) for g in gts]))
    assert [s["index"] for s in result.samples] == list(range(len(data)))
    assert "dtssd" not in result.means


@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_batching_keeps_predictions_with_their_items(batch_size: int) -> None:
    result = evaluate(_alpha_from_image, _dataset(), batch_size=batch_size, progress=False)
    for name in metrics.METRICS:
        assert result.means[name] == pytest.approx(0.0, abs=1e-9), name


def test_limit() -> None:
    result = evaluate(zero_alpha, _dataset(), limit=2, progress=False)
    assert result.count == 2


def test_clips_add_dtssd() -> None:
    rng = np.random.default_rng(3)
    gt = rng.random((3, 1, 6, 8)).astype(np.float32)  # [T, 1, H, W]
    clip = {"image": torch.from_numpy(gt).repeat(1, 3, 1, 1), "alpha": torch.from_numpy(gt)}
    data = [clip, _still(rng.random((6, 8)))]
    result = evaluate(zero_alpha, data, batch_size=2, progress=False)
    assert result.samples[0]["frames"] == 3
    assert result.means["dtssd"] == pytest.approx(metrics.dtssd(np.zeros_like(gt), gt))
    # The clip's frame metrics are averaged over its frames.
    clip_mse = np.mean([np.mean(gt[t, 0].astype(np.float64) ** 2) for t in range(3)])
    assert result.samples[0]["mse"] == pytest.approx(clip_mse)
    assert "dtSSD (x1e2)" in results_table({"clips": result}).splitlines()[0]
    # A perfect predictor is temporally coherent too.
    assert evaluate(_alpha_from_image, data, progress=False).means["dtssd"] == pytest.approx(0.0)


def test_unknown_region() -> None:
    alpha = np.zeros((4, 4))
    alpha[:, 2:] = 1.0
    trimap = np.full((1, 4, 4), 255, dtype=np.float32)
    trimap[:, :, 1:3] = 128
    item = {**_still(alpha), "trimap": torch.from_numpy(trimap / 255)}
    result = evaluate(zero_alpha, [item], region="unknown", progress=False)
    assert result.means["sad"] == pytest.approx(4.0)  # column 2 of the unknown columns 1-2
    assert result.means["mse"] == pytest.approx(0.5)
    with pytest.raises(BadInputError, match="trimap"):
        evaluate(zero_alpha, _dataset(), region="unknown", progress=False)


def test_bad_items_are_refused() -> None:
    with pytest.raises(BadInputError, match="lacks"):
        evaluate(zero_alpha, [{"image": torch.zeros(3, 4, 4)}], progress=False)
    with pytest.raises(BadInputError, match="expected image"):
        bad = {"image": torch.zeros(4, 4), "alpha": torch.zeros(1, 4, 4)}
        evaluate(zero_alpha, [bad], progress=False)
    with pytest.raises(TypeError):
        evaluate(42, _dataset(), progress=False)


@pytest.fixture(scope="module")
def fast_model():
    return create_model("fast")


def test_model_engine_and_predictor_paths_agree(fast_model) -> None:
    item = _still(np.random.default_rng(4).random((40, 56)))  # the nets need >= 2 px at 1/16
    by_model = evaluate(fast_model, [item], device="cpu", working_size=32, progress=False)
    engine = Engine(fast_model, device="cpu", working_size=32, batch_size=1)
    by_engine = evaluate(engine, [item], progress=False)
    by_predictor = evaluate(engine.predict_alpha, [item], progress=False)
    for name in metrics.METRICS:
        assert math.isfinite(by_model.means[name])
        assert by_engine.means[name] == pytest.approx(by_model.means[name], rel=1e-5, abs=1e-9)
        assert by_predictor.means[name] == pytest.approx(by_model.means[name], rel=1e-5, abs=1e-9)


def test_thresholded_segmentation_baseline() -> None:
    engine = Engine(create_model("fast"), device="cpu", working_size=32, batch_size=2)

    def fake_infer(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Working-resolution segmentation: left half 0.3 (background), right half 0.7.
        n = images.shape[0]
        seg = torch.tensor([[0.3, 0.3, 0.7, 0.7]]).expand(n, 1, 2, 4)
        return torch.zeros_like(seg), seg

    engine.infer = fake_infer  # type: ignore[method-assign]
    predictor = ThresholdedSegmentation(engine, threshold=0.5)
    alpha = predictor(np.zeros((3, 4, 8, 3), dtype=np.float32))
    # Binarised to [0, 0, 1, 1] and upsampled bilinearly 4 -> 8 columns.
    expected_row = [0, 0, 0, 0.25, 0.75, 1, 1, 1]
    assert alpha.shape == (3, 4, 8)
    np.testing.assert_allclose(alpha, np.broadcast_to(expected_row, (3, 4, 8)), atol=1e-6)


def test_thresholded_segmentation_with_a_real_model(fast_model) -> None:
    predictor = ThresholdedSegmentation(fast_model, device="cpu", working_size=32)
    alpha = predictor(np.random.default_rng(0).random((1, 40, 56, 3), dtype=np.float32))
    assert alpha.shape == (1, 40, 56)
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0


def test_true_segmentation_feeds_the_alpha_network_the_opened_truth(fast_model) -> None:
    """The diagnostic gives exactly model.matte(image, opening(alpha >= 0.5)) (at full size: the
    working size is the frame's), and evaluate() hands it each item's truth, batched or not."""
    from pomagan_train.data import seg_from_alpha

    rng = np.random.default_rng(3)
    truth = np.zeros((2, 32, 48), dtype=np.float32)
    truth[0, 8:28, 10:30] = 1.0
    truth[1, 4:20, 20:44] = 0.7
    truth[1, 10, 5] = 1.0  # a lone pixel the opening removes
    frames = rng.random((2, 32, 48, 3), dtype=np.float32)
    predictor = TrueSegmentationAlpha(fast_model, device="cpu", precision="fp32", working_size=32, batch_size=2)
    alpha = predictor(frames, truth)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    seg = seg_from_alpha(torch.from_numpy(truth)[:, None])
    assert float(seg[1, 0, 10, 5]) == 0.0
    with torch.no_grad():
        expected = fast_model.float().eval().matte(x, seg)[:, 0].clamp(0, 1).numpy()
    np.testing.assert_allclose(alpha, expected, atol=1e-5)

    items = [{"image": x[i], "alpha": torch.from_numpy(truth[i])[None]} for i in range(2)]
    for batch_size in (1, 2):
        result = evaluate(predictor, items, batch_size=batch_size, progress=False)
        mse = [float(np.mean((expected[i] - truth[i]) ** 2)) for i in range(2)]
        np.testing.assert_allclose([s["mse"] for s in result.samples], mse, rtol=1e-4)


def _paper_results() -> dict[str, EvalResult]:
    # The paper's Table 1 (POMAGAN rows) in raw units.
    rows = {"AIM": (1.93, 7.80, 8.18, 6130, 9150), "PM85": (0.27, 1.46, 1.53, 4988, 2936)}
    return {
        name: EvalResult(
            samples=[{}] * 3,
            means={"mse": m / 1e3, "mae": a / 1e3, "sad": s * 1e3, "grad": g, "conn": c},
        )
        for name, (m, a, s, g, c) in rows.items()
    }


def test_markdown_table_in_the_papers_layout() -> None:
    lines = results_table(_paper_results()).splitlines()
    assert lines[0] == "| Test set | MSE (x1e3) | MAE (x1e3) | SAD (/1e3) | Grad | Conn |"
    assert lines[1].count("|") == 7
    assert lines[2] == "| AIM | 1.93 | 7.80 | 8.18 | 6130 | 9150 |"
    assert lines[3] == "| PM85 | 0.27 | 1.46 | 1.53 | 4988 | 2936 |"


def test_csv_table_parses_back() -> None:
    results = _paper_results()
    rows = list(csv.DictReader(io.StringIO(results_table(results, fmt="csv"))))
    assert [r["test_set"] for r in rows] == ["AIM", "PM85"]
    assert list(rows[0]) == ["test_set", "mse_x1e3", "mae_x1e3", "sad_div1e3", "grad", "conn", "n"]
    assert float(rows[0]["mse_x1e3"]) == pytest.approx(1.93)
    assert float(rows[0]["sad_div1e3"]) == pytest.approx(8.18)
    assert float(rows[1]["conn"]) == pytest.approx(2936)
    assert int(rows[1]["n"]) == 3
    with pytest.raises(BadInputError):
        results_table(results, fmt="latex")


def test_write_results(tmp_path) -> None:
    out = tmp_path / "eval" / "run1"
    md_path, csv_path = write_results(_paper_results(), out)
    assert md_path.read_text() == results_table(_paper_results())
    assert csv_path.read_text() == results_table(_paper_results(), fmt="csv")
    write_results({"AIM": _paper_results()["AIM"]}, out)  # overwrite in place
    assert "PM85" not in md_path.read_text()
    assert sorted(p.name for p in out.iterdir()) == ["items.csv", "results.csv", "results.md"]  # no temp files


def test_items_table_and_worst_items() -> None:
    """Per-item scores in table units, to find the frames a model fails on."""
    from pomagan_train.evaluate import items_table, worst_items

    samples = [{"index": i, "frames": 1, "mse": m, "mae": m, "sad": 1000.0 * m, "grad": 1.0, "conn": 2.0}
               for i, m in enumerate([0.001, 0.05, float("nan"), 0.02])]
    result = EvalResult(samples=samples, means={})
    rows = list(csv.DictReader(io.StringIO(items_table({"synth": result}))))
    assert [r["index"] for r in rows] == ["0", "1", "2", "3"] and rows[0]["test_set"] == "synth"
    assert float(rows[1]["mse_x1e3"]) == pytest.approx(50.0) and float(rows[1]["sad_div1e3"]) == pytest.approx(0.05)
    assert worst_items(result, 2) == [(1, pytest.approx(50.0)), (3, pytest.approx(20.0))]  # NaN skipped
