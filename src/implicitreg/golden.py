"""Golden runs: tiny configurations whose metrics and run keys are committed under
``tests/golden/``, so that a change of the engine's numbers cannot go unnoticed.

``tests/test_golden.py`` retrains every case and compares it with the committed file. A
mismatch means the change alters numbers: bump ``NUMERICS_VERSION`` in
``src/implicitreg/engine/__init__.py`` (so that stored runs of the old numerics are not
served as current) and regenerate the files with::

    .venv/bin/implicitreg golden --write

The keys are committed too: a refactor that changes no number must leave them as they
are, or every committed result set would be retrained.

Float results are not bit-identical across CPUs: oneDNN, MKL and ATen pick their kernels
by the instruction set the CPU offers and by the thread count, each library on its own.
Each committed file therefore carries a relative tolerance per metric: :data:`MULTIPLE`
times the largest deviation measured under every setting of :data:`ISA_LEVELS` (the
three libraries forced down together and apart) and thread count this machine can be
forced to (``implicitreg golden --spread``), and never less than :data:`FLOOR`, a few
float32 roundings, since a metric that never moved here can move on a CPU none of those
settings reproduces. Run keys, rows, steps and divergence flags are compared exactly. A
deliberate change of numbers (the learning rate or the penalty's λ scaled by 1.01) must
still exceed the tolerance: ``tests/test_golden.py`` checks that too.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Every case trains in about a second on a CPU. Synthetic data needs no files; the CNN
# case reads the MNIST test split (offline archive or torchvision's files).
BASE = dict(dataset="synthetic", n_train=64, n_test=64, synthetic_dim=8, model="mlp",
            widths=(16,), batch_size=16, lr=0.2, steps=12, eval_every=4, eval_examples=64,
            device="cpu", deterministic=True, progress=False)
CASES: dict[str, list[dict[str, Any]]] = {
    "sgd": [dict(method="sgd")],
    "sgd_momentum_decay": [dict(method="sgd", momentum=0.9, weight_decay=5e-3)],
    "sgd_replacement": [dict(method="sgd-replacement")],
    "gd": [dict(method="gd", gd_chunk=24)],
    "gd_fd_penalty": [dict(method="gd", reg="gd-modified", reg_scale=2.0)],
    "sgd_fd_penalty": [dict(method="sgd", reg="sgd-modified", micro_batch=4)],
    "sgd_double_backprop": [dict(method="sgd", reg="sgd-modified", micro_batch=4,
                                 penalty_grad="double-backprop")],
    "winsorized": [dict(method="sgd", winsorize=2)],
    "label_noise": [dict(method="sgd", label_noise=0.25, sharpness=True,
                         sharpness_iters=5, layer_stats=True)],
    "cnn_penalty": [dict(dataset="mnist", n_train=64, n_test=64, model="cnn", cnn_width=4,
                         method="sgd", reg="sgd-modified", micro_batch=8, steps=8)],
    "cnn_downsample": [dict(dataset="mnist", n_train=64, n_test=64, model="cnn",
                            cnn_width=4, downsample=2, method="sgd", steps=8)],
    "mse": [dict(method="sgd", loss="mse", reg="sgd-modified", micro_batch=4)],
    "tanh": [dict(method="gd", activation="tanh", loss="mse", sharpness=True,
                  sharpness_method="lanczos", sharpness_iters=8)],
    "batched_3": [dict(method="sgd", seed=s, reg="sgd-modified", micro_batch=4,
                       momentum=0.5) for s in range(3)],
}
FOLDER = Path(__file__).resolve().parents[2] / "tests" / "golden"

# Instruction-set levels, forced through the variables ATen, oneDNN and MKL read at
# start-up. They can only lower what the CPU offers: "avx512" on an AVX2 machine runs
# AVX2 kernels. "default" is the lowest level every x86-64 CPU has. A variable left out
# leaves its library at what the CPU offers: each library picks its kernels on its own,
# so a machine can combine them in ways no level forced on all three reproduces (a
# variable set for one library only, a build of one library that lacks a level).
ISA_LEVELS: dict[str, dict[str, str]] = {
    "native": {},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
               "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "libs-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "aten-default+onednn-avx2": {"ATEN_CPU_CAPABILITY": "default",
                                 "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "aten-default+libs-avx2": {"ATEN_CPU_CAPABILITY": "default",
                               "ONEDNN_MAX_CPU_ISA": "AVX2",
                               "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}
THREADS = (1, 2, 4)
# The settings CI re-checks in a second process on every run: the lowest level, one thread.
PORTABLE = ("default", 1)
# Tolerance = MULTIPLE × the largest measured deviation: other CPUs (other cache sizes,
# other MKL code paths) round differently again, by amounts of the same order.
MULTIPLE = 10
# The least relative tolerance of any float metric, 4 float32 ulps (an ulp is at most
# 2^-23 of the value): a metric that never moved under the measured settings still rounds
# differently under a summation order none of them produces. It stays orders of
# magnitude below what a deliberate change (:data:`DELIBERATE`) moves.
FLOOR = 4 * 2.0 ** -23
# Relative deviations are taken against max(|committed|, SCALE), so that values near
# zero are compared on an absolute scale.
SCALE = 1e-6
# The deliberate change that every case must still detect.
DELIBERATE = 1.01


def tolerance(spread: float) -> float:
    """The relative tolerance of a metric whose largest measured deviation is ``spread``."""
    return max(MULTIPLE * spread, FLOOR)


def configs(case: str, change: str | None = None) -> list:
    """The case's configurations; ``change`` ("lr" or "lambda") multiplies the learning
    rate or the penalty's scale by :data:`DELIBERATE` (a deliberate change of numbers)."""
    from .engine.config import RunConfig

    out = []
    for c in CASES[case]:
        cfg = RunConfig.from_dict({**BASE, **c})
        if change == "lr":
            cfg = cfg.replace(lr=cfg.lr * DELIBERATE)
        elif change == "lambda":
            cfg = cfg.replace(reg_scale=cfg.reg_scale * DELIBERATE)
        out.append(cfg)
    return out


