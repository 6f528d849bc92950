"""What the theory talks about, measured on a model: losses and accuracies, the implicit
regularizers ‖∇C‖² and (1/m)Σ_k‖∇Ĉ_k‖², the gradient-variance term, weight norms and
sharpness. Everything stays on the device; callers fetch values at evaluation points."""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn

from .gradients import (Autocast, _acc, _no_autocast, hvp, microbatch_grads_loop,
                        microbatch_grads_vmap, params_of, per_example_grads, rowwise_sq_norm,
                        sq_norm)


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
                outs.append(_acc(model(x[i:i + chunk])))
        return torch.cat(outs)
    finally:
        model.train(was)


def loss_acc(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (nn.functional.cross_entropy(logits, y),
            (logits.argmax(1) == y).float().mean())


def grad_stats(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int,
               micro_batch: int | None = None, use_vmap: bool = True,
               autocast: Autocast = _no_autocast) -> dict[str, torch.Tensor]:
    """On a fixed evaluation set split into m minibatches of size ``batch``:

    - ``grad_norm2_full``: ‖∇C‖² of the mean loss over the set (GD's implicit term / (ε/4));
    - ``grad_norm2_minibatch``: (1/m)Σ_k‖∇Ĉ_k‖² (SGD's implicit term / (ε/4));
    - ``grad_variance``: (1/m)Σ_k‖∇Ĉ_k − ∇C‖², their difference (exact, equal sizes);
    - ``grad_norm2_micro``: the same mean over micro-batches of size ``micro_batch``.
    """
    m = x.shape[0] // batch
    xs = x[: m * batch].reshape(m, batch, *x.shape[1:])
    ys = y[: m * batch].reshape(m, batch)
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
            mb = x.shape[0] // micro_batch
            xs2 = x[: mb * micro_batch].reshape(mb, micro_batch, *x.shape[1:])
            ys2 = y[: mb * micro_batch].reshape(mb, micro_batch)
            _, g2 = (microbatch_grads_vmap if use_vmap else microbatch_grads_loop)(
                model, xs2, ys2, autocast=autocast)
            out["grad_norm2_micro"] = rowwise_sq_norm(g2).mean()
    return out


def layer_snr(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int,
              use_vmap: bool = True) -> dict[str, tuple[float, float]]:
    """Per parameter tensor: (‖mean minibatch gradient‖, root-mean-square deviation of the
    minibatch gradients from that mean) over minibatches of size ``batch``."""
    m = x.shape[0] // batch
    xs = x[: m * batch].reshape(m, batch, *x.shape[1:])
    ys = y[: m * batch].reshape(m, batch)
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


def hutchinson_trace(model: nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int = 20,
                     chunk: int | None = 1024, seed: int = 0,
                     loss_fn=None) -> tuple[float, float]:
    """Hutchinson estimate of tr(H) with Rademacher probes: (mean, standard error)."""
    params = params_of(model)
    g = torch.Generator(device="cpu").manual_seed(seed)
    vals = []
    with frozen_buffers(model):
        for _ in range(samples):
            v = [(torch.randint(0, 2, p.shape, generator=g) * 2 - 1).to(p.device, p.dtype)
                 for p in params]
            hv = hvp(model, x, y, v, chunk, loss_fn)
            vals.append(float(sum((a * b).sum() for a, b in zip(hv, v))))
    t = torch.tensor(vals, dtype=torch.float64)
    se = float(t.std(unbiased=True) / len(vals) ** 0.5) if len(vals) > 1 else float("nan")
    return float(t.mean()), se


def coherence_fractions(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        masks: torch.Tensor, chunk: int = 64,
                        autocast: Autocast = _no_autocast) -> torch.Tensor:
    """Chatterjee's f for each bool mask in ``masks`` (K, n): the fraction of ‖g‖², g the
    mean per-example gradient over (x, y), due to the masked examples, with the cross
    terms between masked and unmasked examples split equally:
    f = (g_M · g) / ‖g‖² with g_M = (1/n) Σ_{i∈M} g_i, so f(M) + f(not M) = 1.

    Per-example gradients come from vmap, a chunk at a time; only their masked sums are
    kept, so memory does not grow with n."""
    n = x.shape[0]
    n_params = sum(p.numel() for p in model.parameters())
    chunk = max(1, min(chunk, int(2**26 // n_params)))  # at most ~256 MB of gradients
    sums = None
    total = None
    with frozen_buffers(model):
        for i in range(0, n, chunk):
            _, gs = per_example_grads(model, x[i:i + chunk], y[i:i + chunk], autocast)
            flat = torch.cat([g.flatten(1) for g in gs], 1)  # (c, P)
            w = masks[:, i:i + chunk].to(flat.dtype)  # (K, c)
            part = w @ flat  # (K, P)
            sums = part if sums is None else sums + part
            tot = flat.sum(0)
            total = tot if total is None else total + tot
    g = total / n
    return (sums / n) @ g / torch.clamp(g @ g, min=1e-30)


def filter_normalized_direction(model: nn.Module, seed: int = 0) -> list[torch.Tensor]:
    """A random direction scaled filter by filter to the norms of the model's weights
    (Li et al. 2018): each output unit's slice (a row of a linear layer, an output channel
    of a convolution) gets the norm of the same slice of the weights; biases and
    normalization parameters get zero, so the direction lives in the weights that matter."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for p in model.parameters():
        d = torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device)
        if p.dim() <= 1:
            out.append(torch.zeros_like(p))
            continue
        dn = d.flatten(1).norm(dim=1).clamp(min=1e-12)
        pn = p.detach().flatten(1).norm(dim=1)
        out.append((d.flatten(1) * (pn / dn)[:, None]).view_as(p))
    return out


@torch.no_grad()
def loss_along(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               directions: Sequence[Sequence[torch.Tensor]], coords: torch.Tensor
               ) -> torch.Tensor:
    """Mean loss at θ + Σ_j coords[i, j] d_j for each row i of ``coords`` (k, n_dirs):
    1-D slices with one direction, 2-D surfaces with two. The model is left unchanged."""
    params = params_of(model)
    saved = [p.detach().clone() for p in params]
    out = []
    try:
        for row in coords:
            for p, s0 in zip(params, saved):
                p.copy_(s0)
            for c, d in zip(row.tolist(), directions):
                torch._foreach_add_(params, list(d), alpha=c)
            logits = predict(model, x)
            out.append(nn.functional.cross_entropy(logits, y))
    finally:
        for p, s0 in zip(params, saved):
            p.copy_(s0)
    return torch.stack(out)


def interpolate_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                       t: float) -> dict[str, torch.Tensor]:
    """(1 − t)·a + t·b for floating-point entries of two state dicts (integer buffers,
    such as BatchNorm's batch counter, are taken from ``a``)."""
    return {k: (1 - t) * v + t * b[k] if v.is_floating_point() else v for k, v in a.items()}
