"""Colour: file encodings to the model's display-referred sRGB [0, 1] and back."""

from __future__ import annotations

import numpy as np
import pytest

from pomagan_post.colour import (
    SOFT_CLIP_KNEE,
    cineon_to_linear,
    detect_colorspace,
    from_model,
    is_linear,
    resolve_colorspace,
    soft_clip,
    srgb_eotf,
    srgb_oetf,
    to_model,
)
from pomagan_post.errors import BadInputError

AP0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)  # ACES2065-1 primaries, white


def test_srgb_curves_are_the_standard_and_inverse() -> None:
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(srgb_eotf(srgb_oetf(x)), x, atol=1e-6)
    assert float(srgb_oetf(np.float32(0.18))) == pytest.approx(0.4613, abs=1e-4)


def test_linear_soft_clip_is_identity_below_the_knee_monotonic_and_bounded() -> None:
    below = np.linspace(0, float(srgb_eotf(np.float32(SOFT_CLIP_KNEE))), 50, dtype=np.float32)
    np.testing.assert_allclose(to_model(np.repeat(below[:, None], 3, 1), "linear")[:, 0],
                               srgb_oetf(below), atol=1e-6)
    x = np.concatenate([np.linspace(0, 4, 400), [1e3, 6e4, np.inf, np.nan, -1]]).astype(np.float32)
    y = to_model(np.repeat(x[:, None], 3, 1), "linear")[:, 0]
    assert np.all(np.isfinite(y)) and y.min() >= 0 and y.max() <= 1
    assert np.all(np.diff(y[:400]) >= 0)  # order of highlights is kept
    assert float(to_model(np.float32([[1, 1, 1]]), "linear")[0, 0]) == pytest.approx(0.976, abs=1e-3)
    # Continuous with slope 1 at the knee.
    k = SOFT_CLIP_KNEE
    assert float(soft_clip(np.float32(k + 1e-4))) == pytest.approx(k + 1e-4, abs=1e-6)


@pytest.mark.parametrize("name", ["linear", "srgb", "rec709", "cineon", "pq", "hlg", "logc3", "slog3", "vlog",
                                  "ACEScg", "g22_rec709"])
def test_round_trip_through_model_space(name: str) -> None:
    model = np.random.default_rng(1).uniform(0.02, SOFT_CLIP_KNEE, (2, 5, 7, 3)).astype(np.float32)
    if name == "ACEScg":  # keep inside both gamuts
        model = np.full((2, 5, 7, 3), 0.5, np.float32)
    np.testing.assert_allclose(to_model(from_model(model, name), name), model, atol=2e-3)


def test_display_spaces_pass_through() -> None:
    x = np.float32([[0.2, 0.5, 1.3]])
    np.testing.assert_array_equal(to_model(x, "srgb"), np.float32([[0.2, 0.5, 1.0]]))
    np.testing.assert_array_equal(to_model(x, "rec709"), np.float32([[0.2, 0.5, 1.0]]))


def test_cineon_reference_points() -> None:
    np.testing.assert_allclose(cineon_to_linear(np.float32([95 / 1023, 685 / 1023])), [0, 1], atol=1e-6)


def test_camera_log_curves_meet_the_makers_reference_points() -> None:
    """18 % grey at the published code values (ARRI LogC3 EI 800: 0.391; S-Log3: 420/1023;
    V-Log: 0.423), each curve and its inverse agree over 0 to 16 stops above black, and the
    names a user types resolve."""
    from pomagan_post.colour import (linear_to_logc3, linear_to_slog3, linear_to_vlog, logc3_to_linear,
                                     slog3_to_linear, vlog_to_linear)

    grey = np.float32([0.18])
    assert float(linear_to_logc3(grey)[0]) == pytest.approx(0.3910, abs=2e-4)
    assert float(linear_to_slog3(grey)[0]) == pytest.approx(420 / 1023, abs=1e-5)
    assert float(linear_to_vlog(grey)[0]) == pytest.approx(0.4233, abs=2e-4)
    x = np.concatenate([np.float32([0.0, 0.001, 0.005]), np.geomspace(0.01, 16, 50).astype(np.float32)])
    for encode, decode in ((linear_to_logc3, logc3_to_linear), (linear_to_slog3, slog3_to_linear),
                           (linear_to_vlog, vlog_to_linear)):
        np.testing.assert_allclose(decode(encode(x)), x, rtol=1e-4, atol=1e-5)
        assert np.all(np.diff(encode(x)) > 0)  # monotonic
    assert [resolve_colorspace(n) for n in ("ARRI LogC3", "S-Log3", "V-Log", "logc")] == [
        "logc3", "slog3", "vlog", "logc3"]
    assert not is_linear("slog3")


def test_names_and_aliases() -> None:
    assert resolve_colorspace("lin_srgb") == "linear"
    assert resolve_colorspace("sRGB") == "srgb"
    assert resolve_colorspace("KodakLog") == "cineon"
    assert resolve_colorspace("lin_ap1") == "ACEScg"
    assert is_linear("ACEScg") and is_linear("linear") and not is_linear("srgb")
    with pytest.raises(BadInputError, match="unknown colour space 'nope'"):
        resolve_colorspace("nope")


