"""The typed parameters of direction kinds: each checks a value, converts it to and from JSON and text, and has bounds.

One class per kind of value (:class:`Int`, :class:`Float`, :class:`Bool`, :class:`Choice`,
:class:`ClassIndex`, :class:`Image`, :class:`BandSpec`, :class:`Basis`). The registry checks
``make``/``make_batch`` arguments with :meth:`Parameter.check`; explorer states and share strings
go through :meth:`Parameter.from_json`/:meth:`Parameter.to_json`; the command line through
:meth:`Parameter.from_text`; the widgets pick one control per class. Every number has a cap
(``maximum``): a share string can never ask for ``max_iter=2**31 - 1``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ..dct import BAND_NAMES, Band

__all__ = [
    "MAX_INDEX",
    "MAX_TEXT",
    "BandSpec",
    "Basis",
    "Bool",
    "Choice",
    "ClassIndex",
    "Float",
    "Image",
    "Int",
    "Parameter",
]

MAX_INDEX = 2**31 - 1  # the largest class or data set index a state may name (checked against the real size later)
MAX_TEXT = 200  # characters of one parameter value on the command line or in a control


def _name(where: str | None, name: str) -> str:
    return where if where is not None else f"`{name}`"


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


@dataclass(frozen=True)
class Parameter:
    """One parameter of a direction kind: its name, default and description; subclasses give its type.

    ``type`` names the kind of value ("int", "float", "bool", "choice", "class", "image", "band",
    "basis"); ``in_state`` says whether a state (a share string, the command line) can hold it.
    """

    name: str
    default: Any
    description: str
    type: ClassVar[str] = ""
    in_state: ClassVar[bool] = True

    @property
    def optional(self) -> bool:
        """Whether None is a value (it then means "automatic")."""
        return self.default is None

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> Any:
        """``value`` as ``directions.make`` takes it, normalised; a TypeError/ValueError naming it otherwise."""
        raise NotImplementedError

    def from_json(self, data: Any, *, where: str | None = None) -> Any:
        """The value a state holds (JSON: numbers, strings, lists, null), checked as :meth:`check` does."""
        return self.check(data, where=where)

    def to_json(self, value: Any) -> Any:
        """``value`` as a state holds it."""
        return value

    def from_text(self, text: str, *, where: str | None = None) -> Any:
        """A value written on the command line or in a text control (``"none"``/``"auto"`` for None)."""
        if not isinstance(text, str):
            raise TypeError(f"{_name(where, self.name)} must be given as text; got {type(text).__name__}.")
        text = text.strip()
        if len(text) > MAX_TEXT:
            raise ValueError(f"{_name(where, self.name)} must be at most {MAX_TEXT} characters; got {len(text)}.")
        if text.lower() in ("none", "null", "auto", "") and self.optional:
            return None
        return self.from_json(self._parse_text(text, where), where=where)

    def _parse_text(self, text: str, where: str | None) -> Any:
        return text

    def to_text(self, value: Any) -> str:
        return "auto" if value is None else str(self.to_json(value))


@dataclass(frozen=True)
class Int(Parameter):
    """An integer in ``[minimum, maximum]`` (None too when the default is None); ``maximum`` is its cap."""

    minimum: int = 0
    maximum: int = MAX_INDEX
    type: ClassVar[str] = "int"

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> int | None:
        where = _name(where, self.name)
        if value is None and self.optional:
            return None
        if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_floating_point():
            value = value.item()
        if not _is_int(value):
            kind = "an int" + (" or None" if self.optional else "")
            raise TypeError(f"{where} must be {kind}; got {type(value).__name__} {value!r:.40}.")
        if value < self.minimum:
            raise ValueError(f"{where} must be >= {self.minimum}; got {value!r:.40}.")
        if value > self.maximum:
            raise ValueError(f"{where} must be <= {self.maximum} (its cap); got {value!r:.40}.")
        return int(value)

    def _parse_text(self, text: str, where: str | None) -> Any:
        if not re.fullmatch(r"[+-]?\d+", text):
            raise TypeError(f"{_name(where, self.name)} must be an int; got {text!r:.40}.")
        return int(text)


@dataclass(frozen=True)
class Float(Parameter):
    """A finite number in ``[minimum, maximum]``; ``maximum`` is its cap."""

    minimum: float = 0.0
    maximum: float = 1e6
    type: ClassVar[str] = "float"

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> float | None:
        where = _name(where, self.name)
        if value is None and self.optional:
            return None
        if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_complex():
            value = value.item()
        if not _is_number(value):
            raise TypeError(f"{where} must be a number; got {type(value).__name__} {value!r:.40}.")
        # Compared before float(): a 400-digit int compares exactly and never overflows.
        if isinstance(value, float | np.floating) and not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number; got {value!r}.")
        if value < self.minimum:
            raise ValueError(f"{where} must be >= {self.minimum:g}; got {value!r:.40}.")
        if value > self.maximum:
            raise ValueError(f"{where} must be <= {self.maximum:g} (its cap); got {value!r:.40}.")
        return float(value)

    def _parse_text(self, text: str, where: str | None) -> Any:
        try:
            return float(text)
        except ValueError:
            raise TypeError(f"{_name(where, self.name)} must be a number; got {text!r:.40}.") from None


@dataclass(frozen=True)
class Bool(Parameter):
    """True or False (never 1, "yes" or None)."""

    type: ClassVar[str] = "bool"

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> bool:
        if not isinstance(value, bool | np.bool_):
            raise TypeError(
                f"{_name(where, self.name)} must be True or False; got {type(value).__name__} {value!r:.40}."
            )
        return bool(value)

    def _parse_text(self, text: str, where: str | None) -> Any:
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise TypeError(f"{_name(where, self.name)} must be true or false; got {text!r:.40}.")
        return lowered == "true"


@dataclass(frozen=True)
class Choice(Parameter):
    """One of ``choices`` (strings); any other value, of any type, is refused."""

    choices: tuple[str, ...] = ()
    type: ClassVar[str] = "choice"

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise ValueError(f"{_name(where, self.name)} must be one of {list(self.choices)}; got {value!r:.60}.")
        return value


@dataclass(frozen=True)
class ClassIndex(Parameter):
    """A class index in ``[0, num_classes)``, or None (automatic)."""

    type: ClassVar[str] = "class"

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> int | None:
        where = _name(where, self.name)
        if value is None:
            return None
        if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_floating_point():
            value = value.item()
        if not _is_int(value):
            raise TypeError(
                f"{where} must be a class index (an int or None); got {type(value).__name__} {value!r:.40}."
            )
        limit = MAX_INDEX + 1 if num_classes is None else num_classes
        if not 0 <= value < limit:
            raise ValueError(f"{where} must be a class index in [0, {limit}); got {value!r:.40}.")
        return int(value)

    def _parse_text(self, text: str, where: str | None) -> Any:
        return Int._parse_text(self, text, where)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Image(Parameter):
    """Another input of the classifier's shape; a state holds it as a data set index (an int >= 0)."""

    type: ClassVar[str] = "image"

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> Any:
        if value is None:
            raise ValueError(f"{_name(where, self.name)} is required: {self.description}.")
        return value  # the kind checks the image itself (shape, bounds) before any work

    def from_json(self, data: Any, *, where: str | None = None) -> int:
        where = _name(where, self.name)
        if not _is_int(data):
            raise TypeError(f"{where} must be a data set index (an int); got {type(data).__name__} {data!r:.40}.")
        if not 0 <= data <= MAX_INDEX:
            raise ValueError(f"{where} must be a data set index in [0, {MAX_INDEX}]; got {data!r:.40}.")
        return int(data)

    def _parse_text(self, text: str, where: str | None) -> Any:
        return Int._parse_text(self, text, where)  # type: ignore[arg-type]


