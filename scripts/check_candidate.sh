#!/usr/bin/env bash
# The checks a candidate default checkpoint gets before it is shipped, in one command, on the CPU.
#
#   bash scripts/check_candidate.sh CKPT [OUT]          (OUT: default check_<name of CKPT>)
#
# Prints, for CKPT and for the bundled default side by side (measured the same way, the same day):
#   - the held-out set: alpha MSE etc. on 256 synthetic frames (split test, seed 7), the set
#     MODEL_CARD.md chooses on. Not the model card's test set (seed 1): that one is run once,
#     on the checkpoint chosen, so that it stays a test.
#   - close-ups: the same on 128 frames of seed 7 all framed tight (`--closeups 1`: the head 30 to
#     55 % of the height, shoulders across the frame), the framing of portrait photos where the
#     bundled model loses people.
#   - monochrome: the same on 128 frames of seed 7 all black and white (`--mono 1`: grey, toned,
#     or a trace of colour left), B&W film and archive footage.
#   - flicker on the example clip, each frame on its own and with --temporal 2, and the 8
#     synthetic clips with known mattes (scripts/temporal_check.py --known 8).
#   - the mean alpha in boxes that are certainly person / certainly background on the three
#     photos and black-and-white copies of the two in colour (scripts/real_photo_check.py --mono).
#   - how much the three photos' mattes change when each is cropped by a few pixels at one side
#     (scripts/framing_check.py: a steadiness the synthetic sets do not measure).
# and writes for looking at (the synthetic scores do not tell what real photographs show):
#   OUT/<name>/photos/*_panel.png   photo | alpha | over green (scripts/real_photo_check.py)
#   OUT/<name>/clip/                the example clip's composite over green, frames 0, 12, 23
# Run 9 and run 10 (MODEL_CARD.md) were each chosen on these (the framing check came later).
# About 6 minutes for both on two idle CPU cores (2026-11-29, with the close-up and monochrome sets).
# Needs the training extras: pip install -e ".[train]".
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ ! -f "$1" ]; then
    echo "usage: bash scripts/check_candidate.sh CKPT [OUT]  (CKPT: a checkpoint file)" >&2
    exit 2
fi
CKPT=$(realpath "$1")
OUT="${2:-check_$(basename "$CKPT" .safetensors)}"
PY="${PYTHON:-python}"
mkdir -p "$OUT"
for who in candidate bundled; do
    if [ "$who" = candidate ]; then weights=(--weights "$CKPT"); else weights=(); fi
    dir="$OUT/$who"
    mkdir -p "$dir"
    if [ "$who" = candidate ]; then echo "== candidate: $CKPT"; else echo "== the bundled default"; fi
    pomagan-train eval "${weights[@]}" --data heldout=synthetic:256 --size 320x192 --seed 7 --device cpu \
        --out "$dir/heldout" 2> "$dir/heldout.err" | sed -n '1p;3p'
    pomagan-train eval "${weights[@]}" --data closeups=synthetic:128 --size 320x192 --seed 7 --closeups 1 \
        --device cpu --out "$dir/closeups" 2> "$dir/closeups.err" | sed -n '3p'
    pomagan-train eval "${weights[@]}" --data mono=synthetic:128 --size 320x192 --seed 7 --mono 1 \
        --device cpu --out "$dir/mono" 2> "$dir/mono.err" | sed -n '3p'
    "$PY" scripts/temporal_check.py "${weights[@]}" 2> /dev/null | head -n 1
    "$PY" scripts/temporal_check.py "${weights[@]}" --temporal 2 --known 8 2> /dev/null | sed -n '1p;3,5p'
    "$PY" scripts/framing_check.py "${weights[@]}" 2> /dev/null | tail -n +2
    "$PY" scripts/real_photo_check.py "${weights[@]}" --mono --out "$dir/photos" 2> /dev/null \
        | sed -n "s/^\([a-z_]*\): .*mean alpha: \(.*\) ->.*/\1: \2/p"
    pomagan-post render examples/astronaut_pan.mp4 "${weights[@]}" --outputs comp --comp green -f png \
        --frames 0,12,23 -o "$dir/clip" -q --overwrite 2> "$dir/clip.err" || tail -n 1 "$dir/clip.err"
done
echo "look at: $OUT/candidate/photos, $OUT/candidate/clip (and the bundled default's beside them)"
