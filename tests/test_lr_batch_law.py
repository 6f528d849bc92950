"""The lr_batch_law chapter's analysis on synthetic results: its verdicts, their premises,
the design's stages and the profiles."""
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from implicitreg.chapters import lr_batch_law as L, registry
from implicitreg.chapters.criteria import criteria_hash

from conftest import ledger_glue_problems

ROOT = Path(__file__).resolve().parents[1]
REGISTERED_HASH = "1320694094a0d2c5"


class FakeResult:
    """What analyze() reads from a run: config.seed, final(), summary."""

    def __init__(self, seed, test, train=1.0, diverged=False):
        self.config = SimpleNamespace(seed=seed, steps=10)
        self.values = {("accuracy", "test"): test, ("accuracy", "train"): train}
        self.summary = {"diverged": diverged}
        self.cached = True

    def final(self, metric, split):
        return float(self.values[(metric, split)])

    def curve(self, metric, split):
        return pd.DataFrame({"step": [10], "epoch": [1], "value": [self.final(metric, split)]})


def _params(**kw):
    return L.profile("ci", **{"batch_sizes": [16, 32, 64, 128], "seeds": [0, 1, 2], **kw})


def _runs(p, slope=1.0, shift=0, train=1.0, pen=(0.50, 0.58, 0.60), pen_train=None,
          noise=0.001):
    """Confirmation grids √2 apart centred on the best ε = 0.05·(B/16)^slope, shifted by
    ``shift`` grid points; test accuracy peaks at the best ε. Penalty arms with mean test
    accuracies ``pen`` (small ε, penalized, best ε)."""
    rng = np.random.default_rng(0)
    grid, conf = {}, []
    for B in p.batch_sizes:
        centre = 0.05 * (B / 16) ** slope
        lrs = [centre * math.sqrt(2) ** (i + shift) for i in (-1, 0, 1)]
        grid[B] = lrs
        for lr in lrs:
            acc = 0.6 - 0.05 * abs(math.log(lr / centre))
            for s in p.seeds:
                conf.append((L.Run("confirmation", "grid", B, lr, s),
                             FakeResult(s, acc + noise * rng.standard_normal(), train)))
    eps_s, eps_b = min(p.lrs), float(grid[p.penalty_batch][1 - shift])
    arms = L.penalty_arms(eps_s, eps_b)
    penalty = []
    for arm, mean, lr in zip(arms, pen, (eps_s, eps_s, eps_b)):
        for s in p.seeds:
            penalty.append((L.Run("penalty", arm, p.penalty_batch, lr, s),
                            FakeResult(s, mean + noise * rng.standard_normal(),
                                       (pen_train or {}).get(arm, 1.0))))
    return L.Runs([], grid, conf, eps_s, eps_b, penalty)


def test_a_law_with_slope_one_and_a_closing_penalty_are_reproduced():
    p = _params()
    a = L.analyze(_runs(p), p)
    assert a.slope.slope == pytest.approx(1.0, abs=1e-6)
    assert a.glue["lb_v1"] == "reproduced", a.glue["lb_v1"]
    assert a.glue["lb_v1_registered"] == "reproduced"
    assert a.glue["lb_v2"] == "reproduced", a.glue["lb_closure"]
    assert set(a.verdicts) == {c.claim for c in L.all_criteria()}


def test_each_slope_verdict_is_glued_beside_its_own_statistic():
    # B = 128's best cell does not fit: the slope over every cell and the slope over the
    # cells that fit differ, and so do their verdicts
    p = _params()
    runs = _runs(p, noise=0.0005)
    centre = 0.05 * 128 / 16
    for c, r in runs.confirmation:
        if c.B == 128 and c.lr == pytest.approx(centre):
            r.values[("accuracy", "train")] = 0.9
    a = L.analyze(runs, p)
    assert not ledger_glue_problems(L, a)
    g = a.glue
    assert g["lb_slope"].startswith(f"{a.slope.slope:.2f} [{a.slope.low:.2f}")
    assert g["lb_slope_fitted"].startswith(f"{a.slope_fitted.slope:.2f} "
                                           f"[{a.slope_fitted.low:.2f}")
    assert g["lb_slope"][:4] != g["lb_slope_fitted"][:4]
    assert g["lb_detectable_registered"].startswith(f"{a.slope.detectable:.2f}")
    assert g["lb_verdict_slope"] == a.verdicts["slope"].text
    assert g["lb_verdict_slope_r2"] == a.verdicts["slope-r2"].text != g["lb_verdict_slope"]


