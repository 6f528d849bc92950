"""One plain training loop for every method the book compares.

The data sit on the device; a step takes index slices of device tensors. Training losses
are summed on the device and fetched only at evaluation points, so no step forces a host
sync. Divergence (a non-finite loss) is detected at evaluation points and ends the run
with ``diverged=True`` and the metrics so far.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from . import data as data_mod
from .config import RunConfig, check_against_data
from .gradients import batch_grad, penalized_grad, params_of, sq_norm, winsorized_grad
from .probes import (coherence_fractions, gd_multiplier, grad_stats, lanczos_top,
                     layer_grad_norms, loss_acc, predict, top_eigenvalue)
from .device import param_dtype, resolve_device, set_determinism, set_float32_matmul
from . import lowrank
from .models import has_batchnorm, model_for
from .optim import adam_update_, rmsprop_update_, sgd_update_


@dataclass
class TrainOutput:
    rows: list[dict[str, Any]]
    examples: dict[str, np.ndarray] | None
    diverged: bool
    steps_done: int
    device: str
    data_source: str
    data_source_detail: str
    n_params: int
    notes: list[str] = field(default_factory=list)


def schedule(cfg: RunConfig, n: int) -> tuple[int, int, list[int]]:
    """(steps per epoch, total steps, sorted evaluation steps including 0 and the end)."""
    per_epoch = 1 if cfg.method == "gd" else n // cfg.batch_size
    total = cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch
    every = cfg.eval_every or max(1, min(per_epoch, math.ceil(total / 10)))
    points = sorted(set(range(0, total + 1, every)) | {total})
    return per_epoch, total, points


def make_epoch_batches(cfg: RunConfig, n: int, gen: torch.Generator,
                       partition: torch.Tensor | None) -> torch.Tensor:
    """Index matrix (m, B) for one epoch, drawn on the CPU from the run's generator."""
    b = cfg.batch_size
    m = n // b
    if cfg.method == "sgd":
        if partition is not None:
            return partition[torch.randperm(m, generator=gen)]
        return torch.randperm(n, generator=gen)[: m * b].view(m, b)
    if cfg.method == "sgd-replacement":
        return torch.randint(0, n, (m, b), generator=gen)
    return torch.arange(n)[None]


# Runs also checkpoint on wall time, so a long run that dies loses at most this much work.
CHECKPOINT_SECONDS = 300.0


class DeadlineReached(RuntimeError):
    """Training stopped at a deadline after writing its checkpoint; rerun to resume."""


def drive(step: int, total: int, eval_points: Sequence[int], *,
          evaluate: Callable[[], bool], advance: Callable[[int], None],
          checkpoint: Callable[[], None] | None, checkpoint_every: int | None,
          progress: bool, desc: str, deadline: float | None = None) -> None:
    """The training loop of single and batched runs alike: at each evaluation point call
    ``evaluate`` (which returns False to stop, e.g. when everything diverged), take the
    step with ``advance(step)``, and checkpoint every ``checkpoint_every`` steps and every
    :data:`CHECKPOINT_SECONDS` of wall time. Past ``deadline`` (Unix time) it checkpoints
    and raises :class:`DeadlineReached`."""
    pending = [s for s in eval_points if s >= step]
    last_checkpoint = time.time()
    # disable=None lets tqdm hide the bar when stderr is not a terminal.
    bar = tqdm(total=total, initial=step, disable=True if not progress else None,
               desc=desc, file=sys.stderr, leave=False)
    try:
        while True:
            if pending and pending[0] == step:
                pending.pop(0)
                if not evaluate():
                    break
            if step >= total:
                break
            advance(step)
            step += 1
            bar.update(1)
            if checkpoint is not None and step < total and (
                    (checkpoint_every and step % checkpoint_every == 0)
                    or time.time() - last_checkpoint > CHECKPOINT_SECONDS):
                checkpoint()
                last_checkpoint = time.time()
            if deadline is not None and step < total and time.time() > deadline:
                if checkpoint is not None:
                    checkpoint()
                raise DeadlineReached(f"{desc}: deadline reached at step {step} of {total}")
    finally:
        bar.close()


