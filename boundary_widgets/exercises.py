"""Checks for the lesson notebooks' exercises: each shows a verdict, ✓ or ✗ with a hint, and never raises.

A check cell calls one function here with the student's answers and what the lesson computed;
it returns a :class:`Verdict`, which the notebook displays. "Run all" therefore never stops at
an unanswered exercise, and the reference computation stays out of the visible cell (and out
of any traceback). Each check looks for the misconceptions a student is likely to have (a
percentage for a fraction, a ratio upside down, the whole selection for its label, …) and names
them in its hint.

This module knows nothing of the notebooks: it takes plain values and the kit's own objects.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .core import certify_path, deepfool, directions

__all__ = [
    "Verdict",
    "check_auc",
    "check_boundary_distance",
    "check_change_ratio",
    "check_class_counts",
    "check_closest_band",
    "check_distance_ratio",
    "check_largest_gap",
    "check_leaving_fraction",
    "check_low_band_gain",
    "check_moons_classes",
    "check_normalised",
    "check_outside_counts",
    "check_path",
    "check_path_proven",
    "check_proven_share",
    "check_sensitive_band",
    "check_success_share",
]


@dataclass(frozen=True, repr=False)
class Verdict:
    """One exercise's outcome: ``passed`` and a ``message`` (what was found, or a hint towards it)."""

    exercise: str
    passed: bool
    message: str

    def __repr__(self) -> str:
        return f"{'✓' if self.passed else '✗'} {self.exercise}: {self.message}"

    def _repr_html_(self) -> str:
        colour, background = ("#1b5e20", "#e8f5e9") if self.passed else ("#b00020", "#fdecea")
        return (
            f'<div class="bw-verdict" style="color:{colour};background:{background};padding:4px 8px;'
            f'border-left:4px solid {colour}">{"✓" if self.passed else "✗"} <b>{html.escape(self.exercise)}</b>: '
            f"{html.escape(self.message)}</div>"
        )


class _Hint(Exception):
    """Raised inside a check: the answer is wrong, and this is what to tell the student."""


def _exercise(number: int, *names: str) -> Callable[[Callable[..., str]], Callable[..., Verdict]]:
    """Turn ``check(*answers, **lesson) -> success message`` (raising :class:`_Hint`) into a Verdict function."""
    exercise = f"Exercise {number}"
    quoted = " and ".join(f"`{name}`" for name in names)

    def decorate(check: Callable[..., str]) -> Callable[..., Verdict]:
        @functools.wraps(check)
        def verdict(*answers: Any, **lesson: Any) -> Verdict:
            if len(answers) != len(names):
                raise TypeError(f"{check.__name__} takes the answers {quoted}; got {len(answers)} values.")
            if any(answer is ... for answer in answers):
                return Verdict(exercise, False, f"not answered yet: set {quoted} in the cell above.")
            try:
                return Verdict(exercise, True, check(*answers, **lesson))
            except _Hint as hint:
                return Verdict(exercise, False, f"not yet: {hint}")
            except Exception as error:  # the student's answer broke the check: say so, never raise
                return Verdict(exercise, False, f"your answer could not be checked ({type(error).__name__}: {error}).")

        return verdict

    return decorate


def _elements(value: Any) -> int | None:
    """The number of elements of an array or tensor; None for anything else."""
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, np.ndarray):
        return value.size
    return None


def _number(value: Any, name: str) -> float:
    """``value`` as one float (a Python or NumPy number, or a one-element array/tensor), or a hint."""
    if isinstance(value, bool | np.bool_):
        raise _Hint(f"`{name}` must be a number, not {value}.")
    if isinstance(value, str):
        raise _Hint(f"`{name}` must be a number, not the text {value!r}.")
    if _elements(value) is not None:
        if _elements(value) != 1:
            raise _Hint(f"`{name}` must be one number; got an array of shape {tuple(value.shape)}.")
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _Hint(f"`{name}` must be a number; got a {type(value).__name__}.") from None


def _close(value: float, reference: float, *, rtol: float = 1e-3, atol: float = 1e-9) -> bool:
    return math.isfinite(value) and abs(value - reference) <= atol + rtol * abs(reference)


