"""A 2-D plane in input space: an origin and two orthonormal directions (L2 units)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from .validation import as_float_tensor, check_finite, check_number


def _as_vector(value: object, name: str) -> torch.Tensor:
    # Direction objects (and anything else carrying a `.vector`) are accepted as they are.
    vector = getattr(value, "vector", value)
    tensor = as_float_tensor(vector, name).cpu()
    check_finite(tensor, name)
    return tensor


@dataclass(frozen=True, eq=False)
class Plane:
    """``point(alpha, beta) = origin + alpha * u + beta * v`` with ``u ⟂ v`` and both of unit norm.

    origin, u, v: tensors of the input shape (float32, CPU).
    """

    origin: torch.Tensor  # input_shape, float32, CPU
    u: torch.Tensor  # input_shape, unit L2 norm
    v: torch.Tensor  # input_shape, unit L2 norm, orthogonal to u

    @classmethod
    def through(cls, x: object, u: object, v: object, *, tolerance: float = 1e-6) -> Plane:
        """The plane through ``x`` spanned by ``u`` and ``v`` (Gram–Schmidt: ``u`` kept, ``v`` made orthogonal).

        Any non-zero ``u`` and ``v`` are accepted whatever their scale; ``tolerance`` (in ``[0, 1)``) is
        relative: ``v`` is refused as parallel to ``u`` when its part orthogonal to ``u`` is at most
        ``tolerance`` times its norm.
        """
        check_number(tolerance, "tolerance", minimum=0)
        if tolerance >= 1:
            raise ValueError(f"`tolerance` must be in [0, 1); got {tolerance!r}.")
        origin = _as_vector(x, "x")
        u_vec = _as_vector(u, "u")
        v_vec = _as_vector(v, "v")
        for name, vec in (("u", u_vec), ("v", v_vec)):
            if vec.shape != origin.shape:
                raise ValueError(f"`{name}` must have the shape of `x` {tuple(origin.shape)}; got {tuple(vec.shape)}.")
        u64, v64 = u_vec.double(), v_vec.double()
        u_norm = u64.norm()
        for name, norm in (("u", u_norm), ("v", v64.norm())):
            if norm == 0:
                raise ValueError(f"`{name}` must be a non-zero direction; got a zero vector.")
        u_unit = u64 / u_norm
        v_orth = v64 - (v64 * u_unit).sum() * u_unit
        if v_orth.norm() <= max(tolerance, 1e-12) * v64.norm():
            raise ValueError("`u` and `v` must not be parallel: `v` has no component orthogonal to `u`.")
        v_unit = v_orth / v_orth.norm()
        return cls(origin.clone(), u_unit.float(), v_unit.float())

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.origin.shape)

    def __repr__(self) -> str:
        return f"Plane(shape={self.shape}, origin_norm={float(self.origin.norm()):.4g}, fingerprint={self.fingerprint()[:8]})"

    def to(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Origin, u and v on ``device``."""
        return self.origin.to(device), self.u.to(device), self.v.to(device)

    def point(self, alpha: float, beta: float) -> torch.Tensor:
        alpha, beta = check_number(alpha, "alpha"), check_number(beta, "beta")
        return self.origin + alpha * self.u + beta * self.v

    def points(self, alphas: object, betas: object, *, device: torch.device | str = "cpu") -> torch.Tensor:
        """Points ``(N, *shape)`` for coordinate arrays ``alphas (N,)`` and ``betas (N,)``."""
        a = as_float_tensor(alphas, "alphas").to(device).reshape(-1)
        b = as_float_tensor(betas, "betas").to(device).reshape(-1)
        check_finite(a, "alphas")
        check_finite(b, "betas")
        if a.shape != b.shape:
            raise ValueError(f"`alphas` and `betas` must have the same length; got {a.numel()} and {b.numel()}.")
        origin, u, v = self.to(device)
        flat = origin.reshape(1, -1) + a[:, None] * u.reshape(1, -1) + b[:, None] * v.reshape(1, -1)
        return flat.reshape(-1, *self.shape)

    def coordinates(self, x: object) -> tuple[float, float]:
        """(alpha, beta) of the orthogonal projection of ``x`` onto the plane."""
        point = _as_vector(x, "x")
        if point.shape != self.origin.shape:
            raise ValueError(f"`x` must have the plane's shape {self.shape}; got {tuple(point.shape)}.")
        delta = point - self.origin
        return float((delta * self.u).sum()), float((delta * self.v).sum())

    def fingerprint(self) -> str:
        """A digest of the plane's exact values, for caches."""
        digest = hashlib.blake2b(digest_size=16)
        for tensor in (self.origin, self.u, self.v):
            digest.update(np.ascontiguousarray(tensor.numpy()).tobytes())
            digest.update(str(tuple(tensor.shape)).encode())
        return digest.hexdigest()


__all__ = [
    "Plane",
]
