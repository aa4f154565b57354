"""The GPU check (issue 23): one process, about 6 minutes on a GPU, one JSON and one Markdown table.

    bash benchmarks/gpu_check.sh                          # on a bare CUDA machine: installs, then runs this
    python benchmarks/gpu_check.py --out DIR              # default DIR: $OUT if set, else test-output/gpu_check
    python benchmarks/gpu_check.py --tiny                 # the same code paths on the CPU, tiny sizes, < 1 min

A ResNet-18-size network (torchvision's ``resnet18`` when installed, else the same architecture built
in ``realscale.py``; random weights, BatchNorm statistics from random batches, ImageNet mean/std) at
3×224×224 with 1000 classes and at 3×32×32 with 10 classes. Sections, in this order (a section that
would start after ``--budget`` seconds is skipped and says so; one that fails records its error and
the run goes on):

- environment: device name, torch/CUDA/cuDNN versions, TF32 settings, optional packages;
- slices, per size: raw batched forward throughput (float32 and bfloat16, over the chunk sizes a
  speed probe considers, the fastest kept), dense ``compute_slice`` against the fastest raw forward
  (target >= 0.95×), float32/bfloat16 × default/``channels_last`` dense slices with their labels
  against float32 (identical after the float32 re-check), the adaptive 256² slice's wall time
  (target <= 1 s at 224²) and time to its first frame (target <= 0.2 s), its agreement with dense;
- deepfool_vs_foolbox: ``bw.deepfool`` against foolbox's ``L2DeepFoolAttack`` at 3×32×32, batch 256
  (target >= 2×, median distance within 1 %); skipped with a note when foolbox is not installed;
- directions: every registered direction kind at 224²: time and peak ``torch.cuda.max_memory_allocated``;
- band_margins: 256 images at 3×32×32, the cost per image;
- certified: ``compute_slice(method="certified")`` at both sizes, when the kit has it: share of the
  area proven and time (cancelled after twice the direction kinds' limit); "not available" otherwise.

Timings: interleaved rounds, the best of each (a shared or warming machine disturbs single runs),
``torch.cuda.synchronize`` around each on a GPU. ``--tiny`` uses a narrow network (width 4) at 3×32×32
and 3×16×16 and small slices: its numbers check that the code runs, not the targets.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

# realscale.py sits beside this file (the script's folder is on sys.path when it runs).
from realscale import DIRECTION_PARAMS, MEAN, STD, build, plane_for, sync

import boundary_widgets as bw
from boundary_widgets.core.slices import SLICE_METHODS, chunk_candidates, chunk_size
from boundary_widgets.core.slices import points as slice_points

SECTIONS = ("environment", "slices", "deepfool_vs_foolbox", "directions", "band_margins", "certified")
LAYOUTS = {"default": torch.contiguous_format, "channels_last": torch.channels_last}
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class Scale:
    """Sizes of one run: the full check, or the tiny CPU run of the same code paths."""

    width: int  # channels of ResNet-18's first stage (64)
    large: int  # image side of the 1000-class network
    small: int  # image side of the 10-class network
    dense: dict[int, int]  # image side -> resolution of the dense slices (and of the raw forward)
    adaptive: int  # resolution of the timed adaptive slice
    rounds: int
    batch: int  # images of the DeepFool comparison and of the band margins
    kind_limit: float  # seconds before a direction kind is cancelled
    certified: dict[int, int]  # image side -> resolution of the certified slice
    budget: float  # seconds after which no further section starts


FULL = Scale(64, 224, 32, {224: 64, 32: 256}, 256, 3, 256, 30.0, {224: 16, 32: 64}, 330.0)
TINY = Scale(4, 32, 16, {32: 16, 16: 32}, 48, 1, 8, 2.0, {32: 8, 16: 16}, 40.0)


class Report:
    """The sections' data (JSON) and one table row per figure (Markdown), rewritten after each section."""

    def __init__(self, out: Path, scale: Scale, device: torch.device, tiny: bool) -> None:
        self.out, self.scale, self.device, self.tiny = out, scale, device, tiny
        self.sections: dict[str, dict] = {}
        self.rows: list[dict] = []
        self.started = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)

    def row(self, section: str, case: str, value: str, target: str = "", met: bool | None = None) -> None:
        self.rows.append({"section": section, "case": case, "value": value, "target": target, "met": met})

    def run(self, name: str, fn: Callable[[Report], dict]) -> None:
        elapsed = time.perf_counter() - self.started
        if elapsed > self.scale.budget:
            self.sections[name] = {"skipped": f"time budget: {elapsed:.0f} s > {self.scale.budget:.0f} s"}
            self.row(name, "skipped", self.sections[name]["skipped"])
        else:
            start = time.perf_counter()
            try:
                data = fn(self)
            except Exception as error:  # one failed section must not lose the others' figures
                data = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-4000:]}
                self.row(name, "error", data["error"][:200])
            data["seconds"] = round(time.perf_counter() - start, 2)
            self.sections[name] = data
        print(f"[{time.perf_counter() - self.started:6.1f} s] {name}: done", flush=True)
        self.write()

    def write(self) -> None:
        document = {"tiny": self.tiny, "device": str(self.device), "sections": self.sections, "rows": self.rows}
        (self.out / "gpu_check.json").write_text(json.dumps(document, indent=2, default=str))
        lines = [
            f"# GPU check{' (--tiny: code paths only, not the targets)' if self.tiny else ''}",
            "",
            "| section | case | value | target | met |",
            "|---|---|---|---|---|",
        ]
        for row in self.rows:
            met = {True: "yes", False: "**no**", None: ""}[row["met"]]
            lines.append(f"| {row['section']} | {row['case']} | {row['value']} | {row['target']} | {met} |")
        (self.out / "gpu_check.md").write_text("\n".join(lines) + "\n")


