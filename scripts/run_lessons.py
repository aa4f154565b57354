"""Run lesson notebooks top to bottom, as "Run all" does, and report each kernel's peak memory.

``python scripts/run_lessons.py notebooks/*.ipynb [notebooks/student/*.ipynb]``

Each notebook runs in a fresh kernel in its own folder. While it runs, the resident memory of
the kernel process and its children (a LocalCluster's worker processes) is sampled every 0.1 s;
the table gives the peak, the wall time and the number of cells that raised. The exit status is
1 when any cell raised: a teacher notebook runs its solutions, a student notebook its stubs, and
both must reach the end (a student's checks show ✗ without raising). Needs nbclient and psutil.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from jupyter_harness import PeakSampler
from nbclient import NotebookClient


def run(path: Path, *, timeout: int) -> tuple[float, float, int]:
    """(seconds, peak MiB of the kernel and its children, cells that raised) for one notebook."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )

    def kernel_pid() -> int | None:
        process = getattr(getattr(getattr(client, "km", None), "provisioner", None), "process", None)
        return None if process is None else process.pid

    started = time.perf_counter()
    sampler = PeakSampler(kernel_pid)
    try:
        client.execute()
    finally:
        peak = sampler.stop()
    seconds = time.perf_counter() - started
    errors = sum(any(output.output_type == "error" for output in cell.get("outputs", [])) for cell in notebook.cells)
    return seconds, peak / 2**20, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (600)")
    args = parser.parse_args(argv)
    print(f"{'notebook':<44} {'seconds':>8} {'peak MiB':>9} {'errors':>7}", flush=True)
    failed = False
    for path in args.notebooks:
        seconds, peak, errors = run(path, timeout=args.timeout)
        print(f"{path!s:<44} {seconds:8.1f} {peak:9.0f} {errors:7d}", flush=True)
        failed |= errors > 0
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
