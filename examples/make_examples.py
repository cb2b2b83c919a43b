"""Regenerate the example still and clip from a public-domain photograph.

``skimage.data.astronaut()`` is NASA's portrait of astronaut Eileen Collins (public domain,
photograph by NASA). This script writes, next to itself:

* ``astronaut.png``: the 512x512 photograph, 8-bit sRGB.
* ``astronaut_pan.mp4``: 24 frames at 24 fps, 640x360, H.264 yuv420p (BT.709 tagged): a slow
  push-in and pan over the same photograph, so ``pomagan-post render`` has a clip to chew on.
* ``astronaut_roto.png``: a roto of the astronaut on the still, a 35-point polygon drawn by hand
  round her hair, suit and the helmet she holds (8-bit grey, white inside), for
  ``pomagan-post render examples/astronaut.png --roto examples/astronaut_roto.png``.

Needs ``scikit-image`` (only for the photograph), ``av`` and ``opencv-python-headless``::

    pip install scikit-image
    python examples/make_examples.py
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
SIZE = (640, 360)
FRAMES = 24
FPS = Fraction(24)


def photograph() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # uint8 [512, 512, 3], sRGB


def write_still(image: np.ndarray, path: Path) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


#: The roto's polygon on the 512x512 still, (x, y) clockwise from the top of her hair.
ROTO = [(215, 15), (250, 12), (280, 25), (298, 55), (300, 90), (292, 120), (288, 150), (300, 165),
        (302, 200), (305, 240), (340, 260), (355, 290), (362, 330), (372, 350), (400, 343), (440, 350),
        (470, 370), (490, 400), (505, 450), (511, 511), (20, 511), (20, 420), (25, 340), (40, 290),
        (60, 255), (100, 235), (118, 205), (115, 175), (135, 155), (165, 148), (172, 130), (166, 100),
        (165, 70), (175, 35), (195, 20)]


def write_roto(height: int, width: int, path: Path) -> None:
    shape = np.zeros((height, width), np.uint8)
    cv2.fillPoly(shape, [np.array(ROTO, np.int32)], 255)
    cv2.imwrite(str(path), shape, [cv2.IMWRITE_PNG_COMPRESSION, 9])


def pan_windows(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Each clip frame's crop of the photograph, (x, y, width, height): 16:9 windows that
    shrink (push in) and drift right."""
    windows = []
    for i in range(FRAMES):
        t = i / (FRAMES - 1)
        crop_w = width * (1.0 - 0.2 * t)  # 512 -> 410 px wide
        crop_h = crop_w * SIZE[1] / SIZE[0]
        cx = width / 2 + 20 * t
        cy = height * 0.3 - 30 * t  # keep the top of the head in frame as the crop tightens
        x0 = int(round(np.clip(cx - crop_w / 2, 0, width - crop_w)))
        y0 = int(round(np.clip(cy - crop_h / 2, 0, height - crop_h)))
        windows.append((x0, y0, int(round(crop_w)), int(round(crop_h))))
    return windows


def pan_frames(image: np.ndarray) -> list[np.ndarray]:
    """The clip's frames: the photograph cropped by :func:`pan_windows`, resized to 640x360."""
    return [cv2.resize(image[y0:y0 + ch, x0:x0 + cw], SIZE, interpolation=cv2.INTER_CUBIC)
            for x0, y0, cw, ch in pan_windows(*image.shape[:2])]


def write_clip(frames: list[np.ndarray], path: Path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "medium"}
        ctx = stream.codec_context
        ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = 1, 1, 1, 1
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def main() -> None:
    image = photograph()
    write_still(image, HERE / "astronaut.png")
    write_clip(pan_frames(image), HERE / "astronaut_pan.mp4")
    write_roto(*image.shape[:2], HERE / "astronaut_roto.png")
    for name in ("astronaut.png", "astronaut_pan.mp4", "astronaut_roto.png"):
        print(f"{HERE / name}: {(HERE / name).stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
