"""Gradients the engine needs: batch gradients accumulated over chunks, micro-batch
gradients (a Python loop or ``torch.func.vmap``), the gradient of the explicit
penalties λ‖∇C‖² and λ(1/m)Σ_k‖∇Ĉ_k‖², and Hessian-vector products.

Parameters are handled as lists of tensors in ``model.parameters()`` order. Every loss
here is the *mean* over the examples it is given of the model's loss (:func:`criterion`,
cross-entropy unless :func:`set_loss` chose another).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from .device import upcast
from .lowrank import fd_penalty_grad_mlp
# The loss and the penalty weights are defined in objective.py; they are named here too
# because the probes, the batched engine and the analysis import them from this module.
from .objective import LOSS_ATTR, criterion, fd_coefficients, loss_name, set_loss  # noqa: F401

Tensors = list[torch.Tensor]
Autocast = Callable[[], contextlib.AbstractContextManager]


def _no_autocast() -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def params_of(model: nn.Module) -> Tensors:
    return [p for p in model.parameters()]


def loss_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
            autocast: Autocast = _no_autocast) -> torch.Tensor:
    with autocast():
        out = model(x)
    return criterion(out, y, loss_name(model))


def batch_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int | None = None,
               autocast: Autocast = _no_autocast) -> tuple[torch.Tensor, Tensors]:
    """Mean loss over (x, y) and its gradient, accumulated over chunks of ``chunk``
    examples so that memory stays bounded. Equals the one-shot gradient up to rounding
    (for models without BatchNorm)."""
    params = params_of(model)
    n = x.shape[0]
    chunk = n if chunk is None else chunk
    total = torch.zeros((), device=x.device)
    grads = [torch.zeros_like(p) for p in params]
    for i in range(0, n, chunk):
        xc, yc = x[i:i + chunk], y[i:i + chunk]
        loss = loss_of(model, xc, yc, autocast) * (xc.shape[0] / n)
        gs = torch.autograd.grad(loss, params)
        torch._foreach_add_(grads, gs)
        total += loss.detach()
    return total, grads


def sq_norm(ts: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((upcast(t) ** 2).sum() for t in ts)  # type: ignore[return-value]


def rowwise_sq_norm(ts: Sequence[torch.Tensor]) -> torch.Tensor:
    """‖·‖² of each leading-dimension slice, summed over a list of (k, ...) tensors."""
    return sum(torch.linalg.vector_norm(upcast(t).flatten(1), dim=1) ** 2 for t in ts)  # type: ignore[return-value]


# --------------------------------------------------------------------- micro-batches
def microbatch_grads_vmap(model: nn.Module, xs: torch.Tensor, ys: torch.Tensor,
                          params: Sequence[torch.Tensor] | None = None,
                          batched_params: bool = False,
                          autocast: Autocast = _no_autocast) -> tuple[torch.Tensor, Tensors]:
    """Per-micro-batch losses (m,) and gradients (list of (m, *p.shape)) for micro-batches
    ``xs`` (m, b, ...), ``ys`` (m, b), all in one vmapped call. With ``batched_params``
    the k-th micro-batch is evaluated at its own parameters ``params[i][k]``."""
    params = tuple(params_of(model) if params is None else params)
    f = functional_loss(model, autocast)

    def loss_and_grad(p, x, y):
        g, loss = grad(lambda q: (f(q, x, y),) * 2, has_aux=True)(p)
        return loss, g

    losses, gs = vmap(loss_and_grad, in_dims=(0 if batched_params else None, 0, 0))(
        tuple(p.detach() for p in params), xs, ys)
    return losses.detach(), list(gs)


def microbatch_grads_loop(model: nn.Module, xs: torch.Tensor, ys: torch.Tensor,
                          autocast: Autocast = _no_autocast) -> tuple[torch.Tensor, Tensors]:
    """The same as :func:`microbatch_grads_vmap` at the model's own parameters, by a
    Python loop over micro-batches (works with BatchNorm)."""
    params = params_of(model)
    losses, grads = [], []
    for x, y in zip(xs, ys):
        loss = loss_of(model, x, y, autocast)
        grads.append(torch.autograd.grad(loss, params))
        losses.append(loss.detach())
    return torch.stack(losses), [torch.stack(g) for g in zip(*grads)]


def _axpy_(acc: Sequence[torch.Tensor], xs: Sequence[torch.Tensor],
           a: float | torch.Tensor) -> None:
    """acc += a * xs for lists of tensors; ``a`` a Python float or a 0-d tensor."""
    if isinstance(a, torch.Tensor):
        torch._foreach_add_(list(acc), torch._foreach_mul(list(xs), a))
    else:
        torch._foreach_add_(list(acc), list(xs), alpha=a)


def split_microbatches(x: torch.Tensor, b: int) -> torch.Tensor:
    """(n, ...) -> (n // b, b, ...): whole micro-batches of ``b`` in order; the remainder
    (fewer than ``b`` examples at the end) is dropped."""
    m = x.shape[0] // b
    return x[: m * b].reshape(m, b, *x.shape[1:])


def fd_penalty_grad(loss_fn: Callable, p: tuple[torch.Tensor, ...], xs: torch.Tensor,
                    ys: torch.Tensor, lam: float | torch.Tensor, fd_step: float,
                    weight: float = 1.0, m: int | None = None
                    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
    """The penalized gradient of one model, functionally: ``loss_fn(p, x, y)`` is the mean
    loss at parameters ``p`` on micro-batch (x, y); ``xs`` (k, b, ...), ``ys`` (k, b) are
    k of the step's ``m`` micro-batches (default: all of them, m = k). Returns this
    group's share of ((weight/m)Σ_k Ĉ_k, its gradient plus that of (λ/m)Σ_k‖∇Ĉ_k‖²,
    the penalty (1/m)Σ_k‖∇Ĉ_k‖²). Pure torch.func, so the batched engine vmaps it over
    models."""
    def loss_and_grad(q, xb, yb):
        g, loss = grad(lambda r: (loss_fn(r, xb, yb),) * 2, has_aux=True)(q)
        return loss, g

    k = xs.shape[0]
    m = k if m is None else m
    losses, g1 = vmap(loss_and_grad, in_dims=(None, 0, 0))(p, xs, ys)
    norms = torch.sqrt(rowwise_sq_norm(g1))
    step = fd_step / torch.clamp(norms, min=1e-30)
    moved = tuple(q[None] + t * step.view((k,) + (1,) * (t.dim() - 1)).to(t.dtype)
                  for q, t in zip(p, g1))
    _, g2 = vmap(loss_and_grad, in_dims=(0, 0, 0))(moved, xs, ys)
    a, c = fd_coefficients(norms, lam, fd_step, m, weight)
    g = tuple(torch.tensordot(a.to(t1.dtype), t1, dims=1)
              + torch.tensordot(c.to(t2.dtype), t2, dims=1) for t1, t2 in zip(g1, g2))
    return weight * losses.sum() / m, g, (norms ** 2).sum() / m


def functional_loss(model: nn.Module, autocast: Autocast = _no_autocast) -> Callable:
    """``f(params, x, y)``: the model's mean loss at a tuple of parameters (in
    ``model.parameters()`` order), its buffers fixed; for torch.func transforms.
    ``f(params, x, y, reduction="none")`` gives the per-example losses."""
    names = [n for n, _ in model.named_parameters()]
    buffers = dict(model.named_buffers())
    kind = loss_name(model)

    def f(params: tuple[torch.Tensor, ...], x: torch.Tensor, y: torch.Tensor,
          reduction: str = "mean") -> torch.Tensor:
        with autocast():
            out = functional_call(model, ({**dict(zip(names, params)), **buffers}), (x,))
        return criterion(out, y, kind, reduction=reduction)
    return f


def penalized_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, reg: str,
                   lam: float, micro_batch: int, method: str = "finite-difference",
                   fd_step: float = 1e-3, impl: str = "vmap", group: int | None = None,
                   autocast: Autocast = _no_autocast
                   ) -> tuple[torch.Tensor, Tensors, torch.Tensor]:
    """Gradient of C(θ) + λ·R(θ) on the batch (x, y), where R is ‖∇C‖² (``gd-modified``)
    or (1/m)Σ_k‖∇Ĉ_k‖² over micro-batches of size ``micro_batch`` (``sgd-modified``).

    ∇R = 2Hg is computed by a forward difference of gradients along g/‖g‖
    (``finite-difference``, one extra gradient per micro-batch) or by differentiating
    through the gradient (``double-backprop``). For ``sgd-modified`` the plain gradient
    is the mean of the micro-batch gradients; examples past the last whole micro-batch
    enter C only. Returns (C, gradient, R), C and R detached.
    """
    if reg == "gd-modified":
        xs, ys = x[None], y[None]
    else:
        xs, ys = split_microbatches(x, micro_batch), split_microbatches(y, micro_batch)
    m, b = xs.shape[0], xs.shape[1]
    params = params_of(model)
    # Examples past the last whole micro-batch enter the plain loss only; wc is the
    # weight of the covered examples in the plain mean loss.
    covered = m * b
    wc = covered / x.shape[0]
    total_loss = torch.zeros((), device=x.device)
    r_val = torch.zeros((), device=x.device)
    plain = [torch.zeros_like(p) for p in params]
    if method == "double-backprop":
        for xk, yk in zip(xs, ys):
            loss = loss_of(model, xk, yk, autocast)
            gk = torch.autograd.grad(loss, params, create_graph=True)
            rk = sq_norm(gk)
            obj = (wc * loss + lam * rk) / m
            torch._foreach_add_(plain, torch.autograd.grad(obj, params))
            total_loss += wc * loss.detach() / m
            r_val += rk.detach() / m
    elif method == "finite-difference":
        # Σ_k a_k g_k + Σ_k c_k g'_k (see fd_coefficients), over groups of micro-batches
        # so that memory stays bounded; "vmap" evaluates a group in one call, "loop" one
        # micro-batch at a time (faster for conv nets on a CPU), "lowrank" a group of an
        # MLP's micro-batches through Gram matrices (engine/lowrank.py).
        group = m if group is None else max(1, group)
        on_cpu = x.device.type == "cpu"
        f_loss = functional_loss(model, autocast)
        detached = [p.detach() for p in params]
        # One set of buffers for the moved parameters θ + step·g_j, reused for every j.
        moved = [torch.empty_like(p).requires_grad_(True) for p in detached]
        for s in range(0, m, group):
            xg, yg = xs[s:s + group], ys[s:s + group]
            k = xg.shape[0]
            if impl == "lowrank":
                out = fd_penalty_grad_mlp(model, xg, yg, lam, fd_step, m, weight=wc)
                if out is None:
                    raise ValueError("impl='lowrank' needs a plain MLP")
                torch._foreach_add_(plain, out[1])
                total_loss += out[0]
                r_val += out[2]
            elif impl == "vmap":
                loss_g, g, r_g = fd_penalty_grad(
                    functional_loss(model, autocast), tuple(p.detach() for p in params),
                    xg, yg, lam, fd_step, weight=wc, m=m)
                torch._foreach_add_(plain, list(g))
                r_val += r_g
                total_loss += loss_g
            else:
                losses_l, norms_l = [], []
                for j in range(k):
                    loss_j, g1, nrm = _grad_and_norm(model, params, xg[j], yg[j], autocast)
                    losses_l.append(loss_j)
                    norms_l.append(nrm)
                    # Python floats on the CPU (no device to sync with); tensors elsewhere.
                    nj = float(nrm) if on_cpu else torch.clamp(nrm, min=1e-30)
                    step = fd_step / max(nj, 1e-30) if on_cpu else fd_step / nj
                    # g'_j at θ + step·g_j, evaluated on new tensors: the model's own
                    # parameters are never moved, so nothing has to be copied back.
                    with torch.no_grad():
                        for q, p0, g in zip(moved, detached, g1):
                            torch.add(p0, g, alpha=step, out=q) if on_cpu else \
                                torch.add(p0, g * step, out=q)
                    g2 = torch.autograd.grad(f_loss(tuple(moved), xg[j], yg[j]), moved)
                    aj, cj = fd_coefficients(nj, lam, fd_step, m, wc)
                    _axpy_(plain, g1, aj)
                    _axpy_(plain, g2, cj)
                losses = torch.stack(losses_l)
                norms = torch.stack(norms_l)
                r_val += (norms ** 2).sum() / m
                total_loss += wc * losses.sum() / m
    else:
        raise ValueError(f"unknown penalty gradient method {method!r}")
    if covered < x.shape[0]:
        loss_t, g_t = batch_grad(model, x[covered:], y[covered:], autocast=autocast)
        torch._foreach_add_(plain, [g * (1 - wc) for g in g_t])
        total_loss += loss_t * (1 - wc)
    return total_loss, plain, r_val


def _grad_and_norm(model: nn.Module, params: Tensors, x: torch.Tensor, y: torch.Tensor,
                   autocast: Autocast) -> tuple[torch.Tensor, Tensors, torch.Tensor]:
    """Mean loss on (x, y), its gradient and the gradient's norm ‖g‖."""
    loss = loss_of(model, x, y, autocast)
    g = torch.autograd.grad(loss, params)
    # One pass per tensor and no temporaries: faster than summing squares (sq_norm) on
    # large layers, equal up to rounding.
    norms = torch._foreach_norm([upcast(t) for t in g])
    return loss.detach(), list(g), torch.linalg.vector_norm(torch.stack(norms))


