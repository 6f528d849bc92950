"""Why a penalized run diverges: the run retrained step by step, its curvature measured
against the stability threshold 2/ε, and replayed from checkpoints with other penalty
gradients.

A step of size ε on an objective F is stable along a direction only while F's curvature
there stays below 2/ε. The penalized step descends F = C + λ(1/k)Σ_k‖∇Ĉ_k‖², whose
Hessian is, third-derivative terms aside,

    H_F = H + 2λ·(1/k)Σ_k H_k²,

with H the Hessian of the batch loss and H_k that of micro-batch k. So the penalized step
loses stability when λ_max(H_F) reaches 2/ε, which happens before the loss's own
sharpness λ_max(H) does; along a shared top eigenvector λ_max(H_F) ≈ s + 2λs² at
sharpness s. :func:`trace` records both against 2/ε along a run; :func:`replay` reruns the
steps before a blow-up from a checkpoint with another penalty gradient (double backprop,
another finite-difference step), so that an error of the finite difference can be told
apart from an instability of the objective itself.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ..engine.config import RunConfig
from ..engine.gradients import (batch_grad, hvp, microbatch_grads_loop, params_of,
                                split_microbatches, sq_norm)
from ..engine.probes import frozen_buffers, lanczos_operator, lanczos_top, loss_acc, predict
from ..engine.training import Trainer


@dataclass(frozen=True)
class TracePlan:
    """Where along a run its curvature is measured, and how."""
    every: int = 60
    """Measure every this many updates (the headline's evaluation spacing)."""
    dense_from: int | None = None
    """From this update on, measure every ``dense_every`` updates (the blow-up region)."""
    dense_every: int = 10
    """Spacing of the dense measurements."""
    until: int | None = None
    """Stop after this update (default: the run's end or its divergence)."""
    measure_n: int = 640
    """Training examples (a fixed seeded subset) on which curvature is measured: the
    large batch's size, split into the penalty's micro-batches."""
    lanczos_iters: int = 12
    """Lanczos steps per eigenvalue, warm-started from the previous measurement."""

    def measures(self, step: int) -> bool:
        if self.dense_from is not None and step >= self.dense_from:
            return step % self.dense_every == 0
        return step % self.every == 0


def penalized_curvature_top(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                            micro_batch: int, lam: float, iters: int,
                            v0: Sequence[torch.Tensor] | None = None, seed: int = 0
                            ) -> tuple[float, list[torch.Tensor]]:
    """λ_max of H + 2λ·(1/k)Σ_k H_k² on (x, y) split into k micro-batches, by Lanczos on
    Hessian-vector products (each H_k² v is two of them)."""
    xs, ys = split_microbatches(x, micro_batch), split_microbatches(y, micro_batch)
    k = xs.shape[0]

    def matvec(v: list[torch.Tensor]) -> list[torch.Tensor]:
        out = hvp(model, x, y, v)
        for xk, yk in zip(xs, ys):
            hk2 = hvp(model, xk, yk, hvp(model, xk, yk, v))
            torch._foreach_add_(out, hk2, alpha=2 * lam / k)
        return out

    with frozen_buffers(model):
        return lanczos_operator(matvec, params_of(model), iters, v0, seed)


def _measure(tr: Trainer, idx: torch.Tensor, plan: TracePlan, state: dict[str, Any]
             ) -> dict[str, float]:
    """Loss, accuracy, gradient norm, penalty and the two curvatures at the trainer's
    current parameters."""
    cfg, model, d = tr.cfg, tr.model, tr.data
    logits = predict(model, d.x_train)
    tl, ta = loss_acc(logits, d.y_train, cfg.loss)
    out = {"train_loss": float(tl), "train_accuracy": float(ta)}
    if not math.isfinite(out["train_loss"]):
        return out
    x, y = d.x_train[idx], d.y_train[idx]
    _, g = batch_grad(model, x, y)
    out["grad_norm"] = float(torch.sqrt(sq_norm(g)))
    _, gk = microbatch_grads_loop(model, split_microbatches(x, cfg.micro_batch),
                                  split_microbatches(y, cfg.micro_batch))
    out["penalty"] = float(sum((t.flatten(1) ** 2).sum(1) for t in gk).mean())
    s, state["v_h"] = lanczos_top(model, x, y, plan.lanczos_iters, state.get("v_h"),
                                  seed=cfg.seed)
    sp, state["v_p"] = penalized_curvature_top(model, x, y, cfg.micro_batch,
                                               cfg.reg_lambda, plan.lanczos_iters,
                                               state.get("v_p"), seed=cfg.seed)
    out.update(sharpness=s, penalized_sharpness=sp, aligned=s + 2 * cfg.reg_lambda * s * s)
    return out


def _subset(tr: Trainer, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(tr.cfg.data_seed + 777)
    return torch.randperm(tr.n, generator=g)[:min(n, tr.n)].to(tr.device)


def trace(cfg: RunConfig, plan: TracePlan, checkpoints: Path | None = None,
          log: Callable[[str], None] = print) -> pd.DataFrame:
    """Retrain ``cfg`` from its initialization, one update at a time, recording each
    update's batch loss and penalty and the norm of the step it took, and at the plan's
    points the measurements of :func:`_measure`; a checkpoint of the trainer is kept at
    every measured update (under ``checkpoints``). Stops at the first non-finite batch
    loss. Rows: (step, metric, value)."""
    tr = Trainer(cfg)
    idx = _subset(tr, plan.measure_n)
    until = min(tr.total, plan.until or tr.total)
    rows: list[dict[str, Any]] = []
    state: dict[str, Any] = {}
    t0 = time.time()
    for step in range(until + 1):
        if plan.measures(step) or step == until:
            m = _measure(tr, idx, plan, state)
            rows += [{"step": step, "metric": k, "value": v} for k, v in m.items()]
            if checkpoints is not None:
                checkpoints.mkdir(parents=True, exist_ok=True)
                torch.save(tr._state(), checkpoints / f"step{step:05d}.pt")
            log(f"[{time.time() - t0:6.0f}s] step {step}: " + ", ".join(
                f"{k} {v:.4g}" for k, v in m.items()))
        if step == until:
            break
        rows += _one_step(tr, step)
        if not math.isfinite(rows[-3]["value"]):
            log(f"step {step}: batch loss non-finite")
            break
    return pd.DataFrame(rows)


def _one_step(tr: Trainer, step: int) -> list[dict[str, Any]]:
    """Take update ``step``; its batch loss, penalty and ‖Δθ‖/ε (the norm of the
    gradient it followed, penalty included)."""
    before = [p.detach().clone() for p in tr.model.parameters()]
    loss0, reg0 = float(tr.loss_sum), float(tr.reg_sum)
    tr.advance(step)
    moved = float(torch.sqrt(sq_norm([p.detach() - q for p, q in
                                      zip(tr.model.parameters(), before)])))
    return [{"step": step, "metric": "batch_loss", "value": float(tr.loss_sum) - loss0},
            {"step": step, "metric": "batch_penalty", "value": float(tr.reg_sum) - reg0},
            {"step": step, "metric": "step_grad_norm", "value": moved / tr.cfg.lr_at(step)}]


def replay(cfg: RunConfig, checkpoint: Path, steps: int,
           measure_every: int = 0, plan: TracePlan | None = None) -> pd.DataFrame:
    """Resume ``cfg`` (which may differ from the traced run in how the penalty's gradient
    is computed) from a checkpoint of :func:`trace` and take ``steps`` updates, recording
    what :func:`_one_step` records and the training loss and accuracy at the end (or at
    the first non-finite batch loss)."""
    tr = Trainer(cfg)
    tr._load_checkpoint(checkpoint)
    start = tr.step
    rows: list[dict[str, Any]] = []
    plan = plan or TracePlan()
    idx = _subset(tr, plan.measure_n)
    state: dict[str, Any] = {}
    for step in range(start, start + steps):
        if measure_every and (step - start) % measure_every == 0:
            rows += [{"step": step, "metric": k, "value": v}
                     for k, v in _measure(tr, idx, plan, state).items()]
        rows += _one_step(tr, step)
        if not math.isfinite(rows[-3]["value"]):
            break
    logits = predict(tr.model, tr.data.x_train)
    tl, ta = loss_acc(logits, tr.data.y_train, cfg.loss)
    rows += [{"step": tr.step, "metric": "train_loss", "value": float(tl)},
             {"step": tr.step, "metric": "train_accuracy", "value": float(ta)}]
    return pd.DataFrame(rows)


def step_norms(cfg: RunConfig, until: int | None = None) -> pd.DataFrame:
    """Train ``cfg`` from its initialization without measuring curvature, recording what
    :func:`_one_step` records at every update: how long an unclipped run's steps are,
    which is what a clipping norm has to be chosen against."""
    tr = Trainer(cfg)
    rows: list[dict[str, Any]] = []
    for step in range(min(tr.total, until or tr.total)):
        rows += _one_step(tr, step)
        if not math.isfinite(rows[-3]["value"]):
            break
    return pd.DataFrame(rows)


def first_nonfinite(rows: pd.DataFrame) -> float:
    """The first update whose batch loss was non-finite (NaN if none)."""
    d = rows[(rows.metric == "batch_loss") & ~np.isfinite(rows.value)]
    return float(d.step.min()) if len(d) else float("nan")


__all__ = ["TracePlan", "penalized_curvature_top", "trace", "replay", "step_norms",
           "first_nonfinite"]
