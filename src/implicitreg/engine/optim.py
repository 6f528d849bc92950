"""The parameter update: plain SGD with heavy-ball momentum and weight decay, the same
arithmetic as ``torch.optim.SGD`` (dampening 0, no Nesterov), written once for one model
and for K stacked models."""
from __future__ import annotations

from typing import Sequence

import torch

Hyper = float | torch.Tensor


def _per_model(h: Hyper, ref: torch.Tensor) -> Hyper:
    """A float stays a float; a (K,) tensor of per-model values broadcasts over the
    leading (model) dimension of a stacked parameter."""
    return h if not torch.is_tensor(h) else h.view((-1,) + (1,) * (ref.dim() - 1))


def _axpy(y: torch.Tensor, a: Hyper, x: torch.Tensor, inplace: bool) -> torch.Tensor:
    """y + a·x; a float goes through ``alpha`` (torch.optim.SGD's arithmetic)."""
    if torch.is_tensor(a):
        return y.addcmul_(a, x) if inplace else y.addcmul(a, x)
    return y.add_(x, alpha=a) if inplace else y.add(x, alpha=a)


def sgd_update_(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
                buffers: list[torch.Tensor] | None, lr: Hyper, momentum: Hyper,
                weight_decay: Hyper, uses_momentum: bool, uses_decay: bool
                ) -> list[torch.Tensor] | None:
    """Update ``params`` in place and return the momentum buffers (``None`` without
    momentum). Hyperparameters are floats (one model) or (K,) tensors (K stacked
    models, each parameter with a leading K dimension)."""
    grads = list(grads)
    if uses_decay:
        # g <- g + wd·θ
        grads = [_axpy(g, _per_model(weight_decay, p), p, inplace=False)
                 for g, p in zip(grads, params)]
    if uses_momentum:
        # b <- μ·b + g (the first step starts the buffer at g), then step along b.
        if buffers is None:
            buffers = [g.clone().detach() for g in grads]
        else:
            for b, g in zip(buffers, grads):
                b.mul_(_per_model(momentum, b)).add_(g)
        grads = buffers
    with torch.no_grad():
        for p, g in zip(params, grads):
            # θ <- θ − ε·g
            neg = -lr if not torch.is_tensor(lr) else -_per_model(lr, p)
            _axpy(p, neg, g, inplace=True)
    return buffers
