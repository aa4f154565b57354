"""Affine bounds over boxes of the plane, and the relaxations of elementwise functions.

A box is a rectangle of the plane, ``alpha = alpha_c + h_a s`` and ``beta = beta_c + h_b t`` for
``(s, t)`` in ``[-1, 1]²``. Every tensor of the network is bounded on each box by a lower and an
upper *affine* function of ``(s, t)``, held as a midpoint and a radius: ``lower = mid - rad`` and
``upper = mid + rad``, each with three coefficients (of ``1``, ``s`` and ``t``). An affine layer
``W z + b`` maps them exactly: ``mid -> W mid + b`` and ``rad -> |W| rad``. A nonlinear function is
bounded on the interval ``[lo, hi]`` that the affine bounds reach over the box by two lines, and the
lines are applied to the affine bounds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

COEFFICIENTS = 3  # the coefficients of 1, s and t


@dataclass(frozen=True)
class Bounds:
    """Affine bounds of one tensor of the network on ``N`` boxes.

    ``mid`` and ``rad`` have shape ``(3N, *features)``: row ``k N + n`` holds coefficient ``k`` (of 1, s,
    t) for box ``n``, so shape operations (view, flatten, cat over features) apply to them as to a batch,
    and a per-neuron slope ``(N, *features)`` broadcasts over the leading (coefficient) dimension.
    ``rad`` is ``None`` while the bounds are exact (lower = upper).
    """

    mid: torch.Tensor  # (3N, *features)
    rad: torch.Tensor | None  # (3N, *features) or None (exact)

    @property
    def boxes(self) -> int:
        return self.mid.shape[0] // COEFFICIENTS

    def split(self, tensor: torch.Tensor) -> torch.Tensor:
        """``(3N, *f)`` -> ``(3, N, *f)`` (a view)."""
        return tensor.view(COEFFICIENTS, self.boxes, *tensor.shape[1:])

    def map(self, op: Callable[[torch.Tensor], torch.Tensor]) -> Bounds:
        """Apply a linear map with non-negative weights and no offset (a reshape, an average, a selection)."""
        return Bounds(op(self.mid), None if self.rad is None else op(self.rad))

    def affine(
        self,
        linear: Callable[[torch.Tensor], torch.Tensor],
        absolute: Callable[[torch.Tensor], torch.Tensor],
        offset: torch.Tensor | None = None,
    ) -> Bounds:
        """``W z + offset``: ``linear`` applies ``W``, ``absolute`` applies ``|W|`` (both without offset)."""
        mid = linear(self.mid)  # a new tensor: the offset goes into its constant coefficients in place
        if offset is not None:
            self.split(mid)[0] += offset
        rad = None if self.rad is None else absolute(self.rad)
        return Bounds(mid, rad)

    def shift(self, offset: torch.Tensor | float) -> Bounds:
        mid = self.split(self.mid).clone()
        mid[0] += offset
        return Bounds(mid.view_as(self.mid), self.rad)

    def scale(self, factor: torch.Tensor | float) -> Bounds:
        """Multiply by a constant (a number or a tensor that broadcasts over the features)."""
        factor = torch.as_tensor(factor, dtype=self.mid.dtype, device=self.mid.device)
        return Bounds(self.mid * factor, None if self.rad is None else self.rad * factor.abs())

    def __add__(self, other: Bounds) -> Bounds:
        rad = self.rad if other.rad is None else other.rad if self.rad is None else self.rad + other.rad
        return Bounds(self.mid + other.mid, rad)

    def __neg__(self) -> Bounds:
        return Bounds(-self.mid, self.rad)

    def lower_upper(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The affine lower and upper functions, ``(3, N, *features)`` each."""
        mid = self.split(self.mid)
        if self.rad is None:
            return mid, mid
        rad = self.split(self.rad)
        return mid - rad, mid + rad

    def interval(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lo, hi)``, ``(N, *features)`` each: the least and the greatest value the bounds reach on the box."""
        mid = self.split(self.mid)
        if self.rad is None:
            spread = mid[1].abs() + mid[2].abs()
            return mid[0] - spread, mid[0] + spread
        rad = self.split(self.rad)
        lo = (mid[0] - rad[0]) - (mid[1] - rad[1]).abs() - (mid[2] - rad[2]).abs()
        hi = (mid[0] + rad[0]) + (mid[1] + rad[1]).abs() + (mid[2] + rad[2]).abs()
        return lo, hi


def box_min(coefficients: torch.Tensor) -> torch.Tensor:
    """The minimum over ``[-1, 1]²`` of affine functions ``(3, N, *f)``."""
    return coefficients[0] - coefficients[1].abs() - coefficients[2].abs()


def box_max(coefficients: torch.Tensor) -> torch.Tensor:
    return coefficients[0] + coefficients[1].abs() + coefficients[2].abs()


def from_lines(
    bounds: Bounds,
    lower_slope: torch.Tensor,
    lower_offset: torch.Tensor,
    upper_slope: torch.Tensor,
    upper_offset: torch.Tensor,
) -> Bounds:
    """Bounds of ``f(z)`` from lines with ``lower_slope z + lower_offset <= f(z) <= upper_slope z + upper_offset``
    on the box's interval (all four ``(N, *features)``).

    A line of slope ``k >= 0`` applies to the same-side bound of ``z``, one of ``k < 0`` to the other: with
    ``lower = mid - rad`` and ``upper = mid + rad`` that is ``k mid - |k| rad`` below and ``k mid + |k| rad``
    above, whatever the sign.
    """
    ls, us = lower_slope, upper_slope
    mid = bounds.split(bounds.mid)
    if bounds.rad is None:
        new_mid, new_rad = mid * ((ls + us) / 2), mid * ((us - ls) / 2)
    else:
        rad = bounds.split(bounds.rad)
        ls_abs, us_abs = ls.abs(), us.abs()
        new_mid = torch.addcmul(mid * ((ls + us) / 2), rad, (us_abs - ls_abs) / 2)
        new_rad = torch.addcmul(mid * ((us - ls) / 2), rad, (us_abs + ls_abs) / 2)
    new_mid[0] += (upper_offset + lower_offset) / 2
    new_rad[0] += (upper_offset - lower_offset) / 2
    return Bounds(new_mid.view_as(bounds.mid), new_rad.view_as(bounds.mid))


# ---------------------------------------------------------------------------------------------
# Relaxations: each returns (lower_slope, lower_offset, upper_slope, upper_offset) on [lo, hi].

Lines = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def relu_lines(lo: torch.Tensor, hi: torch.Tensor, negative_slope: float = 0.0) -> Lines:
    """ReLU and LeakyReLU (``negative_slope <= 1``: convex): the chord above, and below the line through 0 of
    slope 1 or ``negative_slope``, whichever leaves the smaller area."""
    k = negative_slope
    lo_neg, hi_pos = lo.clamp(max=0), hi.clamp(min=0)  # chord over [lo, hi] of the kink at 0
    chord = (hi_pos - k * lo_neg) / (hi_pos - lo_neg).clamp_min(torch.finfo(lo.dtype).tiny)
    chord = torch.where(hi_pos > lo_neg, chord, k)  # lo = hi = 0: any slope in [k, 1] holds
    upper_offset = (k - chord) * lo_neg
    lower_slope = k + (1 - k) * (hi + lo > 0).to(lo.dtype)
    return lower_slope, torch.zeros_like(lo), chord, upper_offset


def convex_lines(
    lo: torch.Tensor,
    hi: torch.Tensor,
    f: Callable[[torch.Tensor], torch.Tensor],
    derivative: Callable[[torch.Tensor], torch.Tensor],
) -> Lines:
    """A convex ``f``: the tangent at the middle below, and above the line of the chord's slope through the
    higher of the two ends (exact whatever rounding did to the slope)."""
    f_lo, f_hi = f(lo), f(hi)
    middle = (lo + hi) / 2
    tangent = derivative(middle)
    width = hi - lo
    wide = width > 0
    chord = torch.where(wide, (f_hi - f_lo) / torch.where(wide, width, 1.0), tangent)
    upper_offset = torch.maximum(f_lo - chord * lo, f_hi - chord * hi)
    return tangent, f(middle) - tangent * middle, chord, upper_offset


def slope_floor_lines(
    lo: torch.Tensor,
    hi: torch.Tensor,
    f: Callable[[torch.Tensor], torch.Tensor],
    derivative: Callable[[torch.Tensor], torch.Tensor],
    critical: float | None,
) -> Lines:
    """Any smooth ``f`` whose derivative on ``[lo, hi]`` is least at an end or at ``critical`` (its one local
    minimum, ``None`` if it has none): with ``k`` the least slope, ``f(z) - k z`` increases on the interval, so
    ``k z + f(lo) - k lo <= f(z) <= k z + f(hi) - k hi``. Tight to second order in the interval's width."""
    slope = torch.minimum(derivative(lo), derivative(hi))
    if critical is not None:
        inside = (lo <= critical) & (critical <= hi)
        at_critical = derivative(torch.tensor(critical, dtype=lo.dtype, device=lo.device))
        slope = torch.where(inside, torch.minimum(slope, at_critical), slope)
    return slope, f(lo) - slope * lo, slope, f(hi) - slope * hi


