"""Peak resident memory of the largest slice ``compute_slice`` accepts, against its result arrays.

The docstring of ``options.py`` promises a peak of about ``PEAK_RESULT_MULTIPLE`` × the result cap.
Each case runs in a fresh process (``/proc/self/status`` VmHWM above the resident size before the call).

    PYTHONPATH=$PWD python benchmarks/slice_peak_memory.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import torch

import boundary_widgets as bw
from boundary_widgets.core.slices import options as slice_options


def _status(field: str) -> int:
    text = open("/proc/self/status").read()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1)) * 1024


def largest_side() -> int:
    return int((slice_options.MAX_RESULT_BYTES / slice_options.RESULT_BYTES_PER_CELL) ** 0.5)


def measure(method: str, side: int) -> dict[str, float]:
    torch.set_num_threads(1)
    clf, data = bw.zoo.load("digits-mlp", device="cpu")
    x = data.images[0]
    generator = torch.Generator().manual_seed(0)
    plane = bw.Plane.through(x, torch.randn(x.shape, generator=generator), torch.randn(x.shape, generator=generator))
    bw.compute_slice(clf, plane, extent=6.0, resolution=8, method=method, cache=False)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current resident size
    before = _status("VmRSS")
    sl = bw.compute_slice(clf, plane, extent=6.0, resolution=side, method=method, cache=False)
    return {"peak": _status("VmHWM") - before, "result": sl.nbytes, "classes": len(sl.classes_present)}


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
        return
    side = largest_side()
    print(f"largest accepted slice: {side}² cells, cap {slice_options.MAX_RESULT_BYTES / 2**20:.0f} MiB of results")
    print(f"{'method':>10}{'result MiB':>12}{'peak MiB':>10}{'peak / result':>15}{'promised':>10}")
    for method in ("dense", "adaptive"):
        run = subprocess.run([sys.executable, __file__, method, str(side)], check=True, capture_output=True, text=True)
        result = json.loads(run.stdout)
        print(
            f"{method:>10}{result['result'] / 2**20:>12.0f}{result['peak'] / 2**20:>10.0f}"
            f"{result['peak'] / result['result']:>15.2f}{slice_options.PEAK_RESULT_MULTIPLE:>10}"
        )


if __name__ == "__main__":
    main()