# --------------------------------------------------------------------- per-example
def per_example_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      autocast: Autocast = _no_autocast) -> tuple[torch.Tensor, Tensors]:
    """Per-example losses (n,) and gradients (list of (n, *p.shape)), by vmap."""
    return microbatch_grads_vmap(model, x[:, None], y[:, None], autocast=autocast)


def winsorize(g: torch.Tensor, c: int) -> torch.Tensor:
    """Along dim 0, clip each coordinate's c largest values to the (c+1)-th largest and
    its c smallest to the (c+1)-th smallest (ties are clipped alike)."""
    if c == 0:
        return g
    hi = torch.topk(g, c + 1, dim=0).values[-1]
    lo = -torch.topk(-g, c + 1, dim=0).values[-1]
    return clip(g, hi, lo)


def clip(g: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """``g`` clipped coordinate-wise to [lo, hi] (the last step of :func:`winsorize`)."""
    return torch.maximum(torch.minimum(g, hi), lo)


def winsorized_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, c: int,
                    autocast: Autocast = _no_autocast) -> tuple[torch.Tensor, Tensors]:
    """Mean loss and the mean of the per-coordinate winsorized per-example gradients.

    For networks made of linear layers and parameter-free elementwise maps (the MLPs) on
    the CPU, the compiled kernel of :mod:`implicitreg.engine.native` computes this from each
    layer's inputs and output gradients without materializing per-example gradients;
    everything else uses vmapped per-example gradients and top-k per coordinate."""
    if c == 0:
        return batch_grad(model, x, y, autocast=autocast)
    fast = _winsorized_grad_linear(model, x, y, c, autocast)
    if fast is not None:
        return fast
    losses, gs = per_example_grads(model, x, y, autocast)
    return losses.mean(), [winsorize(g, c).mean(0) for g in gs]


