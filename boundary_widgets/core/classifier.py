"""The classifier wrapper: owns input shape, bounds, normalisation, class names and device.

Over 500 lines on purpose: the eval view, the construction probes and the state checksum together keep
the promise that the user's module is never written; split apart, that promise has no one place to read.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from .validation import as_float_tensor, check_finite, check_positive_int

OutputSelector = Callable[[Any], torch.Tensor] | str | int | None


def _default_device(net: nn.Module) -> torch.device:
    for tensor in [*net.parameters(), *net.buffers()]:
        return tensor.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check_device(device: object) -> torch.device:
    if isinstance(device, bool) or not isinstance(device, str | int | torch.device):
        raise TypeError(f"`device` must be a str, an int or a torch.device; got {type(device).__name__}.")
    try:
        device = torch.device(device)
    except (TypeError, RuntimeError) as error:
        raise ValueError(f"`device` must name a torch device such as 'cpu' or 'cuda:0'; got {device!r}.") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` is {str(device)!r} but CUDA is not available here; use device='cpu' or None.")
    if device.type == "meta":
        raise ValueError("`device` must hold data; got 'meta'.")
    return device


def _check_materialised(net: nn.Module) -> None:
    """A module on the meta device or with uninitialised lazy parameters cannot be run without writing it;
    a quantized one gives no input gradients (attacks, directions and paths need them)."""
    for name, module in net.named_modules():
        if type(module).__module__.startswith(("torch.ao.nn.quantized", "torch.nn.quantized")):
            raise ValueError(
                f"`net` holds a quantized module ({name or 'net'}: {type(module).__name__}); quantized kernels give "
                "no gradients with respect to the input, which the kit's attacks and directions need: pass the "
                "float model."
            )
    for name, tensor in [*net.named_parameters(), *net.named_buffers()]:
        if isinstance(tensor, nn.parameter.UninitializedTensorMixin):
            raise ValueError(
                f"`net` has uninitialised lazy parameters ({name}); run one forward pass on a real input first."
            )
        if tensor.is_meta:
            raise ValueError(
                f"`net` has tensors on the 'meta' device ({name}), which hold no values; load its weights first "
                "(e.g. `net.to_empty(device='cpu')` then `load_state_dict`)."
            )


def _uncompiled(module: nn.Module) -> nn.Module:
    """The module a ``torch.compile`` wrapper (``OptimizedModule``) runs: its ``_orig_mod``.

    Recognised by name, so that importing the kit never imports ``torch._dynamo``.
    """
    while type(module).__name__ == "OptimizedModule" and isinstance(module._modules.get("_orig_mod"), nn.Module):
        module = module._modules["_orig_mod"]
    return module


def _rebound(value: Any, views: dict[int, nn.Module]) -> Any:
    """``value`` with every module of the tree it is bound to replaced by that module's view.

    Covers a ``forward`` (or any method) bound on the instance, and ``functools.partial`` wrappers
    of it such as accelerate-style hooks (``partial(new_forward, module)`` plus ``_old_forward``).
    """
    if isinstance(value, nn.Module):
        return views.get(id(value), value)
    if isinstance(value, types.MethodType) and id(value.__self__) in views:
        return types.MethodType(value.__func__, views[id(value.__self__)])
    if isinstance(value, functools.partial):
        func = _rebound(value.func, views)
        args = tuple(_rebound(arg, views) for arg in value.args)
        keywords = {key: _rebound(arg, views) for key, arg in value.keywords.items()}
        changed = func is not value.func or any(a is not b for a, b in zip(args, value.args, strict=True))
        if changed or any(keywords[key] is not arg for key, arg in value.keywords.items()):
            return functools.partial(func, *args, **keywords)
    return value


def _runs_its_view(forward: Any, view: nn.Module) -> bool:
    """Whether an instance ``forward`` of ``view`` (after :func:`_rebound`) runs the view, not the user's module."""
    if isinstance(forward, types.MethodType):
        return forward.__self__ is view
    if isinstance(forward, functools.partial):
        return any(arg is view for arg in forward.args) or _runs_its_view(forward.func, view)
    return False


class _Tree:
    """What building a view found: each module with its view, and the TorchScript modules (which have none)."""

    def __init__(self) -> None:
        self.pairs: list[tuple[nn.Module, nn.Module]] = []
        self.scripts: list[tuple[str, torch.jit.ScriptModule]] = []