def _sigmoid_derivative(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return s * (1 - s)


def _tanh_derivative(z: torch.Tensor) -> torch.Tensor:
    return 1 - torch.tanh(z) ** 2


def _silu_derivative(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


def _gelu_derivative(approximate: str) -> Callable[[torch.Tensor], torch.Tensor]:
    def derivative(z: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = z.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(torch.nn.functional.gelu(x, approximate=approximate).sum(), x)
        return grad

    return derivative


@functools.cache
def derivative_minimum(name: str) -> float:
    """Where the derivative of GELU (``"gelu-none"``, ``"gelu-tanh"``) or SiLU (``"silu"``) has its one local
    minimum: the root of the second derivative on ``[-4, -0.5]``, by bisection in float64."""
    functions = {
        "gelu-none": lambda x: torch.nn.functional.gelu(x, approximate="none"),
        "gelu-tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
        "silu": torch.nn.functional.silu,
    }
    f = functions[name]

    def second(x: float) -> float:
        with torch.enable_grad():
            z = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            (d1,) = torch.autograd.grad(f(z), z, create_graph=True)
            (d2,) = torch.autograd.grad(d1, z)
        return float(d2)

    a, b = -4.0, -0.5  # the second derivative is negative at -4 and positive at -0.5 for all three
    for _ in range(60):
        m = (a + b) / 2
        a, b = (m, b) if second(m) < 0 else (a, m)
    return (a + b) / 2


def softplus_lines(lo: torch.Tensor, hi: torch.Tensor, beta: float, threshold: float) -> Lines:
    f = functools.partial(torch.nn.functional.softplus, beta=beta, threshold=threshold)

    def derivative(z: torch.Tensor) -> torch.Tensor:
        return torch.where(z * beta > threshold, 1.0, torch.sigmoid(beta * z)).to(z.dtype)

    return convex_lines(lo, hi, f, derivative)


def sigmoid_lines(lo: torch.Tensor, hi: torch.Tensor) -> Lines:
    return slope_floor_lines(lo, hi, torch.sigmoid, _sigmoid_derivative, None)


def tanh_lines(lo: torch.Tensor, hi: torch.Tensor) -> Lines:
    return slope_floor_lines(lo, hi, torch.tanh, _tanh_derivative, None)


def silu_lines(lo: torch.Tensor, hi: torch.Tensor) -> Lines:
    return slope_floor_lines(lo, hi, torch.nn.functional.silu, _silu_derivative, derivative_minimum("silu"))


def gelu_lines(lo: torch.Tensor, hi: torch.Tensor, approximate: str = "none") -> Lines:
    f = functools.partial(torch.nn.functional.gelu, approximate=approximate)
    return slope_floor_lines(lo, hi, f, _gelu_derivative(approximate), derivative_minimum(f"gelu-{approximate}"))


def relaxed(bounds: Bounds, lines: Callable[[torch.Tensor, torch.Tensor], Lines]) -> Bounds:
    """The bounds of an elementwise function, from its relaxation ``lines(lo, hi)``."""
    lo, hi = bounds.interval()
    return from_lines(bounds, *lines(lo, hi))


def relu(bounds: Bounds, negative_slope: float = 0.0) -> Bounds:
    return relaxed(bounds, functools.partial(relu_lines, negative_slope=negative_slope))


def clamp(bounds: Bounds, low: float | None, high: float | None) -> Bounds:
    """``clamp(z, low, high)`` as ``low + relu(z - low)`` then ``high - relu(high - z)``."""
    if low is not None and math.isfinite(low):
        bounds = relu(bounds.shift(-low)).shift(low)
    if high is not None and math.isfinite(high):
        bounds = (-relu((-bounds).shift(high))).shift(high)
    return bounds


__all__ = [
    "COEFFICIENTS",
    "Bounds",
    "Lines",
    "box_max",
    "box_min",
    "clamp",
    "convex_lines",
    "derivative_minimum",
    "from_lines",
    "gelu_lines",
    "relaxed",
    "relu",
    "relu_lines",
    "sigmoid_lines",
    "silu_lines",
    "slope_floor_lines",
    "softplus_lines",
    "tanh_lines",
]
