"""The network as a graph of bounded operators: traced with ``torch.fx``, checked before any work.

Every node of the traced graph is either computed on constants (shapes, parameters) as torch would,
or maps the :class:`~.Bounds` of its input to bounds of its output. A node whose operator has
no bound here is refused when the graph is built, with the operator's name.

Over 500 lines on purpose: every operator's bound rule, in module and functional form, sits beside the
one dispatch that looks them up, so a supported operator and its refusal are read in one place.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .affine import (
    Bounds,
    Lines,
    clamp,
    gelu_lines,
    relaxed,
    relu,
    sigmoid_lines,
    silu_lines,
    softplus_lines,
    tanh_lines,
)


class UnsupportedModelError(ValueError):
    """The model has an operator without a bound here, or ``torch.fx`` cannot trace it."""


# ---------------------------------------------------------------------------------------------
# Modules


def _linear(module: nn.Linear, x: Bounds) -> Bounds:
    weight = module.weight
    return x.affine(lambda t: F.linear(t, weight), lambda t: F.linear(t, weight.abs()), module.bias)


def _channel_offset(value: torch.Tensor | None, features: int) -> torch.Tensor | None:
    """A per-channel vector shaped to broadcast over ``(C, *spatial)``."""
    return None if value is None else value.view(-1, *([1] * (features - 1)))


def _conv(module: nn.modules.conv._ConvNd, x: Bounds) -> Bounds:
    weight = module.weight
    return x.affine(
        lambda t: module._conv_forward(t, weight, None),
        lambda t: module._conv_forward(t, weight.abs(), None),
        _channel_offset(module.bias, x.mid.ndim - 1),
    )


def _batch_norm(module: nn.modules.batchnorm._BatchNorm, x: Bounds) -> Bounds:
    scale = torch.rsqrt(module.running_var + module.eps)
    shift = -module.running_mean * scale
    if module.weight is not None:
        scale, shift = scale * module.weight, shift * module.weight
    if module.bias is not None:
        shift = shift + module.bias
    features = x.mid.ndim - 1
    scale, shift = _channel_offset(scale, features), _channel_offset(shift, features)
    return x.affine(lambda t: t * scale, lambda t: t * scale.abs(), shift)


def _max_pool(module: nn.MaxPool1d | nn.MaxPool2d, x: Bounds) -> Bounds:
    """The maximum over windows (overlapping or not) of a tensor ``(3N, C, *spatial)``, window by window.

    Below: the member whose lower bound is highest (the maximum is at least that member). Above: the member
    whose upper bound is highest when its lower bound beats every other member's upper bound (then it *is*
    the maximum), else the constant highest upper bound of the window. Padding members are ``-inf``.
    """
    one_d = isinstance(module, nn.MaxPool1d)
    # A 1-D pooling is a 2-D one over windows of height 1 (no padding along the height).
    kernel, stride, padding, dilation = (
        (neutral, v if isinstance(v, int) else v[0]) if one_d else _pair(v)
        for v, neutral in (
            (module.kernel_size, 1),
            (module.stride or module.kernel_size, 1),
            (module.padding, 0),
            (module.dilation, 1),
        )
    )

    lo, hi = x.interval()  # (N, C, *spatial)
    if one_d:
        lo, hi = lo.unsqueeze(-2), hi.unsqueeze(-2)
    n, channels, height, width = lo.shape
    if all(s >= (k - 1) * d + 1 for k, s, d in zip(kernel, stride, dilation, strict=True)):
        best_low, best_high, highest, dominated = _disjoint_window_members(lo, hi, kernel, stride, padding, dilation)
    else:
        best_low, best_high, highest, dominated = _window_members(lo, hi, kernel, stride, padding, dilation)
    out_shape = highest.shape[2:]

    def gather(tensor: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """``(3N, C, H, W)`` at each window's member (its flat input ``position``) -> ``(3, N, C, Ho * Wo)``."""
        flat = x.split(tensor).reshape(3, n, channels, height * width)
        return flat.gather(-1, position.reshape(1, n, channels, -1).expand(3, -1, -1, -1))

    mid = x.mid.unsqueeze(-2) if one_d else x.mid
    rad = None if x.rad is None else x.rad.unsqueeze(-2) if one_d else x.rad
    new_lower, top = gather(mid, best_low), gather(mid, best_high)
    if rad is not None:
        new_lower, top = new_lower - gather(rad, best_low), top + gather(rad, best_high)
    constant = torch.zeros_like(top)
    constant[0] = highest.reshape(n, channels, -1)
    new_upper = torch.where(dominated.reshape(1, n, channels, -1), top, constant)
    shape = (n * 3, channels, *out_shape) if not one_d else (n * 3, channels, out_shape[1])
    return Bounds(((new_upper + new_lower) / 2).reshape(shape), ((new_upper - new_lower) / 2).reshape(shape))


