#!/usr/bin/env bash
# Create .venv (if missing) and install the pinned requirements and the package into it.
# On a CUDA machine set ASSIGNMENT4_CUDA=1 to get tensorflow[and-cuda] (same version).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import assignment4, tensorflow, keras, nbval" 2>/dev/null \
   || [ requirements.txt -nt .venv/.installed ]; then
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -r requirements.txt
  if [ "${ASSIGNMENT4_CUDA:-0}" = "1" ]; then
    python -m pip install --quiet "tensorflow[and-cuda]==$(python -c 'import tensorflow as t; print(t.__version__)')"
  fi
  python -m pip install --quiet --no-deps -e .
  touch .venv/.installed
fi
