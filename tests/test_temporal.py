"""Temporal steadying (``pomagan_post.temporal``, ``render --temporal N``): mattes that flicker
get steadier and closer to the truth, a cut is not smeared across, and a farm chunk's frames
match a whole render's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pomagan_post.errors import BadInputError, MissingFramesError
from pomagan_post.renderer import render
from pomagan_post.temporal import TemporalSteady

from .imaging import cut_short, read_file, write_clip, write_file


def moving_square(frames: int = 8, size: tuple[int, int] = (96, 64), speed: float = 2.0, seed: int = 0
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(frames, true mattes): a textured square moving right over a textured background."""
    w, h = size
    rng = np.random.default_rng(seed)
    texture = lambda: cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.5)  # noqa: E731
    back, front = texture(), texture() * 0.5 + 0.5
    images, truth = [], []
    for t in range(frames):
        x = 20 + speed * t
        shift = np.float32([[1, 0, speed * t], [0, 1, 0]])
        moved = cv2.warpAffine(front, shift, (w, h), borderMode=cv2.BORDER_WRAP)
        cover = np.zeros((h, w), np.float32)
        cover[16:48, int(x):int(x) + 30] = 1.0
        images.append(moved * cover[..., None] + back * (1 - cover[..., None]))
        truth.append(cover)
    return images, truth


def noisy(truth: list[np.ndarray], seed: int = 1) -> list[np.ndarray]:
    """What a per-frame network gives: the truth plus blobs that come and go from frame to frame."""
    rng = np.random.default_rng(seed)
    out = []
    for cover in truth:
        blobs = cv2.GaussianBlur((rng.random(cover.shape) > 0.97).astype(np.float32), (0, 0), 2.0) * 4
        out.append(np.clip(cover + blobs - 0.3 * cover * blobs, 0, 1).astype(np.float32))
    return out


def steadied(images: list[np.ndarray], mattes: list[np.ndarray], radius: int) -> list[np.ndarray]:
    steady = TemporalSteady(radius)
    for number, (image, matte) in enumerate(zip(images, mattes)):
        steady.push(number, image, matte, image)
    result = steady.flush()
    assert [number for number, _, _ in result] == list(range(len(images)))
    return [alpha for _, _, alpha in result]


def test_steadying_brings_a_flickering_matte_closer_to_the_truth() -> None:
    images, truth = moving_square()
    own = noisy(truth)
    mse = lambda mattes: np.mean([np.square(m - g).mean() for m, g in zip(mattes, truth)])  # noqa: E731
    flicker = lambda mattes: np.mean([np.abs(mattes[i] - mattes[i - 1] - truth[i] + truth[i - 1]).mean()  # noqa: E731
                                      for i in range(1, len(mattes))])
    one, two = steadied(images, own, 1), steadied(images, own, 2)
    # measured: MSE 0.0202 -> 0.0152 / 0.0140, flicker 0.092 -> 0.033 / 0.023 (radius 1 / 2)
    assert mse(one) < 0.85 * mse(own) and mse(two) < 0.75 * mse(own)
    assert flicker(one) < 0.5 * flicker(own) and flicker(two) < 0.35 * flicker(own)


@pytest.mark.parametrize("speed", [2.0, 5.0])
def test_a_right_matte_on_a_moving_subject_stays_right(speed: float) -> None:
    """The flow carries the neighbours' edges along with the subject, and where it cannot (the
    edge itself) the pictures do not match: a true matte comes back as it went in."""
    images, truth = moving_square(speed=speed)
    for radius in (1, 2):
        out = steadied(images, truth, radius)
        for t in range(len(out)):
            change = np.abs(out[t] - truth[t])
            assert change.mean() < 0.002 and change.max() < 0.25  # measured: <= 0.0007, <= 0.15


def test_a_cut_is_not_averaged_across() -> None:
    """Frames 0-3 one shot, 4-7 another: a neighbour from the other side of the cut does not
    match and counts for (almost) nothing, so frame 3 keeps its shot's matte."""
    a, _ = moving_square(seed=3)
    b, _ = moving_square(seed=4)
    images = a[:4] + b[4:]
    mattes = [np.zeros((64, 96), np.float32)] * 4 + [np.ones((64, 96), np.float32)] * 4
    out = steadied(images, mattes, 2)
    assert out[3].mean() < 0.02 and out[4].mean() > 0.98


