"""The GPU check's --tiny run: the code paths the GPU run takes, on the CPU, so the script cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_gpu_check_writes_every_section(tmp_path):
    out = tmp_path / "check"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OUT": str(tmp_path / "unused")}
    command = [sys.executable, "benchmarks/gpu_check.py", "--tiny", "--out", str(out), "--budget", "1e9"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    table = (out / "gpu_check.md").read_text()
    sections = report["sections"]
    assert list(sections) == [
        "environment",
        "slices",
        "deepfool_vs_foolbox",
        "directions",
        "band_margins",
        "certified",
    ]
    for name, data in sections.items():
        assert "error" not in data, f"{name}: {data.get('traceback')}"
        assert f"| {name} |" in table
    foolbox = sections["deepfool_vs_foolbox"]
    assert "speedup" in foolbox or "foolbox is not installed" in foolbox["skipped"]
    assert sections["environment"]["torch"] and "tf32_cudnn" in sections["environment"]
    for size in ("3x32x32", "3x16x16"):
        slices = sections["slices"][size]
        assert slices["dense_over_raw_float32"] > 0 and slices["raw_fastest_bfloat16"] > 0
        assert set(slices["layouts"]) == {
            f"{p} {layout}" for p in ("float32", "bfloat16") for layout in ("default", "channels_last")
        }
        assert isinstance(slices["bf16_labels_identical"], bool)  # a target on the GPU, not a code path
        assert slices["adaptive"]["first_frame_s"] <= slices["adaptive"]["wall_s"]
    directions = sections["directions"]
    assert {"deepfool", "random", "adversarial"} <= set(directions)
    assert sections["band_margins"]["images"] == 8
    certified = sections["certified"]
    if certified["available"]:
        for size in ("3x32x32", "3x16x16"):
            assert 0 <= certified[size].get("proven_share", 0) <= 1
    assert not (tmp_path / "unused").exists(), "--out wins over $OUT"
