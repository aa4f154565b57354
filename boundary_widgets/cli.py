"""Command line: ``boundary-widgets demo`` and ``boundary-widgets render`` write figures of slices.

A user error (an unknown direction kind or parameter, a bad number, parallel directions, an output
format matplotlib cannot write) is a usage error: exit status 2 and one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.backend_bases import FigureCanvasBase

from . import zoo
from .core import compute_slice, directions
from .core.pipeline import resolve_plane
from .core.slices import DEFAULT_METHOD, SLICE_METHODS, normalize_extent, normalize_resolution
from .plotting import plot_slice

# (u, v) pairs drawn by `demo`: each a (kind, params) of the direction registry.
# Image parameters (`other=`) may be given as a test-sample index of the model's dataset.
DEMO_PLANES: list[tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]] = [
    (("adversarial", {}), ("random", {"seed": 1})),
    (("adversarial", {"method": "gradient"}), ("random", {"seed": 2})),
    (("adversarial", {}), ("curvature", {"index": 0})),
    (("dct", {"band": "low"}), ("dct", {"band": "high"})),
    (("sparse", {}), ("random", {"seed": 0})),
    (("image", {"other": 201}), ("image", {"other": 158})),
]


MAX_DIRECTION_TEXT = 1000  # characters of one --u/--v argument


class UsageError(Exception):
    """A mistake in the command line: reported in one line with exit status 2."""


def parse_direction(text: str) -> tuple[str, dict[str, Any]]:
    """``"kind"`` or ``"kind:name=value,name=value"``; each value is read by its parameter's type
    (:meth:`~boundary_widgets.core.directions.Parameter.from_text`: ``seed=3``, ``band=low``,
    ``band=2:6``, ``target=none``; an ``image`` parameter is a test-sample index).

    The kind, the parameter names and every value are checked against the direction registry.
    """
    if len(text) > MAX_DIRECTION_TEXT:
        raise argparse.ArgumentTypeError(
            f"a direction must be at most {MAX_DIRECTION_TEXT} characters; got {len(text)}"
        )
    kind, _, rest = text.partition(":")
    kind = kind.strip()
    if kind not in directions.available():
        raise argparse.ArgumentTypeError(f"unknown direction kind {kind!r}; choose from {list(directions.available())}")
    known = {p.name: p for p in directions.get(kind).parameters if p.in_state}
    params: dict[str, Any] = {}
    # A band range holds a comma (band=2:6,0:4): split on the commas that start a new name=value.
    for item in filter(None, re.split(r",(?=\s*[A-Za-z_]\w*\s*=)", rest)):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise argparse.ArgumentTypeError(f"direction parameter {item!r} must be name=value")
        if name not in known:
            raise argparse.ArgumentTypeError(
                f"unknown parameter {name!r} for direction kind {kind!r}; it takes {list(known)}"
            )
        try:
            params[name] = known[name].from_text(value)
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return kind, params


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an int; got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}; got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text}")
    return value


def figure_path(output: Path) -> Path:
    """The file a figure is written to: ``output``, with ``.png`` added when it has no extension."""
    path = output if output.suffix else output.with_name(output.name + ".png")
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise UsageError(f"`--output` must end in one of {sorted('.' + f for f in formats)}; got {str(output)!r}.")
    return path


def _with_images(kind: str, params: dict[str, Any], images: Any) -> dict[str, Any]:
    """``params`` with each image-typed parameter given as an int replaced by that test sample."""
    image_params = {p.name for p in directions.get(kind).parameters if isinstance(p, directions.Image)}
    resolved = dict(params)
    for name in image_params & set(params):
        if isinstance(params[name], int):
            if not 0 <= params[name] < len(images):
                raise UsageError(f"`{name}` must be a test sample index in [0, {len(images)}); got {params[name]}.")
            resolved[name] = images[params[name]]
    return resolved


def _label(kind: str, params: dict[str, Any]) -> str:
    return kind + (f"({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")


def render_figure(
    model: str,
    index: int,
    planes: list[tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]],
    *,
    extent: float,
    resolution: int,
    method: str,
    output: Path,
) -> Path:
    """Slices through test image ``index`` of ``model``, one panel per (u, v) pair; returns the file written.

    ``output`` without an extension gets ``.png``.
    """
    output = figure_path(output)
    # The slice's own limits (the result-size cap among them) are checked before any direction is made.
    normalize_extent(extent)
    normalize_resolution(resolution)
    clf, dataset = zoo.load(model)
    images, labels = dataset.split("test")
    if not 0 <= index < len(labels):
        raise UsageError(f"`--index` must be in [0, {len(labels)}); got {index}.")
    x = images[index]
    columns = min(3, len(planes))
    rows = math.ceil(len(planes) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 4.0 * rows), squeeze=False)
    try:
        for ax, ((u_kind, u_params), (v_kind, v_params)) in zip(axes.flat, planes, strict=False):
            u = (u_kind, _with_images(u_kind, u_params, images))
            v = (v_kind, _with_images(v_kind, v_params, images))
            plane = resolve_plane(clf, x, u, v, extent=extent).plane
            sl = compute_slice(clf, plane, extent=extent, resolution=resolution, method=method)
            plot_slice(sl, ax=ax, title=f"u: {_label(u_kind, u_params)}\nv: {_label(v_kind, v_params)}", legend=True)
        for ax in axes.flat[len(planes) :]:
            ax.axis("off")
        figure.suptitle(f"{model}: test image {index} (label {dataset.class_names[int(labels[index])]})")
        figure.tight_layout()
        output.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(output, dpi=110)
    finally:
        plt.close(figure)
    return output


class _Parser(argparse.ArgumentParser):
    """Reports a usage error in one line (no usage block) with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def main(argv: list[str] | None = None) -> None:
    """Run the command line; user errors exit with status 2 and one line on stderr."""
    parser = _Parser(prog="boundary-widgets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="slices through a digits test image along every direction kind")
    demo.add_argument("--output", type=Path, default=Path("boundary-widgets-demo.png"))
    render = commands.add_parser("render", help="one slice with chosen model, sample and directions")
    render.add_argument("--model", default="digits-cnn", choices=zoo.available())
    render.add_argument("--index", type=_int_at_least(0), default=0, help="test sample index")
    render.add_argument("--u", type=parse_direction, default="adversarial", help="kind[:name=value,...]")
    render.add_argument("--v", type=parse_direction, default="random:seed=0", help="kind[:name=value,...]")
    render.add_argument("--output", type=Path, default=Path("boundary-widgets-slice.png"))
    for sub in (demo, render):
        sub.add_argument("--extent", type=_positive_float, default=3.0, help="half-width of the slice, L2 units")
        sub.add_argument("--resolution", type=_int_at_least(2), default=256)
        sub.add_argument("--method", default=DEFAULT_METHOD, choices=list(SLICE_METHODS))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        path = _run(args)
    except (UsageError, ValueError, TypeError) as error:
        # The core checks every argument before work and names it: the message is the whole story.
        parser.error(str(error))
    print(f"wrote {path.resolve()} in {time.perf_counter() - start:.2f} s")


def _run(args: argparse.Namespace) -> Path:
    if args.command == "demo":
        return render_figure(
            "digits-cnn",
            0,
            DEMO_PLANES,
            extent=args.extent,
            resolution=args.resolution,
            method=args.method,
            output=args.output,
        )
    return render_figure(
        args.model,
        args.index,
        [(args.u, args.v)],
        extent=args.extent,
        resolution=args.resolution,
        method=args.method,
        output=args.output,
    )


if __name__ == "__main__":
    main()


__all__ = [
    "DEMO_PLANES",
    "MAX_DIRECTION_TEXT",
    "UsageError",
    "figure_path",
    "main",
    "parse_direction",
    "render_figure",
]
