#!/usr/bin/env bash
# Create .venv and install the kit with the CPU build of PyTorch (never the multi-GB CUDA one).
# Extras to install may be passed as one argument, e.g. `bash scripts/setup.sh test,browser`.
# TORCH_INDEX_URL picks where the CPU wheel comes from: unset, pip's own configuration
# (a local find-links CPU wheel on the project's machines); elsewhere set it to
# https://download.pytorch.org/whl/cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
torch_version="2.13.0"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet "torch==${torch_version}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi
.venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
.venv/bin/python -c "import torch, boundary_widgets; print('boundary_widgets', boundary_widgets.__version__, 'torch', torch.__version__)"