def test_frames_come_back_when_their_later_neighbours_are_in() -> None:
    images, truth = moving_square(frames=6)
    steady = TemporalSteady(2)
    for n in (10, 11, 12, 13):
        steady.push(n, images[n - 10], truth[n - 10], images[n - 10])
    assert [n for n, _, _ in steady.ready(through=13)] == [10, 11]
    steady.push(16, images[5], truth[5], images[5])  # 14 and 15 missing (a gap): not waited for
    assert [n for n, _, _ in steady.ready(through=16)] == [12, 13]
    with pytest.raises(ValueError, match="increasing"):
        steady.push(15, images[5], truth[5], images[5])
    assert [n for n, _, _ in steady.flush()] == [16]
    with pytest.raises(BadInputError, match="temporal radius"):
        TemporalSteady(9)


def test_a_chunk_renders_what_the_whole_shot_renders(tmp_path: Path, engine) -> None:
    """A farm chunk reads its neighbours beyond its range (matted, not written), so its frames
    match the whole render's; the setting is recorded and a resume with another is refused."""
    images, _ = moving_square(frames=8)
    for n, image in enumerate(images, 1):
        write_file(tmp_path / f"plate.{n:04d}.exr", image, "half")
    pattern = tmp_path / "plate.####.exr"
    whole = render(pattern, engine=engine, temporal=1, output_dir=tmp_path / "whole")
    assert whole.written == list(range(1, 9))
    chunk = render(pattern, engine=engine, temporal=1, frames="4-5", output_dir=tmp_path / "chunk")
    assert chunk.written == [4, 5]
    assert sorted(p.name for p in (tmp_path / "chunk").iterdir()) == [
        "plate_alpha.0004.exr", "plate_alpha.0005.exr", "plate_fg.0004.exr", "plate_fg.0005.exr"]
    assert render(pattern, engine=engine, frames="4-5", output_dir=tmp_path / "own").written == [4, 5]
    for kind in ("alpha", "fg"):
        for n in (4, 5):
            name = f"plate_{kind}.{n:04d}.exr"
            a, spec = read_file(tmp_path / "chunk" / name)
            np.testing.assert_allclose(a, read_file(tmp_path / "whole" / name)[0], atol=2e-3)
            assert json.loads(spec.get_string_attribute("pomagan:settings"))["temporal"] == 1
    # It changed the matte (the network's frames disagree a little), and the premultiplied
    # foreground was solved again for the steadied matte: colour stays within alpha.
    alpha = read_file(tmp_path / "chunk" / "plate_alpha.0004.exr")[0]
    assert np.abs(alpha - read_file(tmp_path / "own" / "plate_alpha.0004.exr")[0]).max() > 0.01
    fg = read_file(tmp_path / "chunk" / "plate_fg.0004.exr")[0]
    np.testing.assert_allclose(fg[..., 3], alpha[..., 0], atol=2e-3)
    with pytest.raises(BadInputError, match=r"temporal 1 \(this render: 0\)"):
        render(pattern, engine=engine, output_dir=tmp_path / "chunk", skip_existing=True)
    resumed = render(pattern, engine=engine, temporal=1, output_dir=tmp_path / "chunk", skip_existing=True,
                     frames="3-6")
    assert resumed.skipped_existing == [4, 5] and resumed.written == [3, 6]


def test_cli_takes_temporal_and_refuses_a_bad_radius(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "pomagan_post", "render", str(tmp_path / "x.png"),
                          "--temporal", "9"], capture_output=True, text=True)
    assert run.returncode == 2 and "--temporal" in run.stderr and "0<=x<=8" in run.stderr


def test_an_unreadable_neighbour_is_left_out_an_unreadable_frame_still_stops(tmp_path: Path, engine) -> None:
    images, _ = moving_square(frames=8)
    for n, image in enumerate(images, 1):
        write_file(tmp_path / f"plate.{n:04d}.exr", image, "half")
    (tmp_path / "plate.0006.exr").write_text("not an image")  # a corrupt frame
    pattern = tmp_path / "plate.####.exr"
    report = render(pattern, engine=engine, temporal=1, frames="3-5", output_dir=tmp_path / "a")
    assert report.written == [3, 4, 5] and report.failed == {} and report.ok
    with pytest.raises(MissingFramesError) as stopped:
        render(pattern, engine=engine, temporal=1, frames="5-7", output_dir=tmp_path / "b")
    assert stopped.value.frames == [6] and "plate.0006.exr" in str(stopped.value)
    skipped = render(pattern, engine=engine, temporal=1, frames="5-7", on_error="skip",
                     output_dir=tmp_path / "c")
    assert skipped.written == [5, 7] and list(skipped.failed) == [6]
    (tmp_path / "plate.0002.exr").unlink()  # a missing file is named as without --temporal
    with pytest.raises(MissingFramesError, match=r"missing frames 2 of .*plate.####.exr \(use --frames"):
        render(pattern, engine=engine, temporal=1, frames="1-3", output_dir=tmp_path / "d")
    # ... and stepped over as a neighbour: frame 3's neighbours are 1 and 4
    stepped = render(pattern, engine=engine, temporal=1, frames="3", output_dir=tmp_path / "e")
    assert stepped.written == [3] and stepped.ok


