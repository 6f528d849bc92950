"""Train K runs that share an architecture in one process, as one vmapped model.

The K parameter sets are stacked (``torch.func.stack_module_state``) and every step is one
``vmap`` of ``functional_call`` over them, each model on its own minibatch. Everything else
stays per run: each run has its own :class:`~implicitreg.engine.training.Trainer` (same
initialization, batch order and evaluation subset as when it trains alone), and at
evaluation points its slice of the stack is copied back into that trainer's model, which
then records the same metrics as a separate run would. So a batched run stores the same
result, up to float rounding, under the same key.

Runs may differ in the fields of :data:`PER_MODEL_FIELDS`; :func:`group_key` says which
configs can share a batch and :func:`why_not_batchable` why one cannot.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

from . import data as data_mod
from .config import RunConfig
from .data import input_spec
from .gradients import criterion, fd_penalty_grad, split_microbatches
from .models import model_for
from .optim import sgd_update_
from .training import TrainOutput, Trainer, drive

PER_MODEL_FIELDS = ("seed", "order_seed", "lr", "momentum", "weight_decay", "reg_scale")
"""Fields that may differ between the models of one batch."""


def why_not_batchable(cfg: RunConfig) -> str | None:
    """``None`` if ``cfg`` can train inside a batch of models, else the reason."""
    if cfg.model not in ("mlp", "cnn"):
        return f"model {cfg.model!r} (only mlp and cnn are batched)"
    if cfg.method == "gd":
        return "full-batch gd (one model already fills the device)"
    if cfg.winsorize:
        return "winsorized steps (they have their own kernel)"
    if cfg.augment:
        return "augmentation (drawn per run on the whole training set)"
    if cfg.clip_grad is not None:
        return "gradient clipping"
    if cfg.optimizer != "sgd":
        return f"optimizer {cfg.optimizer!r} (the batched update is SGD's)"
    if cfg.lr_schedule != "constant":
        return f"a {cfg.lr_schedule!r} learning-rate schedule (batched steps use one lr)"
    if cfg.precision == "bf16-autocast":
        return "bf16 autocast"
    if cfg.reg != "none" and cfg.penalty_grad != "finite-difference":
        return "double-backprop penalty gradients"
    if cfg.reg == "sgd-modified" and cfg.batch_size % cfg.micro_batch:
        return "a batch that micro-batches do not divide"
    return None


# On a CPU a batch of K models does the same arithmetic as K runs, so batching pays only
# where per-step overhead dominates, i.e. for small parameters x batch products. Measured
# on 2 cores (K = 8): 2.5x at 0.8M parameters x 8 examples, 2.1x at 0.8M x 32, 1.7x at
# 0.34M x 100, but 0.6-0.8x for the 1.6M-parameter 784-2048-10 MLP at 100.
CPU_BATCH_MAX_WORK = 50_000_000

# Convolutions are the exception: vmap turns K convolutions into one grouped convolution,
# which the CPU kernels run far slower than K plain ones. Measured on 2 cores with
# `implicitreg bench` (K = 3, width 32, CIFAR-10 at 16x16): batched over sequential 0.56
# at batch 32 and 0.47 at 256; widths 16 and the finite-difference penalty fare alike.
CPU_BATCHED_MODELS = ("mlp",)


def n_params(cfg: RunConfig) -> int:
    """Parameter count of the config's model, built on the meta device (no memory)."""
    shape, classes = input_spec(cfg)
    with torch.device("meta"):
        model = model_for(cfg, shape, classes)
    return sum(p.numel() for p in model.parameters())


def worth_batching(cfg: RunConfig) -> bool:
    """Whether batching this config is expected to be faster than running it alone:
    always on an accelerator; on a CPU for an MLP whose parameters x batch size is small."""
    from .device import resolve_device

    if resolve_device(cfg.device).type != "cpu":
        return True
    if cfg.model not in CPU_BATCHED_MODELS:
        return False
    return n_params(cfg) * cfg.batch_size <= CPU_BATCH_MAX_WORK