Members = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _disjoint_window_members(
    lo: torch.Tensor, hi: torch.Tensor, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> Members:
    """Windows that share no member (stride at least the window's span): each ``(N, C, Ho, Wo)``, the flat input
    position of the member of highest lower bound and of the member of highest upper bound, that upper bound,
    and whether that member's lower bound is at least every other member's upper bound. Found by torch's
    max-pooling: as each position is in one window at most, hiding every window's top member leaves its runner-up.
    """
    pool = lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, return_indices=True)  # noqa: E731
    best_low = pool(lo)[1]
    highest, best_high = pool(hi)
    runner_up = pool(hi.flatten(2).scatter(-1, best_high.flatten(2), float("-inf")).view_as(hi))[0]
    dominated = lo.flatten(2).gather(-1, best_high.flatten(2)).view_as(runner_up) >= runner_up
    return best_low, best_high, highest, dominated


def _window_members(
    lo: torch.Tensor, hi: torch.Tensor, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple
) -> Members:
    """:func:`_disjoint_window_members` for any windows (overlapping ones too), window by window."""

    def windows(tensor: torch.Tensor, pad_value: float) -> torch.Tensor:
        """``(..., H, W)`` -> ``(..., Ho, Wo, K)``: the ``K`` members of every window, last."""
        tensor = F.pad(tensor, (padding[1], padding[1], padding[0], padding[0]), value=pad_value)
        for k, s, d in zip(kernel, stride, dilation, strict=True):
            tensor = tensor.unfold(tensor.ndim - 2, (k - 1) * d + 1, s)[..., ::d]  # H, then W
        return tensor.reshape(*tensor.shape[:-2], kernel[0] * kernel[1])

    height, width = lo.shape[2:]
    lo_w, hi_w = windows(lo, float("-inf")), windows(hi, float("-inf"))  # (N, C, Ho, Wo, K)
    positions = torch.arange(height * width, dtype=lo.dtype, device=lo.device).view(1, 1, height, width)
    positions = windows(positions, -1.0).long().expand_as(lo_w)  # each member's flat input position
    at = lambda w, index: w.gather(-1, index.unsqueeze(-1))[..., 0]  # noqa: E731
    best_low = lo_w.argmax(dim=-1)
    if lo_w.shape[-1] > 1:
        top2 = hi_w.topk(2, dim=-1)
        best_high, highest = top2.indices[..., 0], top2.values[..., 0]
        dominated = at(lo_w, best_high) >= top2.values[..., 1]
    else:
        best_high, highest, dominated = best_low, hi_w[..., 0], torch.ones_like(best_low, dtype=torch.bool)
    return at(positions, best_low), at(positions, best_high), highest, dominated


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def _nonnegative_linear(module: nn.Module, x: Bounds) -> Bounds:
    """Pooling by averages, reshapes, identity: linear with non-negative weights, applied to both parts."""
    return x.map(module)


def _activation(lines: Callable[[nn.Module], Callable[[torch.Tensor, torch.Tensor], Lines]]):
    return lambda module, x: relaxed(x, lines(module))


def _clamp_module(module: nn.Hardtanh, x: Bounds) -> Bounds:
    return clamp(x, module.min_val, module.max_val)


