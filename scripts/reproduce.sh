#!/usr/bin/env bash
# Set up (if needed), then train all nine experiments, score them and rebuild figures/ and
# report/report.md. Usage: bash scripts/reproduce.sh [full|quick|smoke]   (default: quick)
# A killed run resumes where it stopped when this is run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-quick}
bash scripts/setup.sh
. .venv/bin/activate
python -m assignment4 data
python -m assignment4 run all --profile "$PROFILE"
python -m assignment4 evaluate all --profile "$PROFILE"
python -m assignment4 report --profile "$PROFILE"   # the runs just made
