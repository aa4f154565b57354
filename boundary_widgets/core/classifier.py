"""The classifier wrapper: owns input shape, bounds, normalisation, class names and device."""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .validation import as_float_tensor, check_finite, check_positive_int

OutputSelector = Callable[[Any], torch.Tensor] | str | int | None


def _default_device(net: nn.Module) -> torch.device:
    for tensor in [*net.parameters(), *net.buffers()]:
        return tensor.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _channel_stat(
    value: float | Sequence[float] | None, name: str, input_shape: tuple[int, ...]
) -> torch.Tensor | None:
    """Mean/std as a tensor broadcastable to the input: a scalar, or one value per channel."""
    if value is None:
        return None
    stat = as_float_tensor(value if not isinstance(value, int | float) else [value], name).flatten()
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
    The wrapped module is put in eval mode and its parameters' ``requires_grad`` switched off
    only for the duration of a call; both are restored afterwards, also when the call raises.
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
        own_device = _default_device(net)
        self.device = torch.device(device) if device is not None else own_device
        # Running on another device than the user's module means working on a copy:
        # moving their module would change it.
        self.net = net if self.device == own_device else copy.deepcopy(net).to(self.device)
        self._lock = threading.RLock()
        self._depth = 0
        self._saved_state: tuple[list[nn.Module], list[nn.Parameter]] | None = None
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

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode and frozen parameters for the block; the module's own state comes back after.

        Re-entrant and serialised by a lock, so nested calls and a widget's worker thread
        restore the state exactly once, at the outermost exit.
        """
        with self._lock:
            if self._depth == 0:
                # Only what must change is touched (and restored): this runs once per forward chunk.
                training = [m for m in self.net.modules() if m.training]
                grad_params = [p for p in self.net.parameters() if p.requires_grad]
                self._saved_state = (training, grad_params)
                for module in training:
                    module.training = False
                for param in grad_params:
                    param.requires_grad_(False)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    training, grad_params = self._saved_state
                    for module in training:
                        module.training = True
                    for param in grad_params:
                        param.requires_grad_(True)
                    self._saved_state = None

    def _select_logits(self, output: Any) -> torch.Tensor:
        if self._output is None:
            return output
        if callable(self._output):
            return self._output(output)
        if isinstance(output, dict) or hasattr(output, "__getitem__"):
            return output[self._output]
        raise TypeError(f"`output={self._output!r}` cannot select logits from {type(output).__name__}.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable logits of a batch in pixel space; call inside :meth:`evaluating`."""
        z = x
        if self._mean is not None:
            z = z - self._mean
        if self._std is not None:
            z = z / self._std
        return self._select_logits(self.net(z))

    def _probe_num_classes(self) -> int:
        low, high = self.bounds
        probe = torch.full((2, *self.input_shape), (low + high) / 2, device=self.device)
        with self.evaluating(), torch.inference_mode():
            try:
                out = self.forward(probe)
            except Exception as error:
                raise ValueError(
                    f"`net` could not be run on inputs of `input_shape` {self.input_shape}: {error}"
                ) from error
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2 or out.shape[1] < 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"`net` must return logits of shape (N, classes) with classes >= 2 (use `output=` to pick them "
                f"from a tuple or dict); got {shape} for N=2."
            )
        return int(out.shape[1])

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
        with self.evaluating(), torch.inference_mode():
            out = torch.cat([self.forward(chunk) for chunk in batch.split(batch_size)]).float()
        return out[0] if single else out

    def probabilities(self, x: object, *, batch_size: int = 1024) -> torch.Tensor:
        return torch.softmax(self.logits(x, batch_size=batch_size), dim=-1)

    def predict(self, x: object, *, batch_size: int = 1024) -> torch.Tensor:
        return self.logits(x, batch_size=batch_size).argmax(dim=-1)

    def bytes_per_sample(self) -> int:
        """Memory one input needs in a forward pass: its pixels plus every leaf module's output.

        Measured once by hooks on a single forward pass; used to size chunks to a memory budget.
        """
        if not hasattr(self, "_bytes_per_sample"):
            total = [self.input_dim * 4]

            def count(_module: nn.Module, _inputs: object, output: object) -> None:
                if isinstance(output, torch.Tensor):
                    total[0] += output.numel() * output.element_size()

            leaves = [m for m in self.net.modules() if not list(m.children())]
            hooks = [m.register_forward_hook(count) for m in leaves]
            try:
                low, high = self.bounds
                probe = torch.full((1, *self.input_shape), (low + high) / 2, device=self.device)
                with self.evaluating(), torch.inference_mode():
                    self.forward(probe)
            finally:
                for hook in hooks:
                    hook.remove()
            self._bytes_per_sample = int(total[0])
        return self._bytes_per_sample
