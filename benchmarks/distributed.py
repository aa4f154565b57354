"""Band margins over 256 digits test images: in-process (2 torch threads) against a Dask LocalCluster of 2 workers
× 1 thread, side by side, on the same machine in one run; then an estimate for the CIFAR-10 test set on GPUs.

Run: ``python benchmarks/distributed.py`` (needs the ``distributed`` extra). Timings alternate (in-process,
cluster, in-process, …) so that a shared machine's load hits both alike; the table reports medians.

Scheduling overhead per shard, on the critical path: (wall time − the busiest worker's compute time) / its
shards: what each of its shards cost beyond computing (the run's checks, scheduling, sending images and results,
the client's merging). Load imbalance between the workers is not in it; the wall time shows it.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import boundary_widgets as bw
from boundary_widgets.core import dct
from boundary_widgets.core.analysis import band_margins
from boundary_widgets.core.distributed import Sharding

N_IMAGES = 256
ROUNDS = 5
SHARD_SIZES = (128, 64, 32, 16)  # 64: the default shard size for 256 images on 2 workers

# CIFAR-10 estimate: ResNet-18 (CIFAR variant, 0.56 GFLOP per forward pass), 10 classes, 4 default bands of
# 3×32×32. One DeepFool step = one forward + a backward per candidate (10; a backward ~ 2 forwards) = 21 forwards.
RESNET18_CIFAR_GFLOP = 0.56
FORWARDS_PER_STEP = 1 + 2 * 10
GPU_TFLOPS = 15.0  # sustained fp32 per GPU (about 75 % of an A100's 19.5 TFLOP/s fp32 peak; no TF32/AMP)
CIFAR_IMAGES = 10_000


def main() -> None:
    # This file's name would shadow the `distributed` package (and in the spawned workers too).
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    from distributed import Client, LocalCluster, get_task_stream

    load = f"{os.getloadavg()[0]:.1f}"
    torch.set_num_threads(2)
    clf, data = bw.zoo.load("digits-cnn", device="cpu")
    images = data.split("test")[0][:N_IMAGES].contiguous()
    bands = dct.bands(clf.input_shape)
    steps = sum(
        float(bw.deepfool(clf, images, subspace=band, max_iter=100, overshoot=0.02).iterations.float().mean())
        for band in bands
    )

    began = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    )
    client = Client(cluster)
    try:
        band_margins(clf, images[:8], executor=client)  # start the workers' torch and classifier
        startup = time.perf_counter() - began
        local_times, single_times = [], []
        cluster_times = {size: [] for size in SHARD_SIZES}
        overheads = {size: [] for size in SHARD_SIZES}
        computes = {size: [] for size in SHARD_SIZES}
        for _ in range(ROUNDS):
            began = time.perf_counter()
            expected = band_margins(clf, images)
            local_times.append(time.perf_counter() - began)
            torch.set_num_threads(1)
            began = time.perf_counter()
            band_margins(clf, images)
            single_times.append(time.perf_counter() - began)
            torch.set_num_threads(2)
            for size in SHARD_SIZES:
                with get_task_stream(client) as stream:
                    began = time.perf_counter()
                    result = band_margins(clf, images, executor=Sharding(client, shard_size=size))
                    wall = time.perf_counter() - began
                assert (result.labels == expected.labels).all() and (result.converged == expected.converged).all()
                tasks = [task for task in stream.data if str(task["key"]).startswith("band_margins-")]
                per_worker: dict[str, list[float]] = {}
                for task in tasks:
                    for part in task["startstops"]:
                        if part["action"] == "compute":
                            per_worker.setdefault(task["worker"], []).append(part["stop"] - part["start"])
                busiest = max(per_worker.values(), key=sum)
                cluster_times[size].append(wall)
                computes[size].append(sum(map(sum, per_worker.values())) / len(tasks))
                overheads[size].append((wall - sum(busiest)) / len(busiest))
    finally:
        client.close()
        cluster.close()

    local = statistics.median(local_times)
    single = statistics.median(single_times)
    print(f"band margins, {N_IMAGES} digits test images, {len(bands)} default bands, max_iter 100")
    print(
        f"({os.cpu_count()} CPU cores shared with other work, load average {load} before and "
        f"{os.getloadavg()[0]:.1f} after: timings are medians of {ROUNDS} alternating rounds)\n"
    )
    print(
        f"{'run':38s} {'wall s':>8s} {'speed-up':>9s} {'shard compute s':>16s} {'overhead/shard':>15s} {'best s':>7s}"
    )
    print(f"{'in-process, 2 torch threads':38s} {local:8.2f} {1.0:9.2f} {'':16s} {'':15s} {min(local_times):7.2f}")
    print(
        f"{'in-process, 1 torch thread':38s} {single:8.2f} {local / single:9.2f} {'':16s} {'':15s} {min(single_times):7.2f}"
    )
    for size in SHARD_SIZES:
        wall = statistics.median(cluster_times[size])
        compute = statistics.median(computes[size])
        overhead = statistics.median(overheads[size])
        label = f"LocalCluster 2×1, shards of {size} ({N_IMAGES // size})"
        print(
            f"{label:38s} {wall:8.2f} {local / wall:9.2f} {compute:16.3f} "
            f"{overhead * 1000:7.1f} ms ({100 * overhead / compute:4.1f} %) {min(cluster_times[size]):7.2f}"
        )

    per_image = min(local, single) / N_IMAGES
    digits_gflop = _forward_gflop(clf, images[:1])
    achieved = steps * FORWARDS_PER_STEP * digits_gflop / per_image
    print(
        f"\nper image in-process: {per_image * 1000:.1f} ms for {steps:.1f} DeepFool steps (all bands) of "
        f"{FORWARDS_PER_STEP} forwards of {digits_gflop * 1e3:.2f} MFLOP: {achieved:.2f} GFLOP/s achieved on this CPU"
    )
    gflop = steps * FORWARDS_PER_STEP * RESNET18_CIFAR_GFLOP
    seconds = gflop / (GPU_TFLOPS * 1000)
    print(
        f"CIFAR-10 estimate (ResNet-18, {len(dct.bands((3, 32, 32)))} bands, the same {steps:.1f} steps per image, "
        f"{FORWARDS_PER_STEP} forwards per step, {GPU_TFLOPS:g} TFLOP/s sustained per GPU): "
        f"{gflop:.0f} GFLOP = {seconds * 1000:.0f} ms per image"
    )
    overhead = statistics.median(overheads[SHARD_SIZES[0]])
    print(f"cluster start and first shard (workers import torch, receive the model): {startup:.1f} s")
    for gpus in (1, 4, 8):
        shards = -(-CIFAR_IMAGES // 256)
        total = CIFAR_IMAGES * seconds / gpus + shards * overhead / gpus + (startup if gpus > 1 else 0.0)
        print(
            f"  {gpus} GPU{'s' if gpus > 1 else ' '}: {total / 60:6.1f} min "
            f"({'in-process' if gpus == 1 else f'{gpus} workers'}, shards of 256, overhead and start as measured here)"
        )


def _forward_gflop(clf: bw.Classifier, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        clf.logits(x)
    return counter.get_total_flops() / 1e9


if __name__ == "__main__":
    main()