def _share(value: float, reference: float, name: str, *, of: str, complement: str) -> str | None:
    """The hint for the usual mistakes with a share in [0, 1]: a percentage, a count, the complement."""
    if reference != 0 and _close(value, 100 * reference):
        return f"`{name}` looks like a percentage ({value:g}); store the fraction, between 0 and 1."
    if value > 1:
        return f"`{name}` is a share of {of}: a number between 0 and 1, not a count."
    if _close(value, 1 - reference) and not _close(value, reference):
        return f"that is the share {complement}; the question asks for the other part."
    return None


def _ratio(value: float, reference: float, name: str, *, how: str) -> float:
    """``value`` if it is the ratio ``reference``; else the hint for one upside down, in percent, or just wrong."""
    if _close(value, reference):
        return value
    if reference != 0 and _close(value, 1 / reference):
        raise _Hint(f"`{name}` is upside down: {how}.")
    if _close(value, 100 * reference):
        raise _Hint(f"`{name}` looks like a percentage; store the plain ratio ({how}).")
    raise _Hint(f"{value:g} is not the ratio: {how}.")


# --- 1 · quickstart ------------------------------------------------------------------------------
@_exercise(1, "n_classes", "centre_class")
def check_moons_classes(n_classes: Any, centre_class: Any, *, clf: Any, explorer: Any) -> str:
    """The number of classes of ``clf`` and the class index at the centre of ``explorer``'s map."""
    names = list(clf.class_names)
    if _number(n_classes, "n_classes") != len(names):
        raise _Hint("count the classes the model knows: they are listed in `moons_clf.class_names`.")
    if hasattr(centre_class, "label") and hasattr(centre_class, "probabilities"):
        raise _Hint("`centre_class` holds the whole selection that `select` returns; its `.label` is the class index.")
    if isinstance(centre_class, str):
        raise _Hint(f"store the class's index (0 to {len(names) - 1}), not its name {centre_class!r}.")
    centre = int(clf.predict(explorer.origin))
    if _number(centre_class, "centre_class") != centre:
        raise _Hint(
            "the centre is the point (α, β) = (0, 0), the image the plane goes through: "
            "`moons_explorer.select(0.0, 0.0).label` is its class."
        )
    return f"{len(names)} classes; the centre is {names[centre]} (class {centre})."


def _first_change_along_alpha(sl: Any) -> float | None:
    """The smallest α > 0 on the map's row β = 0 whose label differs from the centre's (None if none)."""
    row = sl.labels[np.abs(sl.betas).argmin()]
    changed = (sl.alphas > 0) & (row != row[np.abs(sl.alphas).argmin()])
    return float(sl.alphas[changed].min()) if changed.any() else None


@_exercise(2, "boundary_distance")
def check_boundary_distance(boundary_distance: Any, *, clf: Any, x: torch.Tensor, explorer: Any) -> str:
    """Where the label first changes along u on the map ``explorer`` shows now (or DeepFool's distance)."""
    explorer.wait()
    sl = explorer.slice
    alphas = np.asarray(sl.alphas)
    step = float(alphas[1] - alphas[0])
    value = _number(boundary_distance, "boundary_distance")
    on_map = _first_change_along_alpha(sl)
    if on_map is not None and abs(value - on_map) <= 2 * step:
        return f"the boundary is {value:.3f} away along u (the map's row β = 0 changes label at {on_map:.3f})."
    if explorer.u["kind"] == "adversarial":
        distance = float(deepfool(clf, x).distances[0])
        if abs(value - distance) <= 0.1 * distance + 2 * step:
            return f"the boundary is {value:.3f} away along u; DeepFool says {distance:.3f}."
    if value <= 0:
        raise _Hint("a distance is positive: look at α > 0, right of the centre, on the row β = 0.")
    if value.is_integer() and 0 <= value < alphas.size and (on_map is None or abs(value - on_map) > 2 * step):
        raise _Hint(f"{value:g} looks like an index into `explorer.slice.alphas`; store the α there, a distance.")
    if abs(value - alphas[-1]) <= step:
        raise _Hint("`explorer.slice.alphas[-1]` is the right edge of the map, not the first change of label.")
    if on_map is None:
        raise _Hint(
            f"the map shows no boundary on its row β = 0 now (u is {explorer.u['kind']!r}): "
            "set the `u` dropdown back to `adversarial` and run your cell again."
        )
    raise _Hint(
        f"{value:g} is not where the label first changes along β = 0 "
        "(use `explorer.slice.labels`, `.alphas` and `.betas`)."
    )


