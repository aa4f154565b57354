"""Import time of the kit's layers, each in fresh processes, against ``import torch`` measured in the same processes.

    python benchmarks/import_time.py            # 7 fresh processes per layer
    python benchmarks/import_time.py --runs 3   # quicker

A user of the kit has a PyTorch model, so ``torch`` is the floor: each process first imports
torch (timed), then the layer (timed), and lists which heavy libraries the layer pulled in.
"whole" is the sum, what ``python -c "import boundary_widgets"`` costs in a fresh process.
The target (issue 15): ``import boundary_widgets`` under 1 s in a fresh process (median).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

LAYERS = (
    "boundary_widgets",
    "boundary_widgets.render",
    "boundary_widgets.plotting",
    "boundary_widgets.widgets",
    "boundary_widgets.zoo",
)
HEAVY = ("scipy", "sklearn", "matplotlib", "ipywidgets", "bqplot", "pandas", "PIL", "contourpy", "dask")

_PROBE = """
import json, sys, time
start = time.perf_counter()
import torch
after_torch = time.perf_counter()
import {layer}
end = time.perf_counter()
print(json.dumps({{"torch": after_torch - start, "layer": end - after_torch,
                  "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def measure(layer: str, runs: int) -> tuple[list[float], list[float], list[str]]:
    torch_s, layer_s = [], []
    heavy: list[str] = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(layer=layer, heavy=HEAVY)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        torch_s.append(row["torch"])
        layer_s.append(row["layer"])
        heavy = row["heavy"]
    return torch_s, layer_s, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"{'layer':28s} {'torch s':>8s} {'layer s':>8s} {'whole s':>8s}  heavy libraries loaded (medians)")
    for layer in LAYERS:
        torch_s, layer_s, heavy = measure(layer, args.runs)
        whole = statistics.median(t + s for t, s in zip(torch_s, layer_s, strict=True))
        print(
            f"{layer:28s} {statistics.median(torch_s):8.3f} {statistics.median(layer_s):8.3f} {whole:8.3f}  "
            f"{', '.join(heavy) or '-'}"
        )


if __name__ == "__main__":
    main()