def _view_tree(module: nn.Module, tree: _Tree, path: str) -> nn.Module:
    module = _uncompiled(module)
    if isinstance(module, torch.jit.ScriptModule):
        # TorchScript runs its own compiled code: it runs as it is, and is checked to be in eval mode.
        tree.scripts.append((path, module))
        return module
    view = module.__class__.__new__(module.__class__)
    for key, value in module.__dict__.items():
        view.__dict__[key] = value.copy() if isinstance(value, dict | set) else value
    view.__dict__["_modules"] = {
        name: None if child is None else _view_tree(child, tree, f"{path}.{name}")
        for name, child in module._modules.items()
    }
    view.__dict__["training"] = False
    tree.pairs.append((module, view))
    return view


def _trained_script_op(script: torch.jit.ScriptModule) -> str | None:
    """An operation of a TorchScript module that runs in training mode, or None.

    A trace records the mode as a constant (``batch_norm(..., training=True)``); a scripted module
    reads its ``training`` flags when it runs.
    """
    for name, module in script.named_modules():
        if module.training:
            return f"{name or 'the module'} has training=True"
    for node in script.inlined_graph.nodes():
        schema = node.schema()
        if schema == "(no schema)":
            continue
        for argument, value in zip(torch._C.parse_schema(schema).arguments, node.inputs(), strict=False):
            if argument.name in ("training", "train") and value.node().kind() == "prim::Constant" and value.toIValue():
                return f"its trace recorded {node.kind()}({argument.name}=True)"
    return None


def _eval_view(module: nn.Module) -> nn.Module:
    """A copy of the module tree in eval mode whose parameters and buffers are the module's own tensors.

    Only the tree is copied: every parameter and buffer is the same object, so in-place updates,
    ``p.data = ...`` and ``load_state_dict`` are seen at once. Dicts and sets of the module (hooks
    among them) are copied, so nothing done to the view (hooks, cached attributes, mode) reaches
    the user's module. A compiled module is seen through its original (``_orig_mod``); methods and
    partials bound on an instance (a monkeypatched ``forward``) are bound to the view. A TorchScript
    module has no view: it runs itself, and must be in eval mode. Raises ValueError (naming ``net``)
    for a module the view cannot run without writing it.
    """
    tree = _Tree()
    root = _view_tree(module, tree, "net")
    views = {id(original): view for original, view in tree.pairs}
    for original, view in tree.pairs:
        for key, value in view.__dict__.items():
            view.__dict__[key] = _rebound(value, views)
        forward = view.__dict__.get("forward")
        if forward is not None and not _runs_its_view(forward, view):
            if any(m.training for m in original.modules()):
                raise ValueError(
                    f"`net` ({type(view).__name__}) has a `forward` set on the instance that runs the module "
                    "itself, in training mode (BatchNorm statistics would be written, Dropout active): call "
                    "`net.eval()` first, or pass a module whose class defines `forward`."
                )
    for path, script in tree.scripts:
        trained = _trained_script_op(script)
        if trained is not None:
            raise ValueError(
                f"`net` is or holds a TorchScript module ({path}) that runs in training mode ({trained}): "
                "it would write its BatchNorm statistics and keep Dropout active. Call `net.eval()` before "
                "`torch.jit.script`/`torch.jit.trace` (and on the result), or pass the original module."
            )
    return root


CHECKSUM_BLOCK = 2**20


@functools.lru_cache(maxsize=8)
def _checksum_weights(device: torch.device) -> torch.Tensor:
    return torch.linspace(1.0, 2.0, CHECKSUM_BLOCK, device=device)


