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
    assert a.glue["lb_verdict_penalty_r2"] == "reproduced", a.glue["lb_closure"]
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
    assert a.glue["lb_verdict_penalty_r2"] == "not reproduced"
    assert "0.5" in a.glue["lb_pen_detectable"]  # power from the SD assumed


def test_an_arm_that_did_not_fit_is_not_assessable_with_its_numbers():
    p = _params()
    arms = L.penalty_arms(min(p.lrs), 0.05 * (p.penalty_batch / 16))
    a = L.analyze(_runs(p, pen_train={arms[1]: 0.9}), p)
    r2 = a.glue["lb_verdict_penalty_r2"]
    assert r2.startswith("not assessable: "), r2
    assert "at 90% training accuracy in 3 seeds, threshold 99%" in r2
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
    assert a.glue["lb_verdict_penalty_r2"].startswith(
        "not assessable: the best ε is not established")
    r = _runs(p)
    r.penalty = []
    r.eps_b = r.eps_s
    assert L.analyze(r, p).glue["lb_verdict_penalty_r2"].startswith("not assessable: the best ε")


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
    assert L.registered_hash() == REGISTERED_HASH
    assert criteria_hash(L.CRITERIA[:2]) == REGISTERED_HASH  # later claims are appended
    assert {r.original for r in L.REVISIONS} == {"slope", "penalty", "slope-r1",
                                                  "penalty-r1", "penalty-r2"}
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


# ------------------------------------------------------------------ the small-ε design
SMALL = dict(small_eps_divisors=[4, 8], small_eps_pilot_seeds=[300, 301, 302],
             small_eps_seeds=list(range(20, 28)), small_eps_clip=5.0)


def _small_runs(p, gap=0.03, gain=0.025, noise=0.002, diverged=(), train=None,
                pen_offsets=None, eps_b=0.1, divisor=4):
    """The small-ε confirmation on synthetic runs: per seed a base accuracy, plain ε_s
    ``gap`` below it, the penalized run ``gain`` above plain ε_s (plus ``pen_offsets`` per
    seed); ``diverged``: seeds whose penalized run diverged; ``train``: arm → training
    accuracy."""
    rng = np.random.default_rng(1)
    runs = _runs(p)
    runs.se_eps_b, runs.se_divisor = eps_b, divisor
    eps_s = L.small_eps_rate(eps_b, divisor)
    for i, s in enumerate(p.small_eps_seeds):
        base = 0.47 + 0.005 * rng.standard_normal()
        small = base - gap + noise * rng.standard_normal()
        pen = small + gain + noise * rng.standard_normal() + (pen_offsets or {}).get(i, 0.0)
        for arm, lr, acc in ((L.SE_BEST, eps_b, base), (L.SE_SMALL, eps_s, small),
                             (L.SE_PEN, eps_s, pen)):
            div = arm == L.SE_PEN and s in diverged
            runs.small.append((L.Run(L.SE_CONFIRMATION, arm, p.penalty_batch, lr, s),
                               FakeResult(s, float("nan") if div else acc,
                                          float("nan") if div else (train or {}).get(arm, 1.0),
                                          diverged=div)))
    return runs


def _sp(**kw):
    return _params(**{**SMALL, **kw})


def test_a_penalty_that_lifts_the_small_eps_to_the_best_is_reproduced():
    p = _sp()
    a = L.analyze(_small_runs(p), p)
    assert a.verdicts["penalty-gain"].text.startswith("reproduced; none of the 8 penalized"), \
        a.verdicts["penalty-gain"].text
    assert a.verdicts["penalty-r3"].text.startswith("reproduced"), a.glue["lb_se_closure"]
    assert a.glue["lb_v2"] == a.verdicts["penalty-r3"].text  # r3 judges the claim now
    assert "ε_s = 0.025 (ε_b/4), λ = (ε_b − ε_s)/4 = 0.01875" in a.glue["lb_se_eps"]
    assert not ledger_glue_problems(L, a)


def test_a_penalty_that_does_nothing_is_not_reproduced_where_half_the_gap_would_be_seen():
    p = _sp()
    a = L.analyze(_small_runs(p, gap=0.03, gain=0.0), p)
    assert a.verdicts["penalty-gain"].text.startswith(
        "not reproduced (a difference of 0.81 points would have been detected)"), \
        a.verdicts["penalty-gain"].text
    assert a.verdicts["penalty-r3"].text.startswith("not reproduced (a gain of 0.81")
    # half of a 1.2-point gap is below what eight seeds detect: no negative verdict
    a = L.analyze(_small_runs(p, gap=0.012, gain=0.0, noise=0.0005), p)
    for cid in ("penalty-gain", "penalty-r3"):
        assert a.verdicts[cid].text.startswith("inconclusive at this scale (detectable "
                                               "0.81 points, above 0.5"), a.verdicts[cid].text
        assert "points, half the established gap)" in a.verdicts[cid].text
    # a penalty that hurts is a negative verdict whatever the power
    a = L.analyze(_small_runs(p, gap=0.012, gain=-0.02, noise=0.0005), p)
    assert a.verdicts["penalty-gain"].text.startswith("not reproduced (the plain arm is ahead)")
    assert a.verdicts["penalty-r3"].text.startswith("not reproduced")