MODULE_BOUNDS: dict[type[nn.Module], Callable[[Any, Bounds], Bounds]] = {
    nn.Linear: _linear,
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.ReLU: lambda module, x: relu(x),
    nn.LeakyReLU: lambda module, x: relu(x, module.negative_slope),
    nn.ReLU6: _clamp_module,
    nn.Hardtanh: _clamp_module,
    nn.Softplus: _activation(lambda m: lambda lo, hi: softplus_lines(lo, hi, m.beta, m.threshold)),
    nn.Tanh: _activation(lambda m: tanh_lines),
    nn.Sigmoid: _activation(lambda m: sigmoid_lines),
    nn.SiLU: _activation(lambda m: silu_lines),
    nn.GELU: _activation(lambda m: lambda lo, hi: gelu_lines(lo, hi, m.approximate)),
    nn.MaxPool1d: _max_pool,
    nn.MaxPool2d: _max_pool,
    nn.AvgPool1d: _nonnegative_linear,
    nn.AvgPool2d: _nonnegative_linear,
    nn.AdaptiveAvgPool1d: _nonnegative_linear,
    nn.AdaptiveAvgPool2d: _nonnegative_linear,
    nn.Flatten: _nonnegative_linear,
    nn.Unflatten: _nonnegative_linear,
    nn.Identity: _nonnegative_linear,
    nn.Dropout: lambda module, x: x,  # the identity in eval mode
    nn.Dropout1d: lambda module, x: x,
    nn.Dropout2d: lambda module, x: x,
}


