#!/usr/bin/env bash
# The GPU check on a bare CUDA machine: install what it lacks from this working tree, then run
# benchmarks/gpu_check.py once (about 6 minutes). Results: $OUT (default test-output/gpu_check)/gpu_check.{json,md}.
#
#   bash benchmarks/gpu_check.sh                 # PYTHON=python3 by default
#   WHEELS=dir bash benchmarks/gpu_check.sh      # offline: install from a folder of wheels too
#   bash benchmarks/gpu_check.sh --budget 200    # arguments go to gpu_check.py
#
# An installed torch (with CUDA) is kept: pip gets it as a constraint, never an upgrade. When pip
# cannot install (no network, no wheels), the kit runs from the working tree (PYTHONPATH) if torch,
# numpy and tqdm are importable; foolbox is optional (its comparison is skipped with a note).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUT="${OUT:-test-output/gpu_check}"
export OUT
mkdir -p "$OUT"

"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
TORCH_VERSION="$("$PYTHON" -c 'import torch; print(torch.__version__)')"
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==${TORCH_VERSION}" >"$CONSTRAINTS"

PIP=("$PYTHON" -m pip install --no-input --disable-pip-version-check --retries 1 --timeout 15 -c "$CONSTRAINTS")
if [ -n "${WHEELS:-}" ]; then
  PIP+=(--find-links "$WHEELS")
fi

if timeout 300 "${PIP[@]}" -e . >"$OUT/pip-kit.log" 2>&1; then
  echo "installed the kit (pip install -e .)"
else
  echo "pip could not install the kit (see $OUT/pip-kit.log): running it from the working tree" >&2
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$PYTHON" -c "import foolbox" 2>/dev/null; then
  if timeout 180 "${PIP[@]}" "foolbox==3.3.4" >"$OUT/pip-foolbox.log" 2>&1; then
    echo "installed foolbox 3.3.4"
  else
    echo "foolbox could not be installed (see $OUT/pip-foolbox.log): its comparison is skipped" >&2
  fi
fi
"$PYTHON" -c "import torch, numpy, tqdm, boundary_widgets" || {
  echo "torch, numpy, tqdm and the kit must be importable to run the check" >&2
  exit 1
}
"$PYTHON" -c "import torch; assert torch.__version__ == '${TORCH_VERSION}', 'torch changed'"

timeout 540 "$PYTHON" benchmarks/gpu_check.py --out "$OUT" "$@"
