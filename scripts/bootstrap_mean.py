"""How steady a test set's mean alpha MSE is: a bootstrap over its frames.

Reads the per-item scores that ``pomagan-train eval --out DIR`` writes (``DIR/items.csv``) and
prints, for each test set in it (the model's rows; the baselines' rows are left out), the mean
and median alpha MSE x1e3, a 95 % interval of the mean from resampling the frames with
replacement, how often a resampled mean is below ``--target``, and how much of the mean its
worst frame and its worst tenth of frames carry:

    pomagan-train eval --data synthetic-test=synthetic:200 --size 320x192 --seed 1 --device cpu --out eval
    python scripts/bootstrap_mean.py eval/items.csv [more items.csv ...]

A set of a few hundred frames whose error sits in a tail of hard frames moves by more between
draws than most changes a candidate makes: read a difference against this interval. Two models
scored on the same frames are compared frame by frame, which is far steadier: ``--against
shipped/items.csv`` prints each set's mean difference (this file's model minus that one's) with
its own interval, and how many frames got better and worse.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("items", nargs="+", help="items.csv written by pomagan-train eval --out")
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument("--target", type=float, default=3.0, help="alpha MSE x1e3 to compare with")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", default=None, metavar="ITEMS_CSV",
                        help="another model's items.csv on the same frames: compare frame by frame")
    args = parser.parse_args()
    base = _model_rows(args.against) if args.against else None
    for path in args.items:
        sets = _model_rows(path)
        for name, values in sets.items():
            if base is not None:
                _paired(path, name, np.array(values), base, args)
                continue
            mse = np.array(values)
            means, low, high = _resampled_means(mse, args)
            tail = np.sort(mse)[-max(1, len(mse) // 10):].sum() / mse.sum()
            print(f"{path}: {name}, {len(mse)} frames: mean {mse.mean():.2f}, median {np.median(mse):.2f}, "
                  f"95 % interval of the mean {low:.2f}-{high:.2f}, below {args.target:g} in "
                  f"{100 * np.mean(means < args.target):.0f} % of resamples; worst frame {mse.max():.1f} (adds "
                  f"{mse.max() / len(mse):.2f} to the mean, {100 * mse.max() / mse.sum():.0f} % of it), "
                  f"worst tenth of frames {100 * tail:.0f} % of it")


def _resampled_means(values: np.ndarray, args: argparse.Namespace) -> tuple[np.ndarray, float, float]:
    """The means of ``--resamples`` resamplings of ``values`` with replacement, and their 95 %
    interval (low, high)."""
    rng = np.random.default_rng(args.seed)
    means = values[rng.integers(0, len(values), (args.resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return means, float(low), float(high)


def _model_rows(path: str) -> dict[str, list[float]]:
    """Each test set's per-frame alpha MSE x1e3, in item order (the baselines' rows, named
    "set (zero alpha)" and so on, left out)."""
    sets: dict[str, list[float]] = defaultdict(list)
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if " (" not in row["test_set"]:
                sets[row["test_set"]].append(float(row["mse_x1e3"]))
    return sets


def _paired(path: str, name: str, mse: np.ndarray, base: dict[str, list[float]], args: argparse.Namespace) -> None:
    other = np.array(base.get(name, []))
    if len(other) != len(mse):
        raise SystemExit(f"{args.against} has {len(other)} frames of {name}, {path} {len(mse)}: "
                         "not scores of the same frames")
    diff = mse - other
    _, low, high = _resampled_means(diff, args)
    print(f"{path} against {args.against}: {name}, {len(mse)} frames: mean {mse.mean():.2f} against "
          f"{other.mean():.2f}, difference {diff.mean():+.2f} (95 % interval {low:+.2f} to {high:+.2f}); "
          f"{int(np.sum(diff < 0))} frames better, {int(np.sum(diff > 0))} worse; largest changes "
          f"{diff.min():+.1f} and {diff.max():+.1f}")


if __name__ == "__main__":
    main()
