"""Encoder presets for ``pomagan-ffmpeg``, as data: one table, one row per preset.

Each row says what ``pomagan-post pipe`` writes (output kind, raw pixel format, alpha
convention) and how ffmpeg encodes it (encoder arguments, pixel format, container, audio).
``ffmpeg_filters/README.md`` shows the hand-written command line each row amounts to.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Preset", "PRESETS", "preset_names"]


@dataclass(frozen=True)
class Preset:
    """One encoder preset.

    Args:
        name: what ``--preset`` takes.
        description: one line for ``--help`` and the README.
        output: ``pomagan-post pipe --output``: ``rgba``, ``alpha``, ``fg`` or ``comp``.
        pipe_pix_fmt: ``pomagan-post pipe --out-pix-fmt`` (the raw format between the stages).
        premultiplied: colour convention of ``rgba`` output (``None`` for other outputs).
        encoder_args: ffmpeg video encoder arguments, ``-pix_fmt`` included.
        pix_fmt: the encoded pixel format (what ffprobe reports).
        extensions: accepted output extensions; the first is the default.
        yuv: the encoded format is Y'CbCr (RGB -> Y'CbCr matrix and range are set explicitly).
        even_size: the encoder needs even width and height (odd sizes are padded by one pixel).
        even_width: the encoder refuses an odd width (refused before running: no padding for VFX).
        transfers: transfer tags (ffmpeg names) the encoder can write into its frames; others
            are written as unknown rather than as a wrong value (``None``: any).
        audio_copy: audio codecs the container takes as they are (``None``: any).
        audio_codec: encoder for audio the container does not take as it is.
        encoder: ffmpeg encoder that must be present (checked before running).
        comp: default background for ``comp`` output.
    """

    name: str
    description: str
    output: str
    pipe_pix_fmt: str
    premultiplied: bool | None
    encoder_args: tuple[str, ...]
    pix_fmt: str
    extensions: tuple[str, ...]
    yuv: bool
    even_size: bool = False
    even_width: bool = False
    transfers: tuple[str, ...] | None = None
    audio_copy: tuple[str, ...] | None = None
    audio_codec: str = "aac"
    encoder: str = ""
    comp: str | None = None


# FFV1 version 3, every frame a keyframe, 4 slices with CRCs: a lossless archive that can be cut.
_FFV1_ARGS = ("-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4", "-slicecrc", "1")
_MOV_AUDIO = ("aac", "alac", "mp3", "ac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be",
              "pcm_s32le", "pcm_f32le")
_MP4_AUDIO = ("aac", "alac", "mp3", "ac3", "eac3", "opus", "flac")

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        name="prores4444",
        description="ProRes 4444 with alpha (yuva444p10le, premultiplied) in .mov: editorial/VFX interchange",
        output="rgba", pipe_pix_fmt="yuva444p10le", premultiplied=True,
        encoder_args=("-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le",
                      "-alpha_bits", "16", "-vendor", "apl0"),
        pix_fmt="yuva444p10le", extensions=(".mov",), yuv=True,
        audio_copy=_MOV_AUDIO, audio_codec="pcm_s24le", encoder="prores_ks"),
    Preset(
        name="prores4444-fast",
        description="ProRes 4444 with alpha from FFmpeg's faster prores_aw encoder: about 3x less CPU, "
                    "more loss; previews, dailies",
        output="rgba", pipe_pix_fmt="yuva444p10le", premultiplied=True,
        encoder_args=("-c:v", "prores_aw", "-profile:v", "4", "-pix_fmt", "yuva444p10le", "-vendor", "apl0"),
        pix_fmt="yuva444p10le", extensions=(".mov",), yuv=True, even_width=True,
        transfers=("bt709", "smpte2084", "arib-std-b67"),
        audio_copy=_MOV_AUDIO, audio_codec="pcm_s24le", encoder="prores_aw"),
    Preset(
        name="png-mov",
        description="16-bit PNG frames with straight alpha (rgba64be) in .mov: lossless RGBA",
        output="rgba", pipe_pix_fmt="rgba64le", premultiplied=False,
        encoder_args=("-c:v", "png", "-pix_fmt", "rgba64be"),
        pix_fmt="rgba64be", extensions=(".mov",), yuv=False,
        audio_copy=_MOV_AUDIO, audio_codec="pcm_s24le", encoder="png"),
    Preset(
        name="ffv1",
        description="FFV1 version 3, 16-bit RGB + straight alpha (gbrap16le) in .mkv: lossless archive",
        output="rgba", pipe_pix_fmt="rgba64le", premultiplied=False,
        encoder_args=(*_FFV1_ARGS, "-pix_fmt", "gbrap16le"),
        pix_fmt="gbrap16le", extensions=(".mkv",), yuv=False,
        audio_copy=None, encoder="ffv1"),
    Preset(
        name="vp9-alpha",
        description="VP9 with straight alpha (yuva420p) in .webm: web delivery (browsers composite it)",
        output="rgba", pipe_pix_fmt="rgba", premultiplied=False,
        encoder_args=("-c:v", "libvpx-vp9", "-pix_fmt", "yuva420p", "-b:v", "0", "-crf", "30",
                      "-row-mt", "1", "-deadline", "good", "-cpu-used", "2"),
        pix_fmt="yuva420p", extensions=(".webm",), yuv=True,
        audio_copy=("opus", "vorbis"), audio_codec="libopus", encoder="libvpx-vp9"),
    Preset(
        name="matte",
        description="the alpha matte alone, 16-bit grey, lossless FFV1 (gray16le) in .mkv",
        output="alpha", pipe_pix_fmt="gray16le", premultiplied=None,
        encoder_args=(*_FFV1_ARGS, "-pix_fmt", "gray16le"),
        pix_fmt="gray16le", extensions=(".mkv",), yuv=False,
        audio_copy=None, encoder="ffv1"),
    Preset(
        name="review",
        description="composite over a colour or image (--comp, default grey), H.264 yuv420p .mp4 for review",
        output="comp", pipe_pix_fmt="rgb24", premultiplied=None,
        encoder_args=("-c:v", "libx264", "-preset", "medium", "-crf", "18", "-pix_fmt", "yuv420p",
                      "-movflags", "+faststart"),
        pix_fmt="yuv420p", extensions=(".mp4", ".mov"), yuv=True, even_size=True,
        audio_copy=_MP4_AUDIO, audio_codec="aac", encoder="libx264", comp="grey"),
)}


def preset_names() -> tuple[str, ...]:
    return tuple(PRESETS)
