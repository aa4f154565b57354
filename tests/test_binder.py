"""binder/ agrees with pyproject.toml, scripts/setup.sh and the README's launch links (no Docker here to build it)."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

import nbformat
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself depends on tomli before 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _binder_lines() -> list[str]:
    lines = [line.split("#")[0].strip() for line in (BINDER / "requirements.txt").read_text().splitlines()]
    return [line for line in lines if line]


def _binder_requirements() -> dict[str, Requirement]:
    requirements = [Requirement(line) for line in _binder_lines() if not line.startswith("-") and line != "."]
    return {requirement.name.lower(): requirement for requirement in requirements}


def _names(requirements: list[str]) -> set[str]:
    return {Requirement(requirement).name.lower() for requirement in requirements}


def test_binder_installs_the_kit_and_cpu_torch_first() -> None:
    lines = _binder_lines()
    assert lines[0] == f"--extra-index-url {CPU_INDEX}", "the CPU index must come first so pip never picks CUDA torch"
    assert "." in lines, "binder/requirements.txt must install the repository itself (a `.` line)"
    torch = _binder_requirements()["torch"]
    (pin,) = torch.specifier
    assert pin.operator == "==" and pin.version.endswith("+cpu"), f"torch must be pinned to a +cpu build; got {torch}"


def test_binder_torch_is_the_version_setup_installs_and_satisfies_pyproject() -> None:
    (pin,) = _binder_requirements()["torch"].specifier
    setup_version = re.search(r'torch_version="([^"]+)"', (REPO / "scripts" / "setup.sh").read_text()).group(1)
    assert Version(pin.version).public == setup_version
    (torch_floor,) = [Requirement(r) for r in _project()["dependencies"] if Requirement(r).name == "torch"]
    assert torch_floor.specifier.contains(Version(pin.version).public)


def test_every_runtime_dependency_is_installed_by_binder() -> None:
    """Each pyproject dependency is listed in binder/ with a compatible pin, or comes with the `.` line."""
    listed = _binder_requirements()
    for dependency in map(Requirement, _project()["dependencies"]):
        name = dependency.name.lower()
        if name in listed and listed[name].specifier:
            (pin,) = listed[name].specifier
            assert dependency.specifier.contains(Version(pin.version).public), (
                f"binder pins {listed[name]}; pyproject says {dependency}"
            )
    assert "." in _binder_lines()  # installs every dependency not pinned above


def test_binder_has_voila_as_the_browser_extra_asks() -> None:
    browser_extra = {
        Requirement(r).name.lower(): Requirement(r) for r in _project()["optional-dependencies"]["browser"]
    }
    assert _binder_requirements()["voila"].specifier == browser_extra["voila"].specifier


def test_binder_python_satisfies_requires_python() -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime), f"runtime.txt must read python-3.X; got {runtime!r}"
    assert SpecifierSet(_project()["requires-python"]).contains(runtime.removeprefix("python-") + ".0")


def _links_module():
    spec = importlib.util.spec_from_file_location("make_links", REPO / "scripts" / "make_links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STUDENT_FOLDER = "notebooks/student/"


def _launched_notebook_exists(notebook: str) -> bool:
    """A notebook in the repository, or a student notebook that binder/postBuild writes from a lesson."""
    if notebook.startswith(STUDENT_FOLDER):
        lesson = REPO / "notebooks" / notebook.removeprefix(STUDENT_FOLDER)
        return lesson.is_file() and f"--output {STUDENT_FOLDER.rstrip('/')}" in (BINDER / "postBuild").read_text()
    return (REPO / notebook).is_file()


def test_launch_links_table_names_existing_notebooks_and_documents_its_owner() -> None:
    table = tomllib.loads((BINDER / "links.toml").read_text())
    assert {link["interface"] for link in table["links"]} == {"lab", "voila"}
    assert table["links"][0]["notebook"].startswith(STUDENT_FOLDER), "the first link is the students' one"
    for link in table["links"]:
        assert _launched_notebook_exists(link["notebook"]), f"binder/links.toml names {link['notebook']}, not built"
    comments = (BINDER / "links.toml").read_text().split("owner =")[0]
    assert "`owner` is the GitHub account" in comments, "the table must say what `owner` is"


def test_binder_builds_the_student_notebooks_at_image_build_time(tmp_path: Path) -> None:
    """postBuild (executable, stops at the first error) runs the generator; its command writes every lesson."""
    post_build = BINDER / "postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    lines = [line for line in post_build.read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "set -euo pipefail"
    (command,) = lines[1:]
    program, script, flag, output = command.split()
    assert (program, script, flag, output) == (
        "python",
        "scripts/make_student_notebooks.py",
        "--output",
        "notebooks/student",
    )
    assert "notebooks/student/" in (REPO / ".gitignore").read_text().splitlines(), "built, never committed"
    spec = importlib.util.spec_from_file_location("make_student_notebooks", REPO / script)
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    make.main([flag, str(tmp_path / "student")])
    lessons = sorted(path.name for path in (REPO / "notebooks").glob("[0-9]*_*.ipynb"))
    assert sorted(path.name for path in (tmp_path / "student").glob("*.ipynb")) == lessons


def test_binder_installs_the_distributed_extra_for_the_scale_out_lesson() -> None:
    listed = _binder_requirements()
    for requirement in map(Requirement, _project()["optional-dependencies"]["distributed"]):
        name = requirement.name.lower()
        assert name in listed, f"binder/requirements.txt lacks {requirement} (notebooks/9_scale_out imports it)"
        assert listed[name].specifier == requirement.specifier and listed[name].extras == requirement.extras


def _top_level_imports(path: Path) -> set[str]:
    """The top-level modules a notebook imports at the top level of its cells (not inside functions)."""
    modules = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.parse(source).body:
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules


def test_binder_installs_every_module_the_lessons_import() -> None:
    """Each module a lesson imports comes with binder/requirements.txt, the kit's dependencies or Jupyter itself."""
    provided = set(_binder_requirements()) | _names(_project()["dependencies"]) | {"boundary-widgets"}
    provided |= {"ipython", "ipykernel"}  # the kernel Binder's Jupyter image runs
    provided |= {
        extra for requirement in _binder_requirements().values() for extra in requirement.extras
    }  # dask[distributed]
    distributions = importlib.metadata.packages_distributions()
    for path in sorted((REPO / "notebooks").glob("[0-9]*_*.ipynb")):
        for module in sorted(_top_level_imports(path) - set(sys.stdlib_module_names)):
            names = {name.lower() for name in distributions.get(module, [module])}
            names = {"boundary-widgets" if module == "boundary_widgets" else name for name in names}
            assert names & provided, f"{path.name} imports {module}, which Binder does not install"


