"""The command line: figures are written where it says, user errors are one-line usage errors (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

from boundary_widgets import cli

FAST = ["--resolution", "8", "--method", "dense"]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``boundary-widgets <args>`` run in this process."""
    try:
        cli.main(args)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_render_without_extension_writes_png_and_prints_the_real_path(tmp_path, capsys):
    target = tmp_path / "figure"
    code, out, err = run_cli(
        ["render", "--u", "random:seed=1", "--v", "random:seed=2", "--output", str(target), *FAST], capsys
    )
    written = tmp_path / "figure.png"
    assert code == 0, err
    assert written.is_file() and not target.exists()
    assert f"wrote {written.resolve()} in" in out
    assert matplotlib.image.imread(written).ndim == 3


def test_render_keeps_a_supported_extension(tmp_path, capsys):
    target = tmp_path / "nested" / "slice.svg"
    code, out, err = run_cli(
        ["render", "--u", "random:seed=1", "--v", "random:seed=2", "--output", str(target), *FAST], capsys
    )
    assert code == 0, err
    assert target.read_text().lstrip().startswith("<?xml")
    assert f"wrote {target.resolve()} in" in out


@pytest.mark.parametrize(
    ("args", "blamed"),
    [
        (["render", "--u", "nope"], "unknown direction kind 'nope'"),
        (["render", "--v", "random:colour=1"], "unknown parameter 'colour'"),
        (["render", "--u", "random:seed"], "must be name=value"),
        (["render", "--resolution", "0"], "--resolution: must be >= 2; got 0"),
        (["render", "--resolution", "many"], "--resolution: must be an int"),
        (["demo", "--resolution", "1"], "--resolution: must be >= 2"),
        (["render", "--extent", "0"], "--extent: must be a finite number > 0"),
        (["render", "--extent", "nan"], "--extent: must be a finite number > 0"),
        (["render", "--index", "-1"], "--index: must be >= 0"),
        (["render", "--index", "100000", *FAST], "`--index` must be in [0, "),
        (["render", "--model", "imagenet"], "--model: invalid choice"),
        (["render", "--method", "magic"], "--method: invalid choice"),
        (["render", "--u", "random:seed=3", "--v", "random:seed=3", *FAST], "must not be parallel"),
        (["render", "--u", "dct:band=7", *FAST], "`band` index must be in"),
        (["render", "--u", "image:other=5000", *FAST], "`other` must be a test sample index"),
        (["render", "--output", "figure.xyz", *FAST], "`--output` must end in one of"),
        (["render", "--u", "random:seed=-1", *FAST], "`seed`"),
        (["render", "--u", "adversarial:target=-1", *FAST], "`target`"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_user_errors_are_one_line_usage_errors(args, blamed, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("boundary-widgets"), err
    assert "Traceback" not in err
    assert blamed in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_installed_entry_point_reports_a_usage_error_without_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "boundary_widgets.cli", "render", "--resolution", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "boundary-widgets render: error: argument --resolution: must be >= 2; got 0"
    ]
    assert not any(Path(tmp_path).iterdir())
