"""Command line: ``boundary-widgets demo`` and ``boundary-widgets render`` write PNG figures of slices."""

from __future__ import annotations

import argparse
import ast
import math
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from . import zoo
from .core import Plane, compute_slice, directions
from .core.slices import DEFAULT_METHOD, SLICE_METHODS
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


def parse_direction(text: str) -> tuple[str, dict[str, Any]]:
    """``"kind"`` or ``"kind:name=value,name=value"`` (values as Python literals, else strings)."""
    kind, _, rest = text.partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        name, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"direction parameter {item!r} must be name=value")
        try:
            params[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            params[name.strip()] = value.strip()
    return kind.strip(), params


def _with_images(kind: str, params: dict[str, Any], images: Any) -> dict[str, Any]:
    """``params`` with each image-typed parameter given as an int replaced by that test sample."""
    image_params = {p.name for p in directions.get(kind).parameters if p.type == "image"}
    resolved = dict(params)
    for name in image_params & set(params):
        if isinstance(params[name], int):
            if not 0 <= params[name] < len(images):
                raise SystemExit(
                    f"error: `{name}` must be a test sample index in [0, {len(images)}); got {params[name]}."
                )
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
    """Slices through test image ``index`` of ``model``, one panel per (u, v) pair, saved to ``output``."""
    clf, dataset = zoo.load(model)
    images, labels = dataset.split("test")
    if not 0 <= index < len(labels):
        raise SystemExit(f"error: --index must be in [0, {len(labels)}); got {index}.")
    x = images[index]
    columns = min(3, len(planes))
    rows = math.ceil(len(planes) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 4.0 * rows), squeeze=False)
    for ax, ((u_kind, u_params), (v_kind, v_params)) in zip(axes.flat, planes, strict=False):
        u = directions.make(u_kind, clf, x, **_with_images(u_kind, u_params, images))
        v = directions.make(v_kind, clf, x, **_with_images(v_kind, v_params, images))
        sl = compute_slice(clf, Plane.through(x, u, v), extent=extent, resolution=resolution, method=method)
        plot_slice(sl, ax=ax, title=f"u: {_label(u_kind, u_params)}\nv: {_label(v_kind, v_params)}", legend=True)
    for ax in axes.flat[len(planes) :]:
        ax.axis("off")
    figure.suptitle(f"{model}: test image {index} (label {dataset.class_names[int(labels[index])]})")
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="boundary-widgets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="slices through a digits test image along every direction kind")
    demo.add_argument("--output", type=Path, default=Path("boundary-widgets-demo.png"))
    render = commands.add_parser("render", help="one slice with chosen model, sample and directions")
    render.add_argument("--model", default="digits-cnn", choices=zoo.available())
    render.add_argument("--index", type=int, default=0, help="test sample index")
    render.add_argument("--u", type=parse_direction, default="adversarial", help="kind[:name=value,...]")
    render.add_argument("--v", type=parse_direction, default="random:seed=0", help="kind[:name=value,...]")
    render.add_argument("--output", type=Path, default=Path("boundary-widgets-slice.png"))
    for sub in (demo, render):
        sub.add_argument("--extent", type=float, default=3.0, help="half-width of the slice, L2 units")
        sub.add_argument("--resolution", type=int, default=256)
        sub.add_argument("--method", default=DEFAULT_METHOD, choices=list(SLICE_METHODS))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.command == "demo":
        path = render_figure(
            "digits-cnn",
            0,
            DEMO_PLANES,
            extent=args.extent,
            resolution=args.resolution,
            method=args.method,
            output=args.output,
        )
    else:
        path = render_figure(
            args.model,
            args.index,
            [(args.u, args.v)],
            extent=args.extent,
            resolution=args.resolution,
            method=args.method,
            output=args.output,
        )
    print(f"wrote {path.resolve()} in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
