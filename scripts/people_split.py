"""Split the model card's test-set scores into frames of one person and frames of several.

The test set (``synthetic:200``, split test, seed 1, 320x192) draws a second and a third person
by chance. A frame counts as one person when rendering it with no extra people gives the same
true matte. Reads the per-item scores that ``pomagan-train eval --out DIR`` writes
(``DIR/items.csv``; the model's rows come first) and prints the mean and median alpha MSE x1e3
of each group:

    pomagan-train eval --data synthetic-test=synthetic:200 --size 320x192 --seed 1 --device cpu --out eval
    python scripts/people_split.py eval/items.csv [more items.csv ...]

Needs the training package: ``pip install -e ".[train]"``.
"""

from __future__ import annotations

import argparse
import csv

import numpy as np
import torch

from pomagan_train.data import build_dataset

N, SIZE, SEED = 200, (320, 192), 1


def one_person() -> np.ndarray:
    """For each test item, whether it shows one person (its matte unchanged without extra people)."""
    drawn = build_dataset(f"synthetic:{N}", size=SIZE, split="test", seed=SEED)
    alone = build_dataset(f"synthetic:{N}", size=SIZE, split="test", seed=SEED, extra_people=(0.0, 0.0))
    return np.array([torch.equal(drawn[i]["alpha"], alone[i]["alpha"]) for i in range(N)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("items", nargs="+", help="items.csv written by pomagan-train eval --out on the test set")
    args = parser.parse_args()
    one = one_person()
    print(f"test set: {int(one.sum())} frames of one person, {int((~one).sum())} of several")
    for path in args.items:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["test_set"] == "synthetic-test"][:N]
        if len(rows) != N or [int(r["index"]) for r in rows] != list(range(N)):
            raise SystemExit(f"{path}: not the {N}-frame synthetic-test items of pomagan-train eval")
        mse = np.array([float(r["mse_x1e3"]) for r in rows])
        print(f"{path}: one person {mse[one].mean():.2f} (median {np.median(mse[one]):.2f}), "
              f"several {mse[~one].mean():.2f} (median {np.median(mse[~one]):.2f}), all {mse.mean():.2f}")


if __name__ == "__main__":
    main()