def best_times(runs: dict[str, Callable[[], object]], rounds: int, device: torch.device) -> dict[str, float]:
    """The fastest of ``rounds`` interleaved runs of each, after one warm-up run of each."""
    times: dict[str, float] = {}
    for fn in runs.values():
        fn()
    for _ in range(rounds):
        for name, fn in runs.items():
            sync(str(device))
            start = time.perf_counter()
            fn()
            sync(str(device))
            times[name] = min(times.get(name, float("inf")), time.perf_counter() - start)
    return times


def section_environment(report: Report) -> dict:
    device = report.device
    data = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torchvision": importlib.util.find_spec("torchvision") is not None,
        "foolbox": importlib.util.find_spec("foolbox") is not None,
        "certified": "certified" in SLICE_METHODS,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        data["memory_gib"] = round(props.total_memory / 2**30, 1)
        data["capability"] = f"{props.major}.{props.minor}"
    for key in ("device_name", "torch", "cuda", "cudnn", "tf32_matmul", "tf32_cudnn", "float32_matmul_precision"):
        report.row("environment", key, str(data[key]))
    return data


MODELS: dict[int, tuple] = {}


def model(report: Report, side: int) -> tuple[bw.Classifier, torch.nn.Module, torch.Tensor, bw.Plane, float]:
    """The network at ``side`` (built once), its images, and a plane through the first (DeepFool × random)."""
    if side not in MODELS:
        classes = 1000 if side == report.scale.large else 10
        n_images = report.scale.batch if side == report.scale.small else 2
        clf, net, images = build(side, classes, str(report.device), report.scale.width, n_images)
        images = images.to(report.device)
        plane, extent = plane_for(clf, images[0])
        MODELS[side] = (clf, net, images, plane, extent)
    return MODELS[side]


def _layout(layout: torch.memory_format) -> Callable[[], None]:
    """Force the slices' input layout (as benchmarks/slice_throughput.py does); returns the undo."""
    chosen = slice_points.input_memory_format
    slice_points.input_memory_format = lambda _device, _shape: layout

    def undo() -> None:
        slice_points.input_memory_format = chosen

    return undo


def section_slices(report: Report) -> dict:
    return {f"3x{side}x{side}": slices_at(report, side) for side in (report.scale.large, report.scale.small)}


