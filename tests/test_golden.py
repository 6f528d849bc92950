"""The engine's numbers are pinned: tiny configurations retrained and compared with the
committed tests/golden/ files, within tolerances measured across instruction sets and
thread counts (see implicitreg.golden for what to do on a mismatch)."""
import json

import pytest

from implicitreg import golden
from implicitreg.engine import NUMERICS_VERSION
from implicitreg.runs.store import run_key

CHANGES = [(c, ch) for c in golden.CASES
           for ch in (("lr", "lambda") if golden.has_penalty(c) else ("lr",))]


@pytest.mark.parametrize("case", list(golden.CASES))
def test_golden_case_reproduces(case):
    problems = golden.compare(golden.load(case), golden.compute(case))
    assert not problems, (
        f"golden case {case} changed: {problems[:3]}. If the engine's numbers changed on "
        "purpose, bump NUMERICS_VERSION in src/implicitreg/engine/__init__.py and run "
        "`.venv/bin/implicitreg golden --write`; otherwise the change broke them.")


@pytest.mark.parametrize("case,change", CHANGES)
def test_a_one_percent_change_of_numbers_exceeds_the_tolerance(case, change):
    """The tolerances hide rounding, not a change of numbers: ε (or λ) scaled by 1.01
    under the committed key is reported."""
    problems = golden.compare(golden.load(case), golden.compute(case, change))
    assert problems and "tolerance" in problems[0]


@pytest.mark.slow
def test_goldens_hold_at_the_lowest_instruction_set_on_one_thread():
    """A second process forced to the instruction set every x86-64 CPU has, on one
    thread: goldens that hold on one kind of CPU only cannot land."""
    problems = golden.check_setting(*golden.PORTABLE)
    assert not problems, "\n".join(problems[:5])


@pytest.mark.parametrize("case", list(golden.CASES))
def test_each_tolerance_is_a_stated_multiple_of_a_measured_spread(case):
    """Measured under every setting of the grid, mixed ones included, and never
    bit-exact: no float metric is compared bit for bit."""
    data = golden.load(case)
    tol = data["tolerance"]
    metrics = {f"{r[1]}/{r[2]}" for run in data["runs"] for r in run["metrics"]}
    assert set(tol["rtol"]) == metrics == set(tol["spread"])
    assert tol["measured"]["multiple"] == golden.MULTIPLE
    assert tol["measured"]["floor"] == golden.FLOOR
    assert len(tol["measured"]["settings"]) == len(golden.ISA_LEVELS) * len(golden.THREADS)
    for name, rtol in tol["rtol"].items():
        assert rtol >= golden.FLOOR
        assert rtol == pytest.approx(max(golden.MULTIPLE * tol["spread"][name],
                                         golden.FLOOR), rel=1e-12)


def test_the_batched_tolerance_is_measured_on_the_same_grid():
    data = json.loads(golden.BATCHED_FILE.read_text())
    assert data["rtol"] == pytest.approx(golden.tolerance(data["spread"]), rel=1e-12)
    assert len(data["measured"]["settings"]) == len(golden.ISA_LEVELS) * len(golden.THREADS)


def test_a_rounding_of_a_metric_that_never_moved_passes():
    """One float32 ulp on a metric whose measured spread is nil (the rounding a summation
    order outside the measured grid produces) is within the tolerance; a divergence flag
    that flips is not."""
    import numpy as np

    expected = golden.load("sgd")
    still = [m for m, s in expected["tolerance"]["spread"].items() if s == 0]
    assert still
    changed = json.loads(json.dumps(expected))
    rows = [r for r in changed["runs"][0]["metrics"] if f"{r[1]}/{r[2]}" in still and r[3]]
    for row in rows:
        row[3] = float(np.nextafter(np.float32(row[3]), np.float32(np.inf)))
    assert rows and not golden.compare(expected, changed)
    changed["runs"][0]["diverged"] = not expected["runs"][0]["diverged"]
    assert golden.compare(expected, changed)


@pytest.mark.parametrize("case", list(golden.CASES))
def test_golden_keys_are_stable(case):
    """A refactor that changes no number keeps every run key (committed result sets
    stay valid); the committed files record the keys."""
    from implicitreg.engine.data import resolve_source

    expected = golden.load(case)
    for cfg, run in zip(golden.configs(case), expected["runs"]):
        assert run_key(cfg, resolve_source(cfg.dataset, cfg.data_root)) == run["key"]


def test_a_failure_names_the_metric_both_values_the_tolerance_and_the_setting():
    expected = golden.load("sgd")
    changed = json.loads(json.dumps(expected))
    row = changed["runs"][0]["metrics"][-1]
    rtol = expected["tolerance"]["rtol"][f"{row[1]}/{row[2]}"]
    row[3] *= 1 + 2 * rtol + 1e-6
    (msg,) = golden.compare(expected, changed)
    committed = expected["runs"][0]["metrics"][-1][3]
    for part in (f"{row[1]}/{row[2]}", repr(row[3]), repr(committed), f"{rtol:.2e}",
                 "ATen", "thread"):
        assert part in msg
    assert not golden.compare(expected, expected)


def test_a_deviation_within_the_tolerance_passes_and_one_past_it_fails():
    expected = golden.load("cnn_penalty")
    row = expected["runs"][0]["metrics"][-1]
    rtol = expected["tolerance"]["rtol"][f"{row[1]}/{row[2]}"]
    for factor, caught in ((0.5, False), (1.5, True)):
        changed = json.loads(json.dumps(expected))
        changed["runs"][0]["metrics"][-1][3] = row[3] * (1 + factor * rtol)
        assert bool(golden.compare(expected, changed)) is caught


def test_older_numerics_version_is_not_served(tmp_path, monkeypatch):
    """A run stored under another NUMERICS_VERSION has another key: it is retrained, or
    refused with both versions named when training is off."""
    import implicitreg as ir
    from implicitreg.runs import store as store_mod

    cfg = golden.configs("sgd")[0]
    st = ir.RunStore(tmp_path)
    old = ir.run(cfg, st)
    monkeypatch.setattr(store_mod, "NUMERICS_VERSION", NUMERICS_VERSION + 1)
    monkeypatch.setattr("implicitreg.runs.runner.NUMERICS_VERSION", NUMERICS_VERSION + 1)
    new_key = store_mod.run_key(cfg, "synthetic", NUMERICS_VERSION + 1)
    assert new_key != old.key
    assert st.older_version(cfg, "synthetic") == NUMERICS_VERSION
    with pytest.raises(ir.MissingRunError, match=f"NUMERICS_VERSION {NUMERICS_VERSION}"):
        ir.run(cfg, st, exec_config=ir.ExecConfig(no_train=True))
