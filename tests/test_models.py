"""The POMAGAN networks: registry, shapes, ranges, stages, and the documented size table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import pomagan_post
from pomagan_post.models import AlphaNet, SegmentationNet, get_config, model_stats

README = Path(__file__).resolve().parents[1] / "README.md"


def test_registry_lists_paper_and_fast() -> None:
    names = pomagan_post.list_models()
    assert "paper" in names and "fast" in names
    with pytest.raises(ValueError, match="unknown model variant 'nope'.*paper"):
        pomagan_post.create_model("nope")


@pytest.mark.parametrize("name", ["fast", "paper"])
def test_variant_forward_shapes_and_range(name: str) -> None:
    model = pomagan_post.create_model(name).eval()
    stride = model.stride
    assert stride == 16
    image = torch.rand(2, 3, 2 * stride, 3 * stride)
    with torch.no_grad():
        alpha, seg = model(image)
    assert alpha.shape == (2, 1, 2 * stride, 3 * stride)
    assert seg.shape == (2, 1, 2 * stride, 3 * stride)
    for out in (alpha, seg):
        assert torch.isfinite(out).all()
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_stages_callable_alone_and_chain_equals_forward() -> None:
    model = pomagan_post.create_model("fast").eval()
    image = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        seg = model.segment(image)
        alpha = model.matte(image, seg)
        alpha_full, seg_full = model(image)
    torch.testing.assert_close(seg, seg_full)
    torch.testing.assert_close(alpha, alpha_full)
    assert isinstance(model.segmentation, SegmentationNet)
    assert isinstance(model.alpha, AlphaNet)


def test_alpha_net_uses_a_separate_segmentation_encoder() -> None:
    """The paper's segmentation encoding block: its own weights, fed the 1-channel map."""
    model = pomagan_post.create_model("fast")
    seg_stem = model.alpha.seg_encoder.stem[0]
    img_stem = model.alpha.image_encoder.stem[0]
    assert seg_stem.in_channels == 1 and img_stem.in_channels == 3
    assert seg_stem.weight.data_ptr() != img_stem.weight.data_ptr()
    # Changing the segmentation input changes the alpha (it is actually used).
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a0 = model.matte(image, torch.zeros(1, 1, 32, 32))
        a1 = model.matte(image, torch.ones(1, 1, 32, 32))
    assert (a0 - a1).abs().max() > 1e-4


def test_overrides_make_a_labelled_custom_variant() -> None:
    model = pomagan_post.create_model("fast", norm="group", alpha_res_blocks=1)
    assert model.variant == "fast+custom"
    assert model.config.norm == "group" and len(model.alpha.res_blocks) == 1
    with pytest.raises(ValueError, match="norm must be one of"):
        pomagan_post.create_model("fast", norm="layer")


def _readme_table() -> dict[str, tuple[float, float]]:
    rows = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\|\s*`(\w+)`\s*\|.*\|\s*([\d.]+)\s*M\s*\|\s*([\d.]+)\s*\|\s*$", line)
        if match:
            rows[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    return rows


def test_readme_size_table_matches_the_counter() -> None:
    """The README's parameter / GFLOP table is what the FLOP counter measures at 1280x768."""
    table = _readme_table()
    assert set(table) == set(pomagan_post.list_models())
    for name, (params_m, gflops) in table.items():
        stats = model_stats(pomagan_post.create_model(name), 768, 1280)
        assert params_m == pytest.approx(stats["params"] / 1e6, abs=0.01)
        assert gflops == pytest.approx(stats["gflops"], abs=0.1)
        assert stats["seg_gflops"] + stats["alpha_gflops"] == pytest.approx(stats["gflops"])


def test_config_round_trips_through_a_dict() -> None:
    config = get_config("paper")
    assert type(config).from_dict(config.to_dict()) == config


def test_logits_are_the_values_before_the_sigmoid() -> None:
    torch.manual_seed(0)
    config = get_config("fast")
    seg_net = SegmentationNet(config.widths, config.seg_res_blocks, config.aspp_rates, config.norm).eval()
    alpha_net = AlphaNet(config.widths, config.seg_widths, config.alpha_res_blocks, config.norm).eval()
    image = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        seg = seg_net(image)
        torch.testing.assert_close(torch.sigmoid(seg_net(image, logits=True)), seg)
        torch.testing.assert_close(torch.sigmoid(alpha_net(image, seg, logits=True)), alpha_net(image, seg))
