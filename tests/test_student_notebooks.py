"""Student notebooks: generated from the teacher versions, every exercise's check fails until answered.

The teacher versions (``notebooks/``) run under nbmake with their solutions; here the student
versions are generated and executed cell by cell in a kernel, and each check cell must fail with
its friendly hint while every other cell runs.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
TEACHER = sorted((REPO / "notebooks").glob("[0-9]_*.ipynb"))


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_student_notebooks", REPO / "scripts" / "make_student_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


make = _generator()


def _tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


@pytest.mark.parametrize("path", TEACHER, ids=lambda path: path.stem)
def test_every_lesson_has_exercises_and_its_student_version_has_no_solution(path: Path) -> None:
    teacher = nbformat.read(path, as_version=4)
    pairs = make.exercises(teacher)
    lesson = int(path.stem.split("_")[0])
    assert len(pairs) >= (2 if lesson >= 5 else 1), f"{path.name} has {len(pairs)} checked exercises"
    original = nbformat.writes(teacher)
    student = make.student_version(teacher)
    assert nbformat.writes(teacher) == original, "the teacher version must not change"
    assert len(student.cells) == len(teacher.cells)
    for (solution, check), teacher_cell in zip(pairs, (teacher.cells[s] for s, _ in pairs), strict=True):
        stub = student.cells[solution]
        assert stub.source.startswith(make.STUB)
        assert teacher_cell.source not in stub.source
        assert "jupyter" not in stub.metadata, "the stub must be visible"
        assert student.cells[check].source == teacher.cells[check].source
        assert all(f"{name} = ..." in stub.source for name in teacher_cell.metadata["answers"])
        assert all(name in teacher.cells[check].source for name in teacher_cell.metadata["answers"])
        assert {"exercise"} <= set(_tags(teacher.cells[check])), "Voila hides exercises by this tag"
    nbformat.validate(student)


def test_a_solution_without_a_check_is_refused() -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["solution"], "answers": ["a"]})]
    )
    with pytest.raises(ValueError, match="no check cell"):
        make.student_version(notebook)


def test_the_generator_writes_one_student_notebook_per_lesson(tmp_path: Path) -> None:
    written = make.write_student_notebooks(tmp_path)
    assert [path.name for path in written] == [path.name for path in TEACHER]


@pytest.mark.slow
@pytest.mark.parametrize("path", TEACHER, ids=lambda path: path.stem)
def test_every_check_fails_in_the_student_version(path: Path) -> None:
    teacher = nbformat.read(path, as_version=4)
    n_exercises = len(make.exercises(teacher))
    student = make.student_version(teacher)
    last_check = max(check for _, check in make.exercises(teacher))
    student.cells = student.cells[: last_check + 1]  # later cells cannot change a check's verdict
    NotebookClient(
        student,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    checks = 0
    for index, cell in enumerate(student.cells):
        if cell.cell_type != "code":
            continue
        errors = [output for output in cell.outputs if output.output_type == "error"]
        if "check" in _tags(cell):
            checks += 1
            assert errors, f"{path.name} cell {index}: the check passed without an answer:\n{cell.source}"
            assert errors[0].ename == "AssertionError", (errors[0].ename, errors[0].evalue)
            assert "Exercise" in errors[0].evalue, f"no friendly hint: {errors[0].evalue!r}"
        else:
            assert not errors, f"{path.name} cell {index} failed: {errors[0].ename}: {errors[0].evalue}"
    assert checks == n_exercises
