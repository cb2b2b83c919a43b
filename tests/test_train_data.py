"""Training data: synthetic ground truth, dataset layouts, composition protocol, augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader

from pomagan_post.errors import BadInputError
from pomagan_train.data import (
    Augment,
    CompositionDataset,
    PairedDataset,
    SyntheticFolder,
    SyntheticPortraits,
    build_dataset,
    builtin_backgrounds,
    find_layout,
    finish_sample,
    render_portrait,
    seg_from_alpha,
    subjects,
    write_dataset,
)
from pomagan_train.data.composition import read_alpha, read_rgb, read_rgba

SIZE = (64, 48)  # (W, H): small and not square, so axis mix-ups show


# --- helpers: tiny fake dataset trees ---------------------------------------------------------

def _fg_alpha(seed: int, w: int = 40, h: int = 52) -> tuple[np.ndarray, np.ndarray]:
    """A foreground (uint8 RGB) and an off-centre soft blob alpha (uint8)."""
    rng = np.random.default_rng(seed)
    fg = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.sqrt((xx - w * 0.35) ** 2 + (yy - h * 0.5) ** 2)
    alpha = np.clip((h * 0.35 - d) / 3.0, 0, 1)
    return fg, np.round(alpha * 255).astype(np.uint8)


def _write_pairs(fg_dir: Path, alpha_dir: Path, names: list[str], fg_ext: str = ".png") -> None:
    fg_dir.mkdir(parents=True, exist_ok=True)
    alpha_dir.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        fg, a = _fg_alpha(i)
        cv2.imwrite(str(fg_dir / f"{name}{fg_ext}"), fg[..., ::-1])
        cv2.imwrite(str(alpha_dir / f"{name}.png"), a)


def _write_backgrounds(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"bg{i}.png"
        cv2.imwrite(str(p), np.full((30, 50, 3), (30 * i + 20) % 250, np.uint8))
        out.append(p)
    return out


def _check_items(ds, n: int = 2, keys=("image", "alpha", "seg", "fg", "bg"), size=SIZE) -> None:
    w, h = size
    for i in range(min(n, len(ds))):
        item = ds[i]
        assert set(item) == set(keys)
        for k, v in item.items():
            assert v.dtype == torch.float32
            assert v.shape == ((3 if k in ("image", "fg", "bg") else 1), h, w), k
            assert float(v.min()) >= 0.0 and float(v.max()) <= 1.0, k


# --- segmentation rule ------------------------------------------------------------------------

def test_seg_rule_keeps_half_covered_regions_and_drops_thin_strands() -> None:
    a = np.zeros((20, 30), np.float32)
    a[2:10, 2:10] = 0.6     # half-covered block: person
    a[12:18, 2:10] = 0.4    # under half: not person
    a[:, 20] = 1.0          # a 1-px strand: removed by the opening
    a[2:8, 24:28] = 1.0     # a solid 4x6 block: kept
    seg = seg_from_alpha(a)
    assert seg.dtype == np.float32 and seg.shape == a.shape
    assert seg[2:10, 2:10].all() and not seg[12:18, 2:10].any()
    assert not seg[10:, 20].any() and seg[2:8, 24:28].all()
    # torch and numpy agree, on [H, W], [1, H, W] and [B, 1, H, W]
    t = torch.from_numpy(a)
    assert torch.equal(seg_from_alpha(t), torch.from_numpy(seg))
    assert torch.equal(seg_from_alpha(t[None, None].repeat(2, 1, 1, 1))[1, 0], torch.from_numpy(seg))
    r = np.random.default_rng(0).random((33, 41)).astype(np.float32)
    assert np.array_equal(seg_from_alpha(torch.from_numpy(r)[None]).numpy()[0], seg_from_alpha(r))


# --- synthetic generator ----------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_synthetic_ground_truth_is_exact(seed: int) -> None:
    s = render_portrait(np.random.default_rng(seed), 96, 72)
    assert s["image"].shape == (72, 96, 3) and s["alpha"].shape == (72, 96, 1)
    for k in ("image", "alpha", "fg", "bg"):
        assert s[k].dtype == np.float32 and s[k].min() >= 0 and s[k].max() <= 1, k
    a = s["alpha"]
    np.testing.assert_allclose(s["image"], a * s["fg"] + (1 - a) * s["bg"], atol=1e-6)
    assert (a > 0.99).mean() > 0.03 and (a < 0.01).mean() > 0.2  # a subject and a background


def test_synthetic_alpha_has_fractional_hair() -> None:
    """Strands at sub-pixel widths and soft hair edges give many fractional alpha values, and
    they sit on the silhouette (outside the opaque interior)."""
    fractions = []
    for i in range(6):
        a = render_portrait(np.random.default_rng([7, i]), 160, 120)["alpha"][..., 0]
        frac = (a > 0.02) & (a < 0.98)
        fractions.append(frac.mean())
        opaque = cv2.erode((a > 0.98).astype(np.uint8), np.ones((5, 5), np.uint8))
        assert not (frac & (opaque > 0)).any() or (frac & (opaque > 0)).mean() < 0.01
        assert len(np.unique(np.round(a[frac], 3))) > 20  # many distinct levels, not a 2-level mask
    assert np.median(fractions) > 0.005


def test_synthetic_dataset_is_deterministic_and_batches() -> None:
    ds = SyntheticPortraits(3, SIZE, seed=5)
    again = SyntheticPortraits(3, SIZE, seed=5)
    other = SyntheticPortraits(3, SIZE, seed=6)
    for i in range(2):
        a, b = ds[i], again[i]
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert not torch.equal(a["image"], other[i]["image"])
    assert not torch.equal(ds[0]["image"], ds[1]["image"])
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["image"], again[0]["image"])
    _check_items(again)
    item = again[0]
    assert torch.equal(item["seg"], seg_from_alpha(item["alpha"]))
    batch = next(iter(DataLoader(again, batch_size=2)))
    assert batch["image"].shape == (2, 3, SIZE[1], SIZE[0]) and batch["seg"].shape == (2, 1, SIZE[1], SIZE[0])


def test_synthetic_photo_backgrounds(tmp_path: Path) -> None:
    bgs = _write_backgrounds(tmp_path / "bgs", 2)
    ds = SyntheticPortraits(4, SIZE, seed=1, backgrounds=tmp_path / "bgs", photo_prob=1.0)
    assert ds.backgrounds == bgs
    item = ds[0]
    # The flat grey photo shows through where alpha is 0 (possibly tinted/blurred: still flat).
    bg = item["bg"]
    assert float(bg.std(dim=(1, 2)).max()) < 0.02
    with pytest.raises(BadInputError, match="not found"):
        SyntheticPortraits(2, SIZE, backgrounds=tmp_path / "nope")


def test_builtin_backgrounds_exclude_people() -> None:
    names = {p.name for p in builtin_backgrounds()}
    assert not names & {"astronaut.png", "camera.png", "grace_hopper.jpg", "lfw_subset.npy"}


def test_write_dataset_round_trips_through_synthetic_folder(tmp_path: Path) -> None:
    out = write_dataset(tmp_path / "syn", 3, SIZE, seed=2, progress=False)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["seed"] == 2 and meta["size"] == list(SIZE) and meta["count"] == 3
    for sub in ("image", "alpha", "fg", "bg"):
        assert sorted(p.name for p in (out / sub).iterdir()) == ["000000.png", "000001.png", "000002.png"]
    raw = cv2.imread(str(out / "alpha" / "000001.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.ndim == 2
    assert find_layout(out) == "synthetic"
    ds = SyntheticFolder(out)
    assert len(ds) == 3
    _check_items(ds, 3)
    item = ds[1]
    ref = SyntheticPortraits(3, SIZE, seed=2, backgrounds=builtin_backgrounds()).render(1)
    np.testing.assert_allclose(item["alpha"][0].numpy(), ref["alpha"][..., 0], atol=1 / 65535)
    np.testing.assert_allclose(item["image"].numpy(),
                               (item["alpha"] * item["fg"] + (1 - item["alpha"]) * item["bg"]).numpy(), atol=1e-6)
    # build_dataset finds it, by path and by kind
    assert isinstance(build_dataset(str(out), SIZE, augment=False), SyntheticFolder)
    assert len(build_dataset(f"synthetic:{out}", SIZE, augment=False)) == 3
    (out / "fg" / "000002.png").unlink()
    with pytest.raises(BadInputError, match="fg/ 2"):
        SyntheticFolder(out)


# --- composition protocol ---------------------------------------------------------------------

def test_composition_protocol_counts_and_determinism(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "fg", tmp_path / "alpha", ["a", "b"])
    fgs, alphas = sorted((tmp_path / "fg").iterdir()), sorted((tmp_path / "alpha").iterdir())
    bgs = _write_backgrounds(tmp_path / "bg", 7)
    train = CompositionDataset(fgs, alphas, bgs, size=SIZE, split="train")
    test = CompositionDataset(fgs, alphas, bgs, size=SIZE, split="test", seed=3)
    assert len(train) == 2 * 100 and len(test) == 2 * 20
    # Each subject's consecutive composites cycle through all backgrounds in a seeded order.
    subjects_, backs = zip(*(test.assignment(i) for i in range(len(test))))
    assert subjects_ == tuple([0] * 20 + [1] * 20)
    assert sorted(backs[:7]) == list(range(7))
    again = CompositionDataset(fgs, alphas, bgs, size=SIZE, split="test", seed=3)
    assert all(torch.equal(test[i]["image"], again[i]["image"]) for i in (0, 25))
    other_seed = CompositionDataset(fgs, alphas, bgs, size=SIZE, split="test", seed=4)
    assert [other_seed.assignment(i) for i in range(7)] != [test.assignment(i) for i in range(7)]
    _check_items(test)
    item = test[0]
    np.testing.assert_allclose(item["image"].numpy(),
                               (item["alpha"] * item["fg"] + (1 - item["alpha"]) * item["bg"]).numpy(), atol=1e-5)
    # no background files: procedural backgrounds, same protocol
    proc = CompositionDataset(fgs, alphas, None, bg_per_fg=3, size=SIZE, split="train")
    assert len(proc) == 6 and proc.assignment(4) == (1, None)
    _check_items(proc, 1)


def test_composition_errors_name_the_problem(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "fg", tmp_path / "alpha", ["a", "b"])
    fgs = sorted((tmp_path / "fg").iterdir())
    with pytest.raises(BadInputError, match="2 foregrounds but 1 mattes"):
        CompositionDataset(fgs, fgs[:1], None, size=SIZE)
    with pytest.raises(BadInputError, match="split"):
        CompositionDataset(fgs, None, None, size=SIZE, split="val")
    ds = CompositionDataset(fgs, None, None, bg_per_fg=1, size=SIZE)  # RGB without alpha channel
    with pytest.raises(BadInputError, match="no alpha channel"):
        ds[0]


# --- layouts ----------------------------------------------------------------------------------

def test_aim_layout(tmp_path: Path) -> None:
    base = tmp_path / "AIM" / "Combined_Dataset"
    _write_pairs(base / "Training_set" / "Adobe-licensed images" / "fg",
                 base / "Training_set" / "Adobe-licensed images" / "alpha", ["t1", "t2"], ".jpg")
    _write_pairs(base / "Training_set" / "Other" / "fg", base / "Training_set" / "Other" / "alpha", ["o1"])
    _write_pairs(base / "Test_set" / "Adobe-licensed images" / "fg",
                 base / "Test_set" / "Adobe-licensed images" / "alpha", ["x1"])
    root = tmp_path / "AIM"
    assert find_layout(root) == "aim" and find_layout(base) == "aim"
    fgs, alphas = subjects(root, "aim", "train")
    assert [p.stem for p in fgs] == ["t1", "t2", "o1"] and [p.stem for p in alphas] == ["t1", "t2", "o1"]
    bgs = _write_backgrounds(tmp_path / "coco", 3)
    train = build_dataset(str(root), SIZE, split="train", backgrounds=tmp_path / "coco")
    test = build_dataset(f"aim:{root}", SIZE, split="test", backgrounds=bgs)
    assert len(train) == 300 and len(test) == 20
    _check_items(train, 1)
    _check_items(test, 1)


def test_d646_layout(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "D646" / "Train" / "FG", tmp_path / "D646" / "Train" / "GT", ["a", "b", "c"])
    _write_pairs(tmp_path / "D646" / "Test" / "FG", tmp_path / "D646" / "Test" / "GT", ["z"])
    root = tmp_path / "D646"
    assert find_layout(root) == "d646"
    ds = build_dataset(str(root), SIZE, split="test", bg_per_fg=2)
    assert isinstance(ds, CompositionDataset) and len(ds) == 2
    assert len(build_dataset(f"d646:{root}", SIZE, split="train")) == 300
    _check_items(ds, 1)


def test_pm85_layout_reads_rgba(tmp_path: Path) -> None:
    root = tmp_path / "PhotoMatte85"
    root.mkdir()
    for i in range(2):
        fg, a = _fg_alpha(i)
        cv2.imwrite(str(root / f"{i:04d}.png"), np.dstack([fg[..., ::-1], a]))
    assert find_layout(root) == "pm85"
    ds = build_dataset(str(root), SIZE, split="test", augment=False)
    assert isinstance(ds, CompositionDataset) and len(ds) == 40
    rgb, a = read_rgba(root / "0000.png")  # straight colour and the file's A
    np.testing.assert_allclose(a, _fg_alpha(0)[1] / 255.0, atol=1e-6)
    np.testing.assert_allclose(rgb, _fg_alpha(0)[0] / 255.0, atol=1e-6)
    _check_items(ds, 1)


@pytest.mark.parametrize("layout", ["p3m", "ppm", "studio"])
def test_paired_layouts(tmp_path: Path, layout: str) -> None:
    root = tmp_path / layout
    if layout == "p3m":
        _write_pairs(root / "train" / "blurred_image", root / "train" / "mask", ["p1", "p2"], ".jpg")
        _write_pairs(root / "validation" / "P3M-500-P" / "blurred_image",
                     root / "validation" / "P3M-500-P" / "mask", ["v1"], ".jpg")
        _write_pairs(root / "validation" / "P3M-500-NP" / "original_image",  # not the test set
                     root / "validation" / "P3M-500-NP" / "mask", ["n1", "n2"], ".jpg")
    elif layout == "ppm":
        _write_pairs(root / "image", root / "matte", ["m1", "m2"], ".jpg")
    else:
        _write_pairs(root / "plates", root / "mattes", ["sh010.1001", "sh010.1002"], ".tif")
    assert find_layout(root) == "paired"
    ds = build_dataset(f"{layout}:{root}", SIZE, split="train")
    assert isinstance(ds, PairedDataset) and len(ds) == 2
    _check_items(ds, 2, keys=("image", "alpha", "seg"))
    if layout == "p3m":  # the documented test set, P3M-500-P (blurred faces), not P3M-500-NP
        test = build_dataset(str(root), SIZE, split="test")
        assert len(test) == 1 and test.image_paths[0].parent.name == "blurred_image"
        assert test.image_paths[0].parent.parent.name == "P3M-500-P"


def test_exr_plates_are_linear_and_converted_to_srgb(tmp_path: Path) -> None:
    import OpenImageIO as oiio

    plates, mattes = tmp_path / "plates", tmp_path / "mattes"
    plates.mkdir()
    mattes.mkdir()
    rgb = np.full((12, 16, 3), 0.18, np.float32)
    out = oiio.ImageOutput.create(str(plates / "a.exr"))
    out.open(str(plates / "a.exr"), oiio.ImageSpec(16, 12, 3, "half"))
    out.write_image(rgb)
    out.close()
    cv2.imwrite(str(mattes / "a.png"), np.full((12, 16), 65535, np.uint16))
    np.testing.assert_allclose(read_rgb(plates / "a.exr"), 0.4613, atol=2e-3)  # sRGB of 18% grey
    assert read_alpha(mattes / "a.png").min() == 1.0
    ds = build_dataset(str(tmp_path), (16, 12), augment=False)
    np.testing.assert_allclose(ds[0]["image"].numpy(), 0.4613, atol=2e-3)


def test_anamorphic_plates_are_trained_on_desqueezed(tmp_path: Path) -> None:
    """A 2x anamorphic EXR plate (16x24 stored, 32x24 shown) with a matte PNG that does not say
    so: the sample is the picture as render shows it to the network, the matte stretched by
    the plate's aspect, so a fine-tune learns the geometry inference sees."""
    import OpenImageIO as oiio

    plates, mattes = tmp_path / "plates", tmp_path / "mattes"
    plates.mkdir()
    mattes.mkdir()
    spec = oiio.ImageSpec(16, 24, 3, "half")
    spec.attribute("PixelAspectRatio", 2.0)
    out = oiio.ImageOutput.create(str(plates / "a.exr"))
    out.open(str(plates / "a.exr"), spec)
    out.write_image(np.full((24, 16, 3), 0.18, np.float32))
    out.close()
    matte = np.zeros((24, 16), np.uint16)
    matte[6:12, 4:8] = 65535  # a 4x6 box stored; shown 8 wide and still 6 tall
    cv2.imwrite(str(mattes / "a.png"), matte)
    ds = build_dataset(str(tmp_path), (32, 24), augment=False)
    alpha = ds[0]["alpha"][0].numpy()
    assert alpha.shape == (24, 32)
    assert alpha[7:11, 9:15].min() > 0.99  # the box, shown columns 8-15
    assert alpha[13:].max() < 0.01  # as tall as stored: read as square pixels, the frame would
    assert alpha[:, :7].max() < 0.01 and alpha[:, 17:].max() < 0.01  # be scaled 2x to cover