# --- 2 · directions -------------------------------------------------------------------------------
@_exercise(1, "ratio")
def check_distance_ratio(ratio: Any, *, random_distances: Sequence[float], adversarial_distance: float) -> str:
    """The median distance along random directions over the distance along the adversarial one."""
    distances = np.asarray(random_distances, dtype=float)
    reference = float(np.median(distances)) / adversarial_distance
    value = _number(ratio, "ratio")
    if not _close(value, reference, rtol=0.05):
        if not math.isfinite(value):
            raise _Hint("some random directions never meet the boundary (inf): the median of all 20 ignores them.")
        finite = distances[np.isfinite(distances)]
        if finite.size and _close(value, float(finite.mean()) / adversarial_distance, rtol=0.01):
            raise _Hint("that uses the mean; a *typical* random direction is the median (`np.median`).")
        if _close(value, float(distances.min()) / adversarial_distance, rtol=0.01):
            raise _Hint("that uses the closest random direction; a typical one is the median.")
        _ratio(value, reference, "ratio", how="the median random distance ÷ the adversarial distance, well above 1")
    return f"the boundary is {value:.1f}× farther along a typical random direction than along the adversarial one."


@_exercise(2, "sensitive_band")
def check_sensitive_band(sensitive_band: Any, *, clf: Any, x: torch.Tensor) -> str:
    """The DCT band with the smallest DeepFool distance."""
    bands = ("low", "mid", "high")
    if isinstance(sensitive_band, int | np.integer):
        raise _Hint(f"store the band's name, one of {list(bands)}, not a number.")
    if isinstance(sensitive_band, dict | list | tuple):
        raise _Hint("store one band's name (the one with the smallest distance), not the whole collection.")
    if sensitive_band not in bands:
        raise _Hint(f"the band is one of {list(bands)}; got {sensitive_band!r}.")
    distances = {band: directions.make("dct", clf, x, band=band).info["distance"] for band in bands}
    nearest = min(distances, key=distances.get)
    rounded = {band: round(d, 2) for band, d in distances.items()}
    if sensitive_band == max(distances, key=distances.get):
        raise _Hint(f"the boundary is farthest along the {sensitive_band} band: the model is *least* sensitive there.")
    if sensitive_band != nearest:
        raise _Hint("compare `direction.info['distance']` of all three bands: the smallest distance wins.")
    return f"the model is most sensitive to the {nearest} band: {rounded}."


# --- 3 · connected regions --------------------------------------------------------------------------
@_exercise(1, "length_ratio", "stays_inside")
def check_path(length_ratio: Any, stays_inside: Any, *, path: Any, line: Any) -> str:
    """The path's length over the straight line's, and a function telling whether a route keeps the class."""
    _ratio(
        _number(length_ratio, "length_ratio"),
        path.length / path.straight_length,
        "length_ratio",
        how="`path.length` ÷ `path.straight_length`, at least 1 (a detour is never shorter)",
    )
    if not callable(stays_inside):
        raise _Hint("`stays_inside` must be a function of a route: `def stays_inside(route): return ...`.")
    verdicts = {}
    for name, route in (("path", path), ("line", line)):
        try:
            answer = stays_inside(route)
        except AttributeError as error:
            raise _Hint(f"`stays_inside({name})` failed ({error}): use only `route.labels`, which both have.") from None
        if _elements(answer) not in (None, 1):
            raise _Hint("return one True/False: whether *all* the labels are the class (`.all()`).")
        verdicts[name] = bool(answer)
    if not verdicts["path"]:
        raise _Hint("`stays_inside(path)` says the path leaves the class, but every checked point keeps it.")
    if verdicts["line"]:
        raise _Hint(
            "`stays_inside(line)` says the straight line stays inside, but it changes class: "
            "check that *every* entry of `route.labels` equals `path.label`."
        )
    return f"the path is {path.length / path.straight_length:.2f}× as long as the straight line and never leaves the class."