def test_a_penalty_that_closes_nothing_is_not_reproduced():
    p = _params()
    a = L.analyze(_runs(p, pen=(0.50, 0.50, 0.60)), p)
    assert a.glue["lb_v2"] == "not reproduced"
    assert "0.5" in a.glue["lb_pen_detectable"]  # power from the SD assumed


def test_an_arm_that_did_not_fit_is_not_assessable_with_its_numbers():
    p = _params()
    arms = L.penalty_arms(min(p.lrs), 0.05 * (p.penalty_batch / 16))
    a = L.analyze(_runs(p, pen_train={arms[1]: 0.9}), p)
    assert a.glue["lb_v2"].startswith("not assessable: "), a.glue["lb_v2"]
    assert "at 90% training accuracy in 3 seeds, threshold 99%" in a.glue["lb_v2"]
    assert a.glue["lb_v2_registered"] == "reproduced"  # shown beside it
    a = L.analyze(_runs(p, train=0.95), p)
    assert a.verdicts["slope-r1"].text.startswith("not assessable: ")
    assert "B = 16 at 95% training accuracy" in a.verdicts["slope-r1"].text
    # slope-r2 takes each best ε among the cells that fit: here none does
    assert a.glue["lb_v1"].startswith("not assessable: 0 batch size(s) have a best ε")


def test_a_best_eps_at_the_edge_of_its_grid_is_a_failed_premise():
    p = _params()
    a = L.analyze(_runs(p, shift=1), p)
    assert a.glue["lb_v1"].startswith("not assessable: ")
    assert "at the edge for B = 16, 32, 64, 128" in a.glue["lb_v1"]


def test_no_gap_to_close_and_no_penalty_runs():
    p = _params()
    a = L.analyze(_runs(p, pen=(0.60, 0.60, 0.60)), p)
    assert a.glue["lb_v2"].startswith("not assessable: the best ε is not established")
    r = _runs(p)
    r.penalty = []
    r.eps_b = r.eps_s
    assert L.analyze(r, p).glue["lb_v2"].startswith("not assessable: the best ε")


def test_detectable_slope_from_the_sd_assumed():
    # three batch sizes a factor 2 apart see only slopes above 1: inconclusive
    assert L.detectable_slope([16, 32, 64]) > 1
    assert L.detectable_slope([16, 32, 64, 128]) < 1
    assert math.isnan(L.detectable_slope([16, 32]))


def test_design_stages():
    p = L.profile("ci")
    pilot = L.design(p)
    assert len(pilot) == len(p.batch_sizes) * len(p.lrs) * len(p.pilot_seeds)
    assert all(cfg.n_train == p.pilot_n_train and cfg.data_seed == p.pilot_data_seed
               for _, cfg in pilot)
    grid = {B: [0.05, 0.07] for B in p.batch_sizes}
    conf = L.design_confirmation(p, grid)
    assert len(conf) == len(p.batch_sizes) * 2 * len(p.seeds)
    assert all((cfg.batch_size, cfg.lr, cfg.seed) == (r.B, r.lr, r.seed) for r, cfg in conf)
    pen = L.design_penalty(p, 0.0125, 0.1)
    assert len(pen) == 3 * len(p.seeds)
    assert {cfg.reg_scale for _, cfg in pen if cfg.reg == "sgd-modified"} == {7.0}
    assert L.design_penalty(p, 0.1, 0.1) == []


def test_profiles_are_complete_instances_and_the_notebook_is_the_ci_profile():
    from implicitreg.book import parameters
    from implicitreg.chapters.base import profiles

    for name in profiles(L.CHAPTER):
        L.profile(name)
    nb = parameters.notebook_parameters(ROOT / "notebooks" / "lr_batch_law.ipynb")
    assert set(nb) - {"profile", "executed_at", "exec_config"} == set(L.Params.names())
    assert L.Params.from_values(nb) == L.profile("ci")


