#!/usr/bin/env bash
# Set up (if needed) and run the test suite: unit, training, CLI and notebook (nbval) tests
# under the smoke profile. Slow tests are excluded; run them with: bash scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
if [ $# -eq 0 ]; then
  set -- -m "not slow"
fi
exec python -m pytest --nbval-lax tests notebooks "$@"