def _module_refusal(module: nn.Module) -> str | None:
    """Why a module of a supported type still cannot be bounded, or None."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is None:
        return "BatchNorm without running statistics (track_running_stats=False) normalises by batch statistics"
    if isinstance(module, nn.MaxPool1d | nn.MaxPool2d) and (module.ceil_mode or module.return_indices):
        return "MaxPool with ceil_mode=True or return_indices=True"
    if isinstance(module, nn.LeakyReLU) and module.negative_slope > 1:
        return "LeakyReLU with negative_slope > 1 (not convex)"
    if isinstance(module, nn.GELU) and module.approximate not in ("none", "tanh"):
        return f"GELU(approximate={module.approximate!r})"
    return None


# ---------------------------------------------------------------------------------------------
# Functions and methods


def _is_bounds(value: object) -> bool:
    return isinstance(value, Bounds)


def _check_feature_dim(dim: int, name: str) -> None:
    if dim == 0:
        raise UnsupportedModelError(f"`{name}` over the batch dimension (dim 0) has no bound here.")


def _add(a: object, b: object) -> Bounds:
    if _is_bounds(a) and _is_bounds(b):
        return a + b
    bounds, constant = (a, b) if _is_bounds(a) else (b, a)
    return bounds.shift(torch.as_tensor(constant, dtype=bounds.mid.dtype, device=bounds.mid.device))


def _sub(a: object, b: object) -> Bounds:
    if _is_bounds(b):
        return _add(a, -b)
    return a.shift(-torch.as_tensor(b, dtype=a.mid.dtype, device=a.mid.device))


def _mul(a: object, b: object) -> Bounds:
    if _is_bounds(a) and _is_bounds(b):
        raise UnsupportedModelError("the product of two bounded tensors (`x * y`) has no bound here.")
    bounds, constant = (a, b) if _is_bounds(a) else (b, a)
    return bounds.scale(constant)


def _div(a: Bounds, b: object) -> Bounds:
    if _is_bounds(b):
        raise UnsupportedModelError("division by a bounded tensor has no bound here.")
    return a.scale(1 / torch.as_tensor(b, dtype=a.mid.dtype))


def _cat(tensors: list | tuple, dim: int = 0) -> Bounds:
    _check_feature_dim(dim, "cat")
    if not all(_is_bounds(t) for t in tensors):
        raise UnsupportedModelError("`cat` of a bounded tensor with a constant one has no bound here.")
    mid = torch.cat([t.mid for t in tensors], dim)
    if all(t.rad is None for t in tensors):
        return Bounds(mid, None)
    return Bounds(mid, torch.cat([torch.zeros_like(t.mid) if t.rad is None else t.rad for t in tensors], dim))


def _flatten(x: Bounds, start_dim: int = 0, end_dim: int = -1) -> Bounds:
    _check_feature_dim(start_dim, "flatten")
    return x.map(lambda t: torch.flatten(t, start_dim, end_dim))


def _getitem(x: Bounds, index: object) -> Bounds:
    first = index[0] if isinstance(index, tuple) and index else index
    if not (isinstance(first, slice) and first == slice(None)):
        raise UnsupportedModelError("indexing a bounded tensor must keep the batch dimension (`x[:, ...]`).")
    return x.map(lambda t: t[index])


def _reduce(name: str) -> Callable[..., Bounds]:
    def reduce(x: Bounds, dim: object = None, keepdim: bool = False) -> Bounds:
        dims = dim if isinstance(dim, tuple | list) else (dim,)
        if dim is None or any(d == 0 or d == -x.mid.ndim for d in dims):
            raise UnsupportedModelError(f"`{name}` over the batch dimension has no bound here.")
        return x.map(lambda t: getattr(torch, name)(t, dim, keepdim=keepdim))

    return reduce


def _shape_method(name: str) -> Callable[..., Bounds]:
    def apply(x: Bounds, *args: object, **kwargs: object) -> Bounds:
        return x.map(lambda t: getattr(t, name)(*args, **kwargs))

    return apply


def _functional(lines: Callable[..., Lines]) -> Callable[..., Bounds]:
    return lambda x, *args, **kwargs: relaxed(x, lambda lo, hi: lines(lo, hi, *args, **kwargs))


def _functional_relu(x: Bounds, inplace: bool = False) -> Bounds:
    return relu(x)


def _functional_leaky_relu(x: Bounds, negative_slope: float = 0.01, inplace: bool = False) -> Bounds:
    return relu(x, negative_slope)


def _functional_linear(x: Bounds, weight: torch.Tensor, bias: torch.Tensor | None = None) -> Bounds:
    return x.affine(lambda t: F.linear(t, weight), lambda t: F.linear(t, weight.abs()), bias)


def _functional_pool(pool: Callable) -> Callable[..., Bounds]:
    return lambda x, *args, **kwargs: x.map(lambda t: pool(t, *args, **kwargs))


def _functional_max_pool2d(
    x: Bounds, kernel_size: object, stride: object = None, padding: object = 0, **kwargs
) -> Bounds:
    module = nn.MaxPool2d(kernel_size, stride, padding, **kwargs)
    if _module_refusal(module):
        raise UnsupportedModelError(f"{_module_refusal(module)} has no bound here.")
    return _max_pool(module, x)


FUNCTION_BOUNDS: dict[object, Callable[..., Bounds]] = {
    operator.add: _add,
    operator.iadd: _add,
    torch.add: _add,
    operator.sub: _sub,
    operator.isub: _sub,
    torch.sub: _sub,
    operator.mul: _mul,
    operator.imul: _mul,
    torch.mul: _mul,
    operator.truediv: _div,
    operator.neg: lambda x: -x,
    operator.getitem: _getitem,
    torch.zeros_like: lambda x, **kwargs: Bounds(torch.zeros_like(x.mid), None),  # zero: exact bounds
    torch.cat: _cat,
    torch.concat: _cat,
    torch.flatten: _flatten,
    torch.relu: _functional_relu,
    F.relu: _functional_relu,
    F.leaky_relu: _functional_leaky_relu,
    torch.tanh: _functional(tanh_lines),
    F.tanh: _functional(tanh_lines),
    torch.sigmoid: _functional(sigmoid_lines),
    F.sigmoid: _functional(sigmoid_lines),
    F.silu: lambda x, inplace=False: relaxed(x, silu_lines),
    F.gelu: lambda x, approximate="none": relaxed(x, lambda lo, hi: gelu_lines(lo, hi, approximate)),
    F.softplus: lambda x, beta=1.0, threshold=20.0: relaxed(x, lambda lo, hi: softplus_lines(lo, hi, beta, threshold)),
    F.linear: _functional_linear,
    F.max_pool2d: _functional_max_pool2d,
    F.avg_pool1d: _functional_pool(F.avg_pool1d),
    F.avg_pool2d: _functional_pool(F.avg_pool2d),
    F.adaptive_avg_pool1d: _functional_pool(F.adaptive_avg_pool1d),
    F.adaptive_avg_pool2d: _functional_pool(F.adaptive_avg_pool2d),
    torch.reshape: _shape_method("reshape"),
    torch.mean: _reduce("mean"),
    torch.sum: _reduce("sum"),
}

METHOD_BOUNDS: dict[str, Callable[..., Bounds]] = {
    "view": _shape_method("view"),
    "reshape": _shape_method("reshape"),
    "flatten": _flatten,
    "contiguous": lambda x, *args, **kwargs: x,
    "permute": _shape_method("permute"),
    "unsqueeze": _shape_method("unsqueeze"),
    "mean": _reduce("mean"),
    "sum": _reduce("sum"),
    "relu": _functional_relu,
    "relu_": _functional_relu,
    "sigmoid": _functional(sigmoid_lines),
    "tanh": _functional(tanh_lines),
    "add": _add,
    "add_": _add,
    "sub": _sub,
    "mul": _mul,
    "div": _div,
}


def _shape_of(x: Bounds, *args: object) -> object:
    """``x.size(...)``/``x.shape`` as the network would see them: the batch dimension counts rows (3 per box)."""
    return x.mid.size(*args)


# ---------------------------------------------------------------------------------------------
# The program


def _describe(node: fx.Node, module: nn.Module | None = None) -> str:
    if node.op == "call_module":
        return f"module `{node.target}` ({type(module).__name__})"
    if node.op == "call_method":
        return f"method `.{node.target}()`"
    return f"function `{getattr(node.target, '__name__', node.target)}`"


@dataclass(frozen=True)
class Program:
    """The traced network, each node checked to have a bound; run on :class:`Bounds` by :meth:`run`."""

    graph: fx.Graph
    modules: dict[str, nn.Module]
    attributes: dict[str, Any]
    head: fx.Node | None  # the last Linear, folded into logit differences by the caller; None if there is none

    @classmethod
    def trace(cls, net: nn.Module) -> Program:
        """Trace ``net`` (an eval view: nothing is written to it) and check every node before any work."""
        try:
            graph = fx.Tracer().trace(net)
        except Exception as error:  # fx raises many kinds (TraceError, TypeError on data-dependent control flow)
            raise UnsupportedModelError(
                f"the model cannot be traced by torch.fx, which certified bounds need: {type(error).__name__}: {error}"
            ) from error
        modules = {name: module for name, module in net.named_modules() if name}  # not the root: no cycle in caches
        attributes: dict[str, Any] = {}
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise UnsupportedModelError(f"the model must take one input tensor; its forward takes {len(placeholders)}.")
        for node in graph.nodes:
            if node.op == "call_module":
                module = modules[node.target]
                if type(module) not in MODULE_BOUNDS:
                    raise UnsupportedModelError(
                        f"{_describe(node, module)} has no bound here; supported modules: "
                        f"{sorted(t.__name__ for t in MODULE_BOUNDS)}."
                    )
                reason = _module_refusal(module)
                if reason is not None:
                    raise UnsupportedModelError(f"{_describe(node, module)}: {reason} has no bound here.")
            elif node.op == "call_function":
                if node.target not in FUNCTION_BOUNDS and node.target is not getattr and _reaches_input(node):
                    raise UnsupportedModelError(f"{_describe(node)} has no bound here.")
            elif node.op == "call_method":
                if node.target not in METHOD_BOUNDS and node.target != "size" and _reaches_input(node):
                    raise UnsupportedModelError(f"{_describe(node)} has no bound here.")
            elif node.op == "get_attr":
                attributes[node.target] = _get_attribute(net, node.target)
            elif node.op == "output":
                if not isinstance(node.args[0], fx.Node):
                    raise UnsupportedModelError(
                        "the model must return the logits tensor; it returns "
                        f"{type(node.args[0]).__name__} (certified bounds do not follow `output=`)."
                    )
        output = next(n for n in graph.nodes if n.op == "output").args[0]
        head = output if _is_linear(output, modules) and len(output.users) == 1 else None
        return cls(graph, modules, attributes, head)

    def run(self, x: Bounds) -> tuple[Bounds, fx.Node | None]:
        """Bounds of the head's input (with the head node) or, without a head, of the output (and ``None``)."""
        values: dict[fx.Node, Any] = {}
        load = lambda arg: fx.node.map_arg(arg, lambda n: values[n])  # noqa: E731
        for node in self.graph.nodes:
            if node is self.head:
                return load(node.args[0]), node
            if node.op == "placeholder":
                values[node] = x
            elif node.op == "get_attr":
                values[node] = self.attributes[node.target]
            elif node.op == "output":
                return load(node.args[0]), None
            else:
                args, kwargs = load(node.args), load(node.kwargs)
                values[node] = self._apply(node, args, kwargs)
        raise AssertionError("a traced graph always ends with its output node")

    def _apply(self, node: fx.Node, args: tuple, kwargs: dict) -> object:
        bounded = _contains_bounds(args) or _contains_bounds(kwargs)
        if node.op == "call_module":
            module = self.modules[node.target]
            return MODULE_BOUNDS[type(module)](module, *args, **kwargs) if bounded else module(*args, **kwargs)
        if node.op == "call_function":
            if node.target is getattr and _is_bounds(args[0]):
                if args[1] != "shape":
                    raise UnsupportedModelError(f"attribute `.{args[1]}` of a bounded tensor has no bound here.")
                return args[0].mid.shape
            if not bounded:
                return node.target(*args, **kwargs)
            return FUNCTION_BOUNDS[node.target](*args, **kwargs)
        # call_method
        if node.target == "size" and _is_bounds(args[0]):
            return _shape_of(*args)
        if not bounded:
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        return METHOD_BOUNDS[node.target](*args, **kwargs)

    def head_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The last Linear's weight ``(C, H)`` and bias ``(C,)``."""
        assert self.head is not None
        if self.head.op == "call_module":
            module = self.modules[self.head.target]
            return module.weight, module.bias
        weight, bias = (self._constant(a) for a in (*self.head.args[1:], *self.head.kwargs.values()))
        return weight, bias

    def _constant(self, arg: object) -> object:
        if isinstance(arg, fx.Node):
            if arg.op != "get_attr":
                raise UnsupportedModelError("the last Linear's weights must be parameters of the model.")
            return self.attributes[arg.target]
        return arg


