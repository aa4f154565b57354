#!/usr/bin/env bash
# The whole test suite in .venv, as CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/python -m ruff check boundary_widgets tests benchmarks
.venv/bin/python -m ruff format --check boundary_widgets tests benchmarks
.venv/bin/python -m pytest -n 2 -q "$@"
