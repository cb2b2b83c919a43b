"""Image sequences and single images through OpenImageIO.

Reading: EXR (half/float, any data window), DPX (8/10/12/16-bit), PNG (8/16-bit), TIFF
(8/16-bit, 32-bit float), JPEG, HDR and whatever else OIIO reads; RGB, RGBA, gray (``Y``) and
gray+alpha files. Sources always yield float32 RGB ``[H, W, 3]`` in the file's own encoding:
gray is repeated to RGB, an input alpha channel is ignored (and never multiplied in: files are
opened with ``oiio:UnassociatedAlpha=1``). A file whose ``Orientation`` tag (EXIF/TIFF: a phone
or camera held sideways) says its pixels are stored turned or mirrored is read as viewers show
it, so the network sees people upright and outputs line up with what the user sees; outputs are
written that way up, with no tag (``info.metadata["orientation"]`` keeps the input's).

Writing: one file per frame, atomically (a hidden temp name in the same folder, then
``os.replace``), on a small thread pool. EXR: half float, zip (lossless), channels ``R,G,B,A``
(foreground) or ``A`` (alpha), data/display window, pixel aspect, fps, timecode (per frame) and
chromaticities carried over, and each frame's own camera, lens and take attributes (those of the
input frame of the same number: exposure, focus, capture date and key code change from frame to
frame); the alpha convention is written to the ``pomagan:alpha`` attribute
(``premultiplied`` or ``straight``). PNG: straight alpha by the PNG spec (values written as given,
never divided again by OIIO), 16-bit when the input had more than 8 bits. TIFF: the input's
bit depth; the alpha convention labelled in ExtraSamples (associated = premultiplied). DPX:
10-bit, header transfer carried over, and each frame's own film and device fields (key code,
frame id, slate, input device, ...). PNG and TIFF keep what OpenImageIO writes for them.
"""

from __future__ import annotations

import collections
import itertools
import os
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..colour import chromaticities_of, detect_colorspace, quantize, resolve_colorspace, written_by_ffmpeg
from ..errors import BadInputError, MissingFramesError, PomaganError, UnsupportedFormatError
from .base import ClipInfo, parse_rate
from .sequence import SequencePattern, as_pattern, discover, format_frame_list, missing_frames
from .streams import WriteBehind, default_writers
from .timecode import advance_timecode, timecode_from_words, timecode_words

__all__ = [
    "EXR_COMPRESSIONS",
    "IMAGE_FORMATS",
    "check_exr_compression",
    "ImageSequenceSource",
    "ImageSequenceSink",
    "read_image",
]

#: Output formats of :class:`ImageSequenceSink`: name -> (file extension, alpha convention).
IMAGE_FORMATS = {
    "exr": (".exr", "premultiplied"),
    "png": (".png", "straight"),
    "tiff": (".tif", "premultiplied"),
    "dpx": (".dpx", "straight"),
}
_EXTENSION_FORMAT = {".exr": "exr", ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".dpx": "dpx"}

#: EXR compressions a sink writes (OpenEXR's names as OpenImageIO spells them). The lossy ones
#: change the matte's values; zip (16 scanlines) is the default, zips (1 scanline) Nuke's own.
EXR_COMPRESSIONS = {
    "zip": "lossless, 16 scanlines (default)", "zips": "lossless, 1 scanline (Nuke's Write default)",
    "piz": "lossless wavelet", "rle": "lossless", "none": "uncompressed",
    "pxr24": "lossy for float, lossless for half", "b44": "lossy", "b44a": "lossy",
    "dwaa": "lossy", "dwab": "lossy",
}


def check_exr_compression(name: str) -> str:
    """``name`` if it is one of :data:`EXR_COMPRESSIONS`, else :class:`BadInputError`."""
    if name not in EXR_COMPRESSIONS:
        raise BadInputError(f"unknown EXR compression {name!r}; use one of {', '.join(EXR_COMPRESSIONS)}")
    return name


