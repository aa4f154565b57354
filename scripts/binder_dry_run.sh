#!/usr/bin/env bash
# A Binder dry run without Docker: what repo2docker would build, then every lesson run in it.
#   1. a fresh venv with binder/requirements.txt, plus what Binder's image brings (JupyterLab,
#      ipykernel) and what this script measures with (nbclient, psutil);
#   2. binder/postBuild, in a copy of the working tree (it writes notebooks/student/);
#   3. every teacher and student notebook run top to bottom (scripts/run_lessons.py): its time,
#      its kernel's peak memory (Binder gives about 2 GB) and the cells that raised.
# Usage: bash scripts/binder_dry_run.sh [FOLDER]   (FOLDER: where the venv and the copy go; a new
# temporary folder by default). Exit status 1 when a notebook raised.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${1:-$(mktemp -d)}
mkdir -p "$work/repo"
version=$(sed 's/^python-//' binder/runtime.txt)
python=$(command -v "python$version" || true)
if [ -z "$python" ]; then
  python=python3
  echo "python$version (binder/runtime.txt) is missing: using $($python --version)" >&2
fi
git ls-files -co --exclude-standard | grep -v '^notebooks/student/' | tar -cf - -T - | tar -xf - -C "$work/repo"
requirements="$work/repo/binder/requirements.txt"
if ! curl -sf -m 10 -o /dev/null https://download.pytorch.org/whl/cpu/torch/; then
  echo "download.pytorch.org is unreachable: torch comes from pip's own configuration instead" >&2
  grep -v '^--extra-index-url' "$requirements" > "$work/requirements.txt"
  requirements="$work/requirements.txt"
fi
"$python" -m venv "$work/venv"
cd "$work/repo"
started=$(date +%s)
"$work/venv/bin/python" -m pip install --quiet -r "$requirements" jupyterlab ipykernel nbclient psutil
echo "installed binder/requirements.txt in $(( $(date +%s) - started )) s"
PATH="$work/venv/bin:$PATH" bash binder/postBuild
PYTHONPATH= "$work/venv/bin/python" "$repo/scripts/run_lessons.py" notebooks/[0-9]*_*.ipynb notebooks/student/[0-9]*_*.ipynb