@_exercise(2, "leaving_fraction")
def check_leaving_fraction(leaving_fraction: Any, *, leaves_class: Callable[[int, int], bool], predicted: Any) -> str:
    """The share of pairs among the first 12 test images predicted 7 whose straight line leaves the class."""
    sevens = np.flatnonzero(np.asarray(predicted) == 7)[:12]
    leaving = [leaves_class(i, j) for n, i in enumerate(sevens) for j in sevens[n + 1 :]]
    reference = float(np.mean(leaving))
    value = _number(leaving_fraction, "leaving_fraction")
    if _close(value, reference):
        return f"{value:.0%} of the {len(leaving)} straight lines leave the class."
    hint = _share(value, reference, "leaving_fraction", of="the pairs", complement="of lines that stay inside")
    if hint is None and _close(value, float(sum(leaving))):
        hint = "that counts the lines; divide by the number of pairs."
    raise _Hint(hint or f"test every pair of the first 12 sevens with `leaves_class`; {value:g} is not that share.")


# --- 4 · bring your own model -------------------------------------------------------------------
@_exercise(1, "normalised")
def check_normalised(
    normalised: Any, *, net: torch.nn.Module, clf: Any, image: torch.Tensor, mean: float, std: float
) -> str:
    """The first test image normalised by hand: the bare ``net`` on it gives the wrapper's logits."""
    if not isinstance(normalised, torch.Tensor):
        raise _Hint(
            f"`normalised` must be a tensor (the image after normalisation); got a {type(normalised).__name__}."
        )
    batch = normalised if normalised.dim() == image.dim() + 1 else normalised.unsqueeze(0)
    if tuple(batch.shape[1:]) != tuple(image.shape):
        raise _Hint(
            f"`normalised` has shape {tuple(normalised.shape)}: store the image itself, normalised "
            f"(shape {tuple(image.shape)}), not the logits."
        )
    pixels = image.unsqueeze(0)
    expected = (pixels - mean) / std
    if torch.allclose(batch, expected, atol=1e-5):
        with torch.no_grad():
            same = torch.allclose(net(batch), clf.logits(pixels), atol=1e-5)
        if not same:
            raise _Hint("your normalisation is right, yet `net` disagrees with the wrapper: was `net` changed?")
        return "the bare network on your normalised image gives exactly the wrapper's logits."
    mistakes = (
        (pixels, "that is the image as it is: subtract `MEAN`, then divide by `STD`."),
        (pixels * std + mean, "that undoes a normalisation: normalising is `(pixels - MEAN) / STD`."),
        (pixels - mean, "subtract `MEAN`, then divide by `STD` as well."),
        (pixels / std, "subtract `MEAN` first, then divide by `STD`."),
        (
            (pixels - pixels.mean()) / pixels.std(),
            "use the network's `MEAN` and `STD`, not this image's own statistics.",
        ),
    )
    for wrong, hint in mistakes:
        if torch.allclose(batch, wrong, atol=1e-5):
            raise _Hint(hint)
    raise _Hint("normalise the first test image as the network expects: `(images[:1] - MEAN) / STD`.")


# --- 5 · band margins ----------------------------------------------------------------------------
@_exercise(1, "closest_band")
def check_closest_band(closest_band: Any, *, margins: Any) -> str:
    """The band with the smallest median margin, by name."""
    names = list(margins.band_names)
    if isinstance(closest_band, int | np.integer):
        raise _Hint(f"store the band's name (one of {names}), not its index.")
    if closest_band not in names:
        raise _Hint(f"pick one of {names}; got {closest_band!r}.")
    medians = np.asarray(margins.medians)
    nearest = names[int(np.argmin(medians))]
    if closest_band == names[int(np.argmax(medians))]:
        raise _Hint(f"the {closest_band} band has the *largest* median margin: the boundary is farthest there.")
    if closest_band != nearest:
        raise _Hint("compare `digits.medians`, one per band: the smallest median is the closest boundary.")
    return f"the boundary is closest along the {nearest} band."