def test_neighbours_are_the_next_frames_of_the_shot_whatever_their_numbers(tmp_path: Path, engine) -> None:
    """A sequence numbered on twos is steadied like one numbered on ones."""
    images, _ = moving_square(frames=6)
    (tmp_path / "ones").mkdir()
    (tmp_path / "twos").mkdir()
    for i, image in enumerate(images):
        write_file(tmp_path / "ones" / f"plate.{1 + i:04d}.exr", image, "half")
        write_file(tmp_path / "twos" / f"plate.{1 + 2 * i:04d}.exr", image, "half")
    ones = render(tmp_path / "ones" / "plate.####.exr", engine=engine, temporal=1, outputs=["alpha"])
    twos = render(tmp_path / "twos" / "plate.####.exr", engine=engine, temporal=1, outputs=["alpha"],
                  frames="1-11x2")
    assert ones.written == [1, 2, 3, 4, 5, 6] and twos.written == [1, 3, 5, 7, 9, 11]
    for i in range(6):
        np.testing.assert_array_equal(read_file(tmp_path / "ones" / "plate_pomagan" / f"plate_alpha.{1 + i:04d}.exr")[0],
                                      read_file(tmp_path / "twos" / "plate_pomagan" / f"plate_alpha.{1 + 2 * i:04d}.exr")[0])


def test_a_video_chunk_renders_what_the_whole_clip_renders(tmp_path: Path, engine) -> None:
    clip = write_clip(tmp_path / "shot.mov", n=8, codec="prores_ks", pix_fmt="yuv422p10le")
    whole = render(clip, engine=engine, temporal=2, format="exr", outputs=["alpha"], start_frame=1001,
                   output_dir=tmp_path / "whole")
    chunk = render(clip, engine=engine, temporal=2, format="exr", outputs=["alpha"], start_frame=1001,
                   frames="1003-1004", output_dir=tmp_path / "chunk")
    assert whole.written == list(range(1001, 1009)) and chunk.written == [1003, 1004]
    # A finished video made with another radius is not kept as if it were this render's.
    movie = render(clip, engine=engine, temporal=1, outputs=["alpha"], output_dir=tmp_path / "movie")
    assert movie.ok
    with pytest.raises(BadInputError, match=r"a finished video rendered with other settings: temporal 1 "
                                            r"\(this render: 0\)"):
        render(clip, engine=engine, outputs=["alpha"], output_dir=tmp_path / "movie", skip_existing=True)
    kept = render(clip, engine=engine, temporal=1, outputs=["alpha"], output_dir=tmp_path / "movie",
                  skip_existing=True)
    assert kept.written == [] and kept.skipped_existing == list(range(8))
    for n in (1003, 1004):
        name = f"shot_alpha.{n}.exr"
        np.testing.assert_allclose(read_file(tmp_path / "chunk" / name)[0],
                                   read_file(tmp_path / "whole" / name)[0], atol=2e-3)


def test_a_video_cut_short_just_past_a_chunk_still_renders_the_chunk(tmp_path: Path, engine) -> None:
    """Frames past where the file's data ends are lost: as neighbours they are left out; as frames
    to render they stop the render (or are listed with --on-error skip), as without --temporal."""
    clip = cut_short(write_clip(tmp_path / "shot.mov", n=12, codec="prores_ks", pix_fmt="yuv422p10le",
                                index_first=True))  # frames 0-4 decode, 5-11 do not
    chunk = render(clip, engine=engine, temporal=2, frames="1-4", format="png", outputs=["alpha"],
                   output_dir=tmp_path / "a")
    assert chunk.written == [1, 2, 3, 4] and chunk.failed == {} and chunk.ok
    with pytest.raises(MissingFramesError, match=r"shot_cut.mov: frame\(s\) 5, 6 could not be decoded$"):
        render(clip, engine=engine, temporal=2, frames="3-6", format="png", outputs=["alpha"],
               output_dir=tmp_path / "b")
    skipped = render(clip, engine=engine, temporal=2, frames="3-6", format="png", outputs=["alpha"],
                     on_error="skip", output_dir=tmp_path / "c")
    assert skipped.written == [3, 4] and sorted(skipped.failed) == [5, 6]
