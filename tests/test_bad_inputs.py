"""Every bad input answered: a catalogue of wrong arguments across the API, the explorers, their
``from_state`` and the command line.

Each case must raise a ``TypeError`` (wrong type) or ``ValueError`` (right type, wrong value) whose
message names the argument, *before any work*: the model's forward is counted and must not have
run (cases marked ``after_probe`` may run the checks that need the model, such as a class test),
and the user's module must be unchanged (training flags, ``requires_grad``, ``.grad``, parameter
bytes; :func:`conftest.model_state`). Command-line cases must exit with status 2 and one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from conftest import model_state
from torch import nn

import boundary_widgets as bw
from boundary_widgets import cli

SHAPE = (1, 8, 8)
CLASSES = 10


class CountingNet(nn.Sequential):
    """A small smooth classifier (tanh) whose forward passes are counted, on 1×8×8 inputs."""

    forwards = 0  # class-wide: the classifier's eval view is a copy of the module tree

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        super().__init__(nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        type(self).forwards += 1
        return super().forward(x)


class NaNNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], CLASSES), float("nan"))


class OneLogitNet(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :1]


@pytest.fixture(scope="module")
def env() -> SimpleNamespace:
    net = CountingNet()
    clf = bw.Classifier(net, input_shape=SHAPE, bounds=(0.0, 1.0))
    images = torch.rand(12, *SHAPE, generator=torch.Generator().manual_seed(0))
    labels = clf.predict(images).numpy()
    x = images[0]
    other = images[int(np.flatnonzero(labels == labels[0])[-1])]  # same class as x (maybe x itself)
    plane = bw.Plane.through(x, torch.randn(SHAPE), torch.randn(SHAPE))
    space = bw.FeatureSpace(clf, images=images)
    margins = bw.analysis.band_margins(clf, images[:2], max_iter=3)
    path = bw.find_path(clf, x, other, max_depth=1)
    return SimpleNamespace(
        net=net,
        clf=clf,
        images=images,
        labels=labels,
        x=x,
        x_255=x * 255,
        x_uint8=(x * 255).to(torch.uint8),
        images_255=images * 255,
        same_class=other,
        plane=plane,
        plane_255=bw.Plane.through(x * 255, torch.randn(SHAPE), torch.randn(SHAPE)),
        space=space,
        margins=margins,
        path=path,
        empty=torch.zeros(0, *SHAPE),
        spare=CountingNet(seed=1),
        clf_b=bw.Classifier(CountingNet(seed=2), input_shape=SHAPE),
    )


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[SimpleNamespace], Any]
    error: type[Exception]
    match: str  # names the argument
    after_probe: bool = False  # the check needs the model's answer (a class test): forwards allowed


CASES: list[Case] = []


def case(name: str, call: Callable, error: type[Exception], match: str, *, after_probe: bool = False) -> None:
    CASES.append(Case(name, call, error, match, after_probe))


V, T = ValueError, TypeError
inf, nan = math.inf, math.nan

# --- Classifier construction (the module handed in is env.spare) ---------------------------------
C = bw.Classifier
case("clf-net-str", lambda e: C("model", input_shape=SHAPE), T, "`net`")
case("clf-shape-empty", lambda e: C(e.spare, input_shape=()), T, "`input_shape`")
case("clf-shape-zero", lambda e: C(e.spare, input_shape=(1, 0, 8)), V, "`input_shape`")
case("clf-shape-float", lambda e: C(e.spare, input_shape=(1, 8.0, 8)), T, "`input_shape`")
case("clf-shape-str", lambda e: C(e.spare, input_shape="1x8x8"), T, "`input_shape`")
case("clf-shape-wrong", lambda e: C(e.spare, input_shape=(3, 8, 8)), V, "`input_shape`", after_probe=True)
case("clf-bounds-reversed", lambda e: C(e.spare, input_shape=SHAPE, bounds=(1, 0)), V, "`bounds`")
case("clf-bounds-inf", lambda e: C(e.spare, input_shape=SHAPE, bounds=(0, inf)), V, "`bounds`")
case("clf-bounds-str", lambda e: C(e.spare, input_shape=SHAPE, bounds="ab"), T, "`bounds`")
case("clf-bounds-triple", lambda e: C(e.spare, input_shape=SHAPE, bounds=(0, 1, 2)), T, "`bounds`")
case("clf-mean-channels", lambda e: C(e.spare, input_shape=SHAPE, mean=[0.1, 0.2]), V, "`mean`")
case("clf-mean-str", lambda e: C(e.spare, input_shape=SHAPE, mean="a"), T, "`mean`")
case("clf-std-zero", lambda e: C(e.spare, input_shape=SHAPE, std=0), V, "`std`")
case("clf-std-negative", lambda e: C(e.spare, input_shape=SHAPE, std=[-1.0]), V, "`std`")
case("clf-std-nan", lambda e: C(e.spare, input_shape=SHAPE, std=np.float32(nan)), V, "`std`")
case(
    "clf-class-names-count",
    lambda e: C(e.spare, input_shape=SHAPE, class_names=["a"]),
    V,
    "`class_names`",
    after_probe=True,
)
case("clf-device-nope", lambda e: C(e.spare, input_shape=SHAPE, device="nope"), V, "`device`")
case("clf-device-float", lambda e: C(e.spare, input_shape=SHAPE, device=3.5), T, "`device`")
case("clf-output-float", lambda e: C(e.spare, input_shape=SHAPE, output=2.5), T, "`output`")
case("clf-output-key", lambda e: C(e.spare, input_shape=SHAPE, output="nope"), V, "`output`", after_probe=True)
case("clf-output-index", lambda e: C(e.spare, input_shape=SHAPE, output=5), V, "`output`", after_probe=True)
case("clf-nan-logits", lambda e: C(NaNNet(), input_shape=SHAPE), V, "`net`", after_probe=True)
case("clf-one-logit", lambda e: C(OneLogitNet(), input_shape=SHAPE), V, "`net`", after_probe=True)
case("clf-meta-device", lambda e: C(CountingNet().to("meta"), input_shape=SHAPE), V, "`net`.*meta")
if not torch.cuda.is_available():
    case("clf-cuda-missing", lambda e: C(e.spare, input_shape=SHAPE, device="cuda"), V, "`device`")

# --- Classifier methods ---------------------------------------------------------------------------
case("logits-str", lambda e: e.clf.logits("image"), T, "`x`")
case("logits-shape", lambda e: e.clf.logits(torch.zeros(3, 3)), V, "`x` must have shape")
case("logits-nan", lambda e: e.clf.logits(torch.full(SHAPE, nan)), V, "`x` must be finite")
case("logits-batch-size-zero", lambda e: e.clf.logits(e.x, batch_size=0), V, "`batch_size`")
case("predict-batch-size-float", lambda e: e.clf.predict(e.x, batch_size=1.5), T, "`batch_size`")
case("probabilities-inf", lambda e: e.clf.probabilities(torch.full(SHAPE, inf)), V, "`x` must be finite")

# --- Plane ------------------------------------------------------------------------------------------
P = bw.Plane.through
r1, r2 = torch.randn(SHAPE), torch.randn(SHAPE)
case("plane-tolerance-negative", lambda e: P(e.x, r1, r2, tolerance=-1), V, "`tolerance`")
case("plane-tolerance-one", lambda e: P(e.x, r1, r2, tolerance=1.0), V, "`tolerance`")
case("plane-tolerance-str", lambda e: P(e.x, r1, r2, tolerance="a"), T, "`tolerance`")
case("plane-tolerance-nan", lambda e: P(e.x, r1, r2, tolerance=nan), V, "`tolerance`")
case("plane-u-zero", lambda e: P(e.x, torch.zeros(SHAPE), r2), V, "`u` must be a non-zero")
case("plane-v-zero", lambda e: P(e.x, r1, torch.zeros(SHAPE)), V, "`v` must be a non-zero")
case("plane-parallel", lambda e: P(e.x, r1, -3 * r1), V, "`u` and `v` must not be parallel")
case("plane-u-shape", lambda e: P(e.x, torch.ones(3), r2), V, "`u` must have the shape of `x`")
case("plane-x-str", lambda e: P("x", r1, r2), T, "`x`")
case("plane-u-nan", lambda e: P(e.x, torch.full(SHAPE, nan), r2), V, "`u` must be finite")
case("plane-points-lengths", lambda e: e.plane.points([1.0, 2.0], [1.0]), V, "`alphas` and `betas`")
case("plane-points-nan", lambda e: e.plane.points([nan], [1.0]), V, "`alphas` must be finite")
case("plane-point-str", lambda e: e.plane.point("a", 0.0), T, "`alpha`")
case("plane-point-inf", lambda e: e.plane.point(0.0, inf), V, "`beta`")
case("plane-coordinates-shape", lambda e: e.plane.coordinates(torch.zeros(3)), V, "`x` must have the plane's shape")

# --- compute_slice ----------------------------------------------------------------------------------
S = bw.compute_slice
case("slice-clf-str", lambda e: S("clf", e.plane, extent=1), T, "`clf`")
case("slice-plane-str", lambda e: S(e.clf, "plane", extent=1), T, "`plane`")
case(
    "slice-plane-shape", lambda e: S(e.clf, P(torch.zeros(4), torch.ones(4), torch.arange(4.0)), extent=1), V, "`plane`"
)
case("slice-origin-255", lambda e: S(e.clf, e.plane_255, extent=1, resolution=8), V, "`plane.origin` must lie within")
case("slice-extent-zero", lambda e: S(e.clf, e.plane, extent=0), V, "`extent`")
case("slice-extent-negative", lambda e: S(e.clf, e.plane, extent=-1), V, "`extent`")
case("slice-extent-inf", lambda e: S(e.clf, e.plane, extent=inf), V, "`extent`")
case("slice-extent-nan", lambda e: S(e.clf, e.plane, extent=nan), V, "`extent`")
case("slice-extent-str", lambda e: S(e.clf, e.plane, extent="big"), T, "`extent`")
case("slice-extent-decreasing", lambda e: S(e.clf, e.plane, extent=((1, 0), (0, 1))), V, "`extent`")
case("slice-resolution-one", lambda e: S(e.clf, e.plane, extent=1, resolution=1), V, "`resolution` must be >= 2")
case("slice-resolution-zero", lambda e: S(e.clf, e.plane, extent=1, resolution=0), V, "`resolution`")
case("slice-resolution-float", lambda e: S(e.clf, e.plane, extent=1, resolution=2.5), T, "`resolution`")
case("slice-resolution-bool", lambda e: S(e.clf, e.plane, extent=1, resolution=True), T, "`resolution`")
case(
    "slice-resolution-60000", lambda e: S(e.clf, e.plane, extent=1, resolution=60000), V, "`resolution` must be at most"
)
case("slice-resolution-memory", lambda e: S(e.clf, e.plane, extent=1, resolution=(4000, 4000)), V, "`resolution`.*MiB")
case("slice-resolution-triple", lambda e: S(e.clf, e.plane, extent=1, resolution=(2, 3, 4)), V, "`resolution`")
case("slice-method", lambda e: S(e.clf, e.plane, extent=1, method="magic"), V, "`method`")
case("slice-clip-str", lambda e: S(e.clf, e.plane, extent=1, clip="yes"), T, "`clip`")
case("slice-precision", lambda e: S(e.clf, e.plane, extent=1, precision="fp8"), V, "`precision`")
case("slice-memory-budget", lambda e: S(e.clf, e.plane, extent=1, memory_budget=0), V, "`memory_budget`")
case("slice-on-frame", lambda e: S(e.clf, e.plane, extent=1, on_frame=3), T, "`on_frame`")
case("slice-cancel", lambda e: S(e.clf, e.plane, extent=1, cancel=3), T, "`cancel`")
case("slice-progress", lambda e: S(e.clf, e.plane, extent=1, progress="yes"), T, "`progress`")
case("slice-cache", lambda e: S(e.clf, e.plane, extent=1, cache="no"), T, "`cache`")
case("iter-slice-resolution", lambda e: next(bw.iter_slice(e.clf, e.plane, extent=1, resolution=1)), V, "`resolution`")

# --- deepfool and sparsefool --------------------------------------------------------------------
D = bw.deepfool
case("deepfool-clf-str", lambda e: D("clf", e.x), T, "`clf`")
case("deepfool-x-255", lambda e: D(e.clf, e.x_255), V, "`x` must lie within the classifier's bounds")
case("deepfool-x-uint8", lambda e: D(e.clf, e.x_uint8), V, "`x` must lie within the classifier's bounds")
case("deepfool-x-shape", lambda e: D(e.clf, torch.zeros(2, 8)), V, "`x` must have shape")
case("deepfool-x-nan", lambda e: D(e.clf, torch.full(SHAPE, nan)), V, "`x` must be finite")
case("deepfool-max-iter-zero", lambda e: D(e.clf, e.x, max_iter=0), V, "`max_iter`")
case("deepfool-max-iter-float", lambda e: D(e.clf, e.x, max_iter=1.5), T, "`max_iter`")
case("deepfool-candidates-one", lambda e: D(e.clf, e.x, candidates=1), V, "`candidates`")
case("deepfool-overshoot-inf", lambda e: D(e.clf, e.x, overshoot=inf), V, "`overshoot`")
case("deepfool-overshoot-negative", lambda e: D(e.clf, e.x, overshoot=-1), V, "`overshoot`")
case("deepfool-overshoot-str", lambda e: D(e.clf, e.x, overshoot="a"), T, "`overshoot`")
case("deepfool-target-negative", lambda e: D(e.clf, e.x, target=-1), V, "`target`")
case("deepfool-target-too-big", lambda e: D(e.clf, e.x, target=CLASSES), V, "`target`")
case("deepfool-target-bool", lambda e: D(e.clf, e.x, target=True), T, "`target`")
case("deepfool-target-float", lambda e: D(e.clf, e.x, target=1.0), T, "`target`")
case("deepfool-target-float-tensor", lambda e: D(e.clf, e.x, target=torch.tensor(1.0)), T, "`target`")
case("deepfool-clip-int", lambda e: D(e.clf, e.x, clip=1), T, "`clip`")
case("deepfool-subspace-shape", lambda e: D(e.clf, e.x, subspace=torch.eye(3)), V, "`subspace`")
case("deepfool-subspace-not-orthonormal", lambda e: D(e.clf, e.x, subspace=torch.ones(64, 2)), V, "`subspace`")
case("deepfool-progress", lambda e: D(e.clf, e.x, progress="yes"), T, "`progress`")
SF = bw.sparsefool
case("sparsefool-clf", lambda e: SF("clf", e.x), T, "`clf`")
case("sparsefool-x-255", lambda e: SF(e.clf, e.x_255), V, "`x` must lie within")
case("sparsefool-lam-inf", lambda e: SF(e.clf, e.x, lam=inf), V, "`lam`")
case("sparsefool-lam-small", lambda e: SF(e.clf, e.x, lam=0.5), V, "`lam` must be >= 1")
case("sparsefool-max-rounds", lambda e: SF(e.clf, e.x, max_rounds=0), V, "`max_rounds`")
case("sparsefool-max-iter", lambda e: SF(e.clf, e.x, max_iter=0), V, "`max_iter`")
case("sparsefool-overshoot-nan", lambda e: SF(e.clf, e.x, overshoot=nan), V, "`overshoot`")

# --- curvature ----------------------------------------------------------------------------------
PC = bw.principal_curvatures
case("curvatures-clf", lambda e: PC("clf", e.x), T, "`clf`")
case("curvatures-x-255", lambda e: PC(e.clf, e.x_255), V, "`x` must lie within")
case("curvatures-x-batch", lambda e: PC(e.clf, e.images[:2]), V, "`x` must have shape")
case("curvatures-k-zero", lambda e: PC(e.clf, e.x, k=0), V, "`k`")
case("curvatures-k-too-big", lambda e: PC(e.clf, e.x, k=64), V, "`k`")
case("curvatures-which", lambda e: PC(e.clf, e.x, which="nope"), V, "`which`")
case("curvatures-mode", lambda e: PC(e.clf, e.x, mode="nope"), V, "`mode`")
case("curvatures-step-zero", lambda e: PC(e.clf, e.x, step=0), V, "`step`")
case("curvatures-step-inf", lambda e: PC(e.clf, e.x, step=inf), V, "`step`")
case("curvatures-tol-negative", lambda e: PC(e.clf, e.x, tol=-1), V, "`tol`")
case("curvatures-max-iter", lambda e: PC(e.clf, e.x, max_iter=0), V, "`max_iter`")
CS = bw.analysis.curvature_spectrum
case("spectrum-clf", lambda e: CS("clf", e.x), T, "`clf`")
case("spectrum-x-255", lambda e: CS(e.clf, e.x_255), V, "`x` must lie within")
case("spectrum-k-zero", lambda e: CS(e.clf, e.x, k=0), V, "`k`")
case("spectrum-flat-tolerance-str", lambda e: CS(e.clf, e.x, flat_tolerance="a"), T, "`flat_tolerance`")
case("spectrum-flat-tolerance-negative", lambda e: CS(e.clf, e.x, flat_tolerance=-1.0), V, "`flat_tolerance`")
case("spectrum-dense-limit", lambda e: CS(e.clf, e.x, dense_limit=0), V, "`dense_limit`")
case("spectrum-mode", lambda e: CS(e.clf, e.x, mode="nope"), V, "`mode`")
CSC = bw.analysis.curvature_score
case("score-images-255", lambda e: CSC(e.clf, e.images_255), V, "`images` must lie within")
case("score-images-empty", lambda e: CSC(e.clf, e.empty), V, "`images`")
case("score-n-directions", lambda e: CSC(e.clf, e.images, n_directions=0), V, "`n_directions`")
case("score-step", lambda e: CSC(e.clf, e.images, step=-1.0), V, "`step`")
case("score-batch-size", lambda e: CSC(e.clf, e.images, batch_size=0), V, "`batch_size`")

# --- band margins -------------------------------------------------------------------------------
BM = bw.analysis.band_margins
case("margins-images-255", lambda e: BM(e.clf, e.images_255), V, "`images` must lie within")
case("margins-images-empty", lambda e: BM(e.clf, e.empty), V, "`images`")
case("margins-max-iter", lambda e: BM(e.clf, e.images, max_iter=0), V, "`max_iter`")
case("margins-overshoot", lambda e: BM(e.clf, e.images, overshoot=-1.0), V, "`overshoot`")
case("margins-progress", lambda e: BM(e.clf, e.images, progress="yes"), T, "`progress`")
case("margins-bands-str", lambda e: BM(e.clf, e.images, bands="low"), T, "`bands`")
case(
    "margins-bands-shape", lambda e: BM(e.clf, e.images, bands=bw.dct.bands((1, 16, 16))), V, "`bands` must be bands of"
)
case("deepfool-band-shape", lambda e: D(e.clf, e.x, subspace=bw.dct.bands((1, 16, 16))[0]), V, "`subspace`")
BD = bw.analysis.band_direction
case("band-direction-band", lambda e: BD(e.clf, e.margins, e.x, 99), V, "`band`")
case("band-direction-band-bool", lambda e: BD(e.clf, e.margins, e.x, True), T, "`band`")
case("band-direction-result", lambda e: BD(e.clf, "result", e.x, 0), T, "`result`")
case("band-direction-x-255", lambda e: BD(e.clf, e.margins, e.x_255, 0), V, "`x` must lie within")

# --- DCT bands ----------------------------------------------------------------------------------
DCT = bw.dct
case("dct-bands-shape-str", lambda e: DCT.bands("abc"), T, "`shape`")
case("dct-bands-shape-zero", lambda e: DCT.bands((0, 8, 8)), V, "`shape`")
case("dct-bands-block-zero", lambda e: DCT.bands(SHAPE, block=0), V, "`block`")
case("dct-bands-block-float", lambda e: DCT.bands(SHAPE, block=2.5), T, "`block`")
case("dct-bands-stride-zero", lambda e: DCT.bands(SHAPE, stride=0), V, "`stride`")
case("dct-atom-row", lambda e: DCT.dct_atom(SHAPE, 9, 0), V, "`row`")
case("dct-atom-channel", lambda e: DCT.dct_atom(SHAPE, 0, 0, channel=3), V, "`channel`")

# --- directions ---------------------------------------------------------------------------------
M = bw.directions.make
case("make-kind-unknown", lambda e: M("nope", e.clf, e.x), V, "`kind`")
case("make-kind-int", lambda e: M(3, e.clf, e.x), T, "`kind`")
case("make-clf-str", lambda e: M("random", "clf", e.x), T, "`clf`")
case("make-x-255", lambda e: M("random", e.clf, e.x_255), V, "`x` must lie within")
case("make-x-batch", lambda e: M("random", e.clf, e.images), V, "`x` must have shape")
case("make-unknown-parameter", lambda e: M("random", e.clf, e.x, colour=1), V, "unknown parameter.*colour")
case(
    "make-gradient-target-negative", lambda e: M("adversarial", e.clf, e.x, method="gradient", target=-1), V, "`target`"
)
case("make-target-bool", lambda e: M("adversarial", e.clf, e.x, target=True), T, "`target`")
case("make-target-too-big", lambda e: M("adversarial", e.clf, e.x, target=CLASSES), V, "`target`")
case("make-method", lambda e: M("adversarial", e.clf, e.x, method="nope"), V, "`method`")
case("make-candidates", lambda e: M("adversarial", e.clf, e.x, candidates=1), V, "`candidates`")
case("make-max-iter", lambda e: M("adversarial", e.clf, e.x, max_iter=0), V, "`max_iter`")
case("make-clip-str", lambda e: M("adversarial", e.clf, e.x, clip="yes"), T, "`clip`")
case("make-seed-negative", lambda e: M("random", e.clf, e.x, seed=-1), V, "`seed`")
case("make-seed-float", lambda e: M("random", e.clf, e.x, seed=1.5), T, "`seed`")
case("make-subspace-shape", lambda e: M("random", e.clf, e.x, subspace=torch.eye(3)), V, "`subspace`")
case("make-dct-band-index", lambda e: M("dct", e.clf, e.x, band=99), V, "`band`")
case("make-dct-band-name", lambda e: M("dct", e.clf, e.x, band="nope"), V, "`band`")
case("make-dct-block", lambda e: M("dct", e.clf, e.x, block=0), V, "`block`")
case("make-curvature-index", lambda e: M("curvature", e.clf, e.x, index=5, k=5), V, "`index`")
case("make-curvature-k", lambda e: M("curvature", e.clf, e.x, k=0), V, "`k`")
case("make-curvature-mode", lambda e: M("curvature", e.clf, e.x, mode="nope"), V, "`mode`")
case("make-image-missing", lambda e: M("image", e.clf, e.x), V, "`other`")
case("make-image-255", lambda e: M("image", e.clf, e.x, other=e.x_255), V, "`other` must lie within")
case("make-sparse-lam-inf", lambda e: M("sparse", e.clf, e.x, lam=inf), V, "`lam`")
case("make-sparse-lam-small", lambda e: M("sparse", e.clf, e.x, lam=0.5), V, "`lam`")
case("make-sparse-rounds", lambda e: M("sparse", e.clf, e.x, max_rounds=0), V, "`max_rounds`")
MB = bw.directions.make_batch
case("make-batch-single", lambda e: MB("random", e.clf, e.x), V, "`images` must have shape")
case("make-batch-255", lambda e: MB("adversarial", e.clf, e.images_255), V, "`images` must lie within")

# --- paths --------------------------------------------------------------------------------------
FP, FPS, LP = bw.find_path, bw.find_paths, bw.line_profile
case("path-clf-str", lambda e: FP("clf", e.x, e.same_class), T, "`clf`")
case("path-x-a-255", lambda e: FP(e.clf, e.x_255, e.same_class), V, "`x_a` must lie within")
case("path-x-b-shape", lambda e: FP(e.clf, e.x, torch.zeros(3)), V, "`x_b` must have shape")
case("path-max-depth", lambda e: FP(e.clf, e.x, e.same_class, max_depth=-1), V, "`max_depth`")
case("path-samples", lambda e: FP(e.clf, e.x, e.same_class, samples_per_segment=1), V, "`samples_per_segment`")
case("path-overshoot-inf", lambda e: FP(e.clf, e.x, e.same_class, overshoot=inf), V, "`overshoot`")
case("path-push-nan", lambda e: FP(e.clf, e.x, e.same_class, push=nan), V, "`push`")
case("path-push-bool", lambda e: FP(e.clf, e.x, e.same_class, push=True), T, "`push`")
case("path-max-iter", lambda e: FP(e.clf, e.x, e.same_class, max_iter=0), V, "`max_iter`")
case("paths-empty", lambda e: FPS(e.clf, e.empty, e.empty), V, "`images_a` must hold at least one")
case("paths-counts", lambda e: FPS(e.clf, e.images[:2], e.images[:3]), V, "`images_a` and `images_b` must hold")
case("paths-single", lambda e: FPS(e.clf, e.x, e.x), V, "`images_a` must have shape")
case("paths-255", lambda e: FPS(e.clf, e.images_255[:2], e.images[:2]), V, "`images_a` must lie within")
case("path-points-at-str", lambda e: e.path.points_at("middle"), T, "`positions`")
case("path-points-at-nan", lambda e: e.path.points_at([nan]), V, "`positions`")
case("path-plane-seed", lambda e: e.path.plane(seed=-1), V, "`seed`")
case("path-plane-coordinates", lambda e: e.path.plane_coordinates("plane"), T, "`plane`")
case("line-n-one", lambda e: LP(e.clf, e.x, e.same_class, n=1), V, "`n`")
case("line-n-float", lambda e: LP(e.clf, e.x, e.same_class, n=2.5), T, "`n`")
case("line-x-b-255", lambda e: LP(e.clf, e.x, e.x_255), V, "`x_b` must lie within")

# --- borderline samples and trajectories --------------------------------------------------------
BS = bw.analysis.borderline_samples
case("borderline-images-empty", lambda e: BS(e.clf, e.empty, 0, 1), V, "`images` must hold at least one")
case("borderline-images-255", lambda e: BS(e.clf, e.images_255, 0, 1), V, "`images` must lie within")
case("borderline-source-range", lambda e: BS(e.clf, e.images, CLASSES, 1), V, "`source`")
case("borderline-source-bool", lambda e: BS(e.clf, e.images, True, 2), T, "`source`")
case("borderline-target-negative", lambda e: BS(e.clf, e.images, 0, -1), V, "`target`")
case("borderline-same-class", lambda e: BS(e.clf, e.images, 3, 3), V, "`target` must differ")
case("borderline-threshold-zero", lambda e: BS(e.clf, e.images, 0, 1, threshold=0), V, "`threshold`")
case("borderline-threshold-one", lambda e: BS(e.clf, e.images, 0, 1, threshold=1), V, "`threshold`")
case("borderline-threshold-nan", lambda e: BS(e.clf, e.images, 0, 1, threshold=nan), V, "`threshold`")
case("borderline-bisection-steps", lambda e: BS(e.clf, e.images, 0, 1, bisection_steps=0), V, "`bisection_steps`")
case("borderline-max-iter", lambda e: BS(e.clf, e.images, 0, 1, max_iter=0), V, "`max_iter`")
TL = bw.analysis.trajectory_label_changes
case("trajectory-no-partners", lambda e: TL(e.clf, e.images, e.empty), V, "`partner_images` must hold at least one")
case("trajectory-no-images", lambda e: TL(e.clf, e.empty, e.images), V, "`images` must hold at least one")
case("trajectory-n-partners", lambda e: TL(e.clf, e.images, e.images, n_partners=0), V, "`n_partners`")
case("trajectory-n-points", lambda e: TL(e.clf, e.images, e.images, n_points=1), V, "`n_points`")
case("trajectory-seed", lambda e: TL(e.clf, e.images, e.images, seed=-1), V, "`seed`")
case("trajectory-255", lambda e: TL(e.clf, e.images_255, e.images), V, "`images` must lie within")
case("trajectory-clf", lambda e: TL("clf", e.images, e.images), T, "`clf`")

# --- feature space, hulls, linearity ------------------------------------------------------------
FS = bw.FeatureSpace
case("space-clf", lambda e: FS("clf", images=e.images), T, "`clf`")
case("space-images-empty-list", lambda e: FS(e.clf, images=[]), V, "`images`")
case("space-images-empty", lambda e: FS(e.clf, images=e.empty), V, "`images` must hold at least one")
case("space-images-255", lambda e: FS(e.clf, images=e.images_255), V, "`images` must lie within")
case("space-nothing", lambda e: FS(e.clf), V, "`images` or `bounds`")
case("space-padding-negative", lambda e: FS(e.clf, images=e.images, padding=-1), V, "`padding`")
case("space-padding-str", lambda e: FS(e.clf, images=e.images, padding="a"), T, "`padding`")
case("space-bounds-reversed", lambda e: FS(e.clf, bounds=(1.0, 0.0)), V, "`bounds`")
case("space-bounds-str", lambda e: FS(e.clf, bounds="ab"), T, "`bounds`")
case("space-layer-index", lambda e: FS(e.clf, 99, images=e.images), V, "`layer`")
case("space-head-str", lambda e: FS(e.clf, "1", head="head", images=e.images), T, "`head`")
case("space-features-shape", lambda e: e.space.features(torch.zeros(3)), V, "`x` must have shape")
case("space-features-batch-size", lambda e: e.space.features(e.images, batch_size=0), V, "`batch_size`")
CH = bw.analysis.class_hulls
case("hulls-space", lambda e: CH("space", e.images, e.labels, e.images, e.labels), T, "`space`")
case("hulls-labels-length", lambda e: CH(e.space, e.images, e.labels[:3], e.images, e.labels), V, "`train_labels`")
case("hulls-labels-float", lambda e: CH(e.space, e.images, e.labels + 0.5, e.images, e.labels), T, "`train_labels`")
case("hulls-labels-range", lambda e: CH(e.space, e.images, e.labels + CLASSES, e.images, e.labels), V, "`train_labels`")
case("hulls-test-labels", lambda e: CH(e.space, e.images, e.labels, e.images, "labels"), T, "`test_labels`")
case("hulls-train-empty", lambda e: CH(e.space, e.empty, [], e.images, e.labels), V, "`train_images`")
case("hulls-train-255", lambda e: CH(e.space, e.images_255, e.labels, e.images, e.labels), V, "`train_images` must lie")
case(
    "hulls-samples",
    lambda e: CH(e.space, e.images, e.labels, e.images, e.labels, samples_per_class=1),
    V,
    "`samples_per_class`",
)
case(
    "hulls-max-test",
    lambda e: CH(e.space, e.images, e.labels, e.images, e.labels, max_test_per_class=0),
    V,
    "`max_test_per_class`",
)
case(
    "hulls-class-never-correct",
    lambda e: CH(e.space, e.images, (e.labels + 1) % CLASSES, e.images, e.labels),
    V,
    "`train_images` must hold a correctly classified image of each class",
    after_probe=True,
)
HM = bw.analysis.hull_membership
case("hull-features-empty", lambda e: HM(np.zeros((0, 3)), np.ones(3)), V, "`features` must hold at least one")
case("hull-x-empty", lambda e: HM(np.eye(3), np.zeros((0, 3))), V, "`x` must hold at least one")
case("hull-x-features", lambda e: HM(np.eye(3), np.ones(2)), V, "`x` must have 3 features")
case("hull-tolerance-zero", lambda e: HM(np.eye(3), np.ones(3), tolerance=0), V, "`tolerance`")
case("hull-tolerance-str", lambda e: HM(np.eye(3), np.ones(3), tolerance="a"), T, "`tolerance`")
case("hull-features-nan", lambda e: HM(np.full((2, 3), nan), np.ones(3)), V, "`features` must be finite")
case("hull-features-str", lambda e: HM("points", np.ones(3)), T, "`features`")
EL = bw.analysis.embedding_linearity
case("linearity-space", lambda e: EL("space", e.images, e.images, e.images), T, "`space`")
case("linearity-c", lambda e: EL(e.space, e.images, e.images, e.images, C=0), V, "`C`")
case("linearity-source-empty", lambda e: EL(e.space, e.empty, e.images, e.images), V, "`source_images` must hold")
case(
    "linearity-borderline-shape",
    lambda e: EL(e.space, e.images, e.images, torch.zeros(2, 3)),
    V,
    "`borderline_images` must have shape",
)

# --- explorers (threaded=False) and their from_state -------------------------------------------


def _explorers() -> Any:
    return pytest.importorskip("boundary_widgets.widgets")


def slice_explorer(e: SimpleNamespace, **options: Any) -> Any:
    return _explorers().SliceExplorer(e.clf, options.pop("x", e.x), threaded=False, **options)


def path_explorer(e: SimpleNamespace, **options: Any) -> Any:
    return _explorers().PathExplorer(e.clf, options.pop("x_a", e.x), e.same_class, threaded=False, **options)


def margin_explorer(e: SimpleNamespace, **options: Any) -> Any:
    return _explorers().MarginExplorer(e.clf, options.pop("images", e.images[:2]), threaded=False, **options)


case("slice-explorer-x-255", lambda e: slice_explorer(e, x=e.x_255), V, "`x` must lie within")
case("slice-explorer-resolution", lambda e: slice_explorer(e, resolution=1), V, "`resolution`")
case("slice-explorer-resolution-huge", lambda e: slice_explorer(e, resolution=60000), V, "`resolution`")
case("slice-explorer-u", lambda e: slice_explorer(e, u="nope"), V, "`u`")
case("slice-explorer-method", lambda e: slice_explorer(e, method="magic"), V, "`method`")
case("slice-explorer-extent", lambda e: slice_explorer(e, extent=-1.0), V, "`extent`")
case("slice-explorer-shading", lambda e: slice_explorer(e, shading="nope"), V, "`shading`")
case("slice-explorer-clip", lambda e: slice_explorer(e, clip="yes"), T, "`clip`")
case("slice-explorer-u-params", lambda e: slice_explorer(e, u="random", u_params={"seed": -1}), V, "u_params.*seed")
case("path-explorer-x-a-255", lambda e: path_explorer(e, x_a=e.x_255), V, "`x_a` must lie within")
case("path-explorer-max-depth", lambda e: path_explorer(e, max_depth=-1), V, "`max_depth`")
case("path-explorer-samples", lambda e: path_explorer(e, samples_per_segment=1), V, "`samples_per_segment`")
case("path-explorer-position", lambda e: path_explorer(e, position=2.0), V, "`position`")
case("path-explorer-method", lambda e: path_explorer(e, method="magic"), V, "`method`")
case("margin-explorer-empty", lambda e: margin_explorer(e, images=e.empty), V, "`images`")
case("margin-explorer-255", lambda e: margin_explorer(e, images=e.images_255), V, "`images` must lie within")
case("margin-explorer-resolution", lambda e: margin_explorer(e, resolution=0), V, "`resolution`")


def compare_explorer(e: SimpleNamespace, **options: Any) -> Any:
    clf_b = options.pop("clf_b", e.clf_b)
    return _explorers().CompareExplorer(e.clf, clf_b, options.pop("x", e.x), threaded=False, **options)


case("compare-explorer-x-255", lambda e: compare_explorer(e, x=e.x_255), V, "`x` must lie within")
case("compare-explorer-clf-b", lambda e: compare_explorer(e, clf_b="model"), T, "`clf_b`")
case("compare-explorer-from", lambda e: compare_explorer(e, directions_from="c"), V, "`directions_from`")
case("compare-explorer-resolution", lambda e: compare_explorer(e, resolution=1), V, "`resolution`")
case("compare-explorer-u", lambda e: compare_explorer(e, u="nope"), V, "`u`")
case("compare-explorer-u-params", lambda e: compare_explorer(e, u="random", u_params={"seed": -1}), V, "u_params.*seed")
case("compare-explorer-extent", lambda e: compare_explorer(e, extent=0.0), V, "`extent`")
case("compare-explorer-boundaries", lambda e: compare_explorer(e, boundaries="yes"), T, "`boundaries`")


def training_explorer(**options: Any) -> Callable[[SimpleNamespace], Any]:
    def build(e: SimpleNamespace) -> Any:
        clf, data = bw.zoo.load("moons-mlp", device="cpu")
        return _explorers().TrainingExplorer(clf, options.pop("dataset", data), threaded=False, **options)

    return build


case("training-explorer-dataset", training_explorer(dataset="moons"), T, "`dataset`")
case("training-explorer-start", training_explorer(start="later"), V, "`start`")
case("training-explorer-width", training_explorer(width=0), V, "`width`")
case("training-explorer-learning-rate", training_explorer(learning_rate=-1.0), V, "`learning_rate`")
case("training-explorer-adversarial", training_explorer(adversarial="pgd2"), V, "`adversarial`")
case("training-explorer-resolution", training_explorer(resolution=True), T, "`resolution`")


def slice_state(e: SimpleNamespace, state: Any) -> Any:
    return _explorers().SliceExplorer.from_state(e.clf, e.x, state, threaded=False)


case("state-resolution-huge", lambda e: slice_state(e, {"resolution": 60000}), V, "resolution")
case("state-resolution-zero", lambda e: slice_state(e, {"resolution": 0}), V, "resolution")
case("state-resolution-str", lambda e: slice_state(e, {"resolution": "many"}), T, "resolution")
case("state-extent-negative", lambda e: slice_state(e, {"extent": -1.0}), V, "extent")
case("state-method", lambda e: slice_state(e, {"method": "magic"}), V, "method")
case("state-direction-kind", lambda e: slice_state(e, {"u": {"kind": "nope", "params": {}}}), V, "`state\\['u'\\]")
case("state-unknown-setting", lambda e: slice_state(e, {"colour": 1}), V, "colour")
case("state-garbage", lambda e: slice_state(e, "not a share string"), V, "`state`")
case("state-int", lambda e: slice_state(e, 3), T, "`state`")
case("state-other-explorer", lambda e: slice_state(e, {"explorer": "PathExplorer"}), V, "`state`")
case("state-too-long", lambda e: slice_state(e, "x" * 100_000), V, "`state`")
case(
    "state-path-max-depth",
    lambda e: _explorers().PathExplorer.from_state(e.clf, (e.x, e.same_class), {"max_depth": 99}, threaded=False),
    V,
    "max_depth",
)
case(
    "state-margin-selected",
    lambda e: _explorers().MarginExplorer.from_state(e.clf, e.images[:2], {"selected": [99, 0]}, threaded=False),
    V,
    "selected",
)


@pytest.mark.parametrize("bad", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_before_work_naming_the_argument(env, bad):
    before, spare_before = model_state(env.net), model_state(env.spare)
    CountingNet.forwards = 0
    with pytest.raises(bad.error, match=bad.match) as raised:
        bad.call(env)
    assert type(raised.value) in (TypeError, ValueError), f"{type(raised.value).__name__}: {raised.value}"
    assert "`" in str(raised.value), f"the message names no argument: {raised.value}"
    if not bad.after_probe:
        assert CountingNet.forwards == 0, f"{CountingNet.forwards} forward passes ran before the error"
    assert model_state(env.net) == before
    assert model_state(env.spare) == spare_before


# --- the command line ---------------------------------------------------------------------------

CLI_CASES = [
    (["render", "--u", "nope"], "--u"),
    (["render", "--v", "random:colour=1"], "--v"),
    (["render", "--u", "random:seed"], "--u"),
    (["render", "--resolution", "0"], "--resolution"),
    (["render", "--resolution", "many"], "--resolution"),
    (["render", "--resolution", "100000", "--method", "dense"], "`resolution`"),
    (["demo", "--resolution", "1"], "--resolution"),
    (["render", "--extent", "0"], "--extent"),
    (["render", "--extent", "inf"], "--extent"),
    (["render", "--index", "-1"], "--index"),
    (["render", "--index", "100000", "--resolution", "8"], "`--index`"),
    (["render", "--model", "imagenet"], "--model"),
    (["render", "--method", "magic"], "--method"),
    (["render", "--u", "random:seed=3", "--v", "random:seed=3", "--resolution", "8"], "`u` and `v`"),
    (["render", "--u", "dct:band=7", "--resolution", "8"], "`band`"),
    (["render", "--u", "adversarial:target=-1", "--resolution", "8"], "`target`"),
    (["render", "--u", "adversarial:target=True", "--resolution", "8"], "`target`"),
    (["render", "--u", "image:other=5000", "--resolution", "8"], "`other`"),
    (["render", "--output", "figure.xyz", "--resolution", "8"], "`--output`"),
]


@pytest.mark.parametrize(("args", "blamed"), CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_cli_user_errors_exit_2_with_one_line(args, blamed, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        cli.main(args)
    out, err = capsys.readouterr()
    assert stop.value.code == 2
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert blamed in err
    assert list(tmp_path.iterdir()) == []


def test_the_catalogue_is_large():
    assert len(CASES) + len(CLI_CASES) >= 150


# --- what must keep working ---------------------------------------------------------------------


def test_a_direction_of_tiny_norm_is_accepted(env):
    u = 1e-7 * torch.randn(SHAPE)
    plane = bw.Plane.through(env.x, u, torch.randn(SHAPE))
    torch.testing.assert_close(plane.u, u / u.norm())


def test_gradient_direction_aims_at_the_class_asked_for(env):
    predicted = int(env.clf.predict(env.x))
    target = (predicted + 1) % CLASSES
    direction = bw.directions.make("adversarial", env.clf, env.x, method="gradient", target=np.int64(target))
    assert direction.info["reached_class"] == target