@pytest.mark.parametrize(
    "fmt, attrs, pixel_type, expected",
    [
        ("openexr", {}, "half", "linear"),
        ("openexr", {"oiio:ColorSpace": "srgb_rec709_scene"}, "half", "srgb"),
        ("png", {"oiio:ColorSpace": "srgb_rec709_scene"}, "uint16", "srgb"),
        ("jpeg", {}, "uint8", "srgb"),
        ("tiff", {}, "float", "linear"),
        ("tiff", {}, "uint16", "srgb"),
        ("dpx", {"dpx:Transfer": "Printing density"}, "uint16", "cineon"),
        ("dpx", {"dpx:Transfer": "Logarithmic", "oiio:ColorSpace": "KodakLog"}, "uint16", "cineon"),
        ("dpx", {"dpx:Transfer": "Linear"}, "uint16", "linear"),
        ("dpx", {"dpx:Transfer": "User defined"}, "uint16", "rec709"),
        # ffmpeg writes "Linear" into every DPX whatever the pixels (a video's frames)
        ("dpx", {"dpx:Transfer": "Linear", "oiio:ColorSpace": "lin_rec709_scene", "Software": "Lavc59.37.100"},
         "uint16", "rec709"),
        ("hdr", {}, "float", "linear"),
        ("openexr", {"chromaticities": AP0}, "half", "ACES2065-1"),
        ("openexr", {"chromaticities": (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767)},
         "float", "ACEScg"),
        ("openexr", {"chromaticities": (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329)}, "half", "linear"),
        ("openexr", {"chromaticities": (0.5, 0.4, 0.3, 0.6, 0.2, 0.1, 0.3127, 0.329)}, "half", "linear"),
    ],
)
def test_detect_colorspace_from_headers(fmt: str, attrs: dict, pixel_type: str, expected: str) -> None:
    assert detect_colorspace(fmt, attrs, pixel_type) == expected


def test_aces_exr_plate_reaches_the_model_like_its_rec709_twin(tmp_path) -> None:
    """An ACES2065-1 plate (AP0 primaries in its EXR header, as the ACES container format
    writes them) is read in ACES2065-1: the network sees what it sees for the same picture
    stored as linear Rec.709, not AP0 numbers taken for Rec.709 ones."""
    import OpenImageIO as oiio

    from pomagan_post.io.images import ImageSequenceSource

    from .imaging import write_file

    rec709 = np.array([[[0.18, 0.18, 0.18], [0.6, 0.3, 0.2], [0.1, 0.4, 0.8], [0.9, 0.75, 0.6]]], np.float32)
    buf = oiio.ImageBufAlgo.colorconvert(oiio.ImageBuf(rec709), "Linear Rec.709 (sRGB)", "ACES2065-1")
    ap0 = np.asarray(buf.get_pixels(oiio.FLOAT), np.float32)
    assert np.abs(ap0 - rec709).max() > 0.05  # AP0 numbers differ from the Rec.709 ones
    write_file(tmp_path / "plate.1001.exr", ap0, "float", typed={"chromaticities": (oiio.TypeDesc("float[8]"), AP0)})
    source = ImageSequenceSource(tmp_path / "plate.####.exr")
    assert source.info.colorspace == "ACES2065-1"
    (_, rgb), = list(source)
    np.testing.assert_allclose(to_model(rgb, source.info.colorspace), to_model(rec709, "linear"), atol=2e-3)


def test_exr_outputs_name_the_primaries_of_the_space_written(tmp_path) -> None:
    """An ACEScg plate rendered as ``--colorspace linear`` is labelled Rec.709 in both its
    colour space and its chromaticities (it kept the input's AP1 primaries beside a Rec.709
    label), and an untagged plate rendered as ACEScg gets AP1's."""
    import OpenImageIO as oiio

    from pomagan_post import Engine, load_checkpoint, render

    from .imaging import write_file

    ap1 = (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767)
    plate = np.full((24, 40, 3), 0.3, np.float32)
    write_file(tmp_path / "cg.1001.exr", plate, "half", typed={"chromaticities": (oiio.TypeDesc("float[8]"), ap1)})
    write_file(tmp_path / "raw.1001.exr", plate, "half")
    engine = Engine(load_checkpoint(None), device="cpu", working_size=32)

    def header(name: str) -> tuple:
        spec = oiio.ImageInput.open(str(tmp_path / name)).spec()
        return spec.get_string_attribute("oiio:ColorSpace"), spec.getattribute("chromaticities")

    render(tmp_path / "cg.####.exr", engine=engine, colorspace="linear", output_dir=tmp_path / "a")
    label, primaries = header("a/cg_fg.1001.exr")
    assert label == "lin_rec709_scene" and np.allclose(primaries, (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329))
    render(tmp_path / "raw.####.exr", engine=engine, colorspace="ACEScg", output_dir=tmp_path / "b")
    label, primaries = header("b/raw_fg.1001.exr")
    assert label == "lin_ap1_scene" and np.allclose(primaries, ap1, atol=1e-5)
    render(tmp_path / "raw.####.exr", engine=engine, output_dir=tmp_path / "c")
    assert header("c/raw_fg.1001.exr") == ("lin_rec709_scene", None)  # untagged stays untagged
