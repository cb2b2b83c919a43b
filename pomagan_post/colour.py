"""Colour: from a file's own encoding to the model's space and back.

The model sees **display-referred, sRGB-encoded floats in [0, 1]** ("model space"). Sources yield
pixels in the file's own encoding and sinks write them back in it: only the copy the network
looks at is converted. Foreground colour is estimated from the original values, so a scene-linear
plate gives a scene-linear foreground that keeps its values above 1.

Colour spaces (names accepted by :func:`to_model`, :func:`from_model` and ``--colorspace``):

``linear``
    Scene-linear Rec.709/sRGB primaries (EXR and HDR files by default; an EXR whose
    ``chromaticities`` are ACES AP0, AP1, Rec.2020 or P3-D65 is read in that OCIO space
    instead, e.g. ``ACES2065-1``). To model space: negative
    values clip to 0, then the sRGB OETF, then a soft clip that leaves encoded values up to the
    knee ``k = 0.9`` (linear 0.79) untouched and rolls everything above off towards 1::

        e = srgb_oetf(max(x, 0))
        y = e                                   if e <= k
        y = k + (1 - k) * tanh((e - k) / (1 - k))  otherwise

    The curve is continuous with slope 1 at the knee and monotonic, so highlights up to any
    value keep their order until float32 rounds them to 1 (linear 1.0 -> 0.976, 2.0 -> 0.99998,
    4.0 -> 1.0). :func:`from_model` inverts it (1.0 maps back to linear ~3.5, the end of what
    32-bit floats resolve).
``srgb``
    sRGB-encoded display-referred values (8/16-bit PNG, TIFF, JPEG): model space already;
    clipped to [0, 1].
``rec709``
    Decoded video R'G'B' (Rec.709/BT.1886). Treated as display-referred signal values and fed
    to the model unchanged: the model was trained on display-referred images, and the
    difference between the BT.1886 and sRGB encodings (a pure 2.4 power against sRGB's
    piecewise ~2.2) is smaller than the variation of real footage. Clipped to [0, 1].
``cineon``
    Cineon/Kodak printing-density log (10-bit DPX whose header says "Printing density" or
    "Logarithmic"): code value ``cv`` in [0, 1] -> linear with reference white 685, reference
    black 95, 0.002 density per code value, negative-film gamma 0.6
    (``lin = (10 ** ((1023 cv - 685) * 0.002 / 0.6) - b) / (1 - b)``, ``b`` the value at 95),
    then the ``linear`` path.
``logc3`` / ``slog3`` / ``vlog``
    Camera log footage (ARRI LogC3 at EI 800, Sony S-Log3, Panasonic V-Log; aliases such as
    ``arri logc3``, ``s-log3``, ``v-log``): the maker's curve to scene linear (18 % grey at
    0.18; the camera gamut taken as Rec.709, since the network needs the tone scale), then the
    ``linear`` path. Videos do not say they are log (their tags read Rec.709): name it with
    ``--colorspace``. Matting log as if it were Rec.709 costs accuracy (measured in the README).
``pq`` / ``hlg``
    HDR video signals (as :mod:`pomagan_post.io.video` labels them from the stream's transfer
    tag). ``pq``: SMPTE ST 2084 EOTF to nits, 100 nits = linear 1.0. ``hlg``: the BT.2100 HLG
    inverse OETF, scaled so reference white (signal 0.75) is linear 1.0. Then the ``linear``
    path.
any OpenColorIO colour space name
    Any name or alias OpenImageIO's colour configuration knows (``ACEScg``, ``lin_ap1``,
    ``g22_rec709``, ``ACEScct``, ... from ``$OCIO`` or OIIO's built-in config). Converted with
    :func:`OpenImageIO.ImageBufAlgo.colorconvert` to linear Rec.709, then the ``linear`` path.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import torch

from .errors import BadInputError

__all__ = [
    "COLORSPACES",
    "SOFT_CLIP_KNEE",
    "resolve_colorspace",
    "detect_colorspace",
    "is_linear",
    "to_model",
    "from_model",
    "to_linear",
    "from_linear",
    "convert",
    "srgb_oetf",
    "srgb_eotf",
    "soft_clip",
    "soft_unclip",
    "linear_to_model_tensor",
    "to_model_tensor",
    "TENSOR_COLORSPACES",
    "cineon_to_linear",
    "linear_to_cineon",
    "pq_to_linear",
    "linear_to_pq",
    "hlg_to_linear",
    "linear_to_hlg",
    "quantize",
    "dequantize",
]

#: The colour spaces handled natively; any OCIO name OpenImageIO knows is accepted as well.
COLORSPACES = ("linear", "srgb", "rec709", "cineon", "pq", "hlg", "logc3", "slog3", "vlog")
SOFT_CLIP_KNEE = 0.9

_ALIASES = {
    "linear": "linear", "lin": "linear", "lin_rec709": "linear", "lin_srgb": "linear",
    "lin_rec709_scene": "linear", "linear rec.709 (srgb)": "linear", "scene-linear": "linear",
    "srgb": "srgb", "srgb_tx": "srgb", "srgb_rec709_scene": "srgb", "srgb_texture": "srgb",
    "srgb encoded rec.709 (srgb)": "srgb", "srgb - display": "srgb", "srgb_rec709_display": "srgb",
    "rec709": "rec709", "rec.709": "rec709", "bt709": "rec709", "bt.709": "rec709",
    "itu-r bt.709": "rec709", "rec.1886 rec.709 - display": "rec709",
    "cineon": "cineon", "log": "cineon", "kodaklog": "cineon", "printing density": "cineon",
    "pq": "pq", "st2084": "pq", "smpte2084": "pq", "hlg": "hlg", "arib-std-b67": "hlg",
    "logc3": "logc3", "logc": "logc3", "arri logc3": "logc3", "arri logc": "logc3", "alexa logc": "logc3",
    "slog3": "slog3", "s-log3": "slog3", "sony s-log3": "slog3",
    "vlog": "vlog", "v-log": "vlog", "panasonic v-log": "vlog",
}
_OCIO_LINEAR = "Linear Rec.709 (sRGB)"

# DPX "dpx:Transfer" header values (as OpenImageIO spells them) -> colour space.
_DPX_TRANSFER = {
    "printing density": "cineon",
    "logarithmic": "cineon",
    "adx": "cineon",
    "linear": "linear",
    "itu-r 709-4": "rec709",
    "smpte 274m": "rec709",
    "unspecified video": "rec709",
    "itu-r 601-5 system b or g": "rec709",
    "itu-r 601-5 system m": "rec709",
    "ntsc composite video": "rec709",
    "pal composite video": "rec709",
}


@lru_cache(maxsize=1)
def _config() -> Any:
    import OpenImageIO as oiio

    return oiio.ColorConfig()


def _ocio_name(name: str) -> str | None:
    """The OCIO colour space a name or alias resolves to, or ``None``."""
    try:
        resolved = _config().getColorSpaceNameByRole(name)
    except Exception:  # a broken $OCIO config: treat as unknown
        return None
    return resolved or None


def resolve_colorspace(name: str) -> str:
    """Canonical name: one of :data:`COLORSPACES`, or an OCIO colour space name.

    Raises :class:`BadInputError` for names neither we nor OpenImageIO's config know.
    """
    key = str(name).strip()
    native = _ALIASES.get(key.lower())
    if native:
        return native
    ocio = _ocio_name(key)
    if ocio:
        return _ALIASES.get(ocio.lower(), ocio)
    known = ", ".join(COLORSPACES)
    raise BadInputError(
        f"unknown colour space {name!r}: use {known} or an OpenColorIO colour space name "
        "(set $OCIO for a studio config)"
    )


# Scene-linear primaries an EXR header names in ``chromaticities`` (red, green, blue, white
# x, y) -> the OCIO colour space names that hold them (OIIO's built-in config first, then
# common studio-config names and aliases). Rec.709 primaries are plain ``linear``.
_CHROMATICITIES = (
    ((0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290), ("linear",)),
    ((0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767),
     ("ACES2065-1", "ACES - ACES2065-1", "aces2065_1", "lin_ap0")),
    ((0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767),
     ("ACEScg", "ACES - ACEScg", "lin_ap1")),
    ((0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290), ("Linear Rec.2020", "lin_rec2020")),
    ((0.680, 0.320, 0.265, 0.690, 0.150, 0.060, 0.3127, 0.3290), ("Linear P3-D65", "lin_p3d65")),
)


def chromaticities_of(colorspace: str) -> tuple[float, ...] | None:
    """The primaries and white point (EXR ``chromaticities``) of a scene-linear colour space
    :func:`detect_colorspace` names from them (``linear``: Rec.709's); None for others."""
    name = resolve_colorspace(colorspace)
    for primaries, names in _CHROMATICITIES:
        for candidate in names:
            try:
                if resolve_colorspace(candidate) == name:
                    return primaries
            except BadInputError:
                continue
    return None


def _linear_space(chromaticities: Any) -> str:
    """The scene-linear colour space of an EXR's ``chromaticities`` (ACES AP0 plates are
    ``ACES2065-1``, AP1 ``ACEScg``, ...); ``linear`` (Rec.709) for Rec.709 primaries, for
    primaries not listed, and where the colour configuration has no name for them."""
    try:
        values = tuple(float(v) for v in chromaticities)
    except (TypeError, ValueError):
        return "linear"
    for primaries, names in _CHROMATICITIES:
        if len(values) == 8 and max(abs(a - b) for a, b in zip(values, primaries)) < 2e-3:
            for name in names:
                try:
                    return resolve_colorspace(name)
                except BadInputError:
                    continue
    return "linear"


def detect_colorspace(format_name: str, attributes: Mapping[str, Any], pixel_type: str) -> str:
    """Colour space of an image file from its format, header attributes and pixel type.

    The header wins where it says something (``oiio:ColorSpace``, DPX ``dpx:Transfer``, EXR
    ``chromaticities``: ACES2065-1 / ACEScg / Rec.2020 / P3-D65 primaries name that linear
    space); otherwise EXR/HDR and float TIFF are ``linear``, DPX is ``rec709`` and every integer
    format is ``srgb``. A DPX written by ffmpeg is ``rec709`` whatever its transfer field says
    (ffmpeg writes ``Linear`` into every file).
    """
    fmt = format_name.lower()
    if fmt == "dpx" and written_by_ffmpeg(attributes):
        # ffmpeg's DPX encoder stamps Transfer and Colorimetric "Linear" on every file, whatever
        # its pixels are (a video's frames, display-referred); OIIO's label follows that field.
        return "rec709"
    if fmt == "dpx":
        transfer = str(attributes.get("dpx:Transfer", "")).strip().lower()
        if transfer in _DPX_TRANSFER:
            return _DPX_TRANSFER[transfer]
    label = attributes.get("oiio:ColorSpace")
    if label:
        try:
            return resolve_colorspace(str(label))
        except BadInputError:
            pass
    if fmt in ("openexr", "hdr", "rla") or (fmt == "tiff" and pixel_type in ("float", "half", "double")):
        return _linear_space(attributes.get("chromaticities"))
    if fmt in ("dpx", "cineon"):
        return "cineon" if fmt == "cineon" else "rec709"
    return "srgb"


def written_by_ffmpeg(attributes: Mapping[str, Any]) -> bool:
    """Whether an image file's creator field names libavcodec (``Lavc59.37.100``): ffmpeg's
    image encoders write fixed header values that say nothing about the pixels."""
    return str(attributes.get("Software", "")).startswith("Lavc")


def is_linear(colorspace: str) -> bool:
    """Whether values are scene-linear (premultiplication is exact there)."""
    name = resolve_colorspace(colorspace)
    if name in COLORSPACES:
        return name == "linear"
    try:
        return bool(_config().isColorSpaceLinear(name))
    except Exception:
        return False


# --- transfer functions -----------------------------------------------------------------------

def srgb_oetf(linear: np.ndarray) -> np.ndarray:
    """Linear -> sRGB-encoded (IEC 61966-2-1), extended above 1 by the same power law."""
    x = np.maximum(linear, 0.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_eotf(encoded: np.ndarray) -> np.ndarray:
    """sRGB-encoded -> linear; the inverse of :func:`srgb_oetf`."""
    e = np.maximum(encoded, 0.0)
    return np.where(e <= 0.04045, e / 12.92, np.power((e + 0.055) / 1.055, 2.4)).astype(np.float32)


def soft_clip(encoded: np.ndarray, knee: float = SOFT_CLIP_KNEE) -> np.ndarray:
    """Identity up to ``knee``, then a tanh roll-off that approaches (never passes) 1."""
    span = 1.0 - knee
    over = np.tanh(np.maximum(encoded - knee, 0.0) / span) * span + knee
    return np.where(encoded <= knee, encoded, over).astype(np.float32)


def soft_unclip(clipped: np.ndarray, knee: float = SOFT_CLIP_KNEE) -> np.ndarray:
    """Inverse of :func:`soft_clip` (values at or above 1 come back as the largest finite one)."""
    span = 1.0 - knee
    t = np.clip((clipped - knee) / span, 0.0, 1.0 - 1e-7)
    return np.where(clipped <= knee, clipped, knee + span * np.arctanh(t)).astype(np.float32)


def linear_to_model_tensor(linear: torch.Tensor, knee: float = SOFT_CLIP_KNEE) -> torch.Tensor:
    """The ``linear`` path of :func:`to_model` on a torch tensor: NaN -> 0, +inf -> 65504,
    negatives -> 0, sRGB OETF, soft clip, clip to [0, 1]. Float32 out, on the input's device;
    TorchScript-compilable (the Nuke export runs it inside its ``forward``)."""
    x = torch.nan_to_num(linear.float(), nan=0.0, posinf=65504.0, neginf=0.0).clamp(min=0.0)
    encoded = torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.pow(1.0 / 2.4) - 0.055)
    span = 1.0 - knee
    over = torch.tanh((encoded - knee).clamp(min=0.0) / span) * span + knee
    return torch.where(encoded <= knee, encoded, over).clamp(0.0, 1.0)


_CIN_WHITE, _CIN_BLACK, _CIN_GAMMA, _CIN_DENSITY = 685.0, 95.0, 0.6, 0.002
_CIN_OFFSET = 10.0 ** ((_CIN_BLACK - _CIN_WHITE) * _CIN_DENSITY / _CIN_GAMMA)

# Colour spaces :func:`to_model_tensor` converts on the tensor's device (the engine's GPU path);
# the rest (PQ, HLG, OCIO spaces) go through :func:`to_model` on the host.
TENSOR_COLORSPACES = ("srgb", "rec709", "linear", "cineon")


def to_model_tensor(rgb: torch.Tensor, colorspace: str) -> torch.Tensor:
    """:func:`to_model` on a torch tensor (any layout, any float dtype), float32 out on the
    input's device, for the canonical names in :data:`TENSOR_COLORSPACES`."""
    name = resolve_colorspace(colorspace)
    if name in ("srgb", "rec709"):
        return torch.nan_to_num(rgb.float(), nan=0.0, posinf=65504.0, neginf=0.0).clamp_(0.0, 1.0)
    if name == "linear":
        return linear_to_model_tensor(rgb)
    if name == "cineon":
        code = torch.nan_to_num(rgb.float(), nan=0.0, posinf=65504.0, neginf=0.0)
        power = (code * 1023.0 - _CIN_WHITE) * (_CIN_DENSITY / _CIN_GAMMA)
        return linear_to_model_tensor((torch.pow(10.0, power) - _CIN_OFFSET) / (1.0 - _CIN_OFFSET))
    raise BadInputError(f"colour space {colorspace!r} converts on the host only (use to_model)")


def cineon_to_linear(code: np.ndarray) -> np.ndarray:
    """Cineon log code values (10-bit scaled to [0, 1]) -> scene linear (685 -> 1, 95 -> 0)."""
    power = (np.asarray(code, np.float32) * 1023.0 - _CIN_WHITE) * _CIN_DENSITY / _CIN_GAMMA
    with np.errstate(over="ignore"):  # huge codes (inf clamped to 65504) are +inf linear
        return ((np.power(10.0, power) - _CIN_OFFSET) / (1.0 - _CIN_OFFSET)).astype(np.float32)


def linear_to_cineon(linear: np.ndarray) -> np.ndarray:
    """Scene linear -> Cineon log code values in [0, 1]; the inverse of :func:`cineon_to_linear`."""
    x = np.maximum(np.asarray(linear, np.float32) * (1.0 - _CIN_OFFSET) + _CIN_OFFSET, 1e-10)
    code = (np.log10(x) * _CIN_GAMMA / _CIN_DENSITY + _CIN_WHITE) / 1023.0
    return np.clip(code, 0.0, 1.0).astype(np.float32)


_PQ_M1, _PQ_M2 = 2610 / 16384, 2523 / 4096 * 128
_PQ_C1, _PQ_C2, _PQ_C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
_PQ_SDR_WHITE = 100.0 / 10000.0
_HLG_A, _HLG_B, _HLG_C = 0.17883277, 0.28466892, 0.55991073


def pq_to_linear(signal: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084 signal -> linear with 100 nits at 1.0."""
    e = np.power(np.clip(signal, 0.0, 1.0), 1 / _PQ_M2)
    nits = np.power(np.maximum(e - _PQ_C1, 0.0) / (_PQ_C2 - _PQ_C3 * e), 1 / _PQ_M1)
    return (nits / _PQ_SDR_WHITE).astype(np.float32)


def linear_to_pq(linear: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pq_to_linear`."""
    y = np.power(np.clip(np.asarray(linear) * _PQ_SDR_WHITE, 0.0, 1.0), _PQ_M1)
    return np.power((_PQ_C1 + _PQ_C2 * y) / (1 + _PQ_C3 * y), _PQ_M2).astype(np.float32)


def _hlg_inverse_oetf(signal: np.ndarray) -> np.ndarray:
    e = np.clip(signal, 0.0, 1.0)
    with np.errstate(over="ignore"):
        high = (np.exp((e - _HLG_C) / _HLG_A) + _HLG_B) / 12.0
    return np.where(e <= 0.5, e * e / 3.0, high).astype(np.float32)


_HLG_WHITE = float(_hlg_inverse_oetf(np.float32(0.75)))


def hlg_to_linear(signal: np.ndarray) -> np.ndarray:
    """BT.2100 HLG signal -> scene linear with reference white (0.75) at 1.0."""
    return (_hlg_inverse_oetf(signal) / _HLG_WHITE).astype(np.float32)


def linear_to_hlg(linear: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hlg_to_linear`."""
    x = np.clip(np.asarray(linear, np.float32) * _HLG_WHITE, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        high = _HLG_A * np.log(np.maximum(12.0 * x - _HLG_B, 1e-12)) + _HLG_C
    return np.where(x <= 1 / 12, np.sqrt(3.0 * x), high).astype(np.float32)


# Camera log encodings (the makers' published curves; the camera's gamut is taken as Rec.709:
# the network needs the tone scale, not colorimetry, and outputs stay in the file's values).
_LOGC3 = (0.010591, 5.555556, 0.052272, 0.247190, 0.385537, 5.367655, 0.092809)  # ARRI, EI 800
_SLOG3_BREAK = 171.2102946929 / 1023.0
_VLOG = (0.01, 0.00873, 0.241514, 0.598206)


def logc3_to_linear(code: np.ndarray) -> np.ndarray:
    """ARRI LogC3 (EI 800) code value in [0, 1] -> scene linear (18 % grey at 0.18)."""
    cut, a, b, c, d, e, f = _LOGC3
    t = np.asarray(code, np.float32)
    return np.where(t > e * cut + f, (np.power(10.0, (t - d) / c) - b) / a, (t - f) / e).astype(np.float32)


def linear_to_logc3(linear: np.ndarray) -> np.ndarray:
    """Inverse of :func:`logc3_to_linear`."""
    cut, a, b, c, d, e, f = _LOGC3
    x = np.asarray(linear, np.float32)
    return np.where(x > cut, c * np.log10(np.maximum(a * x + b, 1e-12)) + d, e * x + f).astype(np.float32)


def slog3_to_linear(code: np.ndarray) -> np.ndarray:
    """Sony S-Log3 code value in [0, 1] -> scene linear (18 % grey at 0.18)."""
    t = np.asarray(code, np.float32)
    high = np.power(10.0, (t * 1023.0 - 420.0) / 261.5) * 0.19 - 0.01
    low = (t * 1023.0 - 95.0) * 0.01125 / (171.2102946929 - 95.0)
    return np.where(t >= _SLOG3_BREAK, high, low).astype(np.float32)


def linear_to_slog3(linear: np.ndarray) -> np.ndarray:
    """Inverse of :func:`slog3_to_linear`."""
    x = np.asarray(linear, np.float32)
    high = (420.0 + np.log10(np.maximum((x + 0.01) / 0.19, 1e-12)) * 261.5) / 1023.0
    low = (x * (171.2102946929 - 95.0) / 0.01125 + 95.0) / 1023.0
    return np.where(x >= 0.01125, high, low).astype(np.float32)


def vlog_to_linear(code: np.ndarray) -> np.ndarray:
    """Panasonic V-Log code value in [0, 1] -> scene linear (18 % grey at 0.18)."""
    _, b, c, d = _VLOG
    t = np.asarray(code, np.float32)
    return np.where(t < 0.181, (t - 0.125) / 5.6, np.power(10.0, (t - d) / c) - b).astype(np.float32)


def linear_to_vlog(linear: np.ndarray) -> np.ndarray:
    """Inverse of :func:`vlog_to_linear`."""
    cut, b, c, d = _VLOG
    x = np.asarray(linear, np.float32)
    return np.where(x < cut, 5.6 * x + 0.125, c * np.log10(np.maximum(x + b, 1e-12)) + d).astype(np.float32)


_TO_LINEAR = {"pq": pq_to_linear, "hlg": hlg_to_linear, "logc3": logc3_to_linear,
              "slog3": slog3_to_linear, "vlog": vlog_to_linear}  # host-only spaces (to_model)
_FROM_LINEAR = {"cineon": linear_to_cineon, "pq": linear_to_pq, "hlg": linear_to_hlg,
                "logc3": linear_to_logc3, "slog3": linear_to_slog3, "vlog": linear_to_vlog}


def _ocio_convert(rgb: np.ndarray, source: str, target: str) -> np.ndarray:
    import OpenImageIO as oiio

    shape = rgb.shape
    flat = np.ascontiguousarray(rgb.reshape(-1, shape[-2], shape[-1]), dtype=np.float32)
    buf = oiio.ImageBuf(flat)
    out = oiio.ImageBufAlgo.colorconvert(buf, source, target)
    if out.has_error:
        raise BadInputError(f"colour conversion {source!r} -> {target!r} failed: {out.geterror()}")
    return np.asarray(out.get_pixels(oiio.FLOAT), np.float32).reshape(shape)


def _finite(rgb: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(rgb, np.float32), nan=0.0, posinf=65504.0, neginf=0.0)


def to_model(rgb: np.ndarray, colorspace: str) -> np.ndarray:
    """Pixels in ``colorspace`` (float, ``[..., 3]``) -> model space, float32 in [0, 1].

    NaN and infinities (which EXR files can hold) become 0 and the largest half value first.
    The spaces in :data:`TENSOR_COLORSPACES` go through :func:`to_model_tensor`, the same maths
    the engine runs on the device, so training data and rendered frames meet one conversion.
    """
    name = resolve_colorspace(colorspace)
    if name in TENSOR_COLORSPACES:
        x = np.asarray(rgb, np.float32)
        tensor = torch.from_numpy(x if x.flags.writeable else x.copy())  # read only, never written
        return np.ascontiguousarray(to_model_tensor(tensor, name).numpy())
    return np.clip(soft_clip(srgb_oetf(to_linear(rgb, name))), 0.0, 1.0)


def _transfer(name: str, forward: bool) -> Any:
    """The function taking ``name``'s values to scene linear (``forward``) or back; None for a
    space only the colour configuration converts (OCIO)."""
    if name == "linear":
        return _finite
    if name in ("srgb", "rec709"):  # display-referred: through the sRGB curve
        return srgb_eotf if forward else srgb_oetf
    if forward:
        return {"cineon": cineon_to_linear, **_TO_LINEAR}.get(name)
    return _FROM_LINEAR.get(name)


def to_linear(rgb: np.ndarray, colorspace: str) -> np.ndarray:
    """Pixels in ``colorspace`` -> scene linear (display spaces through the sRGB EOTF: display
    white 1.0 is linear 1.0). Unlike :func:`to_model` nothing is rolled off or clipped above."""
    name = resolve_colorspace(colorspace)
    transfer = _transfer(name, forward=True)
    x = _finite(rgb)
    return transfer(x) if transfer is not None else _ocio_convert(x, name, _OCIO_LINEAR)


def from_linear(linear: np.ndarray, colorspace: str) -> np.ndarray:
    """Scene linear -> ``colorspace``; the inverse of :func:`to_linear`."""
    name = resolve_colorspace(colorspace)
    transfer = _transfer(name, forward=False)
    x = _finite(linear)
    return transfer(x) if transfer is not None else _ocio_convert(x, _OCIO_LINEAR, name)


def convert(rgb: np.ndarray, source: str, target: str) -> np.ndarray:
    """Pixels from one colour space to another through scene linear (``--comp`` colours, given
    in display sRGB terms, and background images onto a plate): display white lands on linear
    1.0, not on the model's rolled-off highlight (:func:`from_model`)."""
    if resolve_colorspace(source) == resolve_colorspace(target):
        return np.asarray(rgb, np.float32)
    return from_linear(to_linear(rgb, source), target)


def from_model(rgb: np.ndarray, colorspace: str) -> np.ndarray:
    """Model-space values (``[..., 3]`` in [0, 1]) -> ``colorspace``; inverse of :func:`to_model`.

    Model space rolls highlights off (display 1.0 comes back as linear ~3.5): colours given in
    display terms go through :func:`convert` instead; frames themselves never make this round
    trip.
    """
    name = resolve_colorspace(colorspace)
    x = np.clip(_finite(rgb), 0.0, 1.0)
    if name in ("srgb", "rec709"):
        return x
    return from_linear(srgb_eotf(soft_unclip(x)), name)


# --- integer code values ------------------------------------------------------------------------

def quantize(values: np.ndarray, dtype: Any) -> np.ndarray:
    """Float code values -> unsigned integers of ``dtype`` (``uint8``, ``uint16``).

    NaN becomes 0; values are clipped to [0, 1], scaled by the type's maximum in float32 and
    rounded to nearest (half to even) - the conversion OpenImageIO applies, and the one every
    integer output of this package goes through (PNG/TIFF sinks of ``render``, raw frames of
    ``pomagan-post pipe``), so both write the same codes for the same values.
    """
    dtype = np.dtype(dtype)
    scale = np.float32(np.iinfo(dtype).max)
    x = np.clip(np.nan_to_num(np.asarray(values, np.float32), nan=0.0), 0.0, 1.0)
    return np.rint(x * scale).astype(dtype)


def dequantize(codes: np.ndarray) -> np.ndarray:
    """Unsigned integer code values -> float32 in [0, 1]: ``code * float32(1 / max)``, the
    conversion OpenImageIO applies when it reads 8/16-bit files as float."""
    codes = np.asarray(codes)
    return codes.astype(np.float32) * np.float32(1.0 / np.iinfo(codes.dtype).max)