def _weighted_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i t_i`` with weights that differ between any two positions of the tensor."""
    flat = tensor.reshape(-1).float()
    weights = _checksum_weights(flat.device)
    blocks, tail = divmod(flat.numel(), CHECKSUM_BLOCK)
    total = flat[blocks * CHECKSUM_BLOCK :] @ weights[:tail]
    if blocks:
        per_block = flat[: blocks * CHECKSUM_BLOCK].view(blocks, CHECKSUM_BLOCK) @ weights
        total = total + per_block @ torch.arange(2, blocks + 2, device=flat.device, dtype=flat.dtype)
    return total


def _tree_signature(net: nn.Module) -> list[object]:
    """Every module with its mode and the values of its ``__dict__`` (the entries of its dicts: parameters,
    buffers, submodules, hooks): changes when the user swaps a tensor or submodule, sets an attribute,
    adds or removes a hook, or switches a mode. Holds the objects, so an identity cannot be reused."""
    signature: list[object] = []
    for module in net.modules():
        signature += [module, module.training]
        for key, value in module.__dict__.items():
            signature.append(key)
            if isinstance(value, dict):
                for item in value.items():
                    signature += item
            else:
                signature.append(value)
    return signature


def _same_signature(a: list[object], b: list[object]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _channel_stat(
    value: float | Sequence[float] | None, name: str, input_shape: tuple[int, ...]
) -> torch.Tensor | None:
    """Mean/std as a tensor broadcastable to the input: a scalar, or one value per channel."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a number or one number per channel; got {value!r}.")
    scalar = isinstance(value, int | float | np.number) or (isinstance(value, torch.Tensor) and value.ndim == 0)
    stat = as_float_tensor([float(value)] if scalar else value, name).flatten()
    check_finite(stat, name)
    if stat.numel() == 1:
        return stat.reshape((1,) * (len(input_shape) + 1))
    if len(input_shape) < 2 or stat.numel() != input_shape[0]:
        raise ValueError(
            f"`{name}` must be a scalar or have one value per channel ({input_shape[0]}); got {stat.numel()} values."
        )
    return stat.reshape(1, -1, *([1] * (len(input_shape) - 1)))


