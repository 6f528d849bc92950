"""Loss-landscape helpers the chapters call on trained models (they never run inside a
training run, so they are not part of the engine): Hutchinson's trace, filter-normalized
directions, loss along lines and planes, interpolation between two solutions."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..engine.gradients import hvp, params_of
from ..engine.probes import frozen_buffers, predict


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


# The same probes a run records, for the chapters to apply to restored models.
from ..engine.probes import loss_acc, top_eigenvalue  # noqa: E402,F401
