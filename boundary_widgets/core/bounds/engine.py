"""Proven lower bounds on the margin of a classifier over boxes of a plane."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..classifier import Classifier
from ..plane import Plane
from ..progress import CancelEvent, raise_if_cancelled
from .affine import Bounds, box_min, clamp
from .graph import Program, UnsupportedModelError

# A box in flight holds its three coefficients twice (midpoint and radius) for every activation, plus the
# relaxations' temporaries and the windows of a max-pooling: about 16 activations' worth of one input.
BYTES_PER_BOX_FACTOR = 16
MAX_CHUNK_BOXES = 16384
DEFAULT_CHUNK_BYTES = 64 * 2**20
# A box at the plane's origin with zero width must reproduce the model's margin to this share of its
# largest |logit| (else the traced graph is not the model's computation).
TRACE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class CellMargins:
    """For each box: a class and a lower bound, over the whole box, on how far its logit beats every other."""

    labels: np.ndarray  # (N,) int64, the class the box is tested for: the largest logit at its centre
    lower: np.ndarray  # (N,) float32, lower bound over the box of min_{j != label} (logit_label - logit_j)
    scale: np.ndarray  # (N,) float32, the largest |logit| at the box's centre (for a relative safety margin)


# ---------------------------------------------------------------------------------------------
# Exact float32: TF32 and autocast off inside a proof.

_PRECISION_LOCK = threading.Lock()
_PRECISION_DEPTH = 0
_SAVED_PRECISION: list[str] = []


def _precision_flags() -> list:
    backends = torch.backends
    return [backends.cuda.matmul, backends.cudnn.conv, backends.mkldnn.matmul, backends.mkldnn.conv]


@contextlib.contextmanager
def exact_float32(device: torch.device) -> Iterator[None]:
    """TF32 (cuBLAS, cuDNN, oneDNN) and autocast off; the flags as they were afterwards.

    The flags are process-wide: nested and concurrent proofs share one save and one restore (the last to
    leave restores them).
    """
    global _PRECISION_DEPTH
    with _PRECISION_LOCK:
        if _PRECISION_DEPTH == 0:
            _SAVED_PRECISION[:] = [flag.fp32_precision for flag in _precision_flags()]
            for flag in _precision_flags():
                flag.fp32_precision = "ieee"
        _PRECISION_DEPTH += 1
    try:
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    finally:
        with _PRECISION_LOCK:
            _PRECISION_DEPTH -= 1
            if _PRECISION_DEPTH == 0:
                for flag, saved in zip(_precision_flags(), _SAVED_PRECISION, strict=True):
                    flag.fp32_precision = saved


# ---------------------------------------------------------------------------------------------

_PROGRAMS: weakref.WeakKeyDictionary[torch.nn.Module, Program] = weakref.WeakKeyDictionary()
_PROGRAMS_LOCK = threading.Lock()


def program_for(clf: Classifier) -> Program:
    """The traced and checked graph of the classifier's eval view (cached while the view lives)."""
    view = clf.eval_view()
    with _PROGRAMS_LOCK:
        program = _PROGRAMS.get(view)
        if program is None:
            program = _PROGRAMS[view] = Program.trace(view)
    return program