def group_key(cfg: RunConfig) -> str | None:
    """Configs with equal keys can train as one batch; ``None``: train this one alone."""
    if why_not_batchable(cfg) is not None:
        return None
    # The result-determining fields, plus where the one stacked model lives and reads from.
    d = {**cfg.key_dict(), "device": cfg.device, "data_root": cfg.data_root}
    for name in PER_MODEL_FIELDS:
        d.pop(name, None)
    return repr(sorted(d.items()))


class BatchedTrainer:
    """K :class:`Trainer` objects whose training steps run as one vmapped model."""

    def __init__(self, cfgs: Sequence[RunConfig], dataset: data_mod.Dataset | None = None,
                 checkpoint_paths: Sequence[Path | None] | None = None):
        keys = {group_key(c) for c in cfgs}
        if None in keys or len(keys) != 1:
            reasons = [why_not_batchable(c) for c in cfgs]
            raise ValueError("these configs cannot train as one batch: "
                             + (", ".join(r for r in reasons if r) or
                                "they differ in more than " + ", ".join(PER_MODEL_FIELDS)))
        paths = list(checkpoint_paths or [None] * len(cfgs))

        def trainers() -> list[Trainer]:
            first = Trainer(cfgs[0], dataset, checkpoint_path=paths[0])
            return [first] + [Trainer(c, first.data, checkpoint_path=p)
                              for c, p in zip(cfgs[1:], paths[1:])]

        self.trainers = trainers()
        if len({t.step for t in self.trainers}) > 1:
            # Checkpoints from different moments (the process died while writing them):
            # start every run of the group afresh rather than mix them.
            for p in paths:
                if p is not None and p.is_file():
                    p.unlink()
            self.trainers = trainers()
        first = self.trainers[0]
        for t in self.trainers:
            t.notes.append(f"trained in a batch of {len(cfgs)} models (one vmapped step); "
                           "its wall time is the batch's")
        self.cfg = cfgs[0]
        self.data = first.data
        self.device = first.device
        self.k = len(cfgs)
        models = [t.model for t in self.trainers]
        self.names = [n for n, _ in models[0].named_parameters()]
        stacked, _ = stack_module_state(models)
        self.params = [stacked[n].detach().clone() for n in self.names]
        self.buffers = self._momentum_buffers()
        self.base = copy.deepcopy(models[0]).to("meta")

        def vec(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=self.params[0].dtype, device=self.device)

        self.lr = vec([c.lr for c in cfgs])
        self.momentum = vec([c.momentum for c in cfgs])
        self.weight_decay = vec([c.weight_decay for c in cfgs])
        self.lam = vec([c.reg_lambda for c in cfgs])
        self.uses_momentum = any(c.momentum for c in cfgs)
        self.uses_decay = any(c.weight_decay for c in cfgs)
        self._step_fn = vmap(self._one_model, in_dims=(0, 0, 0, 0))
        # Per-epoch (K, m, B) minibatch indices, and the running loss and penalty of every
        # model summed on the device; a trainer receives its share when it is synced.
        self.epoch_idx: torch.Tensor | None = None
        self.loss_acc = torch.zeros(self.k, device=self.device)
        self.reg_acc = torch.zeros(self.k, device=self.device)

    # ---------------------------------------------------------------- the per-model step
    def _loss(self, p: tuple[torch.Tensor, ...], x: torch.Tensor, y: torch.Tensor
              ) -> torch.Tensor:
        out = functional_call(self.base, dict(zip(self.names, p)), (x,))
        return criterion(out, y, self.cfg.loss)

    def _one_model(self, p: tuple[torch.Tensor, ...], x: torch.Tensor, y: torch.Tensor,
                   lam: torch.Tensor):
        """(loss, gradient, penalty) of one model on its batch: the single-model
        gradient of :mod:`implicitreg.engine.gradients`, which vmap maps over models."""
        cfg = self.cfg
        if cfg.reg == "none":
            g, loss = grad(lambda r: (self._loss(r, x, y),) * 2, has_aux=True)(p)
            return loss, g, torch.zeros_like(loss)
        b = x.shape[0] if cfg.reg == "gd-modified" else cfg.micro_batch
        return fd_penalty_grad(self._loss, p, split_microbatches(x, b),
                               split_microbatches(y, b), lam, cfg.fd_step)

    def train_step(self, pos: int, active: Sequence[int]) -> None:
        """One step of every model on the ``pos``-th minibatch of its own epoch order."""
        ts = self.trainers
        if pos == 0 or self.epoch_idx is None:
            for t in ts:
                if pos == 0 or t.batches is None:  # a resumed trainer keeps its epoch
                    t.batches = t.batches_for_epoch()
            self.epoch_idx = torch.stack([t.batches for t in ts])
        idx = self.epoch_idx[:, pos]
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        loss, grads, reg = self._step_fn(tuple(self.params), x, y, self.lam)
        self.buffers = sgd_update_(self.params, grads, self.buffers, self.lr, self.momentum,
                                   self.weight_decay, self.uses_momentum, self.uses_decay)
        self.loss_acc += loss.detach().to(self.loss_acc.dtype)
        self.reg_acc += reg.detach().to(self.reg_acc.dtype)
        for k in active:
            ts[k].loss_count += 1
            ts[k].step += 1

    # ---------------------------------------------------------------- state exchange
    def _momentum_buffers(self) -> list[torch.Tensor] | None:
        """Stacked momentum buffers of resumed trainers (``None`` before the first step).
        A run without momentum has no buffer; zeros stand in for it."""
        if self.trainers[0].step == 0:
            return None
        bufs = []
        for t in self.trainers:
            state = t.momentum_buffers
            if t.cfg.momentum == 0:
                state = [torch.zeros_like(p) for p in t.model.parameters()]
            elif state is None:
                return None
            bufs.append(state)
        return [torch.stack([b[i] for b in bufs]).to(self.device) for i in range(len(self.names))]

    def _sync_out(self, k: int) -> None:
        """Copy model k's parameters, momentum buffers and running sums into its trainer."""
        t = self.trainers[k]
        t.loss_sum += self.loss_acc[k]
        if t.cfg.reg != "none":
            t.reg_sum += self.reg_acc[k]
        self.loss_acc[k] = 0
        self.reg_acc[k] = 0
        with torch.no_grad():
            for p, stacked in zip(t.model.parameters(), self.params):
                p.copy_(stacked[k])
            if self.buffers is not None and t.cfg.momentum:
                t.momentum_buffers = [buf[k].clone() for buf in self.buffers]

    def _save_checkpoints(self, active: list[int]) -> None:
        for k in active:
            if self.trainers[k].checkpoint_path is not None:
                self._sync_out(k)
                self.trainers[k].save_checkpoint()

    # ---------------------------------------------------------------- the loop
    def train(self, progress: bool = True, on_step: Callable[[int], None] | None = None,
              deadline: float | None = None) -> list[TrainOutput]:
        ts = self.trainers
        lead = ts[0]
        active = [k for k, t in enumerate(ts) if not t.diverged]

        def evaluate() -> bool:
            for k in list(active):
                t = ts[k]
                if not t.evaluated_at(t.step):
                    self._sync_out(k)
                    t.evaluate()
                if t.diverged:
                    active.remove(k)  # a diverging model stops alone
            return bool(active)

        def advance(step: int) -> None:
            self.train_step(step % lead.per_epoch, active)
            if on_step is not None:
                on_step(step + 1)

        drive(lead.step, lead.total, lead.eval_points, evaluate=evaluate, advance=advance,
              checkpoint=lambda: self._save_checkpoints(active),
              checkpoint_every=self.cfg.checkpoint_every, progress=progress,
              desc=f"{self.k} models {self.cfg.method}/{self.cfg.reg}", deadline=deadline)
        outs = []
        for k, t in enumerate(ts):
            if k in active:
                self._sync_out(k)
            outs.append(t.output())
        return outs