def has_penalty(case: str) -> bool:
    return any(c.get("reg", "none") != "none" for c in CASES[case])


def compute(case: str, change: str | None = None) -> dict[str, Any]:
    """Train a case from scratch (a throwaway store) and return what is committed. With a
    ``change`` (see :func:`configs`) the committed keys are kept, so that the result
    reads as an engine change that moved the numbers of the same configuration."""
    from .runs.execution import ExecConfig
    from .runs.runner import run_batch

    cfgs = configs(case, change)
    with tempfile.TemporaryDirectory(prefix="implicitreg-golden-") as tmp:
        ex = ExecConfig(progress=False)
        # A batched case trains as one vmapped model; the others train alone.
        results = (run_batch(cfgs, tmp, force=True, exec_config=ex) if len(cfgs) > 1 else
                   [run_batch([c], tmp, force=True, exec_config=ex)[0] for c in cfgs])
    keys = ([run["key"] for run in load(case)["runs"]] if change else
            [r.key for r in results])
    return {"case": case, "runs": [{
        "key": key,
        "config": r.config.key_dict(),
        "diverged": r.summary["diverged"],
        "metrics": [[int(row.step), row.split, row.metric, float(row.value)]
                    for row in r.metrics.itertuples()],
    } for key, r in zip(keys, results)]}


def where() -> str:
    """The instruction set and thread count this process computes with, in words."""
    import torch

    forced = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                                         "MKL_ENABLE_INSTRUCTIONS") if k in os.environ}
    return (f"ATen {torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} thread(s)"
            + (f", forced {forced}" if forced else ""))


def deviation(committed: float, got: float) -> float:
    """Relative deviation on the scale max(|committed|, SCALE); 0 for two NaNs."""
    if math.isnan(committed) or math.isnan(got):
        return 0.0 if math.isnan(committed) and math.isnan(got) else math.inf
    return abs(got - committed) / max(abs(committed), SCALE)


def deviations(expected: dict[str, Any], got: dict[str, Any]) -> dict[str, float]:
    """The largest deviation per metric ("split/metric") over every run and step."""
    out: dict[str, float] = {}
    for e, g in zip(expected["runs"], got["runs"]):
        for er, gr in zip(e["metrics"], g["metrics"]):
            name = f"{er[1]}/{er[2]}"
            out[name] = max(out.get(name, 0.0), deviation(er[3], gr[3]))
    return out