def test_a_negative_small_eps_verdict_needs_the_sd_assumed_borne_out():
    p = _sp()
    swing = {i: (0.02 if i % 2 else -0.02) for i in range(8)}
    a = L.analyze(_small_runs(p, gain=0.0, pen_offsets=swing), p)
    for cid in ("penalty-gain", "penalty-r3"):
        assert a.verdicts[cid].text.startswith("not assessable: the SD across seeds of the "
                                               "paired differences"), a.verdicts[cid].text


def test_small_eps_premises_come_first_with_their_numbers():
    p = _sp()
    a = L.analyze(_small_runs(p, train={L.SE_SMALL: 0.9}), p)
    v = a.verdicts["penalty-gain"].text
    assert v.startswith("not assessable: every SGD at ε_s run at ε = 0.025 reaches 99%"), v
    assert "SGD at ε_s at 90% training accuracy in 8 seeds, threshold 99%" in v
    assert a.verdicts["penalty-r3"].text == v
    # no gap to close: neither a gain nor a closure is judged
    a = L.analyze(_small_runs(p, gap=0.0, gain=0.01), p)
    for cid in ("penalty-gain", "penalty-r3"):
        assert a.verdicts[cid].text.startswith("not assessable: the gap to close is "
                                               "established"), a.verdicts[cid].text
    # a penalized run that did not diverge must fit too
    a = L.analyze(_small_runs(p, train={L.SE_PEN: 0.5}), p)
    assert "every penalized run that did not diverge fits (0 of 8 fit)" in \
        a.verdicts["penalty-gain"].text


def test_a_diverged_penalized_run_is_counted_at_chance_and_named():
    p = _sp()
    a = L.analyze(_small_runs(p, diverged=(21, 24)), p)
    g = a.small["gain"]
    assert g["pairs"] == 8  # not dropped
    assert g["estimate"].value < -0.05  # two seeds at 10%
    for cid in ("penalty-gain", "penalty-r3"):
        assert a.verdicts[cid].text.endswith(
            "2 of 8 penalized runs diverged (seeds 21, 24), counted at chance"), \
            a.verdicts[cid].text
    assert a.glue["lb_se_diverged"] == "21, 24"
    assert "(2 diverged, counted at chance)" in a.glue["lb_se_gain"]


def test_the_small_eps_rule_takes_the_largest_eps_s_with_a_measurable_gap_that_fits():
    p = _sp()

    def pilot(gaps, train=None):
        out = []
        for d, gap in ((1, 0.0), (4, gaps[0]), (8, gaps[1])):
            lr = L.small_eps_rate(0.1, d)
            for s in p.small_eps_pilot_seeds:
                out.append((L.Run(L.SE_PILOT, "plain", 32, lr, s),
                            FakeResult(s, 0.47 - gap + 0.001 * (s - 301),
                                       (train or {}).get(d, 1.0))))
        return out

    d, why = L.choose_small_eps(p, 0.1, pilot((0.03, 0.05)))
    assert d == 4 and why[4].endswith("+3.00 points over 3 paired seeds, at least 2: chosen")
    assert why[8] == "ε = 0.0125 (ε_b/8): not needed, a larger ε_s was chosen"
    d, why = L.choose_small_eps(p, 0.1, pilot((0.01, 0.05)))
    assert d == 8 and why[4].endswith("below 2"), why
    d, why = L.choose_small_eps(p, 0.1, pilot((0.03, 0.05), {4: 0.8}))
    assert d == 8 and "3 of 3 pilot runs do not fit (lowest training accuracy 80.0%" in why[4]
    d, why = L.choose_small_eps(p, 0.1, pilot((0.01, 0.015)))
    assert d is None
    d, why = L.choose_small_eps(p, 0.1, pilot((0.03, 0.05), {1: 0.9}))
    assert d is None and all("at ε_b" in w for w in why.values())
    # no ε_s: both verdicts say why, with the rule's reasons
    runs = _runs(p)
    runs.se_eps_b, runs.se_reasons = 0.1, why
    a = L.analyze(runs, p)
    assert a.verdicts["penalty-gain"].text.startswith(
        "not assessable: the small-ε pilot's rule found no ε_s (ε = 0.025 (ε_b/4): not "
        "admissible, 3 of 3 pilot runs do not fit")


def test_small_eps_still_training_waits_and_says_how_far_it_came(tmp_path):
    from implicitreg.runs.execution import ExecConfig

    p = _sp()
    runs = _runs(p)
    runs.se_eps_b = 0.1
    # an empty store with training off: every run is missing, none trains
    off = {"store": tmp_path, "exec_config": ExecConfig(no_train=True, progress=False)}
    runs.se_pending = L.small_eps_progress(runs, p, off)
    assert runs.se_pending.startswith("its runs are still training (committed so far: "
                                      "ε_s pilot 0 of 9, confirmation after the pilot)")
    a = L.analyze(runs, p)
    for claim in ("penalty-gain", "penalty-r3"):
        assert a.verdicts[claim].text == "not assessable: " + runs.se_pending
    assert a.verdicts["slope"].text == L.analyze(_runs(p), p).verdicts["slope"].text


