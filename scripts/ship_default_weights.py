"""Make a training run's checkpoint the bundled default (fp16 weights, metadata kept).

    python scripts/ship_default_weights.py RUN/checkpoint.safetensors

Keeps the variant, recipe (every stage's settings and steps), training data and working size;
stores floating tensors as fp16 (half the size; the engine loads them as fp32) and writes
``pomagan_post/weights/default.safetensors`` atomically. Prints the size and the largest weight
change fp16 storage caused.
"""

from __future__ import annotations

import argparse

import torch

from pomagan_post import bundled_checkpoint_path, load_checkpoint, read_checkpoint_info, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a trained (both stages) pomagan checkpoint")
    parser.add_argument("--description", default=None, help="one line for pomagan-post info")
    parser.add_argument("--training-data", default=None, help="what it was trained on, in words")
    parser.add_argument("--earlier", action="append", default=[], metavar="CHECKPOINT",
                        help="a checkpoint this run was fine-tuned from, whose steps its recipe does not "
                        "list yet (repeatable, oldest first): its runs go into the recipe's history")
    args = parser.parse_args()
    model = load_checkpoint(args.checkpoint)
    info = model.checkpoint_info
    if args.earlier:
        history: list = []
        for path in args.earlier:
            earlier = read_checkpoint_info(path)["recipe"]
            history += [*earlier.get("history", []), *(earlier[k] for k in ("seg", "alpha") if k in earlier)]
        info["recipe"]["history"] = history + info["recipe"].get("history", [])
    if not info["trained"]:
        raise SystemExit(f"{args.checkpoint} is not trained through both stages; refusing to ship it")
    path = save_checkpoint(
        model,
        bundled_checkpoint_path(),
        dtype=torch.float16,
        trained=True,
        description=args.description or info["description"],
        training_data=args.training_data or info["training_data"],
        recipe=info["recipe"],
        working_size=info["input"].get("working_size"),
        **info["meta"],
    )
    shipped = load_checkpoint(path)
    drift = max(
        float((a - b).abs().max())
        for a, b in zip(model.state_dict().values(), shipped.state_dict().values())
        if a.is_floating_point()
    )
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB), max fp16 weight change {drift:.2e}")


if __name__ == "__main__":
    main()