@dataclass(frozen=True)
class BandSpec(Parameter):
    """A DCT band as :func:`boundary_widgets.core.dct.band` takes it: a name (``"low"``, ``"mid"``,
    ``"high"``), an index along the diagonal, a range ``(start, stop)`` or ``((r0, r1), (c0, c1))``,
    or a :class:`~boundary_widgets.core.dct.Band`. A state holds a name, an index or the range as
    nested lists (a ``Band`` is stored as its rows and columns); text is ``low``, ``3``, ``2:6`` or
    ``2:6,0:4``. Whether an index or range fits the image is checked against its shape by the kind.
    """

    type: ClassVar[str] = "band"

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> Any:
        where = _name(where, self.name)
        if isinstance(value, Band):
            return value
        if isinstance(value, str):
            if value not in BAND_NAMES:
                raise ValueError(f"{where} must be one of {list(BAND_NAMES)}, an index or a range; got {value!r:.60}.")
            return value
        if _is_int(value):
            if not -MAX_INDEX <= value <= MAX_INDEX:
                raise ValueError(f"{where} index must be in [-{MAX_INDEX}, {MAX_INDEX}]; got {value!r:.40}.")
            return int(value)
        return self._range(value, where)

    def _range(self, value: Any, where: str) -> tuple:
        message = (
            f"{where} must be one of {list(BAND_NAMES)}, an index, a range (start, stop) or "
            f"((r0, r1), (c0, c1)) of ints, or a dct.Band; got {value!r:.60}."
        )

        def pair(item: Any) -> tuple[int, int]:
            if not isinstance(item, tuple | list) or len(item) != 2 or not all(_is_int(v) for v in item):
                raise TypeError(message)
            start, stop = (int(v) for v in item)
            if not 0 <= start < stop <= MAX_INDEX:
                raise ValueError(f"{where} range must satisfy 0 <= start < stop; got {(start, stop)}.")
            return start, stop

        if not isinstance(value, tuple | list) or len(value) != 2:
            raise TypeError(message)
        if all(isinstance(v, tuple | list) for v in value):
            return pair(value[0]), pair(value[1])
        return pair(value)

    def to_json(self, value: Any) -> Any:
        if isinstance(value, Band):
            return [list(value.rows), list(value.cols)]
        if isinstance(value, tuple) and isinstance(value[0], tuple):
            return [list(value[0]), list(value[1])]
        if isinstance(value, tuple):
            return list(value)
        return value

    def _parse_text(self, text: str, where: str | None) -> Any:
        if text in BAND_NAMES:
            return text
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        found = re.fullmatch(r"(\d+):(\d+)(?:,(\d+):(\d+))?", text.replace(" ", ""))
        if found is None:
            raise ValueError(
                f"{_name(where, self.name)} must be one of {list(BAND_NAMES)}, an index, start:stop or "
                f"r0:r1,c0:c1; got {text!r:.60}."
            )
        numbers = [int(g) for g in found.groups() if g is not None]
        return numbers if len(numbers) == 2 else [numbers[:2], numbers[2:]]

    def to_text(self, value: Any) -> str:
        data = self.to_json(value)
        if isinstance(data, list) and isinstance(data[0], list):
            return ",".join(f"{a}:{b}" for a, b in data)
        if isinstance(data, list):
            return f"{data[0]}:{data[1]}"
        return str(data)


@dataclass(frozen=True)
class Basis(Parameter):
    """A subspace: a ``dct.Band``, a ``(d, m)`` orthonormal basis or a projector; data, never a state."""

    type: ClassVar[str] = "basis"
    in_state: ClassVar[bool] = False

    def check(self, value: Any, *, num_classes: int | None = None, where: str | None = None) -> Any:
        return value  # the kind checks the basis against the input size before any work

    def from_json(self, data: Any, *, where: str | None = None) -> Any:
        raise ValueError(f"{_name(where, self.name)} is data (a basis), not a setting a state can hold.")