def test_small_eps_params_are_validated():
    for bad, match in (({"small_eps_divisors": [1, 4]}, "distinct integers >= 2"),
                       ({"small_eps_divisors": [4, 4]}, "distinct integers >= 2"),
                       ({"small_eps_pilot_seeds": [300, 301]}, "at least three"),
                       ({"small_eps_seeds": [20]}, "at least two"),
                       ({"small_eps_seeds": [20, 300]}, "none of the small-ε pilot's"),
                       ({"small_eps_data_seed": 1}, "two subsets of their own"),
                       ({"small_eps_pilot_data_seed": 301}, "two subsets of their own"),
                       ({"pilot_seeds": []}, "needs pilot_seeds"),
                       ({"small_eps_clip": 0.0}, "None or a norm > 0"),
                       ({"small_eps_min_gap": 2.0}, r"in \[-1, 1\]"),
                       ({"small_eps_max_scale": 0.5}, ">= 1"),
                       ({"small_eps_fit_threshold": 1.5}, r"in \[0, 1\]"),
                       ({"small_eps_evals": 0}, "an integer >= 1")):
        with pytest.raises(ValueError, match=match):
            _sp(**bad)
    _params(small_eps_seeds=[20], small_eps_pilot_seeds=[])  # no design: nothing to check


def test_the_v2_set_reads_with_its_recorded_params_and_without_the_small_eps_design():
    import json

    doc = json.loads((ROOT / "results" / "workstation" / "manifest.json").read_text())
    recorded = [e["params"] for w in doc["windows"] for e in w["chapters"]
                if e["chapter"] == L.CHAPTER and e.get("params", {}).get("epochs") == 40]
    assert recorded
    p = L.Params.from_values(recorded[-1])
    assert p.small_eps_divisors == () and p.small_eps_clip is None
    a = L.analyze(_runs(p), p)
    assert a.verdicts["penalty-gain"].text == (
        "not assessable: the small-ε design is not part of this profile's design (no "
        "small_eps_divisors)")
    assert L.judged(_runs(p))["penalty-gain"] == []


def test_the_workstation_small_eps_design_and_its_cost():
    p = L.profile("workstation")
    assert p.penalty_batch == 32 and sorted(p.small_eps_divisors) == [4, 8]
    pilot = L.design_small_pilot(p, 0.1)
    assert len(pilot) == 9
    assert {(r.lr, cfg.epochs) for r, cfg in pilot} == {(0.1, 40), (0.025, 160), (0.0125, 320)}
    assert {cfg.data_seed for _, cfg in pilot} == {300}
    conf = L.design_small_eps(p, 0.1, 4)
    assert len(conf) == 3 * 8 and {cfg.data_seed for _, cfg in conf} == {301}
    assert all(cfg.clip_grad == 5.0 and not cfg.grad_stats for _, cfg in pilot + conf)
    by_arm = {r.arm: cfg for r, cfg in conf}
    assert by_arm[L.SE_BEST].epochs == 40 and by_arm[L.SE_BEST].reg == "none"
    assert by_arm[L.SE_SMALL].epochs == by_arm[L.SE_PEN].epochs == 160
    pen = by_arm[L.SE_PEN]
    assert pen.reg == "sgd-modified" and pen.micro_batch == pen.batch_size == 32
    assert pen.reg_lambda == pytest.approx((0.1 - 0.025) / 4)
    # ε × updates is ε_b's, and every run evaluates as often
    assert 0.025 * 160 == pytest.approx(0.1 * 40)
    assert {cfg.epochs * 64 // cfg.eval_every for _, cfg in pilot + conf} == {40}
    # the cost stated in the profile's comment
    c4, c8 = L.small_eps_cost(p, 4), L.small_eps_cost(p, 8)
    assert (c4["pilot updates"], c4["plain updates"], c4["penalized updates"]) == (
        99840, 102400, 81920)
    assert (c8["plain updates"], c8["penalized updates"]) == (184320, 163840)
    assert round(c4["hours"], 2) == 1.87 and round(c8["hours"], 2) == 3.23
    pw = L.small_eps_power(p)
    assert round(100 * pw["detectable"], 2) == 0.81 and pw["power_gap"] > 0.999
    assert round(pw["power_half_gap"], 2) == 0.93
    # the cap bounds a larger ratio
    assert L.small_eps_epochs(p.replace(small_eps_max_scale=4), 8) == 160


def test_the_small_eps_figure_and_tables_draw_from_synthetic_runs():
    import matplotlib

    matplotlib.use("Agg")
    p = _sp()
    runs = _small_runs(p, diverged=(22,))
    a = L.analyze(runs, p)
    fig = L.fig_small_eps(a, p)
    assert len(fig.axes) == 2
    t = L.small_eps_table(a)
    assert len(t) == 8 and t.loc[22, (L.SE_PEN, "test")] == "diverged"
    empty = L.analyze(_runs(_params()), _params())
    assert len(L.fig_small_eps(empty, _params()).axes) == 2
    assert L.small_eps_table(empty).empty