def slices_at(report: Report, side: int) -> dict:
    scale, device = report.scale, report.device
    clf, _, _, plane, extent = model(report, side)
    name = f"3×{side}²"
    resolution = scale.dense[side]
    settings = dict(extent=extent, resolution=resolution, cache=False)

    def dense(precision: str = "float32") -> bw.PlaneSlice:
        return bw.compute_slice(clf, plane, method="dense", precision=precision, **settings)

    # The first dense slices run the speed probe (when the slice is large enough for one).
    reference = {precision: dense(precision) for precision in PRECISIONS}
    chosen_layout = slice_points.input_memory_format(clf.device, clf.input_shape)
    evaluator = slice_points.PointEvaluator(clf, plane)
    side_points = torch.linspace(-extent, extent, resolution)
    grid_a, grid_b = torch.meshgrid(side_points, side_points, indexing="xy")
    inputs = plane.points(grid_a.ravel().numpy(), grid_b.ravel().numpy()).to(device)
    inputs = inputs.contiguous(memory_format=chosen_layout)
    sizes = sorted({*chunk_candidates(chunk_size(clf)), evaluator.chunk}, reverse=True)

    def raw(size: int, precision: str) -> Callable[[], None]:
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")

        def go() -> None:
            with clf.evaluating(), torch.inference_mode(), autocast:
                for batch in inputs.split(size):
                    clf.forward(batch)

        return go

    runs = {f"raw {p} {size}": raw(size, p) for p in PRECISIONS for size in sizes}
    runs |= {f"dense {p}": lambda p=p: dense(p) for p in PRECISIONS}
    times = best_times(runs, scale.rounds, device)
    points = resolution**2
    data: dict = {
        "resolution": resolution,
        "extent": extent,
        "memory_chunk": chunk_size(clf),
        "probe_chunk": evaluator.chunk,
        "bytes_per_sample": clf.bytes_per_sample(),
        "layout": str(chosen_layout),
        "raw_points_per_s": {key: points / seconds for key, seconds in times.items() if key.startswith("raw")},
    }
    for precision in PRECISIONS:
        fastest = min(times[f"raw {precision} {size}"] for size in sizes)
        ratio = fastest / times[f"dense {precision}"]
        data[f"raw_fastest_{precision}"] = points / fastest
        data[f"dense_{precision}"] = points / times[f"dense {precision}"]
        data[f"dense_over_raw_{precision}"] = ratio
        report.row("slices", f"{name} raw forward {precision}, fastest chunk", f"{points / fastest:.0f} images/s")
        report.row(
            "slices",
            f"{name} dense {resolution}² {precision} / fastest raw",
            f"{ratio:.3f}× ({points / times[f'dense {precision}']:.0f} points/s, chunk {evaluator.chunk})",
            "≥ 0.95×",
            ratio >= 0.95,
        )

    # float32/bfloat16 × default/channels_last dense slices, labels against float32 in the default layout.
    layouts: dict = {}
    for layout_name, layout in LAYOUTS.items():
        undo = _layout(layout)
        try:
            layout_runs = {p: lambda p=p: dense(p) for p in PRECISIONS}
            layout_times = best_times(layout_runs, scale.rounds, device)
            for precision in PRECISIONS:
                agree = float((dense(precision).labels == reference["float32"].labels).mean())
                layouts[f"{precision} {layout_name}"] = {
                    "points_per_s": points / layout_times[precision],
                    "agree": agree,
                }
                report.row(
                    "slices",
                    f"{name} dense {precision} {layout_name}",
                    f"{points / layout_times[precision]:.0f} points/s, labels = float32 on {agree:.4%}",
                    "labels identical",
                    agree == 1.0,
                )
        finally:
            undo()
    data["layouts"] = layouts
    data["bf16_labels_identical"] = bool((reference["bfloat16"].labels == reference["float32"].labels).all())

    # Adaptive: wall time and first frame at scale.adaptive², agreement with dense at the dense resolution.
    walls, firsts = [], []
    for _ in range(scale.rounds):
        frame_times: list[float] = []
        sync(str(device))
        start = time.perf_counter()
        adaptive = bw.compute_slice(
            clf,
            plane,
            extent=extent,
            resolution=scale.adaptive,
            method="adaptive",
            cache=False,
            on_frame=lambda _frame, seen=frame_times, start=start: seen.append(time.perf_counter() - start),
        )
        walls.append(time.perf_counter() - start)
        firsts.append(frame_times[0])
    same = bw.compute_slice(clf, plane, method="adaptive", **settings)
    agree = float((same.labels == reference["float32"].labels).mean())
    share = adaptive.n_evaluated / scale.adaptive**2
    data["adaptive"] = {
        "resolution": scale.adaptive,
        "wall_s": min(walls),
        "first_frame_s": min(firsts),
        "frames": len(frame_times),
        "evaluated_share": share,
        f"agreement_with_dense_at_{resolution}": agree,
        f"evaluated_share_at_{resolution}": same.n_evaluated / resolution**2,
    }
    large = side == scale.large
    report.row(
        "slices",
        f"{name} adaptive {scale.adaptive}² wall",
        f"{min(walls):.3f} s ({share:.1%} evaluated, {len(frame_times)} frames)",
        "≤ 1 s" if large else "",
        min(walls) <= 1.0 if large else None,
    )
    report.row(
        "slices",
        f"{name} adaptive {scale.adaptive}² first frame",
        f"{min(firsts):.3f} s",
        "≤ 0.2 s" if large else "",
        min(firsts) <= 0.2 if large else None,
    )
    report.row("slices", f"{name} adaptive {resolution}² vs dense", f"{agree:.3%} agree", "≥ 99.5 %", agree >= 0.995)
    return data


