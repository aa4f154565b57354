"""Shared fixtures: the embedded models and toy classifiers with closed-form boundaries."""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

import boundary_widgets as bw


@pytest.fixture(scope="session")
def digits():
    return bw.zoo.load("digits-cnn", device="cpu")


@pytest.fixture
def linear_clf():
    """A 3-class linear classifier on 2×3 inputs with fixed, generic weights."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    return bw.Classifier(net, input_shape=(2, 3), bounds=(-10.0, 10.0))


def model_state(net: nn.Module) -> tuple:
    """Training flags, requires_grad flags and a digest of the parameter bytes."""
    digest = hashlib.sha256()
    for tensor in net.state_dict().values():
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return (
        tuple(m.training for m in net.modules()),
        tuple(p.requires_grad for p in net.parameters()),
        tuple(p.grad is None for p in net.parameters()),
        digest.hexdigest(),
    )


@pytest.fixture(params=["cpu", *(["cuda"] if torch.cuda.is_available() else [])])
def device(request) -> torch.device:
    """Every device this machine has: the CUDA branches run wherever a GPU is present."""
    return torch.device(request.param)
