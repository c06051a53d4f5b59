#!/usr/bin/env bash
# Set up (if needed), check the code with ruff (lint and format), then run the test suite:
# unit, training, XLA, mixed-precision, multi-worker, CLI and notebook (nbval) tests under the
# smoke profile. Slow tests are excluded; run them with: bash scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check .
ruff format --check .
if [ $# -eq 0 ]; then
  set -- -m "not slow"
fi
exec python -m pytest --nbval-lax tests notebooks "$@"