class Classifier:
    """A PyTorch classifier seen through its inputs in pixel space.

    Inputs live in ``bounds`` before normalisation; ``mean``/``std`` are applied inside, so
    directions, distances and planes are all measured in the *input* space (L2 units).

    The user's module is never written, from any thread: the classifier runs an eval-mode view
    of it (a copy of the module tree whose parameters and buffers are the user's own tensors),
    forwards under ``torch.no_grad()`` and takes gradients with respect to inputs only; the model
    gets a copy of every input, never the caller's tensor. Changes the user makes (parameters in
    place, ``p.data = ...``, ``load_state_dict``, swapped submodules, attributes set, hooks added or
    removed, modes switched) are seen by the next call. A ``device`` other than the module's own runs
    on a copy moved there, which does not see later changes to the user's module.

    Models people run: a ``torch.compile`` module runs as its original module (``_orig_mod``),
    uncompiled; a ``forward`` bound on the instance (monkeypatched, accelerate-style hooks) is bound
    to the view. A TorchScript module (``torch.jit.script``/``trace``) cannot have a view: it must be
    in eval mode and traced in eval mode, or it is refused (``net.eval()`` first, or pass the original
    module); its layers take no forward hooks, so :class:`FeatureSpace` needs the original module.
    A model that writes its own buffers inside ``forward`` (a running counter, a cache) still does:
    the kit cannot stop it. Construction runs a few probe forwards (batches of 2 and 1, and one input
    gradient) and refuses, naming ``net``: outputs that are not floating-point ``(N, classes)``
    logits, models that fail on a single image, quantized models and models without input gradients.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        input_shape: Sequence[int],
        bounds: tuple[float, float] = (0.0, 1.0),
        mean: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
        class_names: Sequence[str] | None = None,
        device: str | torch.device | None = None,
        output: OutputSelector = None,
    ) -> None:
        if not isinstance(net, nn.Module):
            raise TypeError(f"`net` must be a torch.nn.Module; got {type(net).__name__}.")
        if isinstance(input_shape, int | np.integer):
            input_shape = (int(input_shape),)
        if not isinstance(input_shape, Sequence) or not input_shape:
            raise TypeError(f"`input_shape` must be a non-empty tuple of ints; got {input_shape!r}.")
        self.input_shape = tuple(check_positive_int(n, "input_shape") for n in input_shape)
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError) as error:
            raise TypeError(f"`bounds` must be a pair of numbers (low, high); got {bounds!r}.") from error
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"`bounds` must be finite with low < high; got {bounds!r}.")
        self.bounds = (low, high)
        self._mean = _channel_stat(mean, "mean", self.input_shape)
        self._std = _channel_stat(std, "std", self.input_shape)
        if self._std is not None and bool((self._std <= 0).any()):
            raise ValueError(f"`std` must be > 0; got {std!r}.")
        if output is not None and not (callable(output) or isinstance(output, str | int)):
            raise TypeError(f"`output` must be a callable, a key, an index or None; got {type(output).__name__}.")
        self._output = output
        net = _uncompiled(net)
        _check_materialised(net)
        own_device = _default_device(net)
        self.device = _check_device(device) if device is not None else own_device
        # Running on another device than the user's module means working on a copy:
        # moving their module would change it.
        self.net = net if self.device == own_device else copy.deepcopy(net).to(self.device)
        self._lock = threading.Lock()
        self._view: nn.Module | None = None
        self._view_signature: list[object] = []
        self._pinned = threading.local()
        if self._mean is not None:
            self._mean = self._mean.to(self.device)
        if self._std is not None:
            self._std = self._std.to(self.device)
        self.num_classes = self._probe_num_classes()
        if class_names is None:
            class_names = [str(k) for k in range(self.num_classes)]
        class_names = [str(name) for name in class_names]
        if len(class_names) != self.num_classes:
            raise ValueError(
                f"`class_names` must have one name per class ({self.num_classes}); got {len(class_names)}."
            )
        self.class_names = tuple(class_names)

    def __repr__(self) -> str:
        return (
            f"Classifier({type(self.net).__name__}, input_shape={self.input_shape}, bounds={self.bounds}, "
            f"classes={self.num_classes}, device={self.device})"
        )

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.input_shape))

    def settings(self) -> dict[str, Any]:
        """The keyword arguments that build this classifier again over its module, on any device.

        ``Classifier(clf.net, device=..., **clf.settings())``: ``input_shape``, ``bounds``, ``mean`` and
        ``std`` (lists of floats, or None), ``class_names`` and ``output``.
        """

        def stat(value: torch.Tensor | None) -> list[float] | None:
            return None if value is None else value.detach().cpu().flatten().tolist()

        return {
            "input_shape": self.input_shape,
            "bounds": self.bounds,
            "mean": stat(self._mean),
            "std": stat(self._std),
            "class_names": self.class_names,
            "output": self._output,
        }

    def eval_view(self) -> nn.Module:
        """The eval-mode view of the user's module that forwards run (see the class docstring).

        Rebuilt when the user's module tree changes (a submodule, parameter, buffer, attribute or
        hook swapped, added or removed, a mode switched); within an :meth:`evaluating` block the
        view of the block's start is used throughout. Raises ValueError for a module it cannot run
        without writing it (see the class docstring).
        """
        pinned = getattr(self._pinned, "view", None)
        if pinned is not None:
            return pinned
        signature = _tree_signature(self.net)
        with self._lock:
            if self._view is None or not _same_signature(signature, self._view_signature):
                self._view = _eval_view(self.net)
                self._view_signature = signature
            return self._view

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[nn.Module]:
        """One consistent view of the module for a block of forwards (e.g. the steps of one attack).

        Nothing on the user's module changes; the block only saves re-checking the module tree at
        every forward. Re-entrant, and per thread: other threads are not held up.
        """
        outer = getattr(self._pinned, "view", None)
        view = outer if outer is not None else self.eval_view()
        self._pinned.view = view
        try:
            yield view
        finally:
            self._pinned.view = outer

    def state_checksum(self) -> tuple[float, ...]:
        """A cheap fingerprint of the values of every parameter and buffer, computed on their device.

        Per tensor, a position-weighted sum: in-place edits that bypass the version counter
        (``p.data.mul_(-1)``, ``vector_to_parameters``, a permutation) and ``p.data = new`` change
        it, unlike ``Tensor._version``. One matrix-vector product per tensor against a fixed weight
        vector of at most ``CHECKSUM_BLOCK`` entries (float32, cached per device): about the cost of
        reading the weights once. Used to key caches of results that depend on the model.
        """
        tensors = [t for t in (*self.net.parameters(), *self.net.buffers()) if t.numel() > 0]
        if not tensors:
            return ()
        with torch.no_grad():
            sums = [_weighted_sum(t.detach()).to(self.device) for t in tensors]
            return tuple(torch.stack(sums).tolist())

    def with_module(self, net: nn.Module) -> Classifier:
        """A classifier over another module with this one's input space, normalisation and class names.

        For a copy of the module (e.g. one being trained): it must take the same inputs and give
        the same number of classes.
        """
        if not isinstance(net, nn.Module):
            raise TypeError(f"`net` must be a torch.nn.Module; got {type(net).__name__}.")
        net = _uncompiled(net)
        _check_materialised(net)
        state = self.__getstate__()
        state.pop("_bytes_per_sample", None)
        state["net"] = net
        other = Classifier.__new__(Classifier)
        other.__setstate__(state)
        if other._probe_num_classes() != self.num_classes:
            raise ValueError(f"`net` must give {self.num_classes} classes like the classifier's own module.")
        return other

    def __getstate__(self) -> dict[str, Any]:
        # Locks, thread-local pins and the view are per process: a pickled classifier (e.g. sent to
        # a Dask worker) rebuilds them.
        state = self.__dict__.copy()
        for key in ("_lock", "_pinned", "_view", "_view_signature"):
            state.pop(key)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._pinned = threading.local()
        self._view = None
        self._view_signature = []

    def select_logits(self, output: Any) -> torch.Tensor:
        """The logits in the module's raw output, as ``output=`` picks them."""
        if self._output is None:
            return output
        if callable(self._output):
            return self._output(output)
        if isinstance(output, torch.Tensor) and isinstance(self._output, str):
            raise TypeError(f"`output={self._output!r}` is a key, but the model returns a tensor.")
        if isinstance(output, dict) or hasattr(output, "__getitem__"):
            return output[self._output]
        raise TypeError(f"`output={self._output!r}` cannot select logits from {type(output).__name__}.")

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel-space inputs as the network sees them: ``(x - mean) / std``, always a new tensor (a model
        editing its input in place never reaches the caller's ``x``)."""
        if self._mean is None and self._std is None:
            return x.clone()
        z = x
        if self._mean is not None:
            z = z - self._mean
        if self._std is not None:
            z = z / self._std
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch in pixel space, run by the eval view; differentiable with respect to ``x``.

        Take input gradients with ``torch.autograd.grad(..., x)`` under ``torch.enable_grad()``;
        nothing accumulates in the user's ``.grad``.
        """
        return self.select_logits(self.eval_view()(self.normalise(x)))

    def _probe_num_classes(self) -> int:
        """Runs the model on mid-grey batches of 2 (with an input gradient) and of 1, before anything else."""
        low, high = self.bounds
        probe = torch.full((2, *self.input_shape), (low + high) / 2, device=self.device, requires_grad=True)
        with self.evaluating(), torch.enable_grad():
            out = self._probe_logits(probe)
            if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2 or out.shape[1] < 2:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(
                    f"`net` must return logits of shape (N, classes) with classes >= 2 (use `output=` to pick them "
                    f"from a tuple or dict); got {shape} for N=2."
                )
            if not out.is_floating_point():
                raise ValueError(f"`net` must return floating-point logits; got {out.dtype}.")
            if not bool(torch.isfinite(out).all()):
                raise ValueError(
                    "`net` returns non-finite logits (NaN or inf) on a mid-grey input; check its weights and "
                    "`mean`/`std`."
                )
            gradient = None
            if out.requires_grad:
                (gradient,) = torch.autograd.grad(out.sum(), probe, allow_unused=True)
            if gradient is None:
                raise ValueError(
                    "`net` must be differentiable with respect to its input (attacks, directions and paths need "
                    "input gradients); its logits do not depend on the input through autograd (detached, or "
                    "computed outside torch)."
                )
        with self.evaluating(), torch.no_grad():
            single = self._probe_logits(probe[:1].detach())
        if not isinstance(single, torch.Tensor) or tuple(single.shape) != (1, out.shape[1]):
            shape = tuple(single.shape) if isinstance(single, torch.Tensor) else type(single).__name__
            raise ValueError(
                f"`net` must classify a batch of one image (the kit classifies single images); got logits of shape "
                f"{shape} for N=1 instead of (1, {out.shape[1]})."
            )
        return int(out.shape[1])

    def _probe_logits(self, probe: torch.Tensor) -> Any:
        try:
            raw = self.eval_view()(self.normalise(probe))
        except Exception as error:
            one = (
                ""
                if probe.shape[0] > 1
                else " (it runs on a batch of 2 but not of 1: the kit classifies single images)"
            )
            raise ValueError(
                f"`net` could not be run on inputs of `input_shape` {self.input_shape}{one}: {error}"
            ) from error
        try:
            return self.select_logits(raw)
        except Exception as error:
            raise ValueError(
                f"`output` {self._output!r} could not select the logits from the model's output "
                f"({type(raw).__name__}): {error!r}"
            ) from error

    def check_inputs(
        self, x: object, name: str = "x", *, batched: bool | None = None, in_bounds: bool = False
    ) -> torch.Tensor:
        """A float32 batch ``(N, *input_shape)`` on the device from one sample or a batch.

        ``batched=None`` accepts both; ``False`` requires exactly one sample, ``True`` a batch.
        ``in_bounds=True`` also requires the values to lie within the bounds (images a user hands
        in); points of a plane may leave them.
        """
        tensor = as_float_tensor(x, name)
        shape = tuple(tensor.shape)
        if shape == self.input_shape and batched is not True:
            tensor = tensor.unsqueeze(0)
        elif not (shape[1:] == self.input_shape and batched is not False):
            expected = {None: "{s} or (N, *{s})", False: "{s}", True: "(N, *{s})"}[batched]
            raise ValueError(f"`{name}` must have shape {expected.format(s=self.input_shape)}; got {shape}.")
        check_finite(tensor, name)
        low, high = self.bounds
        tol = 1e-4 * (high - low)
        if in_bounds and bool((tensor < low - tol).any() or (tensor > high + tol).any()):
            raise ValueError(
                f"`{name}` must lie within the classifier's bounds {self.bounds} (pixel space, before "
                f"normalisation); got values in [{tensor.min().item():.4g}, {tensor.max().item():.4g}]."
            )
        return tensor.to(self.device)

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(*self.bounds)

    def logits(self, x: object, *, batch_size: int = 1024) -> torch.Tensor:
        """Logits ``(N, classes)`` (or ``(classes,)`` for one sample), computed in batches."""
        batch = self.check_inputs(x)
        single = as_float_tensor(x, "x").shape == self.input_shape
        check_positive_int(batch_size, "batch_size")
        with self.evaluating(), torch.no_grad():
            out = torch.cat([self.forward(chunk) for chunk in batch.split(batch_size)]).float()
        return out[0] if single else out

    def probabilities(self, x: object, *, batch_size: int = 1024) -> torch.Tensor:
        return torch.softmax(self.logits(x, batch_size=batch_size), dim=-1)

    def predict(self, x: object, *, batch_size: int = 1024) -> torch.Tensor:
        return self.logits(x, batch_size=batch_size).argmax(dim=-1)

    def bytes_per_sample(self) -> int:
        """Memory one input needs in a forward pass: its pixels plus the output of every operation the model runs.

        Measured once on a single forward pass by a dispatch mode that sees each operation (of Python
        modules, TorchScript and functional code alike; views and in-place results allocate nothing);
        used to size chunks to a memory budget.
        """
        if not hasattr(self, "_bytes_per_sample"):
            low, high = self.bounds
            probe = torch.full((1, *self.input_shape), (low + high) / 2, device=self.device)
            allocations = _Allocations()
            with self.evaluating(), torch.no_grad(), allocations:
                self.forward(probe)
            self._bytes_per_sample = self.input_dim * 4 + allocations.bytes
        return self._bytes_per_sample


class _Allocations(TorchDispatchMode):
    """Counts the bytes of the tensors that operations allocate (not views, not in-place results)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Nothing under this mode is compiled: without this, torch wraps __torch_dispatch__ in
        # torch._dynamo.disable, whose first call imports dynamo and sympy (~75 MiB held for good).
        return False

    def __torch_dispatch__(self, func: Any, _types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if not func.is_view and all(r.alias_info is None for r in func._schema.returns):
            for tensor in out if isinstance(out, tuple | list) else (out,):
                if isinstance(tensor, torch.Tensor):
                    self.bytes += tensor.numel() * tensor.element_size()
        return out


__all__ = [
    "CHECKSUM_BLOCK",
    "Classifier",
    "OutputSelector",
]