def compare(expected: dict[str, Any], got: dict[str, Any],
            context: str | None = None) -> list[str]:
    """Differences in words (empty when the case reproduces), each naming the metric,
    both values, the tolerance and where it ran. A metric without a committed tolerance
    (a case written but not yet measured) is held to :data:`FLOOR`."""
    tol = expected.get("tolerance", {}).get("rtol", {})
    ctx = context or where()
    problems = []
    if len(expected["runs"]) != len(got["runs"]):
        problems.append("a different number of runs")
    for i, (e, g) in enumerate(zip(expected["runs"], got["runs"])):
        if e["key"] != g["key"]:
            problems.append(f"run {i}: key {g['key']} != committed {e['key']}")
        if e["diverged"] != g["diverged"]:
            problems.append(f"run {i}: diverged {g['diverged']} != committed "
                            f"{e['diverged']}")
        if len(e["metrics"]) != len(g["metrics"]):
            problems.append(f"run {i}: {len(g['metrics'])} metric rows != "
                            f"{len(e['metrics'])}")
            continue
        for er, gr in zip(e["metrics"], g["metrics"]):
            name = f"{er[1]}/{er[2]}"
            rtol = tol.get(name, FLOOR)
            if er[:3] != gr[:3]:
                problems.append(f"run {i}: row {gr[:3]} where the committed file has "
                                f"{er[:3]}")
                break
            if deviation(er[3], gr[3]) > rtol:
                problems.append(
                    f"run {i}: step {gr[0]} {name} = {gr[3]!r}, committed {er[3]!r} "
                    f"(relative deviation {deviation(er[3], gr[3]):.2e}, tolerance "
                    f"{rtol:.2e}; {ctx})")
                break
    return problems


def path(case: str) -> Path:
    return FOLDER / f"{case}.json"


def load(case: str) -> dict[str, Any]:
    return json.loads(path(case).read_text())


# ------------------------------------------------- batched runs against separate runs
def batched_variants(reg: str) -> list:
    """Five configurations that train as one vmapped batch (they differ in seed, ε,
    momentum, weight decay and minibatch order; with a penalty, in λ too)."""
    from .engine.config import RunConfig

    base = RunConfig(dataset="synthetic", n_train=256, n_test=128, synthetic_dim=16,
                     widths=(32,), batch_size=32, epochs=3, lr=0.1, progress=False,
                     eval_every=4, reg=reg, reg_scale=2.0, micro_batch=8)
    cfgs = [base.replace(seed=0), base.replace(seed=1, lr=0.05),
            base.replace(seed=2, momentum=0.9), base.replace(seed=3, weight_decay=5e-3),
            base.replace(seed=4, order_seed=9)]
    if reg != "none":
        cfgs = [c.replace(reg_scale=1.0 + c.seed) for c in cfgs]
    return cfgs


BATCHED_REGS = ("none", "sgd-modified", "gd-modified")
BATCHED_FILE = FOLDER / "batched_vs_separate.json"


def metric_deviation(a, b) -> float:
    """The largest relative deviation between the metric tables of two results (same
    rows), on the scale max(|a|, SCALE)."""
    cols = ["step", "split", "metric"]
    ma = a.metrics.sort_values(cols).reset_index(drop=True)
    mb = b.metrics.sort_values(cols).reset_index(drop=True)
    if not ma[cols].equals(mb[cols]):
        return math.inf
    return max((deviation(float(x), float(y)) for x, y in zip(ma.value, mb.value)),
               default=0.0)


def batched_vs_separate(reg: str) -> float:
    """Train the variants one by one and as one batch; the largest relative deviation."""
    from .runs.execution import ExecConfig
    from .runs.runner import run, run_batch

    ex = ExecConfig(progress=False)
    cfgs = batched_variants(reg)
    with tempfile.TemporaryDirectory(prefix="implicitreg-batched-") as tmp:
        alone = [run(c, Path(tmp) / "alone", exec_config=ex) for c in cfgs]
        together = run_batch(cfgs, Path(tmp) / "together", exec_config=ex)
        return max(metric_deviation(a, b) for a, b in zip(alone, together))


def batched_tolerance() -> float:
    return json.loads(BATCHED_FILE.read_text())["rtol"]


# ------------------------------------------------------ measurement in other settings
def emit(cases: list[str] | None = None, batched: bool = True) -> dict[str, Any]:
    """Everything a setting is judged on, computed in this process."""
    return {"where": where(),
            "cases": {c: compute(c) for c in cases or list(CASES)},
            "batched": {r: batched_vs_separate(r) for r in BATCHED_REGS} if batched else {}}


