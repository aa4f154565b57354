"""Layers that hold: each import, in a fresh process, loads only what its layer may use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

UI_LIBRARIES = ("matplotlib", "ipywidgets", "bqplot")
CASES = {
    # statement -> libraries it must not load; scipy (0.5-0.8 s) loads where a function needs it, not with the kit
    "import boundary_widgets": ("sklearn", "scipy", *UI_LIBRARIES),
    "import boundary_widgets.core": ("sklearn", *UI_LIBRARIES),
    "import boundary_widgets.render": ("sklearn", *UI_LIBRARIES),
    "import boundary_widgets.plotting": ("sklearn", "ipywidgets", "bqplot"),
    "import boundary_widgets.widgets": ("matplotlib",),
    "import boundary_widgets.zoo": ("sklearn", *UI_LIBRARIES),
    "import boundary_widgets as bw; bw.Classifier, bw.compute_slice, bw.analysis, bw.directions": (
        "sklearn",
        *UI_LIBRARIES,
    ),
}


def loaded_after(statement: str, libraries: tuple[str, ...]) -> list[str]:
    probe = f"import json, sys\n{statement}\nprint(json.dumps([m for m in {libraries!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statement", list(CASES))
def test_import_loads_nothing_above_its_layer(statement):
    assert loaded_after(statement, CASES[statement]) == []


@pytest.mark.parametrize(
    ("statement", "library"),
    [
        ("import boundary_widgets as bw; bw.plot_slice", "matplotlib"),
        ("import boundary_widgets as bw; bw.SliceExplorer", "ipywidgets"),
        ("import boundary_widgets as bw; bw.zoo.load('digits-cnn')", "sklearn"),
    ],
)
def test_lazy_names_load_their_layer_on_first_use(statement, library):
    """The probe above can see a library load: these statements do load one."""
    assert loaded_after(statement, (library,)) == [library]