# Header attributes of the whole clip: the first frame's, carried into every output frame.
_CLIP_CARRIED = ("FramesPerSecond", "chromaticities", "dpx:Transfer", "dpx:Colorimetric", "dpx:Signal")
# Header attributes of the camera, lens and take: each input frame's own, carried into the output
# frames of its number. OpenEXR's standard attributes (ImfStandardAttributes.h, OpenEXR 3.2+) that
# describe the camera and the take, by the names OpenImageIO reads them as (capDate: DateTime,
# expTime: ExposureTime, aperture: FNumber, keyCode: smpte:KeyCode, owner: Copyright, comments:
# ImageDescription); not those of the image's layout or colour (originalDataWindow, xDensity,
# ascFramingDecisionList, whiteLuminance, adoptedNeutral) nor sensorAcquisitionRectangle, which
# OpenImageIO does not write back. Then TIFF's Artist and DocumentName, and the DPX orientation
# and film header fields OpenImageIO writes back (its film edge code is smpte:KeyCode).
_FRAME_CARRIED = (
    "cameraMake", "cameraModel", "cameraSerialNumber", "cameraFirmwareVersion", "cameraUuid",
    "cameraLabel", "cameraCCTSetting", "cameraTintSetting", "cameraColorBalance", "isoSpeed",
    "ExposureTime", "shutterAngle", "captureRate", "sensorCenterOffset", "sensorOverallDimensions",
    "sensorPhotositePitch", "lensMake", "lensModel", "lensSerialNumber", "lensFirmwareVersion",
    "nominalFocalLength", "pinholeFocalLength", "effectiveFocalLength", "entrancePupilOffset",
    "FNumber", "tStop", "focus", "DateTime", "utcOffset", "longitude", "latitude", "altitude",
    "smpte:KeyCode", "imageCounter", "reelName", "Copyright", "ImageDescription",
    "worldToCamera", "worldToNDC", "screenWindowCenter", "screenWindowWidth",
    "Artist", "DocumentName",
    "dpx:InputDevice", "dpx:InputDeviceSerialNumber", "dpx:SourceImageFileName", "dpx:SourceDateTime",
    "dpx:Format", "dpx:FramePosition", "dpx:SequenceLength", "dpx:HeldCount", "dpx:ShutterAngle",
    "dpx:FrameId", "dpx:SlateInfo",
)
#: Where a DPX's film header ends (bytes from the start of the file). In a file whose pixels
#: start before it (ffmpeg's), OpenImageIO reads pixels as its fields, ``_DPX_FILM_FIELDS``.
DPX_FILM_HEADER_END = 1920
_DPX_FILM_FIELDS = ("smpte:KeyCode", "dpx:Format", "dpx:FramePosition", "dpx:SequenceLength",
                    "dpx:HeldCount", "dpx:ShutterAngle", "dpx:FrameId", "dpx:SlateInfo")
#: The header attribute recording the settings a frame was rendered with (EXR, PNG). OIIO
#: drops unknown attributes from TIFF and a DPX's description holds 32 bytes, so those keep
#: ``pomagan:settings=<record>`` in TIFF's Software tag and in DPX's user data section.
SETTINGS_ATTRIBUTE = "pomagan:settings"
_SETTINGS_MARK = SETTINGS_ATTRIBUTE + "="
#: A sequence source's reason for a frame whose file is not there (``failed``).
MISSING_FILE = "missing file"


def missing_files(pattern: SequencePattern, missing: list[int]) -> MissingFramesError:
    """The error for frames of a sequence whose files are not there (``on_error="stop"``)."""
    return MissingFramesError(f"missing frames {format_frame_list(missing)} of {pattern} "
                              "(use --frames, or --on-error skip to render the rest)", missing)


def read_render_settings(path: str | os.PathLike[str]) -> str | None:
    """The ``pomagan:settings`` a rendered frame's header records, or None (none recorded, a
    format that keeps none, or a file that cannot be opened: it is then simply not compared)."""
    return frame_header(path)[1]


def frame_header(path: str | os.PathLike[str]) -> tuple[bool, str | None]:
    """(whether OpenImageIO opens ``path``'s header, the render settings it records or None),
    from one read of the header (its pixels are not read)."""
    try:
        inp = _open(Path(path))
    except (MissingFramesError, UnsupportedFormatError):
        return False, None
    try:
        spec = inp.spec()
        recorded = spec.get_string_attribute(SETTINGS_ATTRIBUTE)
        if recorded:
            return True, recorded
        user_data = spec.getattribute("dpx:UserData")
        for text in (spec.get_string_attribute("Software"),
                     "" if user_data is None else bytes(np.asarray(user_data, np.uint8)).decode("utf-8", "replace")):
            if _SETTINGS_MARK in text:
                return True, text.split(_SETTINGS_MARK, 1)[1].rstrip("\0") or None
        return True, None
    finally:
        inp.close()


#: The largest finite half-float value.
HALF_MAX = 65504.0


def fit_half(image: np.ndarray) -> np.ndarray:
    """``image`` with values beyond half float's range clamped to +-65504: converted as they
    are they would turn into infinities, which spread through any blur or merge in a comp. A
    copy only when something is out of range (NaN is left as it is)."""
    if image.size and max(float(np.nanmax(image, initial=0.0)), -float(np.nanmin(image, initial=0.0))) > HALF_MAX:
        return np.clip(image, -HALF_MAX, HALF_MAX)
    return image


# OIIO's oiio:ColorSpace label for our native colour spaces.
_LABELS = {"linear": "lin_rec709_scene", "srgb": "srgb_rec709_scene", "rec709": "g24_rec709",
           "cineon": "KodakLog", "pq": "pq_rec2020_display", "hlg": "hlg_rec2020_display"}


# --- reading ----------------------------------------------------------------------------------

def _one_line(message: str | None) -> str:
    """OpenImageIO's error text (often a line per library layer) as one line, repeats dropped."""
    lines: list[str] = []
    for line in (message or "").splitlines():
        line = " ".join(line.split())
        if line and line not in lines:
            lines.append(line)
    return "; ".join(lines)


def _open(path: Path) -> Any:
    import OpenImageIO as oiio

    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(str(path), config)
    if inp is None:
        message = _one_line(oiio.geterror()) or "unknown error"
        if not path.exists():
            raise MissingFramesError(f"missing file {path}")
        raise UnsupportedFormatError(f"cannot read {path}: {message}")
    if inp.format_name() == "openexr" and inp.spec().get_int_attribute("oiio:subimages", 1) > 1:
        _seek_picture(inp)
    return inp