@_exercise(2, "low_band_gain")
def check_low_band_gain(low_band_gain: Any, *, standard: Any, robust: Any) -> str:
    """Robust over standard median margin in the low band."""
    reference = float(robust.medians[0] / standard.medians[0])
    value = _number(low_band_gain, "low_band_gain")
    if _close(value, float(robust.medians[0] - standard.medians[0])) and not _close(value, reference):
        raise _Hint("that is a difference; a factor is robust ÷ standard.")
    if _close(value, float(np.mean(robust.margins[:, 0]) / np.mean(standard.margins[:, 0])), rtol=1e-6):
        if not _close(value, reference):
            raise _Hint("that uses the means; the lesson compares median margins (`.medians`).")
    _ratio(value, reference, "low_band_gain", how="the robust model's low-band median ÷ the standard model's")
    return f"adversarial training multiplies the low-band margin by {value:.2f}."


# --- 6 · curvature -------------------------------------------------------------------------------
@_exercise(1, "largest_gap")
def check_largest_gap(largest_gap: Any, *, exact: Any, finite: Any) -> str:
    """max |finite − exact| / |exact| over the principal curvatures."""
    exact_values, finite_values = np.asarray(exact.values, dtype=float), np.asarray(finite.values, dtype=float)
    gaps = np.abs(finite_values - exact_values) / np.abs(exact_values)
    reference = float(gaps.max())
    value = _number(largest_gap, "largest_gap")
    if _close(value, reference):
        return f"finite differences are within {value:.1%} of the exact curvatures on the smooth model."
    if _close(value, 100 * reference):
        raise _Hint("that looks like a percentage; store the fraction.")
    if _close(value, float(np.abs(finite_values - exact_values).max())):
        raise _Hint("that is the absolute difference; divide by |exact| for the relative one.")
    if _close(value, float(gaps.mean())):
        raise _Hint("that is the mean; the question asks for the largest relative difference.")
    raise _Hint("compare `finite.values` with `exact.values`, relative to `exact.values`, and take the largest.")


@_exercise(2, "auc")
def check_auc(auc: Any, *, scores_clean: Any, scores_perturbed: Any) -> str:
    """The share of (clean, perturbed) pairs in which the perturbed image scores higher, ties counting half."""
    clean, perturbed = np.asarray(scores_clean, dtype=float), np.asarray(scores_perturbed, dtype=float)
    higher = perturbed[:, None] > clean[None, :]
    ties = perturbed[:, None] == clean[None, :]
    reference = float(higher.mean() + 0.5 * ties.mean())
    value = _number(auc, "auc")
    if _close(value, reference, atol=1e-6):
        return f"ROC AUC {value:.3f}."
    hint = _share(value, reference, "auc", of="the pairs", complement="where the *clean* image scores higher")
    if hint is None and _close(value, float(higher.mean()), atol=1e-6):
        hint = "count ties as half a pair."
    raise _Hint(hint or "compare every perturbed score with every clean score (all pairs), ties counting half.")


# --- 7 · borderline ------------------------------------------------------------------------------
@_exercise(1, "success_share")
def check_success_share(success_share: Any, *, border: Any) -> str:
    """The share of pairs that reached a borderline sample."""
    success = np.asarray(border.success, dtype=bool)
    reference = float(success.mean())
    value = _number(success_share, "success_share")
    if _close(value, reference):
        return f"{value:.0%} of the pairs found a borderline sample."
    hint = _share(value, reference, "success_share", of="the pairs", complement="of pairs that failed")
    if hint is None and _close(value, float(success.sum())):
        hint = "that counts the pairs; divide by how many there are."
    raise _Hint(hint or "`border.success` has one bool per pair: take the share of True.")


@_exercise(2, "change_ratio")
def check_change_ratio(change_ratio: Any, *, pixels: Any, features: Any) -> str:
    """Mean label changes per line in input space over those in feature space."""
    reference = pixels.mean_changes / features.mean_changes
    value = _number(change_ratio, "change_ratio")
    if _close(value, pixels.mean_changes - features.mean_changes) and not _close(value, reference):
        raise _Hint("that is a difference; the question asks how many *times* more (a ratio).")
    _ratio(value, reference, "change_ratio", how="`pixels.mean_changes` ÷ `features.mean_changes`")
    return f"{value:.2f}× as many label changes per line in input space as in feature space."