def test_readme_launch_links_are_the_ones_built_from_the_table() -> None:
    links = _links_module()
    readme = (REPO / "README.md").read_text()
    assert links.updated_readme(readme, links.read_table()) == readme, "run `python scripts/make_links.py`"
    urls = re.findall(r"https://mybinder\.org/v2/gh/[^)\s]+", readme)
    paths = [re.search(r"urlpath=([^&)\s]+)", url).group(1) for url in urls]
    assert any(path.startswith("lab/tree/") for path in paths), f"no JupyterLab link in {urls}"
    assert any(path.startswith("voila/render/") for path in paths), f"no Voila link in {urls}"
    for path in paths:
        notebook = re.sub(r"^(lab/tree|voila/render)/", "", path)
        assert _launched_notebook_exists(notebook), f"the README links to {notebook}, which is not built"
    assert "../shared/DESIGN.md" not in readme and (REPO / "docs" / "design.md").is_file()
    assert "](docs/design.md" in readme, "the README links the design document in the repository"


def test_readme_lesson_path_lists_every_notebook() -> None:
    readme = (REPO / "README.md").read_text()
    for notebook in sorted((REPO / "notebooks").glob("[0-9]*_*.ipynb")):
        assert f"`{notebook.stem}`" in readme, f"{notebook.name} is missing from the README's lesson path"