def _linear_layers(model: nn.Module) -> list[nn.Linear] | None:
    """The model's linear layers, if they hold all its parameters and it has no buffers
    (so no layer mixes examples); otherwise ``None``."""
    if any(True for _ in model.buffers()):
        return None
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    owned = {id(p) for m in layers for p in m.parameters()}
    if not layers or any(id(p) not in owned for p in model.parameters()):
        return None
    return layers


def _winsorized_grad_linear(model: nn.Module, x: torch.Tensor, y: torch.Tensor, c: int,
                            autocast: Autocast) -> tuple[torch.Tensor, Tensors] | None:
    """Per-example gradients of a linear layer factor as d_i a_i^T (a_i its input, d_i
    the gradient of example i's loss at its output); one backward of the summed loss
    gives every d_i, because no layer mixes examples."""
    from . import native

    layers = _linear_layers(model)
    if layers is None or not native.can_take(x.shape[0], c, x.device, torch.float32):
        return None
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    calls = [0]

    def keep(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        calls[0] += 1
        seen[id(mod)] = (inp[0], out)

    hooks = [m.register_forward_hook(keep) for m in layers]
    try:
        with autocast():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    if calls[0] != len(seen) or len(seen) != len(layers) or any(
            a.dim() != 2 or a.dtype != torch.float32 for a, _ in seen.values()):
        return None  # a layer reused, skipped or applied to non-flat inputs
    losses = criterion(out, y, loss_name(model), reduction="none")
    outs = [seen[id(m)][1] for m in layers]
    deltas = torch.autograd.grad(losses.sum(), outs)
    by_param: dict[int, torch.Tensor] = {}
    for m, d in zip(layers, deltas):
        w = native.winsorized_outer_mean(d, seen[id(m)][0], c)
        if w is None:
            return None
        by_param[id(m.weight)] = w
        if m.bias is not None:
            # Example i's bias gradient is d_i itself: clipped to the kernel's bounds,
            # which are the values winsorize() finds by top-k, so the numbers are its own.
            bounds = native.winsorize_bounds(d, c)
            if bounds is None:
                return None
            by_param[id(m.bias)] = clip(d.detach(), *bounds).mean(0)
    grads = [by_param[id(p)] for p in params_of(model)]
    return losses.detach().mean(), grads


# --------------------------------------------------------------------- curvature
def hvp(model: nn.Module, x: torch.Tensor, y: torch.Tensor, v: Sequence[torch.Tensor],
        chunk: int | None = None, loss_fn: Callable | None = None) -> Tensors:
    """Hessian-vector product H v of the mean loss on (x, y), by double backprop,
    accumulated over chunks. ``loss_fn(model, x, y)`` defaults to the model's mean loss."""
    loss_fn = loss_fn or loss_of
    params = params_of(model)
    n = x.shape[0]
    chunk = n if chunk is None else chunk
    out = [torch.zeros_like(p) for p in params]
    for i in range(0, n, chunk):
        xc, yc = x[i:i + chunk], y[i:i + chunk]
        loss = loss_fn(model, xc, yc) * (xc.shape[0] / n)
        g = torch.autograd.grad(loss, params, create_graph=True)
        dot = sum((gi * vi).sum() for gi, vi in zip(g, v))
        torch._foreach_add_(out, torch.autograd.grad(dot, params))
    return out