def test_layout_errors_name_paths(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "image", tmp_path / "matte", ["a", "b", "c"])
    (tmp_path / "matte" / "b.png").unlink()
    with pytest.raises(BadInputError, match=r"1 in .*image without a matte \(e\.g\. b\)"):
        build_dataset(str(tmp_path), SIZE)
    empty = tmp_path / "empty"
    (empty / "Train" / "FG").mkdir(parents=True)
    (empty / "Train" / "GT").mkdir(parents=True)
    with pytest.raises(BadInputError, match=r"no images in .*FG"):
        build_dataset(str(empty), SIZE)
    with pytest.raises(BadInputError, match="dataset folder not found: .*missing"):
        build_dataset(str(tmp_path / "missing"), SIZE)
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "notes.txt").write_text("x")
    with pytest.raises(BadInputError, match="cannot tell the dataset layout of .*odd"):
        build_dataset(str(odd), SIZE)
    with pytest.raises(BadInputError, match="synthetic:N"):
        build_dataset("synthetic:lots", SIZE)
    with pytest.raises(BadInputError, match="size"):
        build_dataset("synthetic:2", "64by48")


def test_build_dataset_specs() -> None:
    train = build_dataset("synthetic:3", "64x48", seed=1)
    test = build_dataset("synthetic:3", SIZE, split="test", seed=1)
    assert isinstance(train, SyntheticPortraits) and isinstance(train.augment, Augment)
    assert test.augment is None
    assert not torch.equal(train[0]["alpha"], test[0]["alpha"])  # test draws another stream
    both = build_dataset(["synthetic:2", "synthetic:3"], SIZE)
    assert isinstance(both, ConcatDataset) and len(both) == 5