# --- 8 · feature space ---------------------------------------------------------------------------
@_exercise(1, "n_checked", "n_outside")
def check_outside_counts(n_checked: Any, n_outside: Any, *, hulls: Any) -> str:
    """How many test features were checked in all, and how many of them lie outside their class's hull."""
    outside, counts = np.asarray(hulls.test_outside, dtype=float), np.asarray(hulls.n_test, dtype=float)
    checked = _number(n_checked, "n_checked")
    if checked == counts.size and checked != counts.sum():
        raise _Hint("`n_checked` counts the classes; `hulls.n_test` holds the number of test features of each.")
    if checked != counts.sum():
        raise _Hint("add up the test features checked per class (`hulls.n_test`).")
    expected = float((outside * counts).sum())
    value = _number(n_outside, "n_outside")
    if _close(value, float(outside.sum())) and not _close(value, expected):
        raise _Hint("that adds up the classes' *shares*; a share times its class's count is a number of features.")
    if _close(value, expected / counts.sum()) and not _close(value, expected):
        raise _Hint("that is a share; the question asks how many features.")
    if not _close(value, expected, atol=1e-6):
        raise _Hint(
            "multiply each class's share outside (`hulls.test_outside`) by its count (`hulls.n_test`) and add up."
        )
    return f"{round(expected)} of the {int(counts.sum())} test features checked lie outside their class's hull."


@_exercise(2, "pixel_classes", "feature_classes")
def check_class_counts(pixel_classes: Any, feature_classes: Any, *, pixel_slice: Any, feature_slice: Any) -> str:
    """How many classes each plane crosses."""
    expected = {
        "pixel_classes": len(pixel_slice.classes_present),
        "feature_classes": len(feature_slice.classes_present),
    }
    answers = {"pixel_classes": pixel_classes, "feature_classes": feature_classes}
    for name, answer in answers.items():
        if isinstance(answer, list | tuple | np.ndarray):
            raise _Hint(f"`{name}` holds the classes themselves; store how many there are (`len`).")
    values = {name: _number(answer, name) for name, answer in answers.items()}
    if values["pixel_classes"] == expected["feature_classes"] != expected["pixel_classes"] and (
        values["feature_classes"] == expected["pixel_classes"]
    ):
        raise _Hint("the two counts are swapped: `pixel_slice` is the plane in pixel space.")
    for name, slice_name in (("pixel_classes", "pixel_slice"), ("feature_classes", "feature_slice")):
        if values[name] != expected[name]:
            raise _Hint(
                f"`{name}` is not the number of classes on the plane: `{slice_name}.classes_present` lists them."
            )
    return f"{expected['pixel_classes']} classes in pixel space, {expected['feature_classes']} in feature space."


# --- 10 · certified maps ---------------------------------------------------------------------------
@_exercise(1, "proven_share")
def check_proven_share(proven_share: Any, *, certified: Any) -> str:
    """The share of the certified map's area proven single-label."""
    reference = float(certified.certificate.proven_area)
    value = _number(proven_share, "proven_share")
    if _close(value, reference, atol=1e-6):
        return f"{value:.1%} of the map's area is proven to hold one class; the rest is unproven (shaded)."
    if value == 1 and reference < 1:
        raise _Hint("not all of the map is proven: the shaded cells are unproven. The certificate has the share.")
    hint = _share(value, reference, "proven_share", of="the map's area", complement="left unproven")
    raise _Hint(hint or "the certificate's `proven_area` is the mean over cells of their proven share.")


@_exercise(2, "path_proven")
def check_path_proven(path_proven: Any, *, certified: Any, path: Any) -> str:
    """Whether ``certify_path`` proves the path stays in its class on the certified map."""
    if hasattr(path_proven, "proven"):
        raise _Hint("that is the whole certificate of the path; store its `.proven` (True or False).")
    if not isinstance(path_proven, bool | np.bool_):
        raise _Hint(f"`path_proven` must be True or False; got {path_proven!r:.40}.")
    proven = bool(certify_path(certified, path).proven)
    if bool(path_proven) != proven:
        raise _Hint(
            "ask `bw.certify_path(islands_proven, path)`: its `.proven` says whether the proof covers the path."
        )
    return "the path is proven to stay in its class." if proven else "the path is not proven to stay in its class."