def _contains_bounds(value: object) -> bool:
    if isinstance(value, Bounds):
        return True
    if isinstance(value, tuple | list):
        return any(_contains_bounds(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_bounds(v) for v in value.values())
    return False


def _reaches_input(node: fx.Node) -> bool:
    """Whether a node's value depends on the model's input (others are constants, computed as torch would)."""
    seen, stack = set(), list(node.all_input_nodes)
    while stack:
        current = stack.pop()
        if current.op == "placeholder":
            return True
        if current not in seen:
            seen.add(current)
            shape = (current.op == "call_method" and current.target == "size") or current.target is getattr
            if not shape:
                stack.extend(current.all_input_nodes)
    return False


def _get_attribute(net: nn.Module, target: str) -> Any:
    value: Any = net
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _is_linear(node: object, modules: dict[str, nn.Module]) -> bool:
    if not isinstance(node, fx.Node):
        return False
    if node.op == "call_module":
        return isinstance(modules[node.target], nn.Linear)
    if node.op == "call_function" and node.target is F.linear:
        return all(not isinstance(a, fx.Node) or a.op == "get_attr" for a in (*node.args[1:], *node.kwargs.values()))
    return False


__all__ = [
    "FUNCTION_BOUNDS",
    "METHOD_BOUNDS",
    "MODULE_BOUNDS",
    "Program",
    "UnsupportedModelError",
]
