"""Student notebooks: generated from the teacher versions; every check shows ✗ with a hint until answered.

The teacher versions (``notebooks/``) run under nbmake with their solutions; here the student
versions are generated and run top to bottom in a kernel, as "Run all" does: no cell raises,
each check shows ✗ unanswered and on each listed wrong answer (with that misconception's hint),
and ✓ on the solution and on every listed other right way.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
TEACHER = sorted((REPO / "notebooks").glob("[0-9]*_*.ipynb"))
# Checked exercises each lesson must have at least (issue 13); a later lesson not listed needs none.
MIN_EXERCISES = {1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 2, 7: 2, 8: 2}


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


make = _script("make_student_notebooks")
WITH_EXERCISES = [path for path in TEACHER if make.exercises(nbformat.read(path, as_version=4))]


def _tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


@pytest.mark.parametrize("path", TEACHER, ids=lambda path: path.stem)
def test_every_lesson_has_exercises_and_its_student_version_has_no_solution(path: Path) -> None:
    teacher = nbformat.read(path, as_version=4)
    pairs = make.exercises(teacher)
    lesson = int(path.stem.split("_")[0])
    assert len(pairs) >= MIN_EXERCISES.get(lesson, 0), f"{path.name} has {len(pairs)} checked exercises"
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


def test_every_notebook_uses_one_kernel() -> None:
    kernels = {
        path.name: nbformat.read(path, as_version=4).metadata.get("kernelspec", {}).get("name") for path in TEACHER
    }
    assert set(kernels.values()) == {"python3"}, kernels


def test_analysis_lessons_are_what_their_script_writes() -> None:
    """Notebooks 5-8 come from scripts/make_analysis_notebooks.py: no hand edit, no typed-in measurement."""
    analysis = _script("make_analysis_notebooks")
    for name in analysis.NOTEBOOKS:
        on_disk = nbformat.read(REPO / "notebooks" / name, as_version=4)
        written = analysis.build(name, REPO / "notebooks")
        assert [(c.cell_type, c.source, c.metadata) for c in on_disk.cells] == [
            (c.cell_type, c.source, c.metadata) for c in written.cells
        ], f"{name} differs from its script: run `python scripts/make_analysis_notebooks.py`"
        for cell in on_disk.cells:
            if cell.cell_type == "markdown":
                assert "Measured" not in cell.source, f"{name}: a measurement typed into the text"


def test_a_solution_without_a_check_is_refused() -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["solution"], "answers": ["a"]})]
    )
    with pytest.raises(ValueError, match="no check cell"):
        make.student_version(notebook)


def test_the_generator_writes_one_student_notebook_per_lesson(tmp_path: Path) -> None:
    """Every lesson, the ones without exercises too: the lessons link to each other by file name."""
    written = make.write_student_notebooks(tmp_path)
    assert [path.name for path in written] == [path.name for path in TEACHER]
    for path in written:
        student = nbformat.read(path, as_version=4)
        assert not any(cell.get("outputs") for cell in student.cells), f"{path.name} keeps outputs"
        assert not any("solution" in _tags(cell) for cell in student.cells), f"{path.name} keeps a solution"


def _trials(teacher, solution: int, check: int) -> list[tuple[str, str, object]]:
    """After a check: each wrong answer with the check again (✗ and its hint), each other right way and
    the solution with it (✓)."""
    metadata = teacher.cells[solution].metadata
    trials = [(wrong["answer"], wrong["hint"]) for wrong in metadata.get("wrong_answers", [])]
    trials += [(right, PASSES) for right in metadata.get("right_answers", [])]
    trials.append((teacher.cells[solution].source, PASSES))
    cells = []
    for answer, expected in trials:
        cells.append(("answer", "", nbformat.v4.new_code_cell(answer)))
        cells.append(("trial", expected, nbformat.v4.new_code_cell(teacher.cells[check].source)))
    return cells


PASSES = "✓"


def _verdict(cell) -> str:
    """The text of the verdict a check cell displayed ("" if none)."""
    texts = [output.get("data", {}).get("text/plain", "") for output in cell.outputs]
    verdicts = [text for text in texts if text.startswith(("✓", "✗"))]
    assert len(verdicts) <= 1, verdicts
    return verdicts[0] if verdicts else ""


@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda path: path.stem)
def test_run_all_reaches_the_end_and_every_check_teaches(path: Path) -> None:
    """The whole student version runs (Run all); each check shows ✗ unanswered and on each wrong answer
    with its hint, and ✓ on the solution and on the other right ways."""
    teacher = nbformat.read(path, as_version=4)
    pairs = make.exercises(teacher)
    assert all(teacher.cells[s].metadata.get("wrong_answers") for s, _ in pairs), "each exercise lists a wrong answer"
    student = make.student_version(teacher)
    roles = []  # one (role, expected verdict) per cell of the notebook that runs
    cells = []
    for index, cell in enumerate(student.cells):
        cells.append(cell)
        roles.append(("check", "not answered yet") if "check" in _tags(cell) else ("cell", ""))
        for solution, check in pairs:
            if check == index:
                for role, expected, trial in _trials(teacher, solution, check):
                    cells.append(trial)
                    roles.append((role, expected))
    student.cells = cells
    NotebookClient(
        student,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    for index, (cell, (role, expected)) in enumerate(zip(student.cells, roles, strict=True)):
        if cell.cell_type != "code":
            continue
        errors = [output for output in cell.outputs if output.output_type == "error"]
        where = f"{path.name}, cell {index} ({role})"
        assert not errors, f"{where} raised {errors[0].ename}: {errors[0].evalue}\n{cell.source}"
        if role not in ("check", "trial"):
            continue
        verdict = _verdict(cell)
        assert verdict, f"{where}: the check showed no verdict:\n{cell.source}"
        if expected == PASSES:
            assert verdict.startswith("✓"), f"{where}: a right answer was refused: {verdict}"
        else:
            assert verdict.startswith("✗ Exercise"), f"{where}: a wrong or missing answer passed: {verdict}"
            assert expected in verdict, f"{where}: the hint misses the misconception {expected!r}: {verdict}"
    assert sum(role == "check" for role, _ in roles) == len(pairs)


def test_voila_template_hides_the_exercise_cells() -> None:
    """Voila's lab template gives tagged cells a ``celltag_<tag>`` class; the first prompt's style hides them."""
    exporter = pytest.importorskip("nbconvert").HTMLExporter(template_name="lab")
    for path in WITH_EXERCISES:
        teacher = nbformat.read(path, as_version=4)
        html, _ = exporter.from_notebook_node(teacher)
        assert "<style>.celltag_exercise { display: none; }</style>" in html, path.name
        tagged = sum("exercise" in _tags(cell) for cell in teacher.cells)
        assert html.count("celltag_exercise") >= tagged, path.name
