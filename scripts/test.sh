#!/usr/bin/env bash
# The whole test suite in .venv, as CI runs it: unit tests, every notebook (nbmake) and the
# real-browser tests (JupyterLab and Voila in Debian's chromium, driven by Playwright).
# Arguments replace the default targets, e.g. `bash scripts/test.sh tests/test_browser.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,browser,distributed
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # Debian's chromium, never a Playwright browser download.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing (apt-get install -y chromium): the browser tests skip outside CI" >&2
  fi
fi
.venv/bin/python -m ruff check boundary_widgets tests benchmarks scripts
.venv/bin/python -m ruff format --check boundary_widgets tests benchmarks scripts
if [ $# -eq 0 ]; then set -- tests notebooks; fi
.venv/bin/python -m pytest -n 2 -q --nbmake --nbmake-timeout=120 "$@"