def test_registered_criteria_are_unchanged():
    assert L.registered_hash() == criteria_hash(L.CRITERIA) == REGISTERED_HASH
    assert {r.original for r in L.REVISIONS} == {c.claim for c in L.CRITERIA} | {
        "slope-r1", "penalty-r1"}
    times = registry.item_times(L.CHAPTER)
    assert all(times[r.revised.claim] >= times[r.original] for r in L.REVISIONS)


def test_only_cells_that_fit_compete_for_the_best_eps_and_edges_are_extended():
    p = _params()
    runs = _runs(p, shift=-1)  # every best ε sits at the top edge of its grid
    t = L.grid_table(runs.confirmation)
    more = L.extension(runs.grid, t)
    assert set(more) == set(p.batch_sizes)
    assert all(more[B] == pytest.approx(max(runs.grid[B]) * math.sqrt(2), rel=1e-5)
               for B in more)
    # a best cell that does not fit is passed over for the best cell that does
    top = {(B, max(runs.grid[B])) for B in p.batch_sizes}
    for c, r in runs.confirmation:
        if (c.B, c.lr) in top:
            r.values[("accuracy", "train")] = 0.9
    fb = L.best_fitted(L.grid_table(runs.confirmation))
    assert all(fb[fb.B == B].lr.iloc[0] < max(runs.grid[B]) for B in p.batch_sizes)


def test_the_slope_interval_comes_from_a_seed_bootstrap():
    p = _params()
    a = L.analyze(_runs(p, noise=0.001), p)
    assert a.glue["lb_v1"] == "reproduced"
    assert "(seed bootstrap)" in a.glue["lb_slope_fitted"]
    lo, hi = L.slope_bootstrap(a.final, L.fitted_cells(a.final))
    assert lo <= 1.0 <= hi


def test_the_penalty_at_a_fitted_small_eps_and_the_old_rule_is_judged_not_assessable():
    p = _params()
    runs = _runs(p)
    eps_s, eps_b = L.penalty_rates(p, runs.confirmation)
    cells = L.fitted_cells(L.grid_table(runs.confirmation))
    assert eps_s == cells[cells.B == p.penalty_batch].lr.min()
    old = p.replace(penalty_eps="grid-min")
    a = L.analyze(runs, old)
    assert a.verdicts["penalty-r2"].text.startswith("not assessable")
    assert "penalty_eps = grid-min" in a.verdicts["penalty-r2"].text


def test_a_set_recorded_before_the_new_fields_reads_with_the_old_design():
    p = L.Params.from_values({n: getattr(_params(), n) for n in L.Params.required()})
    assert p.extend_rounds == 0 and p.penalty_eps == "grid-min"


def test_extensions_stay_on_the_grid_lattice_and_an_exact_law_is_reproduced():
    from implicitreg.analysis.pilot import refined_grid

    base = {16: refined_grid(0.1, 3)}
    table = pd.DataFrame({"B": 16, "lr": [x for x in base[16] for _ in range(3)],
                          "seed": [0, 1, 2] * 3, "diverged": False, "train accuracy": 1.0,
                          "test accuracy": [0.5] * 3 + [0.55] * 3 + [0.6] * 3})
    grid = {16: list(base[16])}
    for _ in range(3):  # the top keeps winning: each round adds the next lattice point
        nxt = L.extension(grid, table, base)[16]
        grid[16] = sorted(grid[16] + [nxt])
        table = pd.concat([table, pd.DataFrame({
            "B": 16, "lr": nxt, "seed": [0, 1, 2], "diverged": False,
            "train accuracy": 1.0, "test accuracy": 0.6 + 0.01 * len(grid[16])})])
    assert grid[16] == refined_grid(0.1, 9)[3:]  # where a wider grid puts them
    # a law of slope exactly 1 on rounded grids reads as reproduced
    s = L.stats.Slope(1.0000005, 0.0, 0.0, 1.0000005, 1.0000005, 0.1)
    assert L.slope_verdict(s, 0.5) == "reproduced"
