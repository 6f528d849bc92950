"""Golden runs: tiny configurations whose metrics and run keys are committed under
``tests/golden/``, so that a change of the engine's numbers cannot go unnoticed.

``tests/test_golden.py`` retrains every case and compares it with the committed file. A
mismatch means the change alters numbers: bump ``NUMERICS_VERSION`` in
``src/implicitreg/engine/__init__.py`` (so that stored runs of the old numerics are not
served as current) and regenerate the files with::

    .venv/bin/implicitreg golden --write

The keys are committed too: a refactor that changes no number must leave them as they
are, or every committed result set would be retrained.
"""
from __future__ import annotations

import json
import math
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
# Float32 on one kind of CPU reproduces bit for bit; another CPU (other vector kernels)
# may round differently. Differences past this are a change of numbers.
RTOL, ATOL = 1e-5, 1e-7
FOLDER = Path(__file__).resolve().parents[2] / "tests" / "golden"


def configs(case: str) -> list:
    from .engine.config import RunConfig

    return [RunConfig.from_dict({**BASE, **c}) for c in CASES[case]]


def compute(case: str) -> dict[str, Any]:
    """Train a case from scratch (a throwaway store) and return what is committed."""
    from .runs.execution import ExecConfig
    from .runs.runner import run_batch

    cfgs = configs(case)
    with tempfile.TemporaryDirectory(prefix="implicitreg-golden-") as tmp:
        ex = ExecConfig(progress=False)
        # A batched case trains as one vmapped model; the others train alone.
        results = (run_batch(cfgs, tmp, force=True, exec_config=ex) if len(cfgs) > 1 else
                   [run_batch([c], tmp, force=True, exec_config=ex)[0] for c in cfgs])
    return {"case": case, "runs": [{
        "key": r.key,
        "config": r.config.key_dict(),
        "diverged": r.summary["diverged"],
        "metrics": [[int(row.step), row.split, row.metric, float(row.value)]
                    for row in r.metrics.itertuples()],
    } for r in results]}


def compare(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Differences in words (empty when the case reproduces)."""
    problems = []
    for i, (e, g) in enumerate(zip(expected["runs"], got["runs"])):
        if e["key"] != g["key"]:
            problems.append(f"run {i}: key {g['key']} != committed {e['key']}")
        if len(e["metrics"]) != len(g["metrics"]):
            problems.append(f"run {i}: {len(g['metrics'])} metric rows != "
                            f"{len(e['metrics'])}")
            continue
        for er, gr in zip(e["metrics"], g["metrics"]):
            same_row = er[:3] == gr[:3]
            a, b = er[3], gr[3]
            close = (math.isnan(a) and math.isnan(b)) or math.isclose(
                a, b, rel_tol=RTOL, abs_tol=ATOL)
            if not (same_row and close):
                problems.append(f"run {i}: step {gr[0]} {gr[1]}/{gr[2]} = {b!r}, "
                                f"committed {er[:3]} = {a!r}")
                break
    if len(expected["runs"]) != len(got["runs"]):
        problems.append("a different number of runs")
    return problems


def path(case: str) -> Path:
    return FOLDER / f"{case}.json"


def write(cases: list[str] | None = None) -> list[Path]:
    FOLDER.mkdir(parents=True, exist_ok=True)
    out = []
    for case in cases or list(CASES):
        p = path(case)
        p.write_text(json.dumps(compute(case), indent=1) + "\n")
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
        expected = json.loads(path(case).read_text())
        problems += [f"{case}: {p}" for p in compare(expected, compute(case))]
    for p in problems:
        print(p)
    print("golden runs reproduce" if not problems else
          "golden runs differ: if the change of numbers is intended, bump NUMERICS_VERSION "
          "in src/implicitreg/engine/__init__.py and run `implicitreg golden --write`")
    return problems
