#!/usr/bin/env bash
# Create .venv (if missing) and install the pinned requirements and the package into it.
# On a CUDA machine (Colab's GPU runtime included) set ASSIGNMENT4_CUDA=1 to get
# tensorflow[and-cuda] (same version): the CUDA and cuDNN wheels, then a check that
# TensorFlow sees the GPU. The variant is recorded in .venv/.installed, so setting or unsetting
# ASSIGNMENT4_CUDA later installs again. ASSIGNMENT4_SETUP_DRY_RUN=1 prints the pip commands
# instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DRY=${ASSIGNMENT4_SETUP_DRY_RUN:-0}
if [ "${ASSIGNMENT4_CUDA:-0}" = "1" ]; then VARIANT=cuda; else VARIANT=cpu; fi

run() {
  if [ "$DRY" = "1" ]; then echo "would run: $*"; else "$@"; fi
}

if [ ! -x .venv/bin/python ]; then
  run "$PY" -m venv .venv
fi
if [ "$DRY" = "1" ] && [ ! -f .venv/bin/activate ]; then
  echo "would install the $VARIANT variant into a new .venv"
  exit 0
fi
. .venv/bin/activate
if ! python -c "import assignment4, tensorflow, keras, nbval, tensorboard" 2>/dev/null \
   || [ requirements.txt -nt .venv/.installed ] \
   || [ "$(cat .venv/.installed 2>/dev/null)" != "$VARIANT" ]; then
  run python -m pip install --quiet --upgrade pip
  run python -m pip install --quiet -r requirements.txt
  if [ "$VARIANT" = "cuda" ]; then
    TF_VERSION=$(sed -n 's/^tensorflow==//p' requirements.txt)
    run python -m pip install --quiet "tensorflow[and-cuda]==$TF_VERSION"
    run python -c "import sys, tensorflow as tf; gpus = tf.config.list_physical_devices('GPU'); \
print('GPUs:', [g.name for g in gpus]) if gpus else sys.exit('ASSIGNMENT4_CUDA=1, but \
TensorFlow sees no GPU: check nvidia-smi and the driver, or unset ASSIGNMENT4_CUDA.')"
  fi
  run python -m pip install --quiet --no-deps -e .
  if [ "$DRY" = "1" ]; then
    echo "would record: $VARIANT"
  else
    echo "$VARIANT" > .venv/.installed
  fi
elif [ "$DRY" = "1" ]; then
  echo "up to date: $VARIANT"
fi
