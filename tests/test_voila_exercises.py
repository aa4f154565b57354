"""In a real Voila dashboard (headless Chromium) the exercises are hidden and the lesson's widgets are not.

A dashboard shows no code, so it cannot ask a student to write any: the cells tagged
``exercise`` (prompt, solution, check) carry Voila's ``celltag_exercise`` class, which a style
rule in the notebook's first exercise prompt hides. The server and browser helpers are those of
``test_browser``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_browser import (
    NOTEBOOK,
    NOTEBOOK_RUN_S,
    _assert_no_console_errors,
    _voila_page,
    browser_page,  # noqa: F401 (a fixture)
    workdir,  # noqa: F401 (a fixture)
)

pytestmark = pytest.mark.browser


def test_voila_hides_the_exercises_and_shows_the_explorer(workdir: Path, browser_page) -> None:  # noqa: F811
    page = browser_page
    with _voila_page(workdir, page, NOTEBOOK.name):
        page.locator(".bw-slice-map").first.wait_for(state="visible", timeout=NOTEBOOK_RUN_S * 1000)
        exercises = page.locator(".celltag_exercise")
        assert exercises.count() >= 6, "every exercise cell carries the class Voila's template gives its tag"
        assert all(not exercises.nth(i).is_visible() for i in range(exercises.count()))
        assert not any(text.is_visible() for text in page.get_by_text("Exercise 1").all())
        assert not any(text.is_visible() for text in page.get_by_text("✓").all()), "a check's verdict is hidden too"
        assert page.get_by_text("A 2-D model").first.is_visible(), "the lesson's text stays"
    _assert_no_console_errors(page)
