"""Slices, DeepFool and proofs on every device the machine has, against closed forms of a linear classifier."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import boundary_widgets as bw


def _linear_binary(device: torch.device) -> tuple[bw.Classifier, np.ndarray, float]:
    """Two classes on R^5: logit gap w·x + b with fixed generic w, b (float64 copies returned)."""
    net = nn.Linear(5, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.7, -0.2, 0.4, 0.1, -0.5], [-0.3, 0.6, 0.2, -0.4, 0.3]]))
        net.bias.copy_(torch.tensor([0.15, -0.05]))
    w = (net.weight[0] - net.weight[1]).detach().double().numpy()
    b = float((net.bias[0] - net.bias[1]).detach())
    return bw.Classifier(net, input_shape=(5,), bounds=(-10.0, 10.0), device=device), w, b


def test_a_dense_slice_on_each_device_has_the_closed_form_labels(device):
    clf, w, b = _linear_binary(device)
    x = torch.tensor([0.2, -0.1, 0.3, 0.0, 0.1])
    u, v = torch.eye(5)[0], torch.eye(5)[1]
    sl = bw.compute_slice(clf, bw.Plane.through(x, u, v), extent=2.0, resolution=64, method="dense")
    a, bb = np.meshgrid(sl.alphas, sl.betas)
    gap = b + w @ x.double().numpy() + w[0] * a + w[1] * bb  # (R, R): logit 0 minus logit 1
    clear = np.abs(gap) > 1e-4  # float32 may tie within a few ulps on the line itself
    assert clear.mean() > 0.95 and 0 < (gap > 0).mean() < 1
    np.testing.assert_array_equal(sl.labels[clear], np.where(gap > 0, 0, 1)[clear])


def test_deepfool_on_each_device_finds_the_distance_to_the_line(device):
    clf, w, b = _linear_binary(device)
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(0))
    result = bw.deepfool(clf, x, overshoot=0.0)
    expected = np.abs(b + x.double().numpy() @ w) / np.linalg.norm(w)
    assert result.converged.all()
    # The stabiliser adds 1e-4 to each step in input units (as LTS4 and foolbox): one step on a line.
    np.testing.assert_allclose(result.distances.double().cpu().numpy(), expected + 1e-4, rtol=1e-4, atol=1e-5)


def test_a_proof_on_each_device_never_proves_a_cell_the_line_crosses(device):
    clf, w, b = _linear_binary(device)
    x = torch.tensor([0.2, -0.1, 0.3, 0.0, 0.1])
    sl = bw.compute_slice(
        clf, bw.Plane.through(x, torch.eye(5)[0], torch.eye(5)[1]), extent=2.0, resolution=32, method="certified"
    )
    half = (sl.alphas[1] - sl.alphas[0]) / 2
    a, bb = np.meshgrid(sl.alphas, sl.betas)
    centre_gap = b + w @ x.double().numpy() + w[0] * a + w[1] * bb
    reach = half * (abs(w[0]) + abs(w[1]))  # the gap's largest change from a cell's centre to its corners
    crossed = np.abs(centre_gap) < reach
    far = np.abs(centre_gap) > 2 * reach
    assert (sl.certificate.proven[crossed] < 1).all()
    assert (sl.certificate.proven[far] == 1).all()
    np.testing.assert_array_equal(sl.certificate.proven_label[far], np.where(centre_gap > 0, 0, 1)[far])
