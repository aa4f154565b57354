"""Live training trains a copy, deterministically; adversarial examples stay in their ball and box."""

from __future__ import annotations

import threading

import pytest
import torch
from conftest import model_state
from torch import nn

import boundary_widgets as bw
from boundary_widgets.core.training import LiveTraining, deepfool_examples, pgd_examples


@pytest.fixture(scope="module")
def moons():
    return bw.zoo.load("moons-mlp", device="cpu")


def _fresh_moons_classifier(moons_clf: bw.Classifier, seed: int = 0) -> bw.Classifier:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
    return moons_clf.with_module(net)


def test_training_writes_only_the_copy_and_learns(moons):
    clf, data = moons
    images, labels = data.split("train")
    start = _fresh_moons_classifier(clf)
    before = model_state(start.net)
    run = LiveTraining(start, images, labels, learning_rate=0.1)
    first = run.train_epoch()
    for _ in range(14):
        last = run.train_epoch()
    assert model_state(start.net) == before
    assert run.epoch == 15 and [r.epoch for r in run.history] == list(range(1, 16))
    assert last.accuracy > 0.85 and last.loss < first.loss
    # The wrapper over the copy sees the trained weights at once.
    assert float((run.classifier.predict(images) == labels).float().mean()) == pytest.approx(last.accuracy)


def test_same_seed_same_weights(moons):
    clf, data = moons
    images, labels = data.split("train")
    runs = [LiveTraining(_fresh_moons_classifier(clf), images, labels, adversarial="pgd", seed=3) for _ in range(2)]
    for run in runs:
        run.train_epoch()
        run.train_epoch()
    for a, b in zip(runs[0].net.parameters(), runs[1].net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_pgd_examples_stay_in_the_ball_and_the_box_and_raise_the_loss(digits):
    clf, data = digits
    images, labels = data.split("test")
    images, labels = images[:32], labels[:32]
    epsilon = 0.8
    adversarial = pgd_examples(clf, images, labels, epsilon=epsilon, generator=torch.Generator().manual_seed(0))
    distances = (adversarial - images).flatten(1).norm(dim=1)
    assert float(distances.max()) <= epsilon + 1e-5
    assert float(adversarial.min()) >= clf.bounds[0] and float(adversarial.max()) <= clf.bounds[1]
    loss = nn.CrossEntropyLoss()
    assert float(loss(clf.logits(adversarial), labels)) > float(loss(clf.logits(images), labels))


def test_deepfool_examples_are_capped_at_epsilon(digits):
    clf, data = digits
    images = data.split("test")[0][:16]
    moved = deepfool_examples(clf, images, epsilon=0.2)
    assert float((moved - images).flatten(1).norm(dim=1).max()) <= 0.2 + 1e-5
    full = bw.deepfool(clf, images, max_iter=10)
    uncapped = deepfool_examples(clf, images, epsilon=1e6)
    torch.testing.assert_close(uncapped, clf.clip(images + full.perturbations))


def test_adversarial_training_widens_the_margin_on_moons(moons):
    clf, data = moons
    images, labels = data.split("train")
    test_images = data.split("test")[0]
    medians = {}
    for method in ("none", "pgd", "deepfool"):
        run = LiveTraining(_fresh_moons_classifier(clf, seed=1), images, labels, adversarial=method, epsilon=0.3)
        for _ in range(25):
            run.train_epoch()
        medians[method] = float(bw.deepfool(run.classifier, test_images).distances.median())
    # Measured: 0.48 standard, 0.81 PGD, 0.68 DeepFool (median DeepFool distance on the test split).
    assert medians["pgd"] > 1.3 * medians["none"]
    assert medians["deepfool"] > 1.3 * medians["none"]


def test_cancel_keeps_the_history_unchanged(moons):
    clf, data = moons
    images, labels = data.split("train")
    run = LiveTraining(_fresh_moons_classifier(clf), images, labels)
    cancel = threading.Event()
    seen = []

    def progress(done: int, total: int | None) -> None:
        seen.append((done, total))
        if done == 2:
            cancel.set()

    with pytest.raises(bw.Cancelled):
        run.train_epoch(progress=progress, cancel=cancel)
    assert run.history == [] and seen[:2] == [(1, seen[0][1]), (2, seen[0][1])]


@pytest.mark.parametrize(
    ("setting", "value", "error"),
    [
        ("learning_rate", 0, ValueError),
        ("learning_rate", "fast", TypeError),
        ("weight_decay", -1.0, ValueError),
        ("epsilon", float("inf"), ValueError),
        ("adversarial", "fgsm", ValueError),
        ("batch_size", 0, ValueError),
    ],
)
def test_bad_settings_name_the_argument(moons, setting, value, error):
    clf, data = moons
    images, labels = data.split("train")
    with pytest.raises(error, match=f"`{setting}`"):
        LiveTraining(clf, images, labels, **{setting: value})


def test_labels_must_match_the_images(moons):
    clf, data = moons
    images, labels = data.split("train")
    with pytest.raises(ValueError, match="`labels`"):
        LiveTraining(clf, images, labels[:-1])
    with pytest.raises(ValueError, match="`labels`"):
        LiveTraining(clf, images, labels + 5)
