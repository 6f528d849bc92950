"""``implicitreg bench``: costs measured side by side in one process, printed as ratios.

Timings use random inputs of the real shapes, except the batched-CNN cases, which read
CIFAR-10 (skipped without it). Speed does not depend on pixel values, except that the
winsorized kernel skips ReLU units that are off, about half of them here.
Each case is warmed up, then timed ``repeats`` times, in 3 rounds; the minimum of the
3 medians is reported, so that a round slowed down by another process does not count.
Ratios are against a plain SGD step on the same model and batch. The report starts with
where it ran: device, instruction set PyTorch uses, threads, CPU model, and the vector
width of the compiled winsorization kernel.
"""
from __future__ import annotations

import json
import statistics
import time
from typing import Callable

import torch

from .engine import native
from .engine.data import DataError
from .engine.gradients import (batch_grad, microbatch_grads_loop, microbatch_grads_vmap,
                        penalized_grad, per_example_grads, winsorize, winsorized_grad)
from .engine.models import build_model
from .engine.training import penalty_impl


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


ROUNDS = 3


def timeit(fn: Callable[[], object], device: torch.device, repeats: int = 10,
           warmup: int = 2, rounds: int = ROUNDS) -> float:
    """Seconds per call: the minimum over ``rounds`` of the median of ``repeats`` calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t)
        medians.append(statistics.median(times))
    return min(medians)


def where(device: torch.device) -> dict[str, object]:
    """Where a benchmark ran, in the terms its ratios depend on."""
    from .golden import _cpu_model

    out: dict[str, object] = {
        "device": str(device), "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(), "cpu": _cpu_model(),
        "kernel_lanes": native.lanes() if device.type == "cpu" else None,
    }
    if device.type == "cuda":
        out["device_name"] = torch.cuda.get_device_name(device)
    return out


def _sgd_update(model: torch.nn.Module, grads: list[torch.Tensor], lr: float = 1e-3) -> None:
    with torch.no_grad():
        torch._foreach_add_(list(model.parameters()), grads, alpha=-lr)


def bench_steps(model_name: str, device: torch.device, batch: int = 128, micro: int = 32,
                repeats: int = 10, epoch_examples: int = 2048) -> dict[str, float]:
    shape = (1, 28, 28) if model_name == "mlp" else (3, 32, 32)
    torch.manual_seed(0)
    model = build_model(model_name, shape, 10, widths=(2048,)).to(device)
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    lam = 0.1 / 4

    def plain() -> None:
        _, g = batch_grad(model, x, y)
        _sgd_update(model, g)

    def reg(method: str, impl: str) -> Callable[[], None]:
        def f() -> None:
            _, g, _ = penalized_grad(model, x, y, reg="sgd-modified", lam=lam,
                                     micro_batch=micro, method=method, impl=impl)
            _sgd_update(model, g)
        return f

    xs, ys = x.view(batch // micro, micro, *shape), y.view(batch // micro, micro)
    engine_impl = penalty_impl(model, device, micro)
    t_plain = timeit(plain, device, repeats)
    out = {
        "plain_step_ms": 1e3 * t_plain,
        "fd_vmap_over_plain": timeit(reg("finite-difference", "vmap"), device, repeats) / t_plain,
        "fd_loop_over_plain": timeit(reg("finite-difference", "loop"), device, repeats) / t_plain,
        # What the engine runs: the Gram form for an MLP on the CPU (engine/lowrank.py).
        f"fd_engine_{engine_impl}_over_plain": timeit(
            reg("finite-difference", engine_impl), device, repeats) / t_plain,
        "double_backprop_over_plain": timeit(reg("double-backprop", "loop"), device,
                                             repeats) / t_plain,
    }
    t_loop = timeit(lambda: microbatch_grads_loop(model, xs, ys), device, repeats)
    t_vmap = timeit(lambda: microbatch_grads_vmap(model, xs, ys), device, repeats)
    out["microbatch_grads_loop_over_vmap"] = t_loop / t_vmap
    # One full-batch GD step vs one SGD epoch (B=batch) over the same examples.
    n = epoch_examples
    xe = torch.randn(n, *shape, device=device)
    ye = torch.randint(0, 10, (n,), device=device)

    def gd_step() -> None:
        _, g = batch_grad(model, xe, ye, chunk=1024)
        _sgd_update(model, g)

    def sgd_epoch() -> None:
        for i in range(0, n, batch):
            _, g = batch_grad(model, xe[i:i + batch], ye[i:i + batch])
            _sgd_update(model, g)

    out["gd_step_over_sgd_epoch"] = (timeit(gd_step, device, max(3, repeats // 3))
                                     / timeit(sgd_epoch, device, max(3, repeats // 3)))
    return {k: round(v, 3) for k, v in out.items()}


def bench_full_batch_penalty(device: torch.device, n: int = 512, micro: int = 32,
                             widths: tuple[int, ...] = (256,), repeats: int = 10
                             ) -> dict[str, float]:
    """Full-batch GD with the SGD-modified penalty over n/micro micro-batches (the
    arms of where_they_end: MLP 3072-256-10 on 512 CIFAR-shaped inputs), against a plain
    GD step on the same batch."""
    torch.manual_seed(0)
    shape = (3, 32, 32)
    model = build_model("mlp", shape, 10, widths=widths).to(device)
    x = torch.randn(n, *shape, device=device)
    y = torch.randint(0, 10, (n,), device=device)

    def plain() -> None:
        _sgd_update(model, batch_grad(model, x, y)[1])

    def reg(impl: str) -> Callable[[], None]:
        def f() -> None:
            _, g, _ = penalized_grad(model, x, y, reg="sgd-modified", lam=0.025,
                                     micro_batch=micro, impl=impl)
            _sgd_update(model, g)
        return f

    t_plain = timeit(plain, device, repeats)
    engine_impl = penalty_impl(model, device, micro)
    return {"gd_step_ms": round(1e3 * t_plain, 3),
            f"fd_engine_{engine_impl}_over_gd_step": round(
                timeit(reg(engine_impl), device, repeats) / t_plain, 3),
            "fd_loop_over_gd_step": round(timeit(reg("loop"), device, repeats) / t_plain, 3),
            "fd_vmap_over_gd_step": round(timeit(reg("vmap"), device, repeats) / t_plain, 3)}


def bench_winsorized(device: torch.device, batch: int = 100, c: int = 4,
                     repeats: int = 10) -> dict[str, float]:
    """Chatterjee's winsorized SGD step on the 3x256 MLP (MNIST shapes), against a plain
    step. The engine's step (the compiled kernel on a CPU) is compared with vmapped
    per-example gradients plus top-k, and with a Python loop over examples."""
    torch.manual_seed(0)
    model = build_model("mlp", (1, 28, 28), 10, widths=(256, 256, 256)).to(device)
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    params = list(model.parameters())

    def plain() -> None:
        _sgd_update(model, batch_grad(model, x, y)[1])

    def wins() -> None:
        _sgd_update(model, winsorized_grad(model, x, y, c)[1])

    def loop() -> None:
        per = [torch.autograd.grad(torch.nn.functional.cross_entropy(model(x[i:i + 1]),
                                                                     y[i:i + 1]), params)
               for i in range(batch)]
        _sgd_update(model, [winsorize(torch.stack(g), c).mean(0) for g in zip(*per)])

    def wins_vmap() -> None:
        _, gs = per_example_grads(model, x, y)
        _sgd_update(model, [winsorize(g, c).mean(0) for g in gs])

    t_plain = timeit(plain, device, repeats)
    t_wins = timeit(wins, device, repeats)
    t_vmap = timeit(wins_vmap, device, max(3, repeats // 3))
    t_loop = timeit(loop, device, max(3, repeats // 3))
    return {"plain_step_ms": round(1e3 * t_plain, 3),
            "compiled_kernel": native.kernel() is not None and device.type == "cpu",
            "winsorized_over_plain": round(t_wins / t_plain, 3),
            "vmap_topk_over_plain": round(t_vmap / t_plain, 3),
            "example_loop_over_winsorized": round(t_loop / t_wins, 3)}


def bench_throughput(device: torch.device, model_name: str = "resnet18", n: int = 2048,
                     batch: int = 128) -> dict[str, float]:
    """Training throughput (images/s) of the engine (data resident on the device, batches
    as index slices, no host sync per step) against the loop most research code uses
    (a Dataset of CPU tensors, a DataLoader, per-batch normalization and copy to the
    device, ``loss.item()`` every step), same model and batch size, one epoch each after
    a warm-up epoch. Random CIFAR-shaped images: speed does not depend on pixel values."""
    from torch.utils.data import DataLoader, TensorDataset

    from .engine.config import RunConfig
    from .engine.data import MEAN_STD, Dataset, _to_float
    from .engine.training import Trainer

    g = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    x = _to_float(raw.numpy(), "cifar10").to(device)
    y = labels.to(device)
    ds = Dataset("bench", x, y, x[:256], y[:256], "bench-random", "random CIFAR-shaped images",
                 tuple(str(i) for i in range(10)), y.clone(),
                 torch.zeros(n, dtype=torch.bool, device=device))
    cfg = RunConfig(dataset="cifar10", model=model_name, batch_size=batch, epochs=2,
                    eval_every=10**9, lr=0.01, progress=False, device=device.type,
                    precision="bf16-autocast" if device.type == "cuda" else "float32")
    trainer = Trainer(cfg, ds)
    trainer.evaluate = lambda: None  # throughput of training steps only
    steps = n // batch
    trainer.total = steps  # warm-up epoch
    trainer.eval_points = []
    trainer.train(progress=False)
    _sync(device)
    t0 = time.perf_counter()
    trainer.total = 2 * steps
    trainer.train(progress=False)
    _sync(device)
    t_engine = time.perf_counter() - t0

    torch.manual_seed(0)
    model = build_model(model_name, (3, 32, 32), 10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in MEAN_STD["cifar10"])
    loader = DataLoader(TensorDataset(raw, labels), batch_size=batch, shuffle=True,
                        drop_last=True)

    def epoch() -> None:
        for xb, yb in loader:
            xb = (xb.permute(0, 3, 1, 2).float() / 255 - mean) / std
            xb, yb = xb.to(device), yb.to(device)
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()

    epoch()
    _sync(device)
    t0 = time.perf_counter()
    epoch()
    _sync(device)
    t_ref = time.perf_counter() - t0
    images = steps * batch
    return {"engine_images_per_s": round(images / t_engine, 1),
            "reference_images_per_s": round(images / t_ref, 1),
            "engine_over_reference": round(t_ref / t_engine, 3)}


def bench_batched(device: torch.device, widths: tuple[int, ...] = (2048,),
                  ks: tuple[int, ...] = (8, 32), batch: int = 100, steps: int = 20,
                  repeats: int = 3, cnn_width: int | None = None) -> dict[str, float]:
    """Training steps of K models as one vmapped model
    (:class:`~implicitreg.engine.batched.BatchedTrainer`) against the same K runs one after the
    other through the engine's own step. The models are MLPs (784-widths-10, on vectors of
    MNIST's shape) or, given ``cnn_width``, the small CNN on CIFAR-10 at 16x16. Reported:
    runs x steps per second and the ratio."""
    from .engine.batched import BatchedTrainer
    from .engine.config import RunConfig

    out: dict[str, float] = {}
    for k in ks:
        # the small CNN needs images: CIFAR-10 pooled to 16x16
        model = (dict(dataset="synthetic", synthetic_dim=784, widths=widths)
                 if cnn_width is None else
                 dict(dataset="cifar10", downsample=2, model="cnn", cnn_width=cnn_width))
        base = RunConfig(n_train=batch * steps, n_test=batch, batch_size=batch, lr=0.01,
                         device=device.type, progress=False, **model)
        bt = BatchedTrainer([base.replace(seed=s, lr=0.01 * (1 + s % 4)) for s in range(k)])
        ts = bt.trainers

        def sequential() -> None:
            for t in ts:
                for pos in range(steps):
                    if pos == 0 or t.batches is None:
                        t.batches = t.batches_for_epoch()
                    t.train_step(t.batches[pos])

        def batched() -> None:
            for pos in range(steps):
                bt.train_step(pos, range(k))

        t_seq = timeit(sequential, device, repeats, warmup=1)
        t_bat = timeit(batched, device, repeats, warmup=1)
        out[f"K{k}_sequential_steps_per_s"] = round(k * steps / t_seq, 1)
        out[f"K{k}_batched_steps_per_s"] = round(k * steps / t_bat, 1)
        out[f"K{k}_batched_over_sequential"] = round(t_seq / t_bat, 3)
    return out


def main(device: str = "cpu", models: tuple[str, ...] = ("mlp", "cnn"),
         repeats: int = 10, kernel_march: str = "native") -> dict[str, object]:
    dev = torch.device(device)
    native.set_target(kernel_march)
    report: dict[str, object] = {**where(dev), "kernel_march": kernel_march,
                                 "batch": 128, "micro_batch": 32}
    for m in models:
        report[m] = bench_steps(m, dev, repeats=repeats)
    report["winsorized_mlp3x256_b100_c4"] = bench_winsorized(dev, repeats=repeats)
    report["gd_penalty_mlp3072_256_10_n512_b32"] = bench_full_batch_penalty(dev,
                                                                            repeats=repeats)
    report["batched_mlp784_2048_10_b100"] = bench_batched(dev)
    report["batched_mlp784_64_10_b100"] = bench_batched(dev, widths=(64,))
    for b in (32, 256):
        try:
            report[f"batched_cnn32_cifar16px_b{b}"] = bench_batched(
                dev, ks=(3,), batch=b, steps=8, cnn_width=32)
        except DataError as e:  # the one case that reads real images
            report[f"batched_cnn32_cifar16px_b{b}"] = f"skipped: {e}"
    if dev.type == "cuda":
        report["throughput_resnet18"] = bench_throughput(dev, "resnet18", n=16384, batch=512)
    else:  # a CPU cannot train ResNet-18 in a benchmark's time; the small CNN stands in
        report["throughput_cnn"] = bench_throughput(dev, "cnn", n=1024, batch=128)
    print(json.dumps(report, indent=1))
    return report
