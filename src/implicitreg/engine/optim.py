"""The parameter update: plain SGD with heavy-ball momentum and weight decay, the same
arithmetic as ``torch.optim.SGD`` (dampening 0, no Nesterov), written once for one model
and for K stacked models; and, for one model, the updates of ``torch.optim.Adam`` and
``torch.optim.RMSprop`` (``RunConfig.optimizer``)."""
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


# ---- Adam and RMSprop (single model) --------------------------------------------------
# torch.optim's single-tensor arithmetic (foreach=False, not capturable, not amsgrad, not
# centered), operation by operation, so that a run matches torch.optim.Adam/RMSprop to
# the last bit. Their constants are torch's defaults.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
RMSPROP_ALPHA = 0.99
RMSPROP_EPS = 1e-8


def adam_update_(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
                 state: dict | None, lr: float, weight_decay: float) -> dict:
    """One Adam step on ``params`` in place (L2 ``weight_decay`` added to the gradient, as
    torch.optim.Adam does); returns the state: ``step``, ``exp_avg``, ``exp_avg_sq``."""
    beta1, beta2 = ADAM_BETAS
    if state is None:
        state = {"step": 0.0, "exp_avg": [torch.zeros_like(p) for p in params],
                 "exp_avg_sq": [torch.zeros_like(p) for p in params]}
    state["step"] += 1.0
    step = state["step"]
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    with torch.no_grad():
        for p, g, m, v in zip(params, grads, state["exp_avg"], state["exp_avg_sq"]):
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v.sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
            p.addcdiv_(m, denom, value=-step_size)
    return state


def rmsprop_update_(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
                    state: dict | None, lr: float, momentum: float,
                    weight_decay: float) -> dict:
    """One RMSprop step on ``params`` in place (torch.optim.RMSprop, not centered);
    returns the state: ``step``, ``square_avg`` and, with momentum, ``momentum_buffer``."""
    alpha = RMSPROP_ALPHA
    if state is None:
        state = {"step": 0.0, "square_avg": [torch.zeros_like(p) for p in params],
                 "momentum_buffer": ([torch.zeros_like(p) for p in params]
                                     if momentum > 0 else None)}
    state["step"] += 1.0
    with torch.no_grad():
        for i, (p, g, sq) in enumerate(zip(params, grads, state["square_avg"])):
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)
            sq.mul_(alpha).addcmul_(g, g, value=1 - alpha)
            avg = sq.sqrt().add_(RMSPROP_EPS)
            if momentum > 0:
                buf = state["momentum_buffer"][i]
                buf.mul_(momentum).addcdiv_(g, avg)
                p.add_(buf, alpha=-lr)
            else:
                p.addcdiv_(g, avg, value=-lr)
    return state
