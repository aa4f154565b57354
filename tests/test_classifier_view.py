"""The classifier runs an eval view that shares the user's tensors and never writes the user's module."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
import torch
from conftest import model_state
from torch import nn

import boundary_widgets as bw


def _dropout_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 16), nn.BatchNorm1d(16), nn.Dropout(0.5), nn.Linear(16, 3))


def _clf(net: nn.Module) -> bw.Classifier:
    return bw.Classifier(net, input_shape=(2, 3), bounds=(-1.0, 1.0))


def test_user_module_keeps_training_mode_grad_flags_and_hooks():
    net = _dropout_net().train()
    before = model_state(net)
    hooks_before = [len(m._forward_hooks) for m in net.modules()]
    clf = _clf(net)
    x = torch.rand(8, 2, 3) * 2 - 1
    first = clf.logits(x)
    # Eval view: dropout off and BatchNorm on running statistics, so repeated calls agree.
    assert torch.equal(first, clf.logits(x))
    clf.bytes_per_sample()
    bw.deepfool(clf, x)
    assert model_state(net) == before
    assert [len(m._forward_hooks) for m in net.modules()] == hooks_before
    assert net.training and all(p.requires_grad and p.grad is None for p in net.parameters())


def test_another_thread_never_sees_the_module_change_while_a_slice_computes(digits):
    clf, data = digits
    net = clf.net
    net.train()
    before = model_state(net)
    x = data.split("test")[0][0]
    plane = bw.Plane.through(x, torch.randn_like(x), torch.randn_like(x))
    done = threading.Event()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for resolution in (96, 97, 98):
                bw.compute_slice(clf, plane, extent=4.0, resolution=resolution, method="dense", cache=False)
        except BaseException as error:  # reported in the main thread
            failures.append(error)
        finally:
            done.set()

    worker = threading.Thread(target=work)
    worker.start()
    polls = 0
    changed = 0
    while not done.is_set():
        polls += 1
        changed += model_state(net) != before
    worker.join()
    net.eval()
    assert not failures
    assert polls > 10
    assert changed == 0


class _Gate(nn.Module):
    """Blocks a forward of a batch larger than one until released: a slow computation in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 3)
        self.entered = threading.Event()
        self.release = threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 1:
            self.entered.set()
            self.release.wait(timeout=30)
        return self.linear(x.flatten(1))


def test_a_single_prediction_is_answered_while_a_long_computation_is_in_flight():
    gate = _Gate()
    clf = _clf(gate)
    worker = threading.Thread(target=lambda: clf.logits(torch.zeros(4, 2, 3)))
    worker.start()
    assert gate.entered.wait(timeout=30)
    answered = threading.Thread(target=lambda: clf.logits(torch.zeros(2, 3)))
    answered.start()
    answered.join(timeout=10)
    still_waiting = answered.is_alive()
    gate.release.set()
    worker.join()
    answered.join()
    assert not still_waiting


def test_parameter_swaps_are_seen_by_the_next_call():
    net = _dropout_net().eval()
    clf = _clf(net)
    x = torch.rand(5, 2, 3) * 2 - 1
    reference = clf.logits(x)

    net[4].weight.data = -net[4].weight.data
    assert torch.allclose(clf.logits(x), net(x), atol=1e-6)
    assert not torch.allclose(clf.logits(x), reference)

    state = {k: v.clone() for k, v in _dropout_net().state_dict().items()}
    net.load_state_dict(state)
    assert torch.allclose(clf.logits(x), net(x), atol=1e-6)

    net[4] = nn.Linear(16, 3)
    net.eval()
    assert torch.allclose(clf.logits(x), net(x), atol=1e-6)


@pytest.mark.parametrize("edit", ["mul_", "vector_to_parameters", "data_assignment", "permute_in_place"])
def test_slice_cache_sees_edits_that_bypass_the_version_counter(edit):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    clf = _clf(net)
    plane = bw.Plane.through(torch.zeros(2, 3), torch.randn(2, 3), torch.randn(2, 3))
    before = bw.compute_slice(clf, plane, extent=1.0, resolution=16, method="dense")
    checksum = clf.state_checksum()
    with torch.no_grad():
        if edit == "mul_":
            net[3].weight.data.mul_(-1)
        elif edit == "vector_to_parameters":
            vector = nn.utils.parameters_to_vector(net.parameters())
            nn.utils.vector_to_parameters(vector.flip(0), net.parameters())
        elif edit == "data_assignment":
            net[1].weight.data = torch.randn(8, 6)
        else:
            net[1].weight.data.copy_(net[1].weight.data.flip(1).clone())
    assert clf.state_checksum() != checksum
    after = bw.compute_slice(clf, plane, extent=1.0, resolution=16, method="dense")
    fresh = bw.compute_slice(clf, plane, extent=1.0, resolution=16, method="dense", cache=False)
    assert after is not before
    np.testing.assert_array_equal(after.labels, fresh.labels)
    np.testing.assert_allclose(after.margin, fresh.margin)


def test_a_module_caching_a_tensor_in_forward_leaves_no_inference_tensor():
    class Caching(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(6, 3)
            self.last = None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.last = x
            return self.linear(x.flatten(1))

    net = Caching()
    clf = _clf(net)
    clf.logits(torch.zeros(3, 2, 3))
    assert net.last is None  # the view's attribute, not the user's
    net(torch.ones(2, 2, 3)).sum().backward()
    assert net.linear.weight.grad is not None


def test_unusable_modules_are_refused_and_left_unchanged():
    lazy = nn.Sequential(nn.Flatten(), nn.LazyLinear(3))
    before = (lazy.training, [p.requires_grad for p in lazy.parameters()])
    with pytest.raises(ValueError, match="lazy"):
        _clf(lazy)
    assert (lazy.training, [p.requires_grad for p in lazy.parameters()]) == before

    meta = nn.Sequential(nn.Flatten(), nn.Linear(6, 3, device="meta"))
    with pytest.raises(ValueError, match="meta"):
        _clf(meta)

    nan_net = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    with torch.no_grad():
        nan_net[1].bias.fill_(float("nan"))
    with pytest.raises(ValueError, match="non-finite"):
        _clf(nan_net)


def test_device_and_output_errors_name_their_argument():
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="`device`"):
            bw.Classifier(net, input_shape=(2, 3), device="cuda")
    with pytest.raises(ValueError, match="`device`"):
        bw.Classifier(net, input_shape=(2, 3), device="no-such-device")
    with pytest.raises(ValueError, match="`output`"):
        bw.Classifier(net, input_shape=(2, 3), output="nope")


def test_a_classifier_pickles_with_its_view_rebuilt():
    net = _dropout_net().eval()
    clf = _clf(net)
    x = torch.rand(4, 2, 3)
    copy = pickle.loads(pickle.dumps(clf))
    assert torch.equal(copy.logits(x), clf.logits(x))


def test_another_thread_never_sees_the_module_change_while_a_threaded_explorer_computes(digits):
    clf, data = digits
    net = clf.net
    net.train()
    before = model_state(net)
    explorer = bw.SliceExplorer(clf, data.split("test")[0][0], extent=3.0, resolution=256, method="dense")
    try:
        polls = changed = 0
        for seed in (5, 7, 9):
            explorer.v = {"kind": "random", "params": {"seed": seed}}
            while explorer.worker.busy:
                polls += 1
                changed += model_state(net) != before
        assert explorer.wait(60) and explorer.error is None
    finally:
        explorer.close()
        net.eval()
    assert polls > 10
    assert changed == 0
