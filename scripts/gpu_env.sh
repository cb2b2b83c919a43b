# Sourced by the scripts a lent GPU machine runs: makes the checkout importable without pip
# (PYTHONPATH; pomagan_train linked to training/) and installs the wheels carried in .whl/
# (av, OpenImageIO, pymatting) when the machine lacks them. Sets PY (the python to run:
# $PYTHON, else python3) and unbuffered Python output (the device tool returns the output tail).
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
site=/tmp/pomagan-site
mkdir -p "$site"
ln -sfn "$PWD/training" "$site/pomagan_train"
if ! "$PY" -c "import av, OpenImageIO, pymatting" 2>/dev/null; then
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "av / OpenImageIO / pymatting missing and no .whl/ carried: see benchmarks/README.md" >&2
        exit 2
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .whl/*.whl || exit 1
fi
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