def section_deepfool(report: Report) -> dict:
    if importlib.util.find_spec("foolbox") is None:
        note = "foolbox is not installed (pip install foolbox==3.3.4, the `bench` extra): not compared"
        report.row("deepfool_vs_foolbox", "skipped", note)
        return {"skipped": note}
    import foolbox

    clf, net, images, _, _ = model(report, report.scale.small)
    labels = clf.predict(images)
    fmodel = foolbox.PyTorchModel(
        net, bounds=clf.bounds, preprocessing={"mean": MEAN, "std": STD, "axis": -3}, device=report.device
    )
    attack = foolbox.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02, loss="logits")
    outputs: dict = {}

    def ours() -> None:
        result = bw.deepfool(clf, images, candidates=10, overshoot=0.02, max_iter=50, clip=True)
        outputs["kit"] = (result.distances.cpu(), result.converged.cpu())

    def theirs() -> None:
        adversarial = attack.run(fmodel, images, foolbox.criteria.Misclassification(labels))
        distances = (adversarial - images).flatten(1).norm(dim=1).cpu()
        outputs["foolbox"] = (distances, (clf.predict(adversarial) != labels).cpu())

    times = best_times({"kit": ours, "foolbox": theirs}, report.scale.rounds, report.device)
    medians = {name: float(d[ok].median()) for name, (d, ok) in outputs.items()}
    speedup = times["foolbox"] / times["kit"]
    difference = medians["kit"] / medians["foolbox"] - 1
    report.row("deepfool_vs_foolbox", f"batch {len(images)}, speed-up", f"{speedup:.2f}×", "≥ 2×", speedup >= 2)
    report.row(
        "deepfool_vs_foolbox",
        "median distance kit vs foolbox",
        f"{difference:+.2%}",
        "within 1 %",
        abs(difference) <= 0.01,
    )
    return {
        "foolbox": foolbox.__version__,
        "batch": len(images),
        "seconds": times,
        "median_distance": medians,
        "fooled": {name: int(ok.sum()) for name, (_, ok) in outputs.items()},
        "speedup": speedup,
    }


def section_directions(report: Report) -> dict:
    clf, _, images, _, _ = model(report, report.scale.large)
    device, x = report.device, images[0]
    data = {}
    for kind in ("deepfool", *bw.directions.available()):
        cancel = threading.Event()
        timer = threading.Timer(report.scale.kind_limit, cancel.set)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
        timer.start()
        start = time.perf_counter()
        try:
            if kind == "deepfool":
                found = bw.deepfool(clf, x, cancel=cancel)
                info = f"distance {float(found.distances[0]):.3g}, {int(found.iterations[0])} steps"
            else:
                params = DIRECTION_PARAMS.get(kind, lambda images: {})(images)
                direction = bw.directions.make(kind, clf, x, cancel=cancel, **params)
                info = ", ".join(
                    f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                    for key, value in direction.info.items()
                    if key in ("distance", "nonzero", "iterations", "n_hvp", "band", "curvature")
                )
        except bw.Cancelled:
            info = f"stopped after {report.scale.kind_limit:.0f} s"
        finally:
            timer.cancel()
        sync(str(device))
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) - before if device.type == "cuda" else None
        data[kind] = {"seconds": seconds, "peak_cuda_bytes": peak, "info": info}
        memory = f"{peak / 2**20:.0f} MiB peak" if peak is not None else "no CUDA allocator on this device"
        report.row("directions", f"3×{report.scale.large}² {kind}", f"{seconds:.2f} s, {memory} ({info})")
    return data