def run_in(isa: str, threads: int, cases: list[str] | None = None,
           batched: bool = True) -> dict[str, Any]:
    """:func:`emit` in a fresh Python process at a forced instruction-set level and
    thread count (the variables are read once, at start-up)."""
    env = {**os.environ, **ISA_LEVELS[isa], "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    for name in set().union(*ISA_LEVELS.values()) - set(ISA_LEVELS[isa]):
        env.pop(name, None)
    args = [sys.executable, "-m", "implicitreg.golden", "--emit", "--threads", str(threads)]
    args += ["--no-batched"] if not batched else []
    args += list(cases or [])
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"golden run at {isa}/{threads} thread(s) failed:\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def check_setting(isa: str, threads: int, cases: list[str] | None = None) -> list[str]:
    """Problems of every golden case and of batched-against-separate runs, computed in a
    process forced to ``isa`` and ``threads``."""
    out = run_in(isa, threads, cases)
    problems = []
    for case, got in out["cases"].items():
        problems += [f"{case}: {p}" for p in compare(load(case), got, out["where"])]
    tol = batched_tolerance()
    for reg, dev in out["batched"].items():
        if dev > tol:
            problems.append(f"batched vs separate ({reg}): relative deviation {dev:.2e} > "
                            f"tolerance {tol:.2e}; {out['where']}")
    return problems


def measure_spread(cases: list[str] | None = None, progress: bool = True
                   ) -> dict[str, Any]:
    """Every case and the batched-against-separate runs under each setting of
    :data:`ISA_LEVELS` and thread count: the largest deviation from the committed values
    per metric. The batched-against-separate runs are measured only when every case is
    (``batched`` is then a number, otherwise ``None``), so that re-measuring one new case
    keeps the committed batched tolerance."""
    every = not cases or set(cases) == set(CASES)
    cases = cases or list(CASES)
    settings = [(isa, t) for isa in ISA_LEVELS for t in THREADS]
    spread: dict[str, dict[str, float]] = {c: {} for c in cases}
    batched = 0.0
    seen = []
    for isa, t in settings:
        out = run_in(isa, t, cases, batched=every)
        seen.append(out["where"])
        if progress:
            print(f"measured under {isa} / {t} thread(s): {out['where']}", file=sys.stderr)
        for case in cases:
            for name, dev in deviations(load(case), out["cases"][case]).items():
                spread[case][name] = max(spread[case].get(name, 0.0), dev)
        batched = max([batched, *out["batched"].values()])
    import torch

    return {"spread": spread, "batched": batched if every else None, "settings": seen,
            "torch": torch.__version__, "cpu": _cpu_model(), "machine": platform.machine()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_tolerances(measured: dict[str, Any]) -> None:
    """Set each committed file's tolerances from a :func:`measure_spread` result; the
    committed values are left as they are."""
    note = {"multiple": MULTIPLE, "floor": FLOOR, "scale": SCALE,
            "torch": measured["torch"], "cpu": measured["cpu"],
            "settings": measured["settings"]}
    for case, per_metric in measured["spread"].items():
        data = load(case)
        data["tolerance"] = {
            "rtol": {m: tolerance(s) for m, s in sorted(per_metric.items())},
            "spread": dict(sorted(per_metric.items())), "measured": note}
        path(case).write_text(json.dumps(data, indent=1) + "\n")
    if measured["batched"] is None:
        return
    BATCHED_FILE.write_text(json.dumps({
        "rtol": tolerance(measured["batched"]), "spread": measured["batched"],
        "measured": note, "configs": "implicitreg.golden.batched_variants"}, indent=1) + "\n")


def write(cases: list[str] | None = None) -> list[Path]:
    """Regenerate the committed values (after a deliberate NUMERICS_VERSION bump),
    keeping each file's tolerances; re-measure them with ``--spread`` afterwards."""
    FOLDER.mkdir(parents=True, exist_ok=True)
    out = []
    for case in cases or list(CASES):
        p = path(case)
        data = compute(case)
        if p.is_file() and "tolerance" in json.loads(p.read_text()):
            data["tolerance"] = json.loads(p.read_text())["tolerance"]
        p.write_text(json.dumps(data, indent=1) + "\n")
        out.append(p)
        print(f"wrote {p}")
    return out


def check(cases: list[str] | None = None) -> list[str]:
    """Retrain and compare; print and return the problems."""
    problems = []
    for case in cases or list(CASES):
        if not path(case).is_file():
            problems.append(f"{case}: no committed file {path(case)}")
            continue
        problems += [f"{case}: {p}" for p in compare(load(case), compute(case))]
    for p in problems:
        print(p)
    print("golden runs reproduce" if not problems else
          "golden runs differ: if the change of numbers is intended, bump NUMERICS_VERSION "
          "in src/implicitreg/engine/__init__.py and run `implicitreg golden --write`")
    return problems


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="internal: golden runs in this process")
    ap.add_argument("--emit", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-batched", action="store_true")
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    print(json.dumps(emit(a.cases or None, batched=not a.no_batched)))