def _state_to(state: dict[str, Any] | None, device: Any) -> dict[str, Any] | None:
    """An optimizer state (lists of tensors and numbers) moved to ``device``."""
    if state is None:
        return None
    return {k: [t.to(device) for t in v] if isinstance(v, list) else v
            for k, v in state.items()}


def penalty_impl(model: torch.nn.Module, device: torch.device, micro_batch: int) -> str:
    """How the finite-difference penalty is computed (see ``penalized_grad``)."""
    if device.type != "cpu" and not has_batchnorm(model):
        return "vmap"  # one call per group: kernel launches dominate on a GPU
    # On the CPU an MLP's penalty runs through Gram matrices where they are smaller than
    # the per-micro-batch gradients (engine/lowrank.py): about 2x a plain step against
    # about 3x for the loop (``implicitreg bench``).
    return "lowrank" if lowrank.pays(model, micro_batch) else "loop"


class Trainer:
    """Holds the state of one run so that it can be checkpointed and resumed."""

    def __init__(self, cfg: RunConfig, dataset: data_mod.Dataset | None = None,
                 checkpoint_path: Path | None = None):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        set_determinism(cfg.deterministic)
        if self.device.type == "cuda":
            set_float32_matmul(cfg.precision)
        self.data = dataset or data_mod.load_for(cfg, self.device)
        self.n = check_against_data(cfg, self.data.n_train)
        self._build_model()
        self._build_order()
        self._choose_kernels()
        self._build_probes()
        self._reset_state()
        self.checkpoint_path = checkpoint_path
        if checkpoint_path is not None and checkpoint_path.is_file():
            self._load_checkpoint(checkpoint_path)

    def _build_model(self) -> None:
        """The model, initialized from ``seed``, and a copy of its initial parameters."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.model = model_for(cfg, self.data.input_shape, self.data.num_classes).to(
            self.device, param_dtype(cfg.precision))
        if self.device.type == "cuda" and cfg.model != "mlp":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.init_params = [p.detach().clone() for p in self.model.parameters()]
        self.momentum_buffers: list[torch.Tensor] | None = None
        # Adam's or RMSprop's state (optim.adam_update_ / rmsprop_update_); None for SGD.
        self.opt_state: dict[str, Any] | None = None

    def _build_order(self) -> None:
        """The generators of minibatch order (CPU) and of per-step draws (device), and
        the schedule of steps and evaluations."""
        cfg = self.cfg
        self.gen = torch.Generator().manual_seed(
            cfg.seed if cfg.order_seed is None else cfg.order_seed)
        # Draws made every step live on the device, so that no step copies from the host.
        self.dev_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.per_epoch, self.total, self.eval_points = schedule(cfg, self.n)
        self.partition = None
        if cfg.fixed_partition:
            self.partition = torch.randperm(self.n, generator=self.gen).view(-1, cfg.batch_size)

    def _choose_kernels(self) -> None:
        """How micro-batch gradients are computed, and the autocast context."""
        # torch.func.vmap needs models without BatchNorm. On the CPU a Python loop over
        # micro-batches is faster for conv nets and for the penalty step (measured by
        # ``implicitreg bench``); on a GPU vmap saves kernel launches.
        no_bn = not has_batchnorm(self.model)
        on_gpu = self.device.type != "cpu"
        self.use_vmap = no_bn and (on_gpu or self.cfg.model == "mlp")
        b = (self.cfg.micro_batch if self.cfg.reg == "sgd-modified" else
             self.n if self.cfg.method == "gd" else self.cfg.batch_size)
        self.penalty_impl = penalty_impl(self.model, self.device, b)
        if self.device.type == "cuda" and self.cfg.precision == "bf16-autocast":
            self.autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)
        else:
            self.autocast = contextlib.nullcontext

    def _build_probes(self) -> None:
        """Fixed training subsets on which gradient statistics, sharpness and the
        coherence fractions are measured."""
        cfg = self.cfg
        eg = torch.Generator().manual_seed(cfg.data_seed + 12345)
        ne = min(cfg.eval_examples, self.n)
        self.eval_idx = torch.randperm(self.n, generator=eg)[:ne].to(self.device)
        if cfg.coherence_probe:
            npb = min(cfg.coherence_probe, self.n)
            self.probe_idx = torch.randperm(self.n, generator=eg)[:npb].to(self.device)
            flags = self.data.corrupt[self.probe_idx]
            # Null worlds: the same number of "corrupt" flags on random probe examples.
            nulls = [flags[torch.randperm(npb, generator=eg).to(self.device)]
                     for _ in range(cfg.coherence_nulls)]
            self.probe_masks = torch.stack([flags, *nulls])

    def _reset_state(self) -> None:
        """Step counter, recorded rows and the running sums kept on the device."""
        self.step = 0
        self.rows: list[dict[str, Any]] = []
        self.batches: torch.Tensor | None = None
        self.x_epoch: torch.Tensor | None = None
        self.first_learned = (np.full(self.n, -1, dtype=np.int64)
                              if self.cfg.tracks_examples else None)
        self.loss_sum = torch.zeros((), device=self.device)
        self.reg_sum = torch.zeros((), device=self.device)
        self.clip_sum = torch.zeros((), device=self.device)
        self.loss_count = 0
        # The last top Hessian eigenvector (Lanczos sharpness): the next measurement's start.
        self.sharpness_vec: list[torch.Tensor] | None = None
        self.diverged = False
        self.notes: list[str] = []
        self.t0 = time.time()

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step, "model": self.model.state_dict(),
            "momentum_buffers": (None if self.momentum_buffers is None
                                 else [b.cpu() for b in self.momentum_buffers]),
            "opt_state": _state_to(self.opt_state, "cpu"),
            "gen": self.gen.get_state(), "dev_gen": self.dev_gen.get_state(),
            "rows": self.rows, "batches": self.batches,
            "first_learned": self.first_learned, "loss_sum": self.loss_sum.cpu(),
            "reg_sum": self.reg_sum.cpu(), "loss_count": self.loss_count,
            "clip_sum": self.clip_sum.cpu(),
            "init_params": [p.cpu() for p in self.init_params],
            "x_epoch": None if self.x_epoch is None else self.x_epoch.cpu(),
            "torch_rng": torch.get_rng_state(), "elapsed": time.time() - self.t0,
            "sharpness_vec": (None if self.sharpness_vec is None
                              else [t.cpu() for t in self.sharpness_vec]),
        }

    def save_checkpoint(self) -> None:
        assert self.checkpoint_path is not None
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(self._state(), tmp)
        os.replace(tmp, self.checkpoint_path)

    def _load_checkpoint(self, path: Path) -> None:
        # RNG states must stay on the CPU; tensors are moved to the device one by one.
        st = torch.load(path, map_location="cpu", weights_only=False)
        self.step = st["step"]
        self.model.load_state_dict(st["model"])
        bufs = st["momentum_buffers"]
        self.momentum_buffers = None if bufs is None else [b.to(self.device) for b in bufs]
        self.opt_state = _state_to(st.get("opt_state"), self.device)
        self.gen.set_state(st["gen"])
        self.dev_gen.set_state(st["dev_gen"])
        self.rows = st["rows"]
        self.batches = None if st["batches"] is None else st["batches"].to(self.device)
        self.first_learned = st["first_learned"]
        self.loss_sum = st["loss_sum"].to(self.device)
        self.reg_sum = st["reg_sum"].to(self.device)
        self.clip_sum = st.get("clip_sum", torch.zeros(())).to(self.device)
        self.loss_count = st["loss_count"]
        self.init_params = [p.to(self.device) for p in st["init_params"]]
        self.x_epoch = None if st["x_epoch"] is None else st["x_epoch"].to(self.device)
        torch.set_rng_state(st["torch_rng"])
        self.t0 = time.time() - st["elapsed"]
        vec = st.get("sharpness_vec")
        self.sharpness_vec = None if vec is None else [t.to(self.device) for t in vec]
        self.notes.append(f"resumed from a checkpoint at step {self.step}")

    # ------------------------------------------------------------------ the loop
    def _record(self, split: str, metric: str, value: float | torch.Tensor) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach()
        self.rows.append({"step": self.step, "epoch": self.step / self.per_epoch,
                          "split": split, "metric": metric, "value": float(value)})

    def evaluated_at(self, step: int) -> bool:
        """Whether the metrics of ``step`` are recorded (true after a resume there)."""
        return any(r["step"] == step and r["metric"] == "accuracy" and r["split"] == "test"
                   for r in self.rows)

    def evaluate(self) -> None:
        cfg, d, model = self.cfg, self.data, self.model
        logits = predict(model, d.x_train, autocast=self.autocast)
        tl, ta = loss_acc(logits, d.y_train, cfg.loss)
        self._record("train", "loss", tl)
        self._record("train", "accuracy", ta)
        pred = logits.argmax(1)
        if cfg.label_noise > 0:
            fit = pred == d.y_train
            for name, mask in (("pristine", ~d.corrupt), ("corrupt", d.corrupt)):
                if bool(mask.any()):
                    self._record(name, "accuracy", fit[mask].float().mean())
            self._record("train", "clean_accuracy", (pred == d.clean_y_train).float().mean())
        if self.first_learned is not None:
            fit_np = (pred == d.y_train).cpu().numpy()
            new = (self.first_learned < 0) & fit_np
            self.first_learned[new] = self.step
        te_loss, te_acc = loss_acc(predict(model, d.x_test, autocast=self.autocast), d.y_test,
                                   cfg.loss)
        self._record("test", "loss", te_loss)
        self._record("test", "accuracy", te_acc)
        if self.loss_count:
            self._record("train", "running_loss", self.loss_sum / self.loss_count)
            if cfg.reg != "none":
                self._record("train", "running_penalty", self.reg_sum / self.loss_count)
            if cfg.clip_grad is not None:
                self._record("train", "clipped_fraction", self.clip_sum / self.loss_count)
        self.loss_sum.zero_()
        self.reg_sum.zero_()
        self.clip_sum.zero_()
        self.loss_count = 0
        if not math.isfinite(float(tl)):
            self.diverged = True
            return
        xe, ye = d.x_train[self.eval_idx], d.y_train[self.eval_idx]
        b = min(cfg.batch_size, xe.shape[0])
        if cfg.grad_stats:
            stats = grad_stats(model, xe, ye, b,
                               cfg.micro_batch if cfg.reg == "sgd-modified" else None,
                               use_vmap=self.use_vmap, autocast=self.autocast)
            for k, v in stats.items():
                self._record("eval", k, v)
        params = params_of(model)
        self._record("eval", "weight_norm", torch.sqrt(sq_norm(params)))
        self._record("eval", "distance_from_init", torch.sqrt(sq_norm(
            [p - q for p, q in zip(params, self.init_params)])))
        if cfg.layer_stats:
            for name, (mean_norm, dev) in layer_grad_norms(model, xe, ye, b, self.use_vmap).items():
                self._record(f"layer:{name}", "grad_mean_norm", mean_norm)
                self._record(f"layer:{name}", "grad_std", dev)
        if cfg.sharpness and cfg.sharpness_method == "lanczos":
            lam, self.sharpness_vec = lanczos_top(model, xe, ye, cfg.sharpness_iters,
                                                  self.sharpness_vec, seed=cfg.seed)
            self._record("eval", "sharpness", lam)
            r, share = gd_multiplier(model, xe, ye, self.sharpness_vec, cfg.lr_at(self.step))
            self._record("eval", "gd_multiplier", r)
            self._record("eval", "top_grad_share", share)
        elif cfg.sharpness:
            self._record("eval", "sharpness", top_eigenvalue(
                model, xe, ye, iters=cfg.sharpness_iters, seed=cfg.seed))
        if cfg.coherence_probe:
            f = coherence_fractions(model, d.x_train[self.probe_idx], d.y_train[self.probe_idx],
                                    self.probe_masks, autocast=self.autocast)
            self._record("probe", "f_corrupt", f[0])
            self._record("probe", "f_pristine", 1 - f[0])
            for j in range(1, len(f)):
                self._record("probe", f"f_corrupt_null{j}", f[j])
            self._record("probe", "corrupt_share", self.probe_masks[0].float().mean())

    def batches_for_epoch(self) -> torch.Tensor:
        return make_epoch_batches(self.cfg, self.n, self.gen, self.partition).to(self.device)

    def train_step(self, idx: torch.Tensor) -> None:
        cfg, d = self.cfg, self.data
        x_all = self.x_epoch if self.x_epoch is not None else d.x_train
        x, y = x_all[idx], d.y_train[idx]
        chunk = cfg.gd_chunk if cfg.method == "gd" else None
        if cfg.winsorize:
            loss, grads = winsorized_grad(self.model, x, y, cfg.winsorize, self.autocast)
            reg_val = None
        elif cfg.reg == "none":
            loss, grads = batch_grad(self.model, x, y, chunk, autocast=self.autocast)
            reg_val = None
        else:
            # For GD the micro-batches of the penalty are drawn afresh from the full batch
            # every step; a vmap group bounds memory like gd_chunk does for the loss.
            if cfg.method == "gd":
                perm = torch.randperm(x.shape[0], generator=self.dev_gen, device=x.device)
                x, y = x[perm], y[perm]
            group = max(1, cfg.gd_chunk // cfg.micro_batch) if cfg.method == "gd" else None
            loss, grads, reg_val = penalized_grad(
                self.model, x, y, reg=cfg.reg, lam=cfg.reg_lambda,
                micro_batch=cfg.micro_batch, method=cfg.penalty_grad, fd_step=cfg.fd_step,
                impl=self.penalty_impl, group=group,
                autocast=self.autocast)
        params = list(self.model.parameters())
        if cfg.clip_grad is not None:
            for p, g in zip(params, grads):
                p.grad = g  # clip_grad_norm_ scales the .grad tensors, i.e. grads, in place
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
            # how often clipping acted: it is not neutral across batch sizes
            self.clip_sum += (norm > cfg.clip_grad).float()
        lr = cfg.lr_at(self.step)
        if cfg.optimizer == "adam":
            self.opt_state = adam_update_(params, grads, self.opt_state, lr, cfg.weight_decay)
        elif cfg.optimizer == "rmsprop":
            self.opt_state = rmsprop_update_(params, grads, self.opt_state, lr, cfg.momentum,
                                             cfg.weight_decay)
        else:
            self.momentum_buffers = sgd_update_(
                params, grads, self.momentum_buffers, lr, cfg.momentum, cfg.weight_decay,
                uses_momentum=cfg.momentum != 0, uses_decay=cfg.weight_decay != 0)
        self.loss_sum += loss.detach()
        if reg_val is not None:
            self.reg_sum += reg_val.detach()
        self.loss_count += 1

    def advance(self, step: int) -> None:
        """Take training step ``step`` (drawing the epoch's batches at its start)."""
        pos = step % self.per_epoch
        if pos == 0 or self.batches is None:
            self.batches = self.batches_for_epoch()
            if self.cfg.augment:
                self.x_epoch = data_mod.augment(self.data.x_train, self.gen)
        self.train_step(self.batches[pos])
        self.step += 1

    def evaluate_if_due(self) -> bool:
        """Evaluate at the current step unless a resumed run already did; False once
        the run diverged."""
        if not self.evaluated_at(self.step):
            self.evaluate()
        return not self.diverged

    def train(self, progress: bool = True, on_step: Callable[[int], None] | None = None,
              deadline: float | None = None) -> TrainOutput:
        """Train to the end (or to divergence) and return the output."""
        cfg = self.cfg

        def advance(step: int) -> None:
            self.advance(step)
            if on_step is not None:
                on_step(self.step)

        drive(self.step, self.total, self.eval_points, evaluate=self.evaluate_if_due,
              advance=advance,
              checkpoint=self.save_checkpoint if self.checkpoint_path is not None else None,
              checkpoint_every=cfg.checkpoint_every, progress=progress and cfg.progress,
              desc=f"{cfg.method}/{cfg.reg} lr={cfg.lr:g}", deadline=deadline)
        return self.output()

    def output(self) -> TrainOutput:
        return TrainOutput(
            rows=self.rows,
            examples=None if self.first_learned is None else {
                "index": self.data.train_index,
                "corrupt": self.data.corrupt.cpu().numpy(),
                "label": self.data.y_train.cpu().numpy(),
                "clean_label": self.data.clean_y_train.cpu().numpy(),
                "first_learned_step": self.first_learned},
            diverged=self.diverged, steps_done=self.step, device=str(self.device),
            data_source=self.data.source, data_source_detail=self.data.source_detail,
            n_params=sum(p.numel() for p in self.model.parameters()), notes=self.notes)