def _seek_picture(inp: Any) -> None:
    """A multi-part EXR (a CG render writing its passes as parts, depth or a utility pass
    possibly first): go to the part holding the picture, the first with channels R, G and B
    (plain names before a layer's, e.g. ``beauty.R``), else the first part."""
    plain = layered = None
    part = 0
    while inp.seek_subimage(part, 0):
        names = [n.upper() for n in inp.spec().channelnames]
        if all(c in names for c in "RGB"):
            plain = part
            break
        if layered is None and all(c in [n.rsplit(".", 1)[-1] for n in names] for c in "RGB"):
            layered = part
        part += 1
    chosen = plain if plain is not None else layered if layered is not None else 0
    inp.seek_subimage(chosen, 0)


def _orientation(spec: Any) -> int:
    """The file's ``Orientation`` (1-8, EXIF/TIFF numbering), or 1 (as stored) without one, or
    for a data window that is not the whole frame at the origin (EXR/DPX crops are never
    turned by cameras, and a turned window has no meaning)."""
    value = spec.get_int_attribute("Orientation", 1)
    whole = (spec.x, spec.y, spec.width, spec.height) == (0, 0, spec.full_width, spec.full_height)
    return value if 2 <= value <= 8 and whole and spec.full_x == 0 and spec.full_y == 0 else 1


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Stored ``[H, W, C]`` pixels -> as shown for an ``Orientation`` tag (a view)."""
    if orientation in (5, 6, 7, 8):  # transposed: width and height swap
        turned = {5: pixels, 6: pixels[::-1], 7: pixels[::-1, ::-1], 8: pixels[:, ::-1]}[orientation]
        return turned.transpose(1, 0, 2)
    return {2: pixels[:, ::-1], 3: pixels[::-1, ::-1], 4: pixels[::-1]}.get(orientation, pixels)


def _windows(spec: Any) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """(data window, display window) as (x, y, width, height), as the image is shown."""
    if _orientation(spec) >= 5:
        return (0, 0, spec.height, spec.width), (0, 0, spec.height, spec.width)
    return ((spec.x, spec.y, spec.width, spec.height),
            (spec.full_x, spec.full_y, spec.full_width, spec.full_height))


def _size_text(window: tuple[int, ...]) -> str:
    """A display window as ``WxH`` (``WxH at (x, y)`` when it does not start at the origin)."""
    x, y, w, h = window
    return f"{w}x{h}" + (f" at ({x}, {y})" if x or y else "")


#: Where a DPX header field ends (bytes from the start of the file): the film header's frame
#: rate (offset 1724) and the television header's timecode (offset 1920). A file whose pixels
#: start before that has no such field (ffmpeg writes the 1,664-byte generic header alone), and
#: OIIO reads pixels in its place: a made-up timecode and frame rate.
DPX_FILM_RATE_END = 1728
DPX_TIMECODE_END = 1924


def _dpx_image_offset(path: Path) -> int | None:
    """A DPX file's offset to its image data (the generic header's second field, in the file's
    byte order), or None when the file does not start like a DPX."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return None
    if len(head) < 8 or head[:4] not in (b"SDPX", b"XPDS"):
        return None
    return int.from_bytes(head[4:8], "big" if head[:4] == b"SDPX" else "little")


def _attributes(spec: Any) -> dict[str, Any]:
    return {p.name: p.value for p in spec.extra_attribs}


def _named_attributes(spec: Any, names: tuple[str, ...]) -> list[tuple[str, str, Any]]:
    """``spec``'s attributes named in ``names`` as (name, type, value), as a sink writes them."""
    return [(p.name, str(p.type), p.value) for p in spec.extra_attribs if p.name in names]


def _rgb_indices(names: tuple[str, ...]) -> list[int]:
    """Which channels make R, G, B: named ones first, gray repeated, else the first three."""
    upper = [n.upper() for n in names]
    if all(c in upper for c in "RGB"):
        return [upper.index(c) for c in "RGB"]
    tail = [n.rsplit(".", 1)[-1] for n in upper]  # layered EXR: first layer with R, G, B
    if all(c in tail for c in "RGB"):
        return [tail.index(c) for c in "RGB"]
    if "Y" in upper:
        return [upper.index("Y")] * 3
    colour = [i for i, n in enumerate(upper) if n not in ("A", "ALPHA")] or [0]
    return colour[:3] if len(colour) >= 3 else [colour[0]] * 3


def _alpha_index(spec: Any) -> int | None:
    """The file's alpha channel: OIIO's ``alpha_channel``, else one named A / alpha."""
    if spec.alpha_channel >= 0:
        return int(spec.alpha_channel)
    upper = [n.upper().rsplit(".", 1)[-1] for n in spec.channelnames]
    return next((i for i, n in enumerate(upper) if n in ("A", "ALPHA")), None)


def _matte_of(data: np.ndarray, spec: Any) -> np.ndarray:
    """A matte file's matte, [H, W, 3] of equal channels: its alpha channel when it has one
    that says something (not opaque everywhere, or over black RGB: a roto written as RGBA),
    else its picture (R, G, B or a single channel, as read for a plate)."""
    alpha = _alpha_index(spec)
    if alpha is not None and spec.nchannels > 1:
        a = data[..., alpha]
        colour = data[..., [i for i in range(spec.nchannels) if i != alpha]]
        if not np.all(a >= 0.999) or not np.any(np.abs(colour) > 1e-6):
            return np.repeat(a[..., None], 3, axis=2)
    return data[..., _rgb_indices(tuple(spec.channelnames))]


