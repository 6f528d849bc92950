"""Training-time probes: what a run records at its evaluation points. Losses and
accuracies, the implicit regularizers ‖∇C‖² and (1/m)Σ_k‖∇Ĉ_k‖², the gradient-variance
term, per-layer drift and diffusion, sharpness and Chatterjee's coherence fractions.
Everything stays on the device; callers fetch values at evaluation points."""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .device import upcast
from .gradients import (Autocast, _no_autocast, batch_grad, criterion, functional_loss, hvp,
                        microbatch_grads_loop, microbatch_grads_vmap, params_of,
                        rowwise_sq_norm, split_microbatches, sq_norm)


@contextlib.contextmanager
def frozen_buffers(model: nn.Module) -> Iterator[None]:
    """Measurements may run forward passes in training mode (BatchNorm batch statistics,
    as in training); this keeps them from changing the running statistics."""
    saved = {k: v.detach().clone() for k, v in model.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(saved[k])


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, chunk: int = 2048,
            autocast: Autocast = _no_autocast) -> torch.Tensor:
    """Logits (float32) in evaluation mode, chunked."""
    was = model.training
    model.eval()
    try:
        outs = []
        for i in range(0, x.shape[0], chunk):
            with autocast():
                outs.append(upcast(model(x[i:i + chunk])))
        return torch.cat(outs)
    finally:
        model.train(was)


def loss_acc(logits: torch.Tensor, y: torch.Tensor, loss: str = "cross-entropy"
             ) -> tuple[torch.Tensor, torch.Tensor]:
    return criterion(logits, y, loss), (logits.argmax(1) == y).float().mean()


def grad_stats(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int,
               micro_batch: int | None = None, use_vmap: bool = True,
               autocast: Autocast = _no_autocast) -> dict[str, torch.Tensor]:
    """On a fixed evaluation set split into m minibatches of size ``batch``:

    - ``grad_norm2_full``: ‖∇C‖² of the mean loss over the set (GD's implicit term / (ε/4));
    - ``grad_norm2_minibatch``: (1/m)Σ_k‖∇Ĉ_k‖² (SGD's implicit term / (ε/4));
    - ``grad_variance``: (1/m)Σ_k‖∇Ĉ_k − ∇C‖², their difference (exact, equal sizes);
    - ``grad_norm2_micro``: the same mean over micro-batches of size ``micro_batch``.
    """
    xs, ys = split_microbatches(x, batch), split_microbatches(y, batch)
    out: dict[str, torch.Tensor] = {}
    with frozen_buffers(model):
        _, gk = (microbatch_grads_vmap if use_vmap else microbatch_grads_loop)(
            model, xs, ys, autocast=autocast)
        per = rowwise_sq_norm(gk)  # (m,)
        full = sq_norm([g.mean(0) for g in gk])
        out["grad_norm2_full"] = full
        out["grad_norm2_minibatch"] = per.mean()
        out["grad_variance"] = per.mean() - full
        if micro_batch is not None and micro_batch != batch and micro_batch <= x.shape[0]:
            xs2, ys2 = split_microbatches(x, micro_batch), split_microbatches(y, micro_batch)
            _, g2 = (microbatch_grads_vmap if use_vmap else microbatch_grads_loop)(
                model, xs2, ys2, autocast=autocast)
            out["grad_norm2_micro"] = rowwise_sq_norm(g2).mean()
    return out


def layer_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int,
              use_vmap: bool = True) -> dict[str, tuple[float, float]]:
    """Per parameter tensor: (‖mean minibatch gradient‖, root-mean-square deviation of the
    minibatch gradients from that mean) over minibatches of size ``batch``."""
    xs, ys = split_microbatches(x, batch), split_microbatches(y, batch)
    with frozen_buffers(model):
        _, gk = (microbatch_grads_vmap if use_vmap else microbatch_grads_loop)(model, xs, ys)
    names = [n for n, _ in model.named_parameters()]
    res = {}
    for name, g in zip(names, gk):
        mean = g.mean(0)
        dev = ((g - mean) ** 2).flatten(1).sum(1).mean().sqrt()
        res[name] = (float(mean.norm()), float(dev))
    return res


def flat_norm(ts: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sq_norm(ts))


def top_eigenvalue(model: nn.Module, x: torch.Tensor, y: torch.Tensor, iters: int = 20,
                   chunk: int | None = 1024, seed: int = 0, tol: float = 1e-4,
                   loss_fn=None) -> torch.Tensor:
    """Largest-magnitude Hessian eigenvalue of the mean loss on (x, y), by power iteration
    on Hessian-vector products. Stops early when the estimate changes by < ``tol``
    (relative)."""
    params = params_of(model)
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = [torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device) for p in params]
    nv = flat_norm(v)
    v = [t / nv for t in v]
    lam = torch.zeros((), device=params[0].device)
    with frozen_buffers(model):
        for _ in range(iters):
            hv = hvp(model, x, y, v, chunk, loss_fn)
            new = sum((a * b).sum() for a, b in zip(hv, v))
            nh = flat_norm(hv)
            v = [t / torch.clamp(nh, min=1e-30) for t in hv]
            done = bool(torch.abs(new - lam) <= tol * torch.abs(new))
            lam = new.detach()
            if done:
                break
    return lam


