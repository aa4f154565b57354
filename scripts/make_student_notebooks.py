"""Write the student versions of the lesson notebooks: ``python scripts/make_student_notebooks.py [--output DIR]``.

The notebooks in ``notebooks/`` are the teacher versions, the one source. An exercise there is
three kinds of tagged cells:

- ``exercise``: every cell of an exercise (its prompt, solution and check), so that the Voila
  dashboard can hide them (a dashboard shows no code, so it cannot ask for any);
- ``solution``: the teacher's answer; its metadata ``answers`` lists the names the check reads,
  ``wrong_answers`` the plausible wrong answers (``{"answer": code, "hint": words}``) and
  ``right_answers`` other correct ways (code), which the tests try;
- ``check``: calls a check of ``boundary_widgets.exercises``, which shows ✓, or ✗ with a hint,
  and never raises, so that "Run all" reaches the end of a student notebook. It shows ✗ while
  an answer is ``...`` and for each wrong answer (with that answer's hint), ✓ for the solution.

The student version replaces each solution by a visible ``# your answer here`` stub that sets
every name in ``answers`` to ``...`` (Ellipsis), and clears all outputs; a lesson without
exercises is copied with its outputs cleared, so that every lesson is there. Everything is done
on the notebook's cell structure with nbformat; no cell's text is edited. Binder runs this at
image build time (``binder/postBuild``) into ``notebooks/student/``, the students' link.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
TEACHER = REPO / "notebooks"
STUDENT = REPO / "notebooks" / "student"  # git-ignored: built, never committed
STUB = "# your answer here"


def stub_source(answers: list[str]) -> str:
    """The student's empty answer: each name the check reads, set to ``...`` (not answered yet)."""
    return "\n".join([STUB, *(f"{name} = ..." for name in answers)]) + "\n"


def exercises(notebook: nbformat.NotebookNode) -> list[tuple[int, int]]:
    """``(solution index, check index)`` of each exercise: a check follows its solution before the next one."""
    pairs, solution = [], None
    for index, cell in enumerate(notebook.cells):
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            if solution is not None:
                raise ValueError(f"cell {index}: solution cell {solution} has no check cell after it")
            if not cell.metadata.get("answers"):
                raise ValueError(f"cell {index}: a solution cell must list its `answers` in its metadata")
            solution = index
        elif "check" in tags:
            if solution is None:
                raise ValueError(f"cell {index}: a check cell without a solution cell before it")
            pairs.append((solution, index))
            solution = None
    if solution is not None:
        raise ValueError(f"cell {solution}: solution cell has no check cell after it")
    return pairs


def student_version(teacher: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``teacher`` with every solution replaced by a stub and every output cleared."""
    exercises(teacher)  # refuses a malformed exercise before writing anything
    student = nbformat.from_dict(teacher)  # deep copy
    for cell in student.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if "solution" in cell.metadata.get("tags", []):
            cell.source = stub_source(cell.metadata["answers"])
            cell.metadata.pop("jupyter", None)  # the teacher's solution is collapsed; the stub must show
            cell.metadata.pop("wrong_answers", None)
            cell.metadata.pop("right_answers", None)
            cell.metadata["tags"] = ["answer" if tag == "solution" else tag for tag in cell.metadata["tags"]]
    return student


def write_student_notebooks(output: Path, teacher_folder: Path = TEACHER) -> list[Path]:
    """Write the student version of every lesson ``teacher_folder/*.ipynb`` into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(teacher_folder.glob("*.ipynb")):
        teacher = nbformat.read(path, as_version=4)
        target = output / path.name
        nbformat.write(student_version(teacher), target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=STUDENT, help=f"folder for the student notebooks ({STUDENT})")
    args = parser.parse_args(argv)
    for path in write_student_notebooks(args.output):
        print("wrote", path)


if __name__ == "__main__":
    main()