def _read_pixels(
    path: Path, region: tuple[int, int, int, int] | None = None, matte: bool = False
) -> tuple[np.ndarray, Any, str]:
    """One image file -> (float32 RGB [H, W, 3] of ``region`` (x, y, w, h) or its data window,
    its spec, its format name). ``matte``: the file is a matte (see :func:`_matte_of`)."""
    import OpenImageIO as oiio

    inp = _open(path)
    try:
        spec = inp.spec()
        fmt = inp.format_name()
        if spec.deep:
            raise UnsupportedFormatError(f"{path}: deep images are not supported")
        data = inp.read_image(inp.current_subimage(), 0, 0, spec.nchannels, oiio.FLOAT)
        if data is None:
            raise UnsupportedFormatError(f"cannot read {path}: {_one_line(inp.geterror()) or 'corrupt data'}")
        if fmt == "jpeg":  # a JPEG cut short decodes, its missing part grey, with only an error set
            message = _one_line(inp.geterror())  # (libjpeg's other warnings, e.g. extraneous
            if "premature end" in message.lower():  # bytes before a marker, are harmless)
                raise UnsupportedFormatError(f"cannot read {path}: {message}")
    finally:
        inp.close()
    data = np.asarray(data, np.float32).reshape(spec.height, spec.width, spec.nchannels)
    picked = _matte_of(data, spec) if matte else data[..., _rgb_indices(tuple(spec.channelnames))]
    rgb = _orient(picked, _orientation(spec))
    (sx, sy, sw, sh), _ = _windows(spec)
    if region is not None and (sx, sy, sw, sh) != tuple(region):
        # Another data window than the clip's: place it in the clip's window, zeros elsewhere.
        rx, ry, rw, rh = region
        out = np.zeros((rh, rw, 3), np.float32)
        x0, y0 = max(rx, sx), max(ry, sy)
        x1, y1 = min(rx + rw, sx + sw), min(ry + rh, sy + sh)
        if x1 > x0 and y1 > y0:
            out[y0 - ry:y1 - ry, x0 - rx:x1 - rx] = rgb[y0 - sy:y1 - sy, x0 - sx:x1 - sx]
        rgb = out
    return np.ascontiguousarray(rgb), spec, fmt