def lanczos_top(model: nn.Module, x: torch.Tensor, y: torch.Tensor, iters: int = 20,
                v0: Sequence[torch.Tensor] | None = None, chunk: int | None = 1024,
                seed: int = 0, loss_fn=None) -> tuple[float, list[torch.Tensor]]:
    """Largest (algebraic) Hessian eigenvalue of the mean loss on (x, y) and its unit
    eigenvector (as a list shaped like the parameters), from ``iters`` Lanczos steps with
    full reorthogonalization, started from ``v0`` (a previous top eigenvector: along a
    training run the top eigenvector moves slowly, so a warm start converges in fewer
    steps) or a seeded random vector.

    A fixed number of steps, not a tolerance, so that the cost of a measurement is known
    in advance; Lanczos converges to the extreme eigenvalue much faster than power
    iteration when the top of the spectrum is not well separated."""
    with frozen_buffers(model):
        return lanczos_operator(lambda v: hvp(model, x, y, v, chunk, loss_fn),
                                params_of(model), iters, v0, seed)


def lanczos_operator(matvec, like: Sequence[torch.Tensor], iters: int = 20,
                     v0: Sequence[torch.Tensor] | None = None, seed: int = 0
                     ) -> tuple[float, list[torch.Tensor]]:
    """:func:`lanczos_top` for any symmetric operator ``matvec`` on lists of tensors
    shaped like ``like`` (e.g. the curvature of a penalized objective)."""
    from scipy.linalg import eigh_tridiagonal

    shapes, sizes = [p.shape for p in like], [p.numel() for p in like]

    def flat(ts: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in ts])

    def unflat(v: torch.Tensor) -> list[torch.Tensor]:
        return [t.view(s) for t, s in zip(torch.split(v, sizes), shapes)]

    if v0 is None:
        g = torch.Generator(device="cpu").manual_seed(seed)
        v = torch.randn(sum(sizes), generator=g, dtype=like[0].dtype).to(like[0].device)
    else:
        v = flat(v0).detach().clone()
    v = v / torch.clamp(v.norm(), min=1e-30)
    basis = [v]
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(iters):
        w = flat(matvec(unflat(basis[-1])))
        alpha = float(w @ basis[-1])
        alphas.append(alpha)
        q = torch.stack(basis)
        # Full reorthogonalization (twice, for float32): without it the basis loses
        # orthogonality as soon as the top Ritz value converges, and ghost copies of
        # it appear.
        for _ in range(2):
            w = w - q.T @ (q @ w)
        beta = float(w.norm())
        if j == iters - 1 or beta <= 1e-6 * max(abs(a) for a in alphas):
            break
        betas.append(beta)
        basis.append(w / beta)
    vals, vecs = eigh_tridiagonal(np.asarray(alphas, dtype=np.float64),
                                  np.asarray(betas, dtype=np.float64))
    coef = torch.as_tensor(vecs[:, -1], dtype=basis[0].dtype, device=basis[0].device)
    top = torch.stack(basis[:len(alphas)]).T @ coef
    top = top / torch.clamp(top.norm(), min=1e-30)
    return float(vals[-1]), [t.clone() for t in unflat(top)]


def gd_multiplier(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  direction: Sequence[torch.Tensor], lr: float,
                  chunk: int | None = 1024) -> tuple[float, float]:
    """The factor r by which one full-batch GD step of size ``lr`` on (x, y) multiplies
    the gradient's component along ``direction`` (a unit vector v),
    r = (g(θ − lr·g)·v)/(g(θ)·v), and the share (g(θ)·v)/‖g(θ)‖ of the gradient along v.
    On a quadratic with curvature λ along v, r = 1 − lr·λ; where the share is small, r is
    a quotient of two small numbers and higher derivatives decide it. The model is left
    as it was."""
    params = params_of(model)
    saved = [p.detach().clone() for p in params]
    with frozen_buffers(model):
        _, g0 = batch_grad(model, x, y, chunk)
        before = sum((a * b).sum() for a, b in zip(g0, direction))
        try:
            with torch.no_grad():
                torch._foreach_add_(params, g0, alpha=-lr)
            _, g1 = batch_grad(model, x, y, chunk)
        finally:
            with torch.no_grad():
                torch._foreach_copy_(params, saved)
    after = sum((a * b).sum() for a, b in zip(g1, direction))
    norm = float(flat_norm(g0))
    r = float(after) / float(before) if float(before) != 0 else float("nan")
    return r, float(before) / norm if norm > 0 else float("nan")


def coherence_fractions(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        masks: torch.Tensor, chunk: int = 1024,
                        autocast: Autocast = _no_autocast) -> torch.Tensor:
    """Chatterjee's f for each bool mask in ``masks`` (K, n): the fraction of ‖g‖², g the
    mean per-example gradient over (x, y), due to the masked examples, with the cross
    terms between masked and unmasked examples split equally:
    f = (g_M · g) / ‖g‖² with g_M = (1/n) Σ_{i∈M} g_i, so f(M) + f(not M) = 1.

    No per-example gradient is formed: g_M · g = (1/n) Σ_{i∈M} g_i · g, and g_i · g is
    the derivative of example i's loss along g, so one forward-mode pass along g (a
    chunk of examples at a time) gives every g_i · g, whatever the number of masks."""
    n = x.shape[0]
    params = tuple(p.detach() for p in params_of(model))
    f = functional_loss(model, autocast)
    along = []
    with frozen_buffers(model):
        _, g = batch_grad(model, x, y, chunk, autocast)
        g = tuple(g)
        for i in range(0, n, chunk):
            xc, yc = x[i:i + chunk], y[i:i + chunk]
            along.append(torch.func.jvp(
                lambda *q: f(q, xc, yc, reduction="none"), params, g)[1])
    s = upcast(torch.cat(along))  # (n,) the g_i · g
    return (masks.to(s.dtype) @ s / n) / torch.clamp(sq_norm(g), min=1e-30)