def section_band_margins(report: Report) -> dict:
    clf, _, images, _, _ = model(report, report.scale.small)
    bw.analysis.band_margins(clf, images[:2])  # warm-up
    sync(str(report.device))
    start = time.perf_counter()
    result = bw.analysis.band_margins(clf, images)
    sync(str(report.device))
    seconds = time.perf_counter() - start
    per_image = seconds / len(images)
    report.row(
        "band_margins",
        f"{len(images)} images 3×{report.scale.small}², {len(result.bands)} bands",
        f"{seconds:.2f} s, {1000 * per_image:.1f} ms per image",
    )
    return {"images": len(images), "bands": len(result.bands), "seconds_total": seconds, "per_image_s": per_image}


def section_certified(report: Report) -> dict:
    if "certified" not in SLICE_METHODS:
        report.row("certified", "compute_slice(method='certified')", "not available in this version of the kit")
        return {"available": False}
    data: dict = {"available": True}
    limit = 2 * report.scale.kind_limit
    for side in (report.scale.small, report.scale.large):
        clf, _, _, plane, extent = model(report, side)
        resolution = report.scale.certified[side]
        cancel = threading.Event()
        timer = threading.Timer(limit, cancel.set)
        sync(str(report.device))
        timer.start()
        start = time.perf_counter()
        try:
            sl = bw.compute_slice(
                clf, plane, extent=extent, resolution=resolution, method="certified", cache=False, cancel=cancel
            )
        except bw.Cancelled:
            sl = None
        finally:
            timer.cancel()
        sync(str(report.device))
        seconds = time.perf_counter() - start
        certificate = getattr(sl, "certificate", None)
        entry: dict = {"resolution": resolution, "seconds": seconds}
        if certificate is None:
            entry["stopped"] = f"cancelled after {limit:.0f} s"
            shown = entry["stopped"]
        else:
            entry |= {
                "proven_share": certificate.proven_area,
                "boundary_leaves": len(certificate.boundary),
                "boxes_bounded": certificate.n_bounded,
                "budget_exhausted": certificate.exhausted,
            }
            shown = f"{certificate.proven_area:.1%} of the area proven, {certificate.n_bounded} boxes bounded"
        data[f"3x{side}x{side}"] = entry
        report.row("certified", f"3×{side}² {resolution}²", f"{shown}, {seconds:.2f} s")
    return data


RUNNERS = {
    "environment": section_environment,
    "slices": section_slices,
    "deepfool_vs_foolbox": section_deepfool,
    "directions": section_directions,
    "band_margins": section_band_margins,
    "certified": section_certified,
}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "test-output/gpu_check"))
    parser.add_argument("--tiny", action="store_true", help="tiny sizes on the CPU: the code paths, in < 1 min")
    parser.add_argument("--device", default=None, help="default: cuda when available (cpu with --tiny)")
    parser.add_argument("--budget", type=float, default=None, help="seconds after which no section starts")
    args = parser.parse_args(argv)
    scale = TINY if args.tiny else FULL
    if args.budget is not None:
        scale = Scale(**{**scale.__dict__, "budget": args.budget})
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not args.tiny else "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(min(torch.get_num_threads(), 2 if args.tiny else torch.get_num_threads()))
    MODELS.clear()
    report = Report(args.out, scale, device, args.tiny)
    for name in SECTIONS:
        report.run(name, RUNNERS[name])
    print((args.out / "gpu_check.md").read_text())
    print(f"written: {args.out / 'gpu_check.json'} and {args.out / 'gpu_check.md'}")
    return args.out


if __name__ == "__main__":
    main()
