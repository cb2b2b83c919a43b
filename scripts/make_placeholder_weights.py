"""Write the untrained placeholder that ships as the bundled default until trained weights land.

    python scripts/make_placeholder_weights.py

Deterministic (seed 0): the same weights every run, labelled untrained in its header.
"""

from __future__ import annotations

import torch

from pomagan_post import bundled_checkpoint_path, create_model, save_checkpoint


def main() -> None:
    torch.manual_seed(0)
    model = create_model("fast")
    path = save_checkpoint(
        model,
        bundled_checkpoint_path(),
        dtype=torch.float16,
        trained=False,
        description="PLACEHOLDER: untrained random initialisation (seed 0); replace with trained weights",
        training_data="",
        recipe={"kind": "placeholder", "seed": 0},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
