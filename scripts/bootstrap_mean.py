"""How steady a test set's mean alpha MSE is: a bootstrap over its frames.

Reads the per-item scores that ``pomagan-train eval --out DIR`` writes (``DIR/items.csv``) and
prints, for each test set in it (the model's rows; the baselines' rows are left out), the mean
and median alpha MSE x1e3, a 95 % interval of the mean from resampling the frames with
replacement, how often a resampled mean is below ``--target``, and how much of the mean its
worst frame and its worst tenth of frames carry:

    pomagan-train eval --data synthetic-test=synthetic:200 --size 320x192 --seed 1 --device cpu --out eval
    python scripts/bootstrap_mean.py eval/items.csv [more items.csv ...]

A set of a few hundred frames whose error sits in a tail of hard frames moves by more between
draws than most changes a candidate makes: read a difference against this interval.
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
    args = parser.parse_args()
    for path in args.items:
        sets: dict[str, list[float]] = defaultdict(list)
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if " (" not in row["test_set"]:  # "name (zero alpha)" etc. are the baselines
                    sets[row["test_set"]].append(float(row["mse_x1e3"]))
        for name, values in sets.items():
            mse = np.array(values)
            rng = np.random.default_rng(args.seed)
            means = mse[rng.integers(0, len(mse), (args.resamples, len(mse)))].mean(axis=1)
            low, high = np.percentile(means, [2.5, 97.5])
            tail = np.sort(mse)[-max(1, len(mse) // 10):].sum() / mse.sum()
            print(f"{path}: {name}, {len(mse)} frames: mean {mse.mean():.2f}, median {np.median(mse):.2f}, "
                  f"95 % interval of the mean {low:.2f}-{high:.2f}, below {args.target:g} in "
                  f"{100 * np.mean(means < args.target):.0f} % of resamples; worst frame {mse.max():.1f} (adds "
                  f"{mse.max() / len(mse):.2f} to the mean, {100 * mse.max() / mse.sum():.0f} % of it), "
                  f"worst tenth of frames {100 * tail:.0f} % of it")


if __name__ == "__main__":
    main()
