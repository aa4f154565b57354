"""The lessons' checks (boundary_widgets.exercises) on toy values: a verdict, never an exception.

Each check shows ✗ with a hint naming the misconception (a percentage for a fraction, a ratio
upside down, an array for one bool, the logits for an image) and ✓ on the right answer; an
answer that breaks the check is a ✗ too, never a traceback. The lessons' own answers are tried
in tests/test_student_notebooks.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from boundary_widgets import exercises
from boundary_widgets.exercises import Verdict


def test_a_verdict_shows_a_tick_or_a_cross_with_its_message():
    right, wrong = Verdict("Exercise 1", True, "well done."), Verdict("Exercise 2", False, "not yet: look again.")
    assert repr(right) == "✓ Exercise 1: well done." and repr(wrong) == "✗ Exercise 2: not yet: look again."
    assert "✗" in wrong._repr_html_() and "&lt;b&gt;" in Verdict("E", False, "<b>")._repr_html_()


def test_an_unanswered_exercise_names_what_to_set():
    border = SimpleNamespace(success=np.array([True, False]))
    verdict = exercises.check_success_share(..., border=border)
    assert not verdict.passed and "set `success_share` in the cell above" in verdict.message


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (75.0, "percentage"),
        (3, "not a count"),
        (0.25, "pairs that failed"),
        (np.array([0.75, 0.75]), "one number"),
        ("0.75", "not the text"),
        (0.5, "one bool per pair"),
    ],
)
def test_a_share_check_names_the_usual_mistakes(answer, hint):
    border = SimpleNamespace(success=np.array([True, True, True, False]))
    verdict = exercises.check_success_share(answer, border=border)
    assert not verdict.passed and hint in verdict.message, verdict
    assert exercises.check_success_share(torch.tensor(0.75), border=border).passed


def _route(labels):
    return SimpleNamespace(labels=np.array(labels))


def test_the_path_check_tries_the_students_function_on_the_path_and_the_line():
    path = SimpleNamespace(labels=np.array([3, 3, 3]), label=3, length=5.0, straight_length=4.0, n_anchors=1)
    line = _route([3, 8, 3])
    good = lambda route: bool((route.labels == 3).all())  # noqa: E731
    assert exercises.check_path(1.25, good, path=path, line=line).passed
    cases = [
        (0.8, good, "upside down"),
        (125.0, good, "percentage"),
        (1.25, lambda route: route.labels == 3, "`.all()`"),
        (1.25, lambda route: route.n_anchors > 0, "use only `route.labels`"),
        (1.25, lambda route: 3 in route.labels, "*every* entry"),
        (1.25, True, "must be a function"),
    ]
    for ratio, function, hint in cases:
        verdict = exercises.check_path(ratio, function, path=path, line=line)
        assert not verdict.passed and hint in verdict.message, verdict


def test_an_answer_that_breaks_the_check_is_a_cross_not_a_traceback():
    path = SimpleNamespace(labels=np.array([3]), label=3, length=1.0, straight_length=1.0)

    def broken(route):
        raise ValueError("the truth value of an array is ambiguous")

    verdict = exercises.check_path(1.0, broken, path=path, line=_route([3]))
    assert not verdict.passed and "could not be checked (ValueError: the truth value" in verdict.message


def test_the_normalisation_check_takes_the_image_not_the_logits():
    mean, std = 0.3, 0.4
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    clf = SimpleNamespace(logits=lambda pixels: net((pixels - mean) / std))
    image = torch.rand(1, 2, 2)
    batch = image.unsqueeze(0)
    check = lambda answer: exercises.check_normalised(answer, net=net, clf=clf, image=image, mean=mean, std=std)  # noqa: E731
    assert check((batch - mean) / std).passed and check((image - mean) / std).passed
    for answer, hint in [
        (clf.logits(batch), "not the logits"),
        (batch, "image as it is"),
        (batch * std + mean, "undoes"),
        (batch - mean, "divide by `STD` as well"),
        ((batch - batch.mean()) / batch.std(), "this image's own statistics"),
        (np.zeros(4), "must be a tensor"),
    ]:
        verdict = check(answer)
        assert not verdict.passed and hint in verdict.message, verdict


def test_a_check_called_with_the_wrong_number_of_answers_is_a_programming_error():
    with pytest.raises(TypeError, match="takes the answers `success_share`"):
        exercises.check_success_share(0.5, 0.5, border=SimpleNamespace(success=np.array([True])))
