#!/usr/bin/env bash
# Everything issue 7 needs from a GPU machine, in one call; the tables come last.
#
#   device run:  command="bash benchmarks/gpu_session.sh"  carry=[".whl"]  timeout_s=600
#
# 1. makes the project importable (no pip install: PYTHONPATH, pomagan_train linked to training/)
#    and installs the wheels carried in .whl/ when av / OpenImageIO are missing there;
# 2. runs the GPU tests (POMAGAN_TEST_DEVICE=cuda pytest -m gpu);
# 3. runs benchmarks/run.py (model only, end to end, CPU line) and benchmarks/refine_bench.py;
# 4. prints the tables. Full logs and results.json go to $OUT (the device tool brings them back).
# Environment: FRAMES (default 32), COMPILE=1 to time torch.compile modes too (slow: compiles),
# TESTS_S / RUN_S / REFINE_S: time limits of the three parts (default 180 / 330 / 90 s; 0 skips
# refine_bench.py),
# RUN_ARGS: more options for run.py (e.g. "--sections e2e --sizes 4K").
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/pomagan-bench}"
mkdir -p "$OUT"

. scripts/gpu_env.sh || exit 1
"$PY" -c "import torch, av, OpenImageIO; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" || exit 1
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>/dev/null

echo "== GPU tests"
POMAGAN_TEST_DEVICE=cuda timeout "${TESTS_S:-180}" "$PY" -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 \
    | tee "$OUT/gpu_tests.log" | tail -n 15

echo "== benchmarks/run.py"
timeout "${RUN_S:-330}" "$PY" benchmarks/run.py --device cuda --frames "${FRAMES:-32}" ${RUN_ARGS:-} --out "$OUT/results.json" \
    > "$OUT/run.log" 2>&1
echo "run.py exit $?"
if [ "${COMPILE:-0}" = 1 ]; then
    timeout 200 "$PY" benchmarks/run.py --device cuda --sections model --variants fast,paper \
        --compile default,reduce-overhead --repeats 10 --out "$OUT/compile.json" > "$OUT/compile.log" 2>&1
    echo "compile run exit $?"
fi

if [ "${REFINE_S:-90}" != 0 ]; then
    echo "== benchmarks/refine_bench.py"
    timeout "${REFINE_S:-90}" "$PY" benchmarks/refine_bench.py --device cuda > "$OUT/refine.log" 2>&1
    echo "refine_bench exit $?"
fi

echo
tail -n 3 "$OUT/gpu_tests.log"
cat "$OUT/refine.log" 2>/dev/null
[ -f "$OUT/compile.log" ] && sed -n '/^=====/,$p' "$OUT/compile.log"
# The run's own summary (or, if it was cut short, what it printed so far).
if grep -q '^=====' "$OUT/run.log"; then sed -n '/^=====/,$p' "$OUT/run.log"; else tail -n 60 "$OUT/run.log"; fi