# --- augmentation -----------------------------------------------------------------------------

def _asym_sample(w: int = 80, h: int = 60) -> dict[str, np.ndarray]:
    fg, a = _fg_alpha(3, w, h)
    rng = np.random.default_rng(9)
    bg = rng.random((h, w, 3), dtype=np.float32)
    alpha = (a / 255.0).astype(np.float32)[..., None]
    fgf = fg.astype(np.float32) / 255
    return {"image": alpha * fgf + (1 - alpha) * bg, "alpha": alpha, "fg": fgf, "bg": bg}


def test_augment_flip_moves_image_and_alpha_together() -> None:
    s = _asym_sample()
    aug = Augment(size=(80, 60), crop=False, flip=True, scale=(1, 1), jitter=0, noise=0, jpeg=None,
                  blur=(0, 0))
    flipped = plain = None
    for seed in range(10):
        out = aug(s, np.random.default_rng(seed))
        if np.array_equal(out["alpha"], s["alpha"][:, ::-1]):
            flipped = out
        elif np.array_equal(out["alpha"], s["alpha"]):
            plain = out
    assert flipped is not None and plain is not None
    for k in ("image", "fg", "bg"):  # fg goes through premultiply/unpremultiply: float rounding
        np.testing.assert_allclose(flipped[k], s[k][:, ::-1], atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_augment_keeps_ground_truth_consistent(seed: int) -> None:
    """Geometry, jitter and blur keep I = aF + (1-a)B; noise/JPEG touch the image only."""
    s = _asym_sample()
    clean = Augment(size=(48, 40), scale=(0.7, 1.3), jitter=0.2, noise=0, jpeg=None, blur=(1.0, 0.03))
    out = clean(s, np.random.default_rng(seed))
    assert {k: v.shape for k, v in out.items()} == {"image": (40, 48, 3), "alpha": (40, 48, 1),
                                                    "fg": (40, 48, 3), "bg": (40, 48, 3)}
    a = out["alpha"]
    np.testing.assert_allclose(out["image"], a * out["fg"] + (1 - a) * out["bg"], atol=1e-5)
    noisy = Augment(size=(48, 40), scale=(0.7, 1.3), jitter=0.2, noise=0.05, jpeg=(30, 40), jpeg_prob=1.0,
                    blur=(1.0, 0.03))
    out2 = noisy(s, np.random.default_rng(seed))
    np.testing.assert_array_equal(out2["alpha"], out["alpha"])  # same draws, alpha untouched
    assert np.abs(out2["image"] - out["image"]).mean() > 1e-3


def test_augment_paired_alignment() -> None:
    """Without fg/bg: an image whose red channel *is* the alpha stays equal to it."""
    _, a = _fg_alpha(5, 70, 50)
    alpha = (a / 255.0).astype(np.float32)[..., None]
    s = {"image": np.repeat(alpha, 3, axis=2), "alpha": alpha}
    aug = Augment(size=(40, 32), scale=(0.6, 1.4), jitter=0, noise=0, jpeg=None, blur=(1.0, 0.05))
    for seed in range(4):
        out = aug(s, np.random.default_rng(seed))
        np.testing.assert_allclose(out["image"][..., 0], out["alpha"][..., 0], atol=1e-6)
    item = finish_sample(out)
    assert set(item) == {"image", "alpha", "seg"} and item["image"].shape == (3, 32, 40)


def _people(alpha: np.ndarray) -> int:
    """Separate person-sized regions in a ground-truth matte."""
    mask = (alpha[..., 0] > 0.5).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    return int((stats[1:, cv2.CC_STAT_AREA] > 100).sum())


def test_extra_people_default_keeps_the_seeded_sets_and_more_people_when_asked() -> None:
    from pomagan_train.data.synthetic import EXTRA_PEOPLE, render_portrait

    # The default is what every seeded set (the model card's test set too) was drawn with.
    plain = render_portrait(np.random.default_rng(7), 160, 96)
    same = render_portrait(np.random.default_rng(7), 160, 96, extra_people=EXTRA_PEOPLE)
    assert all(np.allclose(plain[k], same[k], atol=1e-5) for k in plain)  # cv2 threads: float rounding
    alone = [_people(render_portrait(np.random.default_rng(s), 160, 96, extra_people=(0.0, 0.0))["alpha"])
             for s in range(12)]
    crowd = [_people(render_portrait(np.random.default_rng(s), 160, 96, extra_people=(1.0, 1.0))["alpha"])
             for s in range(12)]
    assert max(alone) <= 1  # one person (possibly touching the frame edge in pieces: <= 1 big part)
    assert sum(c >= 2 for c in crowd) >= 6  # most frames show two or three separate people
    ds = build_dataset("synthetic:2", (64, 48), extra_people=(1.0, 1.0))
    assert ds.extra_people == (1.0, 1.0)
    assert build_dataset("synthetic:2", (64, 48), split="test").extra_people == EXTRA_PEOPLE
    with pytest.raises(BadInputError, match="extra_people"):
        SyntheticPortraits(2, SIZE, extra_people=(0.5, 1.5))
    with pytest.raises(BadInputError, match="extra_people"):
        SyntheticPortraits(2, SIZE, extra_people=(0.5,))


def test_props_touch_the_people_in_the_background_and_leave_the_truth() -> None:
    """--props: objects drawn into the background where they touch a person's outline; the
    person's alpha and colour are as without them (drawn last from the generator), the
    composite is still exact, and the default (0) draws the seeded sets as before."""
    from pomagan_train.data.synthetic import render_portrait

    plain = render_portrait(np.random.default_rng(7), 160, 96)
    same = render_portrait(np.random.default_rng(7), 160, 96, props=0.0)
    assert all(np.allclose(plain[k], same[k], atol=1e-5) for k in plain)  # cv2 threads: float rounding
    touching = 0
    for seed in range(12):
        without = render_portrait(np.random.default_rng(seed), 160, 96)
        sample = render_portrait(np.random.default_rng(seed), 160, 96, props=1.0)
        for key in ("alpha", "fg"):
            np.testing.assert_allclose(sample[key], without[key], atol=1e-5)
        a = sample["alpha"]
        np.testing.assert_allclose(sample["image"], a * sample["fg"] + (1 - a) * sample["bg"], atol=1e-5)
        opaque = a[..., 0] > 0.999
        np.testing.assert_allclose(sample["image"][opaque], without["image"][opaque], atol=1e-3)
        changed = np.abs(sample["bg"] - without["bg"]).max(-1) > 0.05
        inside = (a[..., 0] > 0.5).astype(np.uint8)
        ring = cv2.dilate(inside, np.ones((5, 5), np.uint8)) - inside  # 2 px around the outline
        touching += bool((changed & (ring > 0)).any())
    assert touching >= 10  # (a prop can lie hidden behind the person or outside the frame)
    assert build_dataset("synthetic:2", (64, 48), props=0.5).props == 0.5
    assert build_dataset("synthetic:2", (64, 48), split="test").props == 0.0
    with pytest.raises(BadInputError, match="props must be a chance in \\[0, 1\\], got 1.5"):
        SyntheticPortraits(2, SIZE, props=1.5)


def test_closeups_frame_the_front_person_tight_and_leave_the_default_draws() -> None:
    """--closeups: the front person framed as a portrait photo is (shoulders across most of the
    frame, the person covering far more of it); the composite stays exact, and the default (0)
    draws the seeded sets as before."""
    from pomagan_train.data.synthetic import render_portrait

    plain = render_portrait(np.random.default_rng(7), 160, 96)
    same = render_portrait(np.random.default_rng(7), 160, 96, closeups=0.0)
    assert all(np.allclose(plain[k], same[k], atol=1e-5) for k in plain)  # cv2 threads: float rounding

    def framing(closeups: float) -> tuple[np.ndarray, np.ndarray]:
        cover, bottom = [], []
        for seed in range(24):
            sample = render_portrait(np.random.default_rng([5, seed]), 160, 96, extra_people=(0.0, 0.0),
                                     closeups=closeups)
            a = sample["alpha"]
            np.testing.assert_allclose(sample["image"], a * sample["fg"] + (1 - a) * sample["bg"], atol=1e-5)
            cover.append(float(a.mean()))
            bottom.append(float((a[-1, :, 0] > 0.5).mean()))  # the share of the bottom row that is person
        return np.array(cover), np.array(bottom)

    cover, bottom = framing(0.0)
    close_cover, close_bottom = framing(1.0)
    assert np.median(close_cover) > 1.3 * np.median(cover)
    assert np.median(close_bottom) > 0.6 > np.median(bottom)
    assert (close_bottom > 0.8).mean() >= 0.2 and (bottom > 0.8).mean() < 0.1
    assert (close_cover > 0.02).all()  # the person is in the frame, not pushed off it
    assert build_dataset("synthetic:2", (64, 48), closeups=0.3).closeups == 0.3
    assert build_dataset("synthetic:2", (64, 48), split="test").closeups == 0.0
    with pytest.raises(BadInputError, match="closeups must be a chance in \\[0, 1\\], got 2"):
        SyntheticPortraits(2, SIZE, closeups=2)


def test_mono_makes_one_black_and_white_picture_and_leaves_the_truth() -> None:
    """--mono: person and background converted alike (grey, toned, or a trace of colour left),
    so the composite is exact and the alpha unchanged; the default (0) draws the seeded sets as
    before, and the luminance of the frame is kept where it is grey."""
    from pomagan_train.data.synthetic import render_portrait

    plain = render_portrait(np.random.default_rng(7), 160, 96)
    same = render_portrait(np.random.default_rng(7), 160, 96, mono=0.0)
    assert all(np.allclose(plain[k], same[k], atol=1e-5) for k in plain)  # cv2 threads: float rounding
    luma = np.array([0.2126, 0.7152, 0.0722], np.float32)
    grey = toned = faint = 0
    for seed in range(20):
        colour = render_portrait(np.random.default_rng([3, seed]), 160, 96)
        sample = render_portrait(np.random.default_rng([3, seed]), 160, 96, mono=1.0)
        np.testing.assert_allclose(sample["alpha"], colour["alpha"], atol=1e-5)
        a = sample["alpha"]
        np.testing.assert_allclose(sample["image"], a * sample["fg"] + (1 - a) * sample["bg"], atol=1e-5)
        chroma = np.ptp(sample["image"], axis=2)
        before = float(np.ptp(colour["image"], axis=2).mean())
        if chroma.max() < 1e-5:  # grey: R = G = B = the colour frame's luma
            grey += 1
            np.testing.assert_allclose(sample["image"][..., 0], colour["image"] @ luma, atol=2e-3)
        else:
            # toned (every pixel the grey times one colour) or a faint trace of the colour
            ratio = sample["image"] / np.maximum(sample["image"] @ luma, 1e-3)[..., None]
            bright = (sample["image"] @ luma) > 0.1
            if np.ptp(ratio[bright], axis=0).max() < 0.05:
                toned += 1
            else:  # at most 30 % of each pixel's difference from its grey kept
                faint += 1
                assert chroma.mean() < 0.31 * before
    assert grey >= 3 and toned >= 3 and faint >= 1
    assert build_dataset("synthetic:2", (64, 48), mono=0.25).mono == 0.25
    assert build_dataset("synthetic:2", (64, 48), split="test").mono == 0.0
    with pytest.raises(BadInputError, match="mono must be a chance in \\[0, 1\\], got 3"):
        SyntheticPortraits(2, SIZE, mono=3)


def test_synth_writes_props_and_records_them(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pomagan_train.cli import main as train_cli

    result = CliRunner().invoke(train_cli, ["synth", str(tmp_path / "set"), "--n", "2", "--size", "64x48",
                                            "--props", "1", "--closeups", "0.5", "--mono", "0.2"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "set" / "dataset.json").read_text())
    assert meta["props"] == 1.0 and meta["closeups"] == 0.5 and meta["mono"] == 0.2
    assert len(list((tmp_path / "set" / "image").glob("*.png"))) == 2
    bad = CliRunner().invoke(train_cli, ["synth", str(tmp_path / "bad"), "--n", "1", "--props", "-1"])
    assert bad.exit_code == 2 and "props must be a chance in [0, 1], got -1.0" in bad.output
    # eval: a set on disk holds what it was made with, and says so; synthetic:N sets get them
    from pomagan_train.data import generated

    assert generated("synthetic:8") and not generated(str(tmp_path / "set")) and not generated("paired:x")
    scored = CliRunner().invoke(train_cli, ["eval", "--data", f"disk={tmp_path / 'set'}", "--data", "gen=synthetic:1",
                                            "--size", "64x48", "--device", "cpu", "--props", "1", "--closeups", "1",
                                            "--mono", "1"])
    assert scored.exit_code == 0, scored.output
    assert "warning: --props 1 draws objects into synthetic:N sets only; disk is as it is" in scored.output
    assert "warning: --closeups 1 frames synthetic:N sets only; disk is as it is" in scored.output
    assert "warning: --mono 1 makes monochrome synthetic:N sets only; disk is as it is" in scored.output
    assert "gen is as it is" not in scored.output
    trained = CliRunner().invoke(train_cli, ["seg", "--variant", "fast", "--size", "64x48", "--batch-size", "2",
                                             "--device", "cpu", "--perceptual", "off", "--workers", "0", "--data",
                                             str(tmp_path / "set"), "--val-data", "none", "--steps", "1",
                                             "--props", "0.5", "--closeups", "0.3", "--mono", "0.2",
                                             "--out", str(tmp_path / "run")])
    assert trained.exit_code == 0, trained.output
    assert "warning: --props 0.5 draws objects into synthetic:N sets only; --data has none" in trained.output
    assert "warning: --closeups 0.3 frames synthetic:N sets only; --data has none: no frame is changed" \
        in trained.output
    assert "warning: --mono 0.2 makes monochrome synthetic:N sets only; --data has none" in trained.output
