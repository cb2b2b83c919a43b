"""Shared test settings: CPU by default; GPU tests opt in with POMAGAN_TEST_DEVICE=cuda."""

from __future__ import annotations

import os

import pytest
import torch

TEST_DEVICE = os.environ.get("POMAGAN_TEST_DEVICE", "cpu")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_ready = TEST_DEVICE.startswith("cuda") and torch.cuda.is_available()
    skip = pytest.mark.skip(reason="GPU test: set POMAGAN_TEST_DEVICE=cuda on a CUDA machine")
    for item in items:
        if "gpu" in item.keywords and not gpu_ready:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def engine():
    """A small, fast engine on the bundled checkpoint (working size 32, batch 2) for I/O tests."""
    from pomagan_post import Engine, load_checkpoint

    return Engine(load_checkpoint(None), device=TEST_DEVICE, working_size=32, batch_size=2)


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