def read_image(path: str | os.PathLike[str], colorspace: str | None = None) -> tuple[np.ndarray, str]:
    """A single image -> (float32 RGB [H, W, 3] in its own encoding, its colour space name)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"image not found: {path}")
    rgb, spec, fmt = _read_pixels(path)
    cs = resolve_colorspace(colorspace) if colorspace else detect_colorspace(
        fmt, _attributes(spec), str(spec.format))
    return rgb, cs


def read_matte(path: str | os.PathLike[str], region: tuple[int, int, int, int] | None = None
               ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A matte image -> (its matte as float32 [H, W, 3] of equal channels: its alpha channel when
    it has a meaningful one, else its picture; placed by pixel coordinates in ``region`` (x, y,
    w, h) when given, else its own data window; its display window)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"image not found: {path}")
    rgb, spec, _ = _read_pixels(path, region, matte=True)
    return rgb, _windows(spec)[1]


def _bits(spec: Any) -> int:
    bits = spec.get_int_attribute("oiio:BitsPerSample", 0)
    return int(bits) if bits else int(spec.format.size()) * 8


class ImageSequenceSource:
    """Frames of an image sequence (or one image) as float32 RGB in the file's own encoding.

    Args:
        path: a pattern (``plate.####.exr``, ``%04d``, ``$F4``, ``@``), a single image or a folder
            holding one sequence.
        frames: frame range string (``"1001-1100x2"``) or list; default every frame from the
            first to the last on disk.
        on_error: ``"stop"`` raises :class:`MissingFramesError` (with the frame numbers) for a
            missing or unreadable frame; ``"skip"`` leaves it out and records it in
            :attr:`failed` (frame -> reason).
        colorspace: override of the detected colour space (see :mod:`pomagan_post.colour`).
        matte: the files are mattes: each frame comes as its alpha channel (repeated in R, G, B)
            when it has a meaningful one (see :func:`read_matte`), else as its picture.
        window: ``"data"`` (default), ``"display"`` or an (x, y, w, h) region: the region frames
            come in. ``"display"`` gives the picture as shown (the display window: overscan cut
            off, an autocropped frame placed in the full frame) for outputs that cannot carry
            EXR's windows (PNG, TIFF, DPX, video); a region places each frame in it by pixel
            coordinates (a garbage matte read in its shot's region).
        workers: frames read at once, ahead of the consumer, on that many threads (default:
            half the CPU cores, 2 to 8); they still come out in order. One at a time, a UHD
            EXR half zip sequence read at 4.1 fps on a 16-core machine (decompression and
            conversion to float on one thread).
        carry: keep each frame's own camera, lens and take attributes, read with its pixels as
            the frames are iterated, until :meth:`take_attributes` takes them (a render hands
            them to its outputs); off, nothing is kept.

    With ``window="data"`` the clip's region is the data windows of all its frames on disk
    together (whichever ``frames`` are asked for, so farm chunks and resumed renders agree): an
    EXR sequence's headers are all read up front (a header each, no pixels), so a window that
    grows or moves during the shot (autocropped CG renders, a person walking out of the first
    frame's bounding box) loses no pixel; each frame is placed into that region (zeros outside
    its own window, as EXR defines). Other formats take the first frame's data window. A frame with another picture
    size (display window) is refused like an unreadable one (``on_error``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        frames: str | list[int] | None = None,
        on_error: str = "stop",
        colorspace: str | None = None,
        window: str | tuple[int, int, int, int] = "data",
        matte: bool = False,
        workers: int | None = None,
        carry: bool = False,
    ) -> None:
        self.workers = max(1, int(workers or default_writers()))
        # frame -> its attributes to carry, from reading it until taken (the frames in flight)
        self._frame_attributes: dict[int, list[tuple[str, str, Any]]] | None = {} if carry else None
        self._frame_names = _FRAME_CARRIED
        if on_error not in ("stop", "skip"):
            raise BadInputError(f"on-error must be stop or skip, not {on_error!r}")
        if not (window in ("data", "display") or (isinstance(window, tuple) and len(window) == 4)):
            raise BadInputError(f"window must be data, display or (x, y, w, h), not {window!r}")
        self.window = window
        self.matte = matte
        self.sequence, wanted = discover(path, frames)
        self.pattern: SequencePattern = self.sequence.pattern
        self.on_error = on_error
        self.failed: dict[int, str] = {}
        missing = missing_frames(self.sequence, wanted)
        if missing and on_error == "stop":
            raise missing_files(self.pattern, missing)
        for frame in missing:
            self.failed[frame] = MISSING_FILE
        present = [f for f in wanted if f not in self.failed]
        self.info = self._probe(present, colorspace)

    def _probe(self, frames: list[int], colorspace: str | None) -> ClipInfo:
        """Header of the first readable frame -> ClipInfo (unreadable ones count as failed)."""
        for index, frame in enumerate(frames):
            path = self.pattern.path(frame)
            try:
                inp = _open(path)
            except (UnsupportedFormatError, MissingFramesError) as exc:
                if self.on_error == "stop":
                    raise MissingFramesError(f"frame {frame}: {exc}", [frame]) from None
                self.failed[frame] = str(exc)
                continue
            spec = inp.spec()
            fmt = inp.format_name()
            inp.close()
            pixels_at = _dpx_image_offset(path) if fmt == "dpx" else None
            if pixels_at is not None and pixels_at < DPX_FILM_HEADER_END:  # no film header
                self._frame_names = tuple(n for n in _FRAME_CARRIED if n not in _DPX_FILM_FIELDS)
            info = self._info_from(spec, fmt, frames[index:], colorspace, pixels_at)
            display = tuple(info.metadata["display_window"])
            if isinstance(self.window, tuple):
                info.metadata["data_window"] = tuple(int(v) for v in self.window)
                info.width, info.height = int(self.window[2]), int(self.window[3])
            elif self.window == "display" and tuple(info.metadata["data_window"]) != display:
                info.metadata["source_data_window"] = info.metadata["data_window"]
                info.metadata["data_window"] = display
                info.width, info.height = display[2], display[3]
            elif fmt == "openexr" and len(self.sequence.frames) > 1 and self.window == "data":
                self._widen_to_all_windows(info)
            return info
        raise MissingFramesError(f"no readable frame in {self.pattern}", sorted(self.failed))

    def _info_from(self, spec: Any, fmt: str, frames: list[int], colorspace: str | None,
                   pixels_at: int | None) -> ClipInfo:
        """``pixels_at``: a DPX's offset to its pixels (:func:`_dpx_image_offset`)."""
        attrs = _attributes(spec)
        fps = attrs.get("FramesPerSecond")
        fps = Fraction(int(fps[0]), int(fps[1])) if isinstance(fps, tuple) and fps[1] else None
        dpx_rate = attrs.get("dpx:FrameRate")  # DPX: a float (23.976 as 23.9759998...)
        if pixels_at is not None and pixels_at < DPX_FILM_RATE_END:
            dpx_rate = None  # no film header: OIIO read pixels as the field
        if fps is None and isinstance(dpx_rate, float) and 1 <= dpx_rate <= 1000:
            fps = parse_rate(dpx_rate)
        words = spec.getattribute("smpte:TimeCode")  # the raw words keep the drop-frame flag
        if pixels_at is not None and pixels_at < DPX_TIMECODE_END:
            words = None  # no television header: what OIIO read there is pixels
        tc = timecode_from_words(words) if isinstance(words, tuple) and words else None
        if fmt == "dpx" and written_by_ffmpeg(attrs):  # its fixed "Linear" says nothing
            attrs = {k: v for k, v in attrs.items() if k not in ("dpx:Transfer", "dpx:Colorimetric")}
        pixel_type = str(spec.format)
        cs = resolve_colorspace(colorspace) if colorspace else detect_colorspace(fmt, attrs, pixel_type)
        data_window, display_window = _windows(spec)
        orientation = _orientation(spec)
        pixel_aspect = float(attrs.get("PixelAspectRatio", 1.0) or 1.0)
        if orientation >= 5:
            pixel_aspect = 1.0 / pixel_aspect  # a turned pixel is as tall as it was wide
        metadata = {
            "format": fmt,
            "pixel_type": pixel_type,
            "bits": _bits(spec),
            "data_window": data_window,
            "display_window": display_window,
            # the first frame's Orientation tag; pixels come out as it says they are shown
            "orientation": orientation,
            "stored_size": (spec.width, spec.height),
            "has_alpha": _alpha_index(spec) is not None,
            "attributes": [a for a in _named_attributes(spec, _CLIP_CARRIED) if a[0] in attrs],
            "pattern": str(self.pattern),
            "frame_origin": frames[0],  # the frame whose header gave ``timecode``
        }
        return ClipInfo(
            width=data_window[2],
            height=data_window[3],
            frames=list(frames),
            colorspace=cs,
            channels=spec.nchannels,
            fps=fps,
            pixel_aspect=pixel_aspect,
            timecode=tc,
            metadata=metadata,
        )

    def _widen_to_all_windows(self, info: ClipInfo) -> None:
        """Sets ``info``'s data window (and size) to the union of the data windows of every
        frame of the sequence on disk, not only the frames asked for: the network sees each
        frame in that region, so a frame's matte is the same bits whether the whole shot, a
        farm chunk or a resumed render computes it. Frames that cannot be opened or show
        another picture size count for nothing here: reading them reports them, by number."""
        display = tuple(info.metadata["display_window"])
        x0, y0, w, h = info.metadata["data_window"]
        x1, y1 = x0 + w, y0 + h
        for frame in self.sequence.frames:
            try:
                inp = _open(self.pattern.path(frame))
            except (UnsupportedFormatError, MissingFramesError):
                continue
            (x, y, fw, fh), shown = _windows(inp.spec())
            inp.close()
            if shown == display and fw > 0 and fh > 0:
                x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x + fw), max(y1, y + fh)
        window = (x0, y0, x1 - x0, y1 - y0)
        if window != tuple(info.metadata["data_window"]):
            info.metadata["data_window"] = window
            info.width, info.height = window[2], window[3]

    @property
    def region(self) -> tuple[int, int, int, int]:
        return tuple(self.info.metadata["data_window"])  # type: ignore[return-value]

    def check_headers(self) -> dict[int, str]:
        """Reads every frame's header (no pixels) and returns the frames a render would refuse:
        unreadable, or a picture of another size than the first frame's (frame -> reason).
        Cheap: a header each, for checking a shot before a long render."""
        bad: dict[int, str] = {}
        for frame in self.info.frames:
            path = self.pattern.path(frame)
            try:
                inp = _open(path)
            except (UnsupportedFormatError, MissingFramesError) as exc:
                bad[frame] = str(exc)
                continue
            mismatch = self._other_size(path, inp.spec())
            inp.close()
            if mismatch:
                bad[frame] = mismatch
        return bad

    def _other_size(self, path: Path, spec: Any) -> str | None:
        """Why a frame whose picture (display window) is not the sequence's is refused, or None."""
        shown, expected = _windows(spec)[1], tuple(self.info.metadata["display_window"])
        if shown == expected:
            return None
        return (f"{path.name} is {_size_text(shown)}, the sequence is {_size_text(expected)} "
                f"(frame {self.info.metadata['frame_origin']})")

    def read(self, frame: int) -> np.ndarray:
        """One frame, float32 RGB [H, W, 3]; raises :class:`MissingFramesError` naming the frame."""
        return self._read(frame)[0]

    def take_attributes(self, frame: int) -> list[tuple[str, str, Any]]:
        """The camera, lens and take attributes of a frame read by iterating (``carry``), as
        (name, type, value) for :meth:`ImageSequenceSink.write`; they are forgotten here. None
        kept: an empty list."""
        return self._frame_attributes.pop(frame, []) if self._frame_attributes is not None else []

    def _read(self, frame: int) -> tuple[np.ndarray, Any]:
        """:meth:`read`, with the frame's spec."""
        path = self.pattern.path(frame)
        try:
            rgb, spec, _ = _read_pixels(path, self.region, self.matte)
        except (UnsupportedFormatError, MissingFramesError) as exc:
            raise MissingFramesError(f"frame {frame}: {exc}", [frame]) from None
        # Another picture size (display window) than the first frame's: a frame from some
        # other render or a proxy mixed in, not this shot; refused rather than padded with black.
        mismatch = self._other_size(path, spec)
        if mismatch:
            raise MissingFramesError(f"frame {frame}: {mismatch}", [frame])
        return rgb, spec

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        todo = iter([frame for frame in self.info.frames if frame not in self.failed])
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"read {self.pattern.path(0).name}")
        ahead: collections.deque[tuple[int, Future[tuple[np.ndarray, Any]]]] = collections.deque()
        try:
            for frame in itertools.islice(todo, self.workers):
                ahead.append((frame, pool.submit(self._read, frame)))
            while ahead:
                frame, reading = ahead.popleft()
                following = next(todo, None)
                if following is not None:
                    ahead.append((following, pool.submit(self._read, following)))
                try:
                    rgb, spec = reading.result()
                except MissingFramesError as exc:
                    if self.on_error == "stop":
                        raise
                    self.failed[frame] = str(exc)
                    continue
                if self._frame_attributes is not None:
                    self._frame_attributes[frame] = _named_attributes(spec, self._frame_names)
                yield frame, rgb
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def __len__(self) -> int:
        return len(self.info.frames)

    def close(self) -> None:
        """Nothing stays open between frames."""

    def __enter__(self) -> "ImageSequenceSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ImageSequenceSink:
    """Writes one image file per frame, atomically, behind the caller on a thread pool.

    Args:
        pattern: where frames go: a pattern (``out/a.####.exr``) or, for one image, a path.
        info: the source's clip description (windows, fps, timecode, pixel aspect, bits).
        kind: ``"alpha"`` (1 channel), ``"fg"`` (RGBA) or ``"comp"`` (RGB); for labels only.
        alpha_mode: ``"premultiplied"`` or ``"straight"``: how the given RGBA data is stored
            (the caller converts; this labels the file). Default: the format's convention.
        colorspace: colour space label for colour outputs (default ``info.colorspace``).
        pixel_type: ``"half"``, ``"float"``, ``"uint8"``, ``"uint16"``; default per format
            (EXR half, PNG 16-bit when the input had more than 8 bits, TIFF as the input,
            DPX 10-bit).
        workers: writer threads (default :func:`~pomagan_post.io.streams.default_writers`);
            frames are written in any order, each to its own numbered file.
        compression: EXR compression, a key of :data:`EXR_COMPRESSIONS` (other formats ignore it).
        settings: the render's settings (see :func:`read_render_settings`), recorded in EXR and
            PNG headers as ``pomagan:settings``, in TIFF's Software tag and DPX's user data as
            ``pomagan:settings=<record>``.
    """

    def __init__(
        self,
        pattern: str | os.PathLike[str] | SequencePattern,
        info: ClipInfo,
        kind: str = "fg",
        alpha_mode: str | None = None,
        colorspace: str | None = None,
        pixel_type: str | None = None,
        workers: int | None = None,
        compression: str = "zip",
        settings: str | None = None,
    ) -> None:
        pattern = as_pattern(pattern)
        fmt = _EXTENSION_FORMAT.get(pattern.extension)
        if fmt is None:
            raise UnsupportedFormatError(
                f"cannot write {pattern.extension or 'files without an extension'}: "
                f"use one of {', '.join(sorted(_EXTENSION_FORMAT))}")
        if kind not in ("alpha", "fg", "comp"):
            raise BadInputError(f"kind must be alpha, fg or comp, not {kind!r}")
        self.pattern = pattern
        self.info = info
        self.kind = kind
        self.format = fmt
        self.alpha_mode = alpha_mode or IMAGE_FORMATS[fmt][1]
        if self.alpha_mode not in ("premultiplied", "straight"):
            raise BadInputError(f"alpha_mode must be premultiplied or straight, not {alpha_mode!r}")
        self.colorspace = colorspace or info.colorspace
        self.pixel_type = pixel_type or self._default_pixel_type()
        self.compression = check_exr_compression(compression)
        self.settings = settings
        self.written: list[int] = []
        self._counter = itertools.count()
        self._temps: set[Path] = set()
        pattern.directory.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temps()
        workers = max(1, int(workers or default_writers()))
        self._writer = WriteBehind(workers=workers, max_pending=workers + 2)
        self._closed = False

    def _default_pixel_type(self) -> str:
        meta = self.info.metadata
        bits = int(meta.get("bits", meta.get("bit_depth", 8)))
        source_type = str(meta.get("pixel_type", "uint8"))
        if self.format == "exr":
            return "half"
        if self.format == "png":
            return "uint16" if bits > 8 else "uint8"
        if self.format == "tiff":
            if source_type in ("half", "float", "double"):
                return "float"
            return "uint16" if bits > 8 else "uint8"
        return "uint16"  # dpx, 10 bits per sample

    def path(self, frame: int) -> Path:
        return self.pattern.path(frame)

    def _temp_name(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.{os.getpid()}-{next(self._counter)}.tmp")

    def _remove_stale_temps(self) -> None:
        """Temp files a crashed run left for frames this sink will write."""
        finals = {self.pattern.path(f).name for f in self.info.frames}
        try:
            names = os.listdir(self.pattern.directory)
        except OSError:
            return
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                final = name[1:].rsplit(".", 2)[0]
                if final in finals:
                    try:
                        os.remove(self.pattern.directory / name)
                    except OSError:
                        pass

    def _spec(self, frame: int, channels: int, attributes: Sequence[tuple[str, str, Any]] = ()) -> Any:
        import OpenImageIO as oiio

        meta = self.info.metadata
        x, y, w, h = meta.get("data_window", (0, 0, self.info.width, self.info.height))
        spec = oiio.ImageSpec(self.info.width, self.info.height, channels, self.pixel_type)
        if self.format == "exr":
            spec.x, spec.y = x, y
            fx, fy, fw, fh = meta.get("display_window", (x, y, w, h))
            spec.full_x, spec.full_y, spec.full_width, spec.full_height = fx, fy, fw, fh
        if channels == 1:
            spec.channelnames = ("A",) if self.format in ("exr", "dpx") else ("Y",)
        elif channels == 4:
            spec.channelnames = ("R", "G", "B", "A")
            spec.alpha_channel = 3
        for name, type_name, value in [*meta.get("attributes", []), *attributes]:
            if name.startswith("dpx:") and self.format != "dpx":
                continue
            try:
                spec.attribute(name, oiio.TypeDesc(type_name), value)
            except Exception:  # an attribute this OIIO cannot re-type: not worth a failed frame
                pass
        if self.info.fps:
            spec.attribute("FramesPerSecond", oiio.TypeRational,
                           (self.info.fps.numerator, self.info.fps.denominator))
            if self.format == "dpx":  # DPX keeps its own float field
                spec.attribute("dpx:FrameRate", float(self.info.fps))
        spec.attribute("PixelAspectRatio", float(self.info.pixel_aspect))
        if self.info.timecode and self.info.frames:
            origin = int(meta.get("frame_origin", self.info.frames[0]))
            tc = advance_timecode(self.info.timecode, frame - origin, self.info.fps)
            spec.attribute("smpte:TimeCode", oiio.TypeTimeCode, timecode_words(tc, self.info.fps))
        carried = {name for name, _, _ in meta.get("attributes", [])}
        if self.kind != "alpha" and not (self.format == "dpx" and "dpx:Transfer" in carried):
            # (DPX: OIIO would turn the label into a transfer that overrides the carried one.)
            spec.attribute("oiio:ColorSpace", _LABELS.get(self.colorspace, self.colorspace))
            if self.format == "dpx" and self.colorspace == "rec709":  # OIIO writes "Undefined"
                spec.attribute("dpx:Transfer", "ITU-R 709-4")
            primaries = chromaticities_of(self.colorspace) if self.format == "exr" else None
            if primaries is not None and ("chromaticities" in carried or primaries != chromaticities_of("linear")):
                # the primaries of the space written, not the input's (--colorspace changes it)
                spec.attribute("chromaticities", oiio.TypeDesc("float[8]"), primaries)
        if channels == 4:
            spec.attribute("pomagan:alpha", self.alpha_mode)
            # PNG: values are written as given (never divided by OIIO); TIFF/DPX: label straight.
            if self.alpha_mode == "straight" or self.format == "png":
                spec.attribute("oiio:UnassociatedAlpha", 1)
        if self.settings and self.format in ("exr", "png"):
            spec.attribute(SETTINGS_ATTRIBUTE, self.settings)
        elif self.settings and self.format == "tiff":
            spec.attribute("Software", f"pomagan-post; {_SETTINGS_MARK}{self.settings}")
        elif self.settings and self.format == "dpx":
            record = np.frombuffer(f"{_SETTINGS_MARK}{self.settings}".encode(), np.uint8)
            spec.attribute("dpx:UserData", oiio.TypeDesc(f"uint8[{record.size}]"), record)
        if self.format == "exr":
            spec.attribute("compression", self.compression)
        elif self.format == "tiff":
            spec.attribute("compression", "zip")
        elif self.format == "dpx":
            spec.attribute("oiio:BitsPerSample", 10)
        return spec

    def _write_file(self, frame: int, image: np.ndarray, attributes: Sequence[tuple[str, str, Any]]) -> None:
        import OpenImageIO as oiio

        # Conversions run here, on the writer threads, not on the caller's (the render loop).
        if self.pixel_type in ("uint8", "uint16") and self.format != "dpx":
            image = quantize(image, self.pixel_type)  # the rounding pomagan-post pipe uses too
        elif self.pixel_type.startswith("uint"):
            image = np.clip(image, 0.0, 1.0)
        elif self.pixel_type == "half":
            image = fit_half(image)
        image = np.ascontiguousarray(image)
        path = self.pattern.path(frame)
        temp = self._temp_name(path)
        self._temps.add(temp)
        try:
            out = oiio.ImageOutput.create(str(path))
            if out is None:
                raise UnsupportedFormatError(f"cannot write {path}: {oiio.geterror()}")
            spec = self._spec(frame, image.shape[-1], attributes)
            if not out.open(str(temp), spec):  # (a folder that takes no files, a full disk)
                raise PomaganError(f"cannot write {path}: {_one_line(out.geterror())}")
            ok = out.write_image(image)
            ok = out.close() and ok
            if not ok:
                raise OSError(f"writing {path} failed: {out.geterror()}")
            os.replace(temp, path)
        except BaseException:
            try:
                os.remove(temp)
            except OSError:
                pass
            raise
        finally:
            self._temps.discard(temp)
        self.written.append(frame)

    def write(self, frame_number: int, image: np.ndarray,
              attributes: Sequence[tuple[str, str, Any]] = ()) -> None:
        """Queue one frame, float32 [H, W, C] (C = 1, 3 or 4), for writing (the caller must not
        change ``image`` afterwards), with its input frame's own header ``attributes`` (name,
        type, value; :meth:`ImageSequenceSource.take_attributes`), written where the format
        keeps them."""
        if self._closed:
            raise BadInputError("write() on a closed sink")
        image = np.asarray(image, np.float32)
        if image.ndim == 2:
            image = image[..., None]
        if image.shape[:2] != (self.info.height, self.info.width) or image.shape[2] not in (1, 3, 4):
            raise BadInputError(
                f"frame {frame_number}: expected [{self.info.height}, {self.info.width}, 1|3|4], "
                f"got {list(image.shape)}")
        self._writer.submit(self._write_file, frame_number, image, attributes)

    def close(self) -> None:
        """Wait for every queued frame; raise the first write error."""
        if self._closed:
            return
        self._closed = True
        self._writer.wait()

    def abort(self) -> None:
        """Drop queued frames, remove temp files; finished frames stay (they are complete)."""
        self._closed = True
        self._writer.cancel()
        for temp in list(self._temps):
            try:
                os.remove(temp)
            except OSError:
                pass

    def __enter__(self) -> "ImageSequenceSink":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
