"""Training losses, discriminators and configs on hand-made tensors with known values."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pomagan_post.errors import BadInputError, WeightsNotFoundError
from pomagan_train.config import LossConfig, default_config, find_config, load_config
from pomagan_train.discriminators import MultiscaleDiscriminator
from pomagan_train.losses import (
    VGG19Perceptual,
    adversarial_d_loss,
    adversarial_g_loss,
    alpha_terms,
    border_map,
    l1,
    random_backgrounds,
    segmentation_terms,
)


def _square(size: int = 32, lo: int = 10, hi: int = 20) -> torch.Tensor:
    mask = torch.zeros(1, 1, size, size)
    mask[..., lo:hi, lo:hi] = 1.0
    return mask


def test_border_map_of_a_square_is_a_ring() -> None:
    ring = border_map(_square(), kernel=3)
    # dilate: 12x12 = 144 pixels, erode: 8x8 = 64 -> a ring of 80 pixels, two wide.
    assert ring.sum() == 80
    assert ring[0, 0, 9, 15] == 1 and ring[0, 0, 10, 15] == 1 and ring[0, 0, 11, 15] == 0
    wide = border_map(_square(), kernel=5)
    assert wide.sum() == 14 * 14 - 6 * 6
    # With a threshold, fractional alpha is binarised first.
    soft = _square() * 0.6
    assert torch.equal(border_map(soft, 3, threshold=0.5), ring)
    assert border_map(soft * 0.5, 3, threshold=0.5).sum() == 0


def test_adversarial_losses_known_values() -> None:
    zeros = [torch.zeros(2, 1, 4, 4)] * 3
    # Standard GAN at logit 0: BCE = ln 2 for real and fake, halved, summed over 3 scales.
    assert adversarial_d_loss("gan", zeros, zeros).item() == pytest.approx(3 * math.log(2))
    assert adversarial_g_loss("gan", zeros).item() == pytest.approx(3 * math.log(2))
    ones, minus = [torch.ones(1, 1, 3, 3)] * 3, [-torch.ones(1, 1, 3, 3)] * 3
    assert adversarial_d_loss("lsgan", ones, zeros).item() == 0.0
    assert adversarial_g_loss("lsgan", zeros).item() == pytest.approx(3.0)
    assert adversarial_d_loss("hinge", ones, minus).item() == 0.0
    assert adversarial_d_loss("hinge", zeros, zeros).item() == pytest.approx(3.0)
    assert adversarial_g_loss("hinge", ones).item() == pytest.approx(-3.0)


def test_segmentation_terms_known_values() -> None:
    image = torch.ones(1, 3, 32, 32)
    seg_true = _square()
    frac = seg_true.mean().item()  # 100 / 1024
    cfg = LossConfig(perceptual="off", border_kernel=3)
    terms = segmentation_terms(image, torch.zeros_like(seg_true), seg_true, cfg)
    # |s* - s| + |I s* - I s| with I = 1 and s = 0: frac + frac.
    assert terms["seg"].item() == pytest.approx(2 * frac)
    # Border: s_b s* is the inner ring (10x10 - 8x8 = 36 pixels), twice (matte and F terms).
    assert terms["border"].item() == pytest.approx(2 * 36 / 1024)
    assert "per" not in terms
    perfect = segmentation_terms(image, seg_true, seg_true, cfg)
    assert perfect["seg"].item() == 0 and perfect["border"].item() == 0


def test_alpha_terms_and_switches() -> None:
    image = torch.ones(1, 3, 32, 32)
    background = torch.zeros(1, 3, 32, 32)
    alpha_true = _square() * 0.8
    alpha = torch.zeros_like(alpha_true)
    diff = (alpha_true - alpha).abs().mean().item()
    full = alpha_terms(image, alpha, alpha_true, background, LossConfig(perceptual="off", border=False))
    # With I = 1 and B = 0 the F and composite terms equal the alpha term.
    assert full["alpha"].item() == pytest.approx(3 * diff)
    only = LossConfig(perceptual="off", border=False, matte_terms=("matte",))
    assert alpha_terms(image, alpha, alpha_true, background, only)["alpha"].item() == pytest.approx(diff)
    # The composite term sees B: with B = I it vanishes.
    comp_only = LossConfig(perceptual="off", border=False, matte_terms=("comp",))
    assert alpha_terms(image, alpha, alpha_true, image, comp_only)["alpha"].item() == 0
    bordered = alpha_terms(image, alpha, alpha_true, background, LossConfig(perceptual="off", border_kernel=3))
    # Border band of the binarised square (80 pixels, alpha 0.8 on its 36 inner ones), x3 terms.
    assert bordered["border"].item() == pytest.approx(3 * 36 * 0.8 / 1024, rel=1e-5)


def test_random_backgrounds_are_smooth_per_sample_colour_fields() -> None:
    gen = torch.Generator().manual_seed(0)
    bg = random_backgrounds(torch.zeros(2, 3, 40, 60), gen)
    assert bg.shape == (2, 3, 40, 60) and bg.min() >= 0 and bg.max() <= 1
    assert not torch.equal(bg[0], bg[1])
    assert (bg[..., 1:] - bg[..., :-1]).abs().max() < 0.2  # no pixel noise


def test_multiscale_discriminator_three_scales() -> None:
    disc = MultiscaleDiscriminator(4, scales=3, base=8, layers=3)
    logits = disc(torch.rand(2, 3, 64, 96), torch.rand(2, 1, 64, 96))
    assert len(logits) == 3
    assert [tuple(t.shape[-2:]) for t in logits] == [(11, 15), (7, 9), (5, 6)]  # padding 2, as pix2pixHD


def test_vgg_weights_missing_names_the_exact_file(tmp_path: Path) -> None:
    missing = tmp_path / "vgg19-dcbb9e9d.pth"
    with pytest.raises(WeightsNotFoundError, match=f"not found: {missing}.*--perceptual off"):
        VGG19Perceptual(missing)


def test_vgg_perceptual_loads_a_torchvision_state_dict(tmp_path: Path) -> None:
    from torchvision.models import vgg19

    torch.manual_seed(0)
    features = vgg19(weights=None).features[:7]  # conv1_1 .. relu2_1
    path = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    per = VGG19Perceptual(path, layers=(1, 6), layer_weights=(0.5, 1.0))
    x = torch.rand(1, 3, 32, 32)
    assert per(x, x).item() == 0
    assert per(x, torch.rand(1, 3, 32, 32)).item() > 0
    assert per(x[:, :1], x[:, :1]).item() == 0  # 1-channel maps are replicated to RGB
    assert all(not p.requires_grad for p in per.parameters())


def test_stage_defaults_follow_the_paper() -> None:
    seg, alpha = default_config("seg"), default_config("alpha")
    assert (seg.batch_size, seg.losses.lambda_per, seg.losses.beta, seg.losses.gamma) == (2, 10, 10, 10)
    assert (alpha.batch_size, alpha.losses.lambda_per, alpha.losses.beta, alpha.losses.gamma) == (1, 10, 100, 100)
    for cfg in (seg, alpha):
        assert (cfg.lr_g, cfg.lr_d, cfg.size, cfg.d_scales) == (1e-4, 1e-5, (1280, 768), 3)


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (Path(__file__).parents[1] / "training" / "configs").glob("*.yaml"))
)
def test_shipped_configs_load(name: str) -> None:
    stage = "seg" if name.endswith("_seg") else "alpha"
    cfg = load_config(stage, name)
    assert cfg.stage == stage
    assert find_config(name).is_file()


def test_ablation_configs_switch_terms_not_code() -> None:
    assert load_config("alpha", "ablation_alpha_cgan_l1").losses.perceptual == "off"
    assert load_config("alpha", "ablation_alpha_cgan_l1").losses.border is False
    assert load_config("alpha", "ablation_terms_alpha").losses.matte_terms == ("matte",)
    assert load_config("alpha", "ablation_terms_alpha_fg").losses.matte_terms == ("matte", "fg")


def test_config_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="config file not found"):
        load_config("seg", tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stpes: 10\n")
    with pytest.raises(BadInputError, match="unknown config setting.*stpes"):
        load_config("seg", bad)
    bad.write_text("losses: {adversarial: wgan}\n")
    with pytest.raises(BadInputError, match="losses.adversarial must be one of"):
        load_config("seg", bad)
    with pytest.raises(BadInputError, match="config is for stage 'alpha'"):
        load_config("seg", "paper_alpha")
    cfg = load_config("alpha", "paper_alpha", steps=5, losses={"perceptual": "off"})
    assert cfg.steps == 5 and cfg.losses.perceptual == "off" and cfg.losses.beta == 100
    assert replace(cfg, steps=6).steps == 6


def test_l1_is_a_mean() -> None:
    assert l1(torch.zeros(4), torch.tensor([1.0, 2.0, 3.0, 6.0])).item() == 3.0
