"""scripts/first_map_times.py finds the lessons it is asked for, in lesson order (it measures; nothing here times it)."""

from __future__ import annotations

from pathlib import Path

import first_map_times
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_every_lesson_in_lesson_order_by_default() -> None:
    found = first_map_times.lessons(REPO / "notebooks", [])
    numbers = [first_map_times.lesson_number(path) for path in found]
    assert sorted(path.name for path in found) == sorted(path.name for path in (REPO / "notebooks").glob("*.ipynb"))
    assert numbers == sorted(numbers) and numbers[0] == 1 and numbers[-1] >= 10  # 10 after 9, not after 1


def test_named_notebooks_by_file_name_or_path_in_the_given_order() -> None:
    args = first_map_times.parse_args(["notebooks/3_connected_regions.ipynb", "1_quickstart.ipynb"])
    assert not args.student and args.timeout == 600
    found = first_map_times.lessons(REPO / "notebooks", args.notebooks)
    assert [path.name for path in found] == ["3_connected_regions.ipynb", "1_quickstart.ipynb"]


def test_an_unknown_notebook_is_refused_with_the_names_there_are() -> None:
    with pytest.raises(ValueError, match=r"not in .*1_quickstart\.ipynb"):
        first_map_times.lessons(REPO / "notebooks", ["11_missing.ipynb"])
