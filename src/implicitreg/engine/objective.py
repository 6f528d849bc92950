"""What a run minimizes: the training loss a model carries, and the weights with which
micro-batch gradients enter the finite-difference gradient of the explicit penalty.

Both the per-micro-batch engine (``gradients.py``) and the Gram form of an MLP's penalty
(``lowrank.py``) use these, so neither defines them for the other.
"""
from __future__ import annotations

import torch
from torch import nn

from .device import upcast

# Every function here that needs a loss receives the model, so the model carries the name
# of its run's loss: the step, the penalty, the probes and the Hessian-vector products
# then cannot disagree about which loss they differentiate.
LOSS_ATTR = "implicitreg_loss"


def set_loss(model: nn.Module, name: str) -> nn.Module:
    """Make ``name`` (``cross-entropy`` or ``mse``) the loss of ``model``; returns it."""
    if name not in ("cross-entropy", "mse"):
        raise ValueError(f"unknown loss {name!r}")
    setattr(model, LOSS_ATTR, name)
    return model


def loss_name(model: nn.Module) -> str:
    return getattr(model, LOSS_ATTR, "cross-entropy")


def criterion(out: torch.Tensor, y: torch.Tensor, name: str = "cross-entropy",
              reduction: str = "mean") -> torch.Tensor:
    """The loss of outputs ``out`` (n, classes) against labels ``y`` (n,):
    ``cross-entropy``, or ``mse`` = ½‖out − onehot(y)‖² summed over classes (Cohen et
    al.'s square loss); averaged over examples unless ``reduction="none"``."""
    out = upcast(out)
    if name == "cross-entropy":
        return nn.functional.cross_entropy(out, y, reduction=reduction)
    if name == "mse":
        # A comparison rather than one_hot, which vmap cannot batch.
        classes = torch.arange(out.shape[-1], device=out.device)
        target = (y[..., None] == classes).to(out.dtype)
        per = 0.5 * ((out - target) ** 2).sum(-1)
        return per if reduction == "none" else per.mean()
    raise ValueError(f"unknown loss {name!r}")


def fd_coefficients(norms, lam: float, fd_step: float, m: int, weight: float = 1.0):
    """Weights (a_k, c_k) of g_k and g'_k in the finite-difference penalty gradient.

    With g'_k = ∇Ĉ_k(θ + h g_k/‖g_k‖), H_k g_k ≈ ‖g_k‖(g'_k − g_k)/h, so the gradient of
    (weight/m)Σ_k Ĉ_k + (λ/m)Σ_k ‖g_k‖² is Σ_k a_k g_k + Σ_k c_k g'_k with
    c_k = 2λ‖g_k‖/(hm) and a_k = weight/m − c_k. ``norms`` are the ‖g_k‖ (floats or a
    tensor)."""
    c = (2 * lam / (fd_step * m)) * norms
    return weight / m - c, c


__all__ = ["LOSS_ATTR", "set_loss", "loss_name", "criterion", "fd_coefficients"]