def boxes_per_chunk(clf: Classifier, chunk_bytes: int) -> int:
    """Boxes bounded at once within ``chunk_bytes`` of activations (at least 1)."""
    return int(np.clip(chunk_bytes // (BYTES_PER_BOX_FACTOR * clf.bytes_per_sample()), 1, MAX_CHUNK_BOXES))


class CellBounder:
    """Bounds the margin of ``clf`` over boxes of ``plane``, chunk by chunk on the classifier's device.

    Built once per plane: the model is traced with ``torch.fx`` and every operator checked (an
    :class:`UnsupportedModelError` names the first one without a bound), then one box of zero width at the
    plane's origin must reproduce the model's margin, before any box is bounded. ``clip=True`` bounds the
    classifier on points clipped to its bounds (a clamp relaxation). The user's module is not written.
    """

    def __init__(
        self, clf: Classifier, plane: Plane, *, clip: bool = False, chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> None:
        self.clf = clf
        self.clip = clip
        self.program = program_for(clf)
        self.chunk = boxes_per_chunk(clf, chunk_bytes)
        self._origin, self._u, self._v = (t.reshape(1, -1) for t in plane.to(clf.device))
        self._check_trace()

    def _check_trace(self) -> None:
        zero = np.zeros(1)
        bound = self(zero, zero, zero, zero)
        with self.clf.evaluating(), torch.no_grad(), exact_float32(self.clf.device):
            x = self._origin.reshape(1, *self.clf.input_shape)
            logits = self.clf.forward(x.clamp(*self.clf.bounds) if self.clip else x)[0].double()
        label = int(bound.labels[0])
        others = torch.cat([logits[:label], logits[label + 1 :]])
        margin = float(logits[label] - others.max())
        scale = float(logits.abs().max())
        if not abs(margin - float(bound.lower[0])) <= TRACE_TOLERANCE * max(1.0, scale):
            raise UnsupportedModelError(
                "the graph traced by torch.fx does not compute the model's logits (its margin at the plane's "
                f"origin is {float(bound.lower[0]):.6g}, the model's {margin:.6g}); does forward depend on more "
                "than the input tensor?"
            )

    def __call__(
        self,
        alphas: np.ndarray,
        betas: np.ndarray,
        half_alphas: np.ndarray,
        half_betas: np.ndarray,
        *,
        cancel: CancelEvent | None = None,
        on_chunk: Callable[[int], object] | None = None,
    ) -> CellMargins:
        """Bound the boxes centred at ``(alphas[n], betas[n])`` with half-widths ``half_alphas[n]`` along ``u`` and
        ``half_betas[n]`` along ``v``. ``cancel`` is checked before every chunk; ``on_chunk(boxes_done)`` after each
        (the boxes of this call bounded so far)."""
        device = self.clf.device
        columns = [
            torch.as_tensor(np.asarray(c, dtype=np.float32), device=device)
            for c in (alphas, betas, half_alphas, half_betas)
        ]
        n = columns[0].numel()
        labels = torch.zeros(n, dtype=torch.int64, device=device)
        lower = torch.zeros(n, dtype=torch.float32, device=device)
        scale = torch.zeros(n, dtype=torch.float32, device=device)
        with self.clf.evaluating(), torch.no_grad(), exact_float32(device):
            for start in range(0, n, self.chunk):
                raise_if_cancelled(cancel)
                part = slice(start, start + self.chunk)
                labels[part], lower[part], scale[part] = self._bound(*(c[part] for c in columns))
                if on_chunk is not None:
                    on_chunk(min(start + self.chunk, n))
        return CellMargins(labels.cpu().numpy(), lower.cpu().numpy(), scale.cpu().numpy())

    def _inputs(self, a: torch.Tensor, b: torch.Tensor, ha: torch.Tensor, hb: torch.Tensor) -> Bounds:
        clf = self.clf
        const = torch.addcmul(torch.addcmul(self._origin, a[:, None], self._u), b[:, None], self._v)
        mid = torch.stack([const, ha[:, None] * self._u, hb[:, None] * self._v])
        x = Bounds(mid.reshape(-1, *clf.input_shape), None)
        if self.clip:
            x = clamp(x, *clf.bounds)
        # The classifier's normalisation is affine with a positive diagonal: its offset goes to the constants.
        offset = clf.normalise(torch.zeros(1, *clf.input_shape, device=a.device))
        scaled = lambda t: clf.normalise(t) - offset  # noqa: E731
        return x.affine(scaled, scaled, offset[0])

    def _bound(
        self, a: torch.Tensor, b: torch.Tensor, ha: torch.Tensor, hb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features, head = self.program.run(self._inputs(a, b, ha, hb))
        if not isinstance(features, Bounds):
            raise UnsupportedModelError("the model's output does not depend on its input.")
        if features.mid.ndim != 2:
            raise UnsupportedModelError(
                f"the logits must have shape (N, classes); the bounded output has {features.mid.ndim} dimensions."
            )
        if head is not None:
            weight, bias = self.program.head_weights()
        else:
            classes = features.mid.shape[1]
            weight, bias = torch.eye(classes, device=a.device), None
        mid = features.split(features.mid)  # (3, n, H)
        rad = None if features.rad is None else features.split(features.rad)
        centre = mid[0] @ weight.T
        if bias is not None:
            centre = centre + bias
        labels = centre.argmax(dim=1)
        lower = torch.empty(labels.shape, dtype=torch.float32, device=a.device)
        for c in labels.unique().tolist():
            rows = (labels == c).nonzero()[:, 0]
            difference = weight[c] - weight  # (C, H): row j folds logit_c - logit_j into one layer
            bound = torch.einsum("knh,ch->knc", mid[:, rows], difference)
            if bias is not None:
                bound[0] += bias[c] - bias
            if rad is not None:
                bound = bound - torch.einsum("knh,ch->knc", rad[:, rows], difference.abs())
            per_class = box_min(bound)
            per_class[:, c] = float("inf")
            lower[rows] = per_class.amin(dim=1)
        return labels, lower, centre.abs().amax(dim=1)


def bound_cells(
    clf: Classifier,
    plane: Plane,
    alphas: np.ndarray,
    betas: np.ndarray,
    half_alphas: np.ndarray,
    half_betas: np.ndarray,
    *,
    clip: bool = False,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    cancel: CancelEvent | None = None,
) -> CellMargins:
    """Lower bounds of the margin of ``clf`` over boxes of ``plane`` (see :class:`CellBounder`).

    Box ``n`` is ``alpha in alphas[n] ± half_alphas[n]``, ``beta in betas[n] ± half_betas[n]`` (L2 units along
    ``plane.u`` and ``plane.v``). Every point of box ``n`` has ``logit[labels[n]] - logit[j] >= lower[n]`` for
    every other class ``j``, up to float32 rounding (see ``ProofOptions.safety_margin`` of the certified slices):
    where ``lower[n] > 0`` by more than that, the whole box is of class ``labels[n]``.
    """
    arrays = [np.asarray(x, dtype=np.float64).reshape(-1) for x in (alphas, betas, half_alphas, half_betas)]
    names = ("alphas", "betas", "half_alphas", "half_betas")
    for name, array in zip(names, arrays, strict=True):
        if array.shape != arrays[0].shape:
            raise ValueError(f"`{name}` must have the length of `alphas` ({arrays[0].size}); got {array.size}.")
        if not np.isfinite(array).all():
            raise ValueError(f"`{name}` must be finite.")
    for name, array in zip(names[2:], arrays[2:], strict=True):
        if (array < 0).any():
            raise ValueError(f"`{name}` must be >= 0.")
    return CellBounder(clf, plane, clip=clip, chunk_bytes=chunk_bytes)(*arrays, cancel=cancel)


__all__ = [
    "BYTES_PER_BOX_FACTOR",
    "DEFAULT_CHUNK_BYTES",
    "MAX_CHUNK_BOXES",
    "TRACE_TOLERANCE",
    "CellBounder",
    "CellMargins",
    "bound_cells",
    "boxes_per_chunk",
    "exact_float32",
    "program_for",
]
