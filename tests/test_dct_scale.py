"""DCT bands at ImageNet scale (3×224×224, 1000 classes): memory of the band direction and band margins.

Memory is the peak *traced* allocation while the call runs, the sum of two allocators' peaks:

- torch's CPU allocator, as the profiler sees it with ``profile_memory=True``: every allocation event
  carries the allocator's running total (``total_allocated``), so its maximum minus the total before
  the first event is the peak of live torch memory during the call (tracemalloc cannot see torch);
- Python and numpy (scipy.fft included) through ``tracemalloc``, started inside the profiled block so
  that the profiler's own bookkeeping is not counted.

This is exact for what it traces and independent of RSS noise (allocator caches, other threads).
``test_the_memory_probe_sees_torch_and_numpy_allocations`` checks that it measures known allocations,
so that the bound below can fail: one dense 3×224×224 band basis alone measures about 1.6 GB, and
the previous dense path peaked at 2.2 GB for the direction and 8.4 GB for one image's band margins.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from torch import nn
from torch._C._profiler import _EventType

import boundary_widgets as bw
from boundary_widgets.core import dct

SHAPE = (3, 224, 224)
DIM = 3 * 224 * 224
BOUND = 1.5 * 2**30  # bytes above the start; issue 14's budget at 3×224×224 on a CPU


def _events(nodes: list) -> Iterator:
    for node in nodes:
        yield node
        yield from _events(node.children)


def peak_traced_bytes(fn: Callable[[], object]) -> tuple[object, int, int]:
    """``(fn(), torch peak bytes, python/numpy peak bytes)`` above what was live before the call."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profiler:
        tracemalloc.start()
        try:
            result = fn()
            python_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    tree = profiler.profiler.kineto_results.experimental_event_tree()
    allocations = sorted(
        (event for event in _events(tree) if event.tag == _EventType.Allocation), key=lambda e: e.start_time_ns
    )
    if not allocations:
        return result, 0, python_peak
    before = allocations[0].extra_fields.total_allocated - allocations[0].extra_fields.alloc_size
    torch_peak = max(event.extra_fields.total_allocated for event in allocations) - before
    return result, torch_peak, python_peak


@pytest.fixture(scope="module")
def imagenet_clf():
    """A random-weight 1000-class conv net at 3×224×224 with ImageNet normalisation, few channels (fast on a CPU)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 7, stride=4, padding=3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(256, 1000),
    )
    return bw.Classifier(net, input_shape=SHAPE, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def image():
    return torch.rand(SHAPE, generator=torch.Generator().manual_seed(0))


def test_the_memory_probe_sees_torch_and_numpy_allocations():
    _, torch_peak, _ = peak_traced_bytes(lambda: torch.ones(64 * DIM).sum())
    assert torch_peak == pytest.approx(4 * 64 * DIM, rel=0.01)
    _, _, python_peak = peak_traced_bytes(lambda: np.ones(8 * DIM).sum())
    assert python_peak == pytest.approx(8 * 8 * DIM, rel=0.01)


@pytest.mark.parametrize("which", ["low", "high"])
def test_dct_direction_at_imagenet_scale_stays_within_the_bound(imagenet_clf, image, which):
    direction, torch_peak, python_peak = peak_traced_bytes(
        lambda: bw.directions.make("dct", imagenet_clf, image, band=which, max_iter=10)
    )
    assert torch_peak + python_peak <= BOUND, (torch_peak, python_peak)
    band = dct.band(SHAPE, which)
    torch.testing.assert_close(band.project(direction.vector), direction.vector, atol=1e-6, rtol=0)
    assert direction.info["band_dim"] == 768
    assert direction.info["reached_class"] != direction.info["original"] or not direction.info["converged"]
    noise, torch_peak, python_peak = peak_traced_bytes(
        lambda: bw.directions.make("dct", imagenet_clf, image, band=which, method="random")
    )
    assert torch_peak + python_peak <= BOUND, (torch_peak, python_peak)
    torch.testing.assert_close(band.project(noise.vector), noise.vector, atol=1e-6, rtol=0)


def test_one_image_band_margins_at_imagenet_scale_stay_within_the_bound(imagenet_clf, image):
    chosen = dct.bands(SHAPE)[::6]  # low, a middle band and the highest of the 14
    result, torch_peak, python_peak = peak_traced_bytes(
        lambda: bw.analysis.band_margins(imagenet_clf, image[None], bands=chosen, max_iter=5)
    )
    assert torch_peak + python_peak <= BOUND, (torch_peak, python_peak)
    assert result.margins.shape == (1, 3) and result.converged.any()
    assert np.isfinite(result.margins).all() and (result.margins > 0).all()
    # The band-constrained perturbation of a converged band lies in that band (fast projection, no basis).
    j = int(np.flatnonzero(result.converged[0])[0])
    along = bw.analysis.band_direction(imagenet_clf, result, image, j)
    torch.testing.assert_close(chosen[j].project(along), along, atol=1e-5, rtol=0)
