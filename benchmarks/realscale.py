"""Real models at real scale (issue 14): a ResNet-18 at 3×32×32 (10 classes) and 3×224×224 (1000 classes).

    python benchmarks/realscale.py                  # both sizes, CPU, 1 torch thread (several minutes)
    python benchmarks/realscale.py --sizes 32       # only the CIFAR-size part
    python benchmarks/realscale.py --device cuda    # on a GPU machine

The network is torchvision's ``resnet18`` when torchvision is installed, else the same architecture
built here (BasicBlock ×[2, 2, 2, 2], 64–512 channels, 7×7 stem and max-pool); random weights with
BatchNorm statistics from a few random batches, ImageNet mean/std inside the ``Classifier``.
Sections, each one table, both sizes side by side where it applies:

1. DeepFool's candidate gradients at 3×32×32, 64 images, 9 gradients each: the input replicated
   9 times (forward and backward), one forward with 9 backward passes (foolbox's loop), and one
   forward with one batched backward (``is_grads_batched``, the kit's default). Same gradients.
2. Dense ``compute_slice`` against the raw batched forward pass over the same points (the limit).
3. Adaptive slices: evaluated share and speed-up over dense at the same resolution.
4. Every direction kind (``bw.directions.available()``): time and peak traced memory above the start
   (torch allocator via the profiler plus tracemalloc, as tests/test_dct_scale.py), as ratios to one
   unconstrained DeepFool on the same image. A kind still running after ``--kind-limit`` seconds is stopped
   through ``cancel=``.
5. ``bw.deepfool`` against foolbox 3's ``L2DeepFoolAttack`` at 3×32×32, batch 64 (both clip to the
   bounds, 10 candidates, overshoot 0.02, 50 steps, logit differences): time and median distance.

On a 2-core CPU the 3×224×224 network runs about a dozen images per second, so that size uses smaller
slices than the issue's 128²/256² (``--dense-224`` 16², ``--adaptive-224`` 64²: an adaptive slice
needs more than its 33-sample coarse lattice per axis to skip anything) and says so in the table;
dense times at resolutions not run densely are extrapolated from the measured dense time per point
(dense work is linear in the points) and say so. Timings are medians of interleaved rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import statistics
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch._C._profiler import _EventType

import boundary_widgets as bw

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
deepfool_module = importlib.import_module("boundary_widgets.core.deepfool")


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + identity)


def resnet18(num_classes: int, width: int = 64) -> nn.Module:
    """torchvision's resnet18 when installed, else the same architecture (11.7 M parameters at 1000 classes).

    ``width`` (the first stage's channels; 64 in ResNet-18) other than 64 always builds it here, narrower."""
    try:
        from torchvision.models import resnet18 as torchvision_resnet18
    except ImportError:
        pass
    else:
        if width == 64:
            return torchvision_resnet18(num_classes=num_classes)
    layers, cin = [], width
    for cout, stride in ((width, 1), (2 * width, 2), (4 * width, 2), (8 * width, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    return nn.Sequential(
        nn.Conv2d(3, width, 7, 2, 3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
        *layers,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8 * width, num_classes),
    )


def build(
    size: int, num_classes: int, device: str, width: int = 64, n_images: int = 64
) -> tuple[bw.Classifier, nn.Module, torch.Tensor]:
    """The classifier, its module (eval mode) and ``n_images`` random images in [0, 1]."""
    torch.manual_seed(0)
    net = resnet18(num_classes, width)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net((torch.rand(16, 3, size, size) - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None])
    net.eval().to(device)
    clf = bw.Classifier(net, input_shape=(3, size, size), mean=MEAN, std=STD, device=device)
    images = torch.rand(n_images, 3, size, size, generator=torch.Generator().manual_seed(1))
    return clf, net, images


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved(
    runs: dict[str, Callable[[], object]], rounds: int, device: str, warm_up: Callable[[], object] | None = None
) -> dict[str, float]:
    """Median seconds of each run, alternating runs within each round (load hits all alike).

    ``warm_up`` (default: each run once) pays for first-call allocations and lazy imports."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values() if warm_up is None else [warm_up]:
        fn()
    for _ in range(rounds):
        for name, fn in runs.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _events(nodes: list) -> Iterator:
    for node in nodes:
        yield node
        yield from _events(node.children)


@contextlib.contextmanager
def traced_peak() -> Iterator[dict[str, int]]:
    """Peak traced bytes above the start of the block: torch's allocator (profiler memory events) plus
    Python/numpy (tracemalloc), as tests/test_dct_scale.py measures; on CUDA, torch's peak allocated too."""
    out: dict[str, int] = {}
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        start_cuda = torch.cuda.memory_allocated()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profiler:
        tracemalloc.start()
        try:
            yield out
            python_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    tree = profiler.profiler.kineto_results.experimental_event_tree()
    allocations = sorted(
        (event for event in _events(tree) if event.tag == _EventType.Allocation), key=lambda e: e.start_time_ns
    )
    torch_peak = 0
    if allocations:
        before = allocations[0].extra_fields.total_allocated - allocations[0].extra_fields.alloc_size
        torch_peak = max(event.extra_fields.total_allocated for event in allocations) - before
    out["cpu"] = torch_peak + python_peak
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.max_memory_allocated() - start_cuda


def section_gradients(device: str, rounds: int) -> None:
    clf, _, images = build(32, 10, device)
    images = images.to(device)
    classes = torch.stack([torch.randperm(10, generator=torch.Generator().manual_seed(i))[:9] for i in range(64)])
    classes = classes.to(device)

    def run(strategy: str) -> Callable[[], torch.Tensor]:
        def go() -> torch.Tensor:
            with clf.evaluating(), torch.enable_grad():
                return deepfool_module.candidate_gradients(clf, images, classes, strategy=strategy)[1]

        return go

    runs = {
        "replicated input (x9, forward+backward)": run("replicated"),
        "one forward, 9 backward passes (foolbox)": run("loop"),
        "one forward, one batched backward (kit)": run("batched"),
    }
    reference = runs["replicated input (x9, forward+backward)"]()
    difference = max((fn() - reference).abs().max().item() for fn in runs.values())
    median = interleaved(runs, rounds, device)
    print("\n1. DeepFool candidate gradients: 64 images 3×32×32, 9 gradients each, ResNet-18 (10 classes)")
    print(f"{'':44}{'ms':>9}{'vs replicated':>15}")
    base = median["replicated input (x9, forward+backward)"]
    for name, seconds in median.items():
        print(f"{name:44}{1000 * seconds:>9.1f}{base / seconds:>14.2f}×")
    print(f"largest gradient difference between the three: {difference:.2e}")


def plane_for(clf: bw.Classifier, x: torch.Tensor) -> tuple[bw.Plane, float]:
    """The plane through x along DeepFool's direction and a random one; extent 3× the DeepFool distance."""
    found = bw.deepfool(clf, x)
    generator = torch.Generator().manual_seed(2)
    plane = bw.Plane.through(x, found.perturbations[0], torch.randn(x.shape, generator=generator))
    return plane, 3.0 * float(found.distances[0])


def section_slices(setups: dict, device: str, rounds: int, resolutions: dict) -> None:
    print("\n2-3. Slices: dense compute_slice vs the raw batched forward pass (same points, the chunks compute_slice")
    print("uses); adaptive vs dense at the same resolution. Extent 3× the DeepFool distance, plane (DeepFool, random).")
    print(f"{'size':>8}{'what':>22}{'res':>6}{'seconds':>10}{'points/s':>10}  ratio")
    chunk_size = importlib.import_module("boundary_widgets.core.slices").chunk_size
    for size, (clf, _, images) in setups.items():
        x = images[0]
        plane, extent = plane_for(clf, x)
        dense_res = resolutions[size]["dense"]
        side = torch.linspace(-extent, extent, dense_res)
        grid_a, grid_b = torch.meshgrid(side, side, indexing="xy")
        inputs = plane.points(grid_a.ravel().numpy(), grid_b.ravel().numpy()).to(clf.device)
        chunk = chunk_size(clf)

        def raw(inputs: torch.Tensor = inputs, chunk: int = chunk, clf: bw.Classifier = clf) -> None:
            with clf.evaluating(), torch.inference_mode():
                for batch in inputs.split(chunk):
                    clf.forward(batch)

        def dense(
            res: int = dense_res, clf: bw.Classifier = clf, plane: bw.Plane = plane, extent: float = extent
        ) -> bw.PlaneSlice:
            return bw.compute_slice(clf, plane, extent=extent, resolution=res, method="dense", cache=False)

        outputs = {}
        median = interleaved(
            {"raw": raw, "dense": lambda dense=dense, out=outputs: out.update(dense=dense())},
            rounds,
            device,
            warm_up=lambda dense=dense: dense(8),
        )
        points = dense_res**2
        per_point = median["dense"] / points
        print(
            f"{size:>8}{'raw forward (limit)':>22}{dense_res:>6}{median['raw']:>10.2f}{points / median['raw']:>10.0f}"
        )
        ratio = median["raw"] / median["dense"]
        print(
            f"{size:>8}{'dense compute_slice':>22}{dense_res:>6}{median['dense']:>10.2f}{points / median['dense']:>10.0f}"
            f"  {ratio:.2f}× the limit's points/s (target ≥ 0.85)"
        )
        for res in resolutions[size]["adaptive"]:
            start = time.perf_counter()
            adaptive = bw.compute_slice(clf, plane, extent=extent, resolution=res, method="adaptive", cache=False)
            seconds = time.perf_counter() - start
            share = adaptive.n_evaluated / res**2
            note = f"dense time extrapolated from the dense {dense_res}² per point"
            if res == dense_res:
                agree = float((outputs["dense"].labels == adaptive.labels).mean())
                note = f"labels equal to dense on {agree:.2%} of cells"
            print(
                f"{size:>8}{'adaptive':>22}{res:>6}{seconds:>10.2f}{adaptive.n_evaluated / seconds:>10.0f}"
                f"  {share:.1%} evaluated, {per_point * res**2 / seconds:.1f}× faster than dense ({note})"
            )


DIRECTION_PARAMS = {"image": lambda images: {"other": images[1]}}


def section_directions(setups: dict, limit: float, rounds: int) -> None:
    print(
        f"\n4. Direction kinds vs one unconstrained DeepFool on the same image; time and traced peak memory in one run "
        f"under the memory profiler (a kind still running after {limit:.0f} s is stopped through cancel=)"
    )
    print(f"{'size':>8}{'kind':>13}{'seconds':>10}{'× DeepFool':>12}{'peak MiB':>10}{'× DeepFool':>12}  info")
    for size, (clf, _, images) in setups.items():
        x = images[0]
        runs = []
        for _ in range(1 + rounds):  # the first is a warm-up
            with traced_peak() as memory:
                start = time.perf_counter()
                found = bw.deepfool(clf, x)
                runs.append((time.perf_counter() - start, memory))
        base_seconds = statistics.median(seconds for seconds, _ in runs[1:])
        base_memory = max(statistics.median(memory["cpu"] for _, memory in runs[1:]), 1)
        print(
            f"{size:>8}{'deepfool':>13}{base_seconds:>10.2f}{1.0:>12.2f}{base_memory / 2**20:>10.1f}{1.0:>12.2f}"
            f"  distance {float(found.distances[0]):.3g}, {int(found.iterations[0])} steps, median of {rounds}"
        )
        for kind in bw.directions.available():
            params = DIRECTION_PARAMS.get(kind, lambda images: {})(images)
            cancel = threading.Event()
            timer = threading.Timer(limit, cancel.set)
            reports: list[tuple[int, int | None]] = []
            timer.start()
            with traced_peak() as memory:
                start = time.perf_counter()
                try:
                    direction = bw.directions.make(
                        kind,
                        clf,
                        x,
                        cancel=cancel,
                        progress=lambda *report, seen=reports: seen.append(report),
                        **params,
                    )
                    info = ", ".join(
                        f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                        for key, value in direction.info.items()
                        if key in ("distance", "nonzero", "iterations", "n_hvp", "band", "curvature", "residual")
                    )
                except bw.Cancelled:
                    done, total = reports[-1] if reports else (0, None)
                    info = f"stopped at {limit:.0f} s: {done} of {total} progress units (HVPs for curvature)"
                seconds = time.perf_counter() - start
            timer.cancel()
            print(
                f"{size:>8}{kind:>13}{seconds:>10.2f}{seconds / base_seconds:>12.2f}{memory['cpu'] / 2**20:>10.1f}"
                f"{memory['cpu'] / base_memory:>12.2f}  {info}"
            )


def section_foolbox(device: str, rounds: int) -> None:
    print("\n5. bw.deepfool vs foolbox L2DeepFoolAttack: ResNet-18, 3×32×32, batch 64, 10 classes")
    try:
        import foolbox
    except ImportError as error:
        print(f"foolbox is not installed (pip install foolbox==3.3.4, the `bench` extra): {error}")
        return
    clf, net, images = build(32, 10, device)
    images = images.to(device)
    labels = clf.predict(images)
    preprocessing = {"mean": MEAN, "std": STD, "axis": -3}
    model = foolbox.PyTorchModel(net, bounds=clf.bounds, preprocessing=preprocessing, device=device)
    attack = foolbox.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02, loss="logits")
    outputs = {}

    def ours() -> None:
        result = bw.deepfool(clf, images, candidates=10, overshoot=0.02, max_iter=50, clip=True)
        outputs["kit"] = (result.distances, result.converged)

    def theirs() -> None:
        adversarial = attack.run(model, images, foolbox.criteria.Misclassification(labels))
        distances = (adversarial - images).flatten(1).norm(dim=1).cpu()
        outputs["foolbox"] = (distances, (clf.predict(adversarial) != labels).cpu())

    median = interleaved({"kit": ours, "foolbox": theirs}, rounds, device)
    print(f"{'':10}{'seconds':>9}{'median L2':>11}{'fooled':>9}")
    medians = {}
    for name in ("kit", "foolbox"):
        distances, converged = outputs[name]
        medians[name] = distances[converged].median().item()
        print(f"{name:10}{median[name]:>9.3f}{medians[name]:>11.4f}{int(converged.sum()):>6}/64")
    print(
        f"speed-up (foolbox / kit): {median['foolbox'] / median['kit']:.2f}× (target ≥ 1.5× CPU); "
        f"median distance kit vs foolbox: {100 * (medians['kit'] / medians['foolbox'] - 1):+.2f} % (target within 1 %)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224], choices=[32, 224])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dense-224", type=int, default=16, help="dense slice resolution at 3×224×224")
    parser.add_argument("--adaptive-224", type=int, nargs="+", default=[64])
    parser.add_argument("--kind-limit", type=float, default=60.0, help="seconds before a direction is cancelled")
    parser.add_argument(
        "--sections", default="12345", help="which sections to run (digits 1-5), e.g. 245 to skip the slow ones"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = args.device
    print(
        f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; ResNet-18 "
        f"({'torchvision' if importlib.util.find_spec('torchvision') else 'built here'}), random weights"
    )
    resolutions = {
        32: {"dense": 128, "adaptive": [128, 256]},
        224: {"dense": args.dense_224, "adaptive": args.adaptive_224},
    }
    if "1" in args.sections:
        section_gradients(device, args.rounds)
    setups = {size: build(size, 10 if size == 32 else 1000, device) for size in args.sizes}
    if "2" in args.sections or "3" in args.sections:
        section_slices(setups, device, args.rounds, resolutions)
    if "4" in args.sections:
        section_directions(setups, args.kind_limit, args.rounds)
    if "5" in args.sections:
        section_foolbox(device, args.rounds)


if __name__ == "__main__":
    main()
