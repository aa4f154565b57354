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
    # the data sets ship as arrays: scikit-learn (and the pandas it pulls in: ~110 MiB) stays out of a lesson
    "import boundary_widgets as bw; bw.zoo.load('digits-cnn')": ("sklearn", "pandas", "scipy", *UI_LIBRARIES),
    "import boundary_widgets as bw; [bw.zoo.load(name) for name in bw.zoo.available()]": ("sklearn", "pandas"),
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
        (
            "import boundary_widgets as bw; clf, data = bw.zoo.load('moons-mlp'); x = data.images[:20]; "
            "bw.analysis.embedding_linearity(bw.FeatureSpace(clf, images=x), x[:10], x[10:], x[:2])",
            "sklearn",
        ),
    ],
)
def test_lazy_names_load_their_layer_on_first_use(statement, library):
    """The probe above can see a library load: these statements do load one."""
    assert loaded_after(statement, (library,)) == [library]


def test_sizing_a_models_chunks_loads_no_compiler():
    """bytes_per_sample's dispatch mode must not pull in torch._dynamo and sympy (~75 MiB a lesson would hold)."""
    statement = (
        "import boundary_widgets as bw; clf, data = bw.zoo.load('digits-cnn'); "
        "bw.directions.make('adversarial', clf, data.images[0])"
    )
    assert loaded_after(statement, ("torch._dynamo", "sympy")) == []


def _core_imports() -> dict[str, set[str]]:
    """Each module of ``boundary_widgets.core`` -> the core modules it imports, at the top or inside a function."""
    import ast
    from pathlib import Path

    import boundary_widgets

    root = Path(boundary_widgets.__file__).parent.parent
    files = {}
    for path in (root / "boundary_widgets").rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in files.items():
        if not name.startswith("boundary_widgets.core"):
            continue
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, node.module] if node.module else base)
                edges |= {target} | {f"{target}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names}
        graph[name] = {e for e in edges if e in files and e.startswith("boundary_widgets.core") and e != name}
    return graph


def test_core_has_no_import_circle():
    graph = _core_imports()
    assert "boundary_widgets.core.deepfool" in graph["boundary_widgets.core.analysis.borderline"]
    state: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                circles.append(" -> ".join([*stack[stack.index(imported) :], imported]))
            elif imported not in state:
                visit(imported)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not circles, circles


def test_a_module_over_500_lines_says_why_at_its_top():
    import ast
    from pathlib import Path

    import boundary_widgets

    unexplained = []
    for path in Path(boundary_widgets.__file__).parent.rglob("*.py"):
        source = path.read_text()
        if source.count("\n") > 500 and "Over 500 lines on purpose" not in (ast.get_docstring(ast.parse(source)) or ""):
            unexplained.append(path.name)
    assert not unexplained, unexplained
