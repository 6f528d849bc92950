"""The headline chapter on synthetic results: its pilot rules, its premises, its verdicts,
its profiles and its registered criteria."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from implicitreg.chapters import headline as H, registry
from implicitreg.chapters.criteria import criteria_hash

from conftest import ledger_glue_problems

# The fingerprint of the criteria as registered (H.REGISTERED), before any of its runs.
REGISTERED_HASH = "3e44e46a97b7c650"
# The recorded revisions (penalty-r1, penalty-gain-r1), fixed before their runs.
REVISIONS_HASH = "f987de63df06bab1"


class FakeResult:
    """What the chapter reads from a run: its accuracy curves, summary and config."""

    def __init__(self, seed, test, train, diverged=False, steps=100, evals=4):
        self.config = SimpleNamespace(seed=seed, steps=steps)
        self.curves = {"test": [test] * evals, "train": [train] * evals}
        self.summary = {"diverged": diverged}
        self.cached = True

    def curve(self, metric, split):
        v = self.curves[split]
        return pd.DataFrame({"step": np.arange(len(v)), "epoch": 0, "value": v})

    def final(self, metric, split):
        return float(self.curves[split][-1])


def _params(**kw):
    return H.profile("smoke", **{"fit_threshold": 0.99, "seeds": list(range(8)), **kw})


def _runs(p, gap=0.02, pen=0.8, base=0.5, noise=0.002, train=None, diverged=(), lam=0.01):
    """Confirmation results: SGD ahead by ``gap`` at every n, the penalty closing ``pen``
    of it; ``train[(arm, n)]`` sets a training accuracy (default 1.0)."""
    rng = np.random.default_rng(0)
    eps = max(p.lr_grid)
    gaps, pens = [], []
    for n in p.n_grid:
        for s in p.seeds:
            shared = noise * rng.standard_normal()  # a seed's arms move together
            arms = [(H.SGD, base + gap), (H.LARGE, base)]
            if n == p.n_max:
                arms.append((H.PENALTY, base + pen * gap))
            for arm, acc in arms:
                r = FakeResult(s, acc + shared + 0.3 * noise * rng.standard_normal(),
                               (train or {}).get((arm, n), 1.0),
                               diverged=(arm, n, s) in diverged)
                cell = H.Cell("penalty" if arm == H.PENALTY else "gap", arm, n, eps,
                              lam if arm == H.PENALTY else 0.0, s)
                (pens if arm == H.PENALTY else gaps).append((cell, r))
    return H.Runs([], eps, {eps: "every pilot run fits: chosen"}, gaps, [], lam,
                  {lam: "every run fits: chosen"}, pens, [], lam,
                  {lam: "every run fits: chosen"})


def test_an_injected_gap_is_reproduced_and_the_penalty_closes_most_of_it():
    p = _params()
    a = H.analyze(_runs(p), p)
    assert a.verdicts["gap"] == "reproduced"
    assert a.verdicts["penalty-gain"] == "reproduced"
    assert a.verdicts["penalty"] == "reproduced", a.glue["hl_closure"]
    assert a.verdicts["n"].count("reproduced") == len(p.n_grid)
    assert set(a.verdicts) == {c.claim for c in H.CRITERIA} | {
        r.revised.claim for r in H.REVISIONS}
    # nothing diverged: the revision's λ is λ*, and its verdict is the paired closure's
    assert a.verdicts["penalty-r1"] == a.verdicts["penalty-paired"]
    assert "nan" not in a.glue["hl_gap"] and "nan" not in a.glue["hl_arms"]
    assert not ledger_glue_problems(H, a)


def test_no_gap_with_the_registered_sd_is_not_reproduced_with_its_power():
    p = _params()
    a = H.analyze(_runs(p, gap=0.0, pen=0.0), p)
    detect = H.detectable(H.SD_DIFF, len(p.seeds))
    assert detect <= H.DECISIVE
    assert a.verdicts["gap"].startswith("not reproduced (a difference of")
    assert a.verdicts["penalty"].startswith("not assessable: there is no established gap")


def test_too_few_seeds_for_the_power_is_inconclusive_not_negative():
    p = _params(seeds=[0, 1])
    a = H.analyze(_runs(p, gap=0.0), p)
    assert a.verdicts["gap"].startswith("inconclusive at this scale")


def test_an_arm_that_did_not_fit_makes_the_verdict_not_assessable_with_its_numbers():
    p = _params()
    a = H.analyze(_runs(p, train={(H.SGD, p.n_max): 0.93}), p)
    v = a.verdicts["gap"]
    assert v.startswith("not assessable") and "93.0%" in v and "0 of 8 runs fit" in v
    # the n sweep leaves that n out and says so; the other n stays in the family
    assert f"n = {p.n_max:,} left out" in a.verdicts["n"]


def test_a_diverged_run_fails_the_premise():
    p = _params()
    a = H.analyze(_runs(p, diverged={(H.LARGE, p.n_max, 3)}), p)
    assert a.verdicts["gap"].startswith("not assessable") and "1 diverged" in a.verdicts["gap"]


def test_a_spread_larger_than_assumed_fails_a_negative_verdict_only():
    p = _params()
    noisy = _runs(p, gap=0.0, noise=0.0)
    for c, r in noisy.gap:  # independent noise per run: paired SD far above the assumed
        r.curves["test"] = [x + 0.03 * np.sin(7 * c.seed + len(c.arm)) for x in r.curves["test"]]
    a = H.analyze(noisy, p)
    assert a.verdicts["gap"].startswith("not assessable: the SD across seeds")
    big = _runs(p, gap=0.2, noise=0.0)
    for c, r in big.gap:
        r.curves["test"] = [x + 0.01 * np.sin(7 * c.seed + len(c.arm)) for x in r.curves["test"]]
    assert H.analyze(big, p).verdicts["gap"] == "reproduced"


def test_the_pilot_rules():
    p = _params()
    fit = pd.DataFrame({"arm": [H.SGD, H.LARGE], "fits": [True, True], "diverged": False,
                        "fit_level": [1.0, 1.0], "stat": [0.5, 0.49], "lam": 0.0})
    miss = fit.assign(fits=[False, True], fit_level=[0.8, 1.0])
    eps, why = H.choose_eps(p, {0.2: miss, 0.1: fit, 0.05: fit})
    assert eps == 0.1 and "80.0%" in why[0.2]
    assert H.choose_eps(p, {0.2: miss})[0] is None
    lam = pd.DataFrame({"lam": [0.005, 0.005, 0.01, 0.01, 0.02, 0.02],
                        "fits": [True, True, True, True, False, True],
                        "diverged": [False] * 4 + [True, False],
                        "fit_level": [1.0] * 6, "stat": [0.50, 0.50, 0.51, 0.51, 0.9, 0.9]})
    best, why = H.choose_lambda(p, lam)
    assert best == 0.01 and "diverged" in why[0.02]


def test_no_eps_leaves_every_claim_not_assessable_with_the_pilot_numbers():
    p = _params()
    runs = H.Runs([], None, {0.1: "SGD: 3 run(s) below 99% training accuracy (lowest 80.0%)"},
                  [], [], None, {}, [])
    a = H.analyze(runs, p)
    for claim in ("gap", "n", "penalty", "penalty-gain"):
        assert a.verdicts[claim].startswith("not assessable") and "80.0%" in a.verdicts[claim]


def test_the_design_pairs_the_arms_and_uses_gd_where_the_batch_is_all_of_n():
    p = H.profile("workstation")
    assert p.large_batch == 20 * p.batch_size and len(p.seeds) >= 8
    assert len(p.pilot_seeds) >= 3 and H.NOVACK_LAMBDA in p.lambda_grid
    assert H.detectable(H.SD_DIFF, len(p.seeds)) <= H.DECISIVE
    gap = H.design_gap(p, 0.1)
    small = [cfg for c, cfg in gap if c.n == p.n_min and c.arm == H.LARGE]
    assert {cfg.method for cfg in small} == {"gd"}
    big = [cfg for c, cfg in gap if c.n == p.n_max and c.arm == H.LARGE]
    assert {cfg.batch_size for cfg in big} == {p.large_batch}
    by_seed = {}
    for c, cfg in gap:
        by_seed.setdefault((c.n, c.seed), set()).add((cfg.seed, cfg.steps, cfg.data_seed))
    assert all(len(v) == 1 for v in by_seed.values())  # same init, order seed, length
    pen = H.design_penalty(p, 0.1, 0.01)
    assert all(abs(cfg.reg_lambda - 0.01) < 1e-12 and cfg.micro_batch == p.batch_size
               for _, cfg in pen)
    assert {cfg.data_seed for _, cfg in H.design_eps_pilot(p, 0.1)} == {p.pilot_data_seed}


@pytest.mark.parametrize("bad, match", [
    ({"large_batch": 20}, "large_batch"), ({"n_grid": [16]}, "n_grid"),
    ({"window": 9}, "window"), ({"lambda_grid": [0.0]}, "lambda_grid"),
    ({"seeds": [0]}, "seeds")])
def test_bad_parameters_are_refused_by_name(bad, match):
    with pytest.raises(ValueError, match=match):
        H.profile("smoke", **bad)


def test_the_registered_criteria_have_not_moved():
    assert criteria_hash(H.CRITERIA[:4]) == REGISTERED_HASH  # later claims are appended
    # revisions are appended: the first ones still read as they did

    assert criteria_hash(H.REVISIONS[:2]) == REVISIONS_HASH
    assert [r.original for r in H.REVISIONS][:4] == ["penalty-gain", "penalty", "n", "penalty"]
    times = registry.item_times(H.CHAPTER)
    assert all(times[r.revised.claim] > times[r.original] for r in H.REVISIONS)


def _penalty_runs(p, lam, stage, seeds_diverged, acc, eps):
    return [(H.Cell(stage, H.PENALTY, p.n_max, eps, lam, s),
             FakeResult(s, acc + 0.001 * s, 1.0, diverged=s in seeds_diverged))
            for s in p.seeds]


def test_a_diverged_lambda_star_is_not_assessable_and_the_revision_steps_down():
    p = _params()
    base = _runs(p, lam=0.02)
    eps = base.eps_star
    pilot = pd.DataFrame({"lam": [0.005, 0.01, 0.02], "fits": True, "diverged": False,
                          "fit_level": 1.0, "stat": [0.50, 0.51, 0.52]})
    reg = _penalty_runs(p, 0.02, "penalty", {0, 2}, 0.515, eps)
    lam, why = H.choose_lambda_r1(p, pilot, H.run_table(reg, p))
    assert lam == 0.01 and "2 of 8 confirmation runs" in why[0.02] and "chosen" in why[0.01]
    # with no divergence the rule is the pilot's
    assert H.choose_lambda_r1(p, pilot, H.run_table(reg[1:2], p))[0] == 0.02
    r1 = _penalty_runs(p, 0.01, "penalty-r1", set(), 0.515, eps)
    runs = H.Runs([], eps, base.eps_reasons, base.gap, [], 0.02, {0.02: "chosen"}, reg,
                  r1, lam, why)
    a = H.analyze(runs, p)
    assert a.verdicts["penalty"].startswith("not assessable") and "2 diverged" in \
        a.verdicts["penalty"]
    assert a.verdicts["penalty-gain-r1"] == "reproduced"
    assert a.verdicts["penalty-r1"] == "reproduced", a.glue["hl_closure_r1"]
    # each verdict glued beside the λ and the closure it was computed from
    assert not ledger_glue_problems(H, a)
    assert a.glue["hl_verdict_penalty"] == a.verdicts["penalty"]
    assert a.glue["hl_verdict_penalty_r1"] == "reproduced"
    assert a.glue["hl_lam_star"] == "0.02" and a.glue["hl_closure"] == "not computed"
    assert a.glue["hl_lam_r1"] == "0.01" and a.glue["hl_closure_r1"][0].isdigit()
    names = list(H.per_seed_table(a, p).columns.get_level_values(1).unique())
    assert any("λ = 0.02" in x for x in names) and any("λ = 0.01" in x for x in names)
    assert (H.per_seed_table(a, p).xs("stat", axis=1, level=0).loc[0]
            .str.contains("diverged").sum() == 1)
    assert {"penalty-r1", "penalty-gain-r1"} <= set(H.summary(a, p))
    # every λ below the diverged one diverges too: not assessable, with the steps
    bad = _penalty_runs(p, 0.01, "penalty-r1", {1}, 0.5, eps) + \
        _penalty_runs(p, 0.005, "penalty-r1", {3}, 0.5, eps)
    lam, why = H.choose_lambda_r1(p, pilot, H.run_table(reg + bad, p))
    assert lam is None
    a = H.analyze(H.Runs([], eps, base.eps_reasons, base.gap, [], 0.02, {0.02: "chosen"},
                         reg, bad, lam, why), p)
    assert a.verdicts["penalty-r1"].startswith("not assessable: every λ of the grid")
    shown = set(a.comparisons.comparison)  # each λ stepped past keeps its comparison row
    assert {f"penalty (λ = {x:g}) − B = {p.large_batch}" for x in (0.02, 0.01, 0.005)} \
        <= shown or {f"penalty (λ = {x:g}) − GD" for x in (0.02, 0.01, 0.005)} <= shown


def test_the_profiles_and_the_notebook_declare_exactly_the_parameters():
    from pathlib import Path

    from implicitreg.book import parameters
    from implicitreg.chapters.base import profiles

    for name in profiles(H.CHAPTER):
        assert H.profile(name).CHAPTER == H.CHAPTER  # every field, nothing else
    nb = parameters.notebook_parameters(
        Path(__file__).resolve().parents[1] / "notebooks" / "headline.ipynb")
    assert set(nb) - {"profile", "exec_config"} == set(H.Params.names())
    assert H.Params.from_values(nb) == H.profile("ci")


def test_partial_results_give_verdicts_with_what_is_missing_and_never_crash():
    p = _params()
    full = _runs(p)
    # the large batch has not run at the smallest n, and the penalty has 3 of 8 seeds
    part = H.Runs([], full.eps_star, full.eps_reasons,
                  [(c, r) for c, r in full.gap if not (c.n == p.n_min and c.arm == H.LARGE)],
                  [], full.lam_star, full.lam_reasons, full.penalty[:3])
    a = H.analyze(part, p)
    assert a.verdicts["gap"] == "reproduced"  # the headline n is complete
    assert f"n = {p.n_min:,} left out" in a.verdicts["n"] and "no GD run" in a.verdicts["n"]
    assert "3 of 8 seeds" not in a.glue["hl_gap"] and "8 of 8 seeds" in a.glue["hl_gap"]
    assert a.verdicts["penalty-gain"] == "reproduced"
    assert a.closure is not None and a.closure.n == 3


def test_the_closure_resamples_seeds_with_their_three_runs_together():
    w = pd.DataFrame({H.SGD: [0.52, 0.53, 0.51, 0.52], H.LARGE: [0.50, 0.51, 0.49, 0.50],
                      H.PENALTY: [0.51, 0.52, 0.50, 0.51]}, index=[0, 1, 2, 3])
    e = H.paired_closure(w)
    # every seed closes exactly half of its own gap: paired resampling leaves no spread
    assert e.value == pytest.approx(0.5) and e.low == pytest.approx(0.5)
    assert e.high == pytest.approx(0.5)


def test_the_registered_closure_resamples_arms_apart_and_its_revision_pairs_seeds():
    """23cc512 changed the registered computation: the registered verdict keeps the
    original (each arm resampled on its own, wide when seeds move together); revision
    penalty-paired pairs the seeds and can fail where the registered one does not."""
    p = _params()
    a = H.analyze(_runs(p, pen=0.3, noise=0.02), p)
    assert a.closure.high - a.closure.low > a.closure_paired.high - a.closure_paired.low
    assert a.verdicts["penalty-paired"] != a.verdicts["penalty"]


def test_the_registered_n_sweep_says_no_detectable_difference_where_its_revision_rules():
    p = _params()
    a = H.analyze(_runs(p, gap=0.0, pen=0.0), p)
    assert "no detectable difference" in a.verdicts["n"]
    assert "no detectable difference" not in a.verdicts["n-holm"]
    assert "not reproduced" in a.verdicts["n-holm"] or "inconclusive" in a.verdicts["n-holm"]


def test_a_sweep_negative_needs_the_power_at_the_holm_level():
    c = {"premise": None, "estimate": H.stats.mean_ci([0.001, -0.001, 0.0005]),
         "p_holm": 0.9, "pairs": 8, "sd_premise": None}
    assert H.holm_ladder(c, 2).startswith("not reproduced (a difference of")
    assert H.detectable(H.SD_DIFF, 8, alpha=H.ALPHA / 2) > H.detectable(H.SD_DIFF, 8)
    c["pairs"] = 2
    assert H.holm_ladder(c, 2).startswith("inconclusive at this scale")


# ------------------------------------------------------------------ revision penalty-r2
def _r2_params(**kw):
    return _params(r2_lambda_grid=[0.005, 0.01, 0.02], r2_pilot_seeds=[200, 201, 202],
                   r2_clip=1.0, **kw)


def _r2_runs(p, gain=0.006, gap=0.008, diverged=(), noise=0.001):
    """The registered runs of _runs, plus r2's plain and penalized arms at both cells:
    the penalty ahead of the plain large batch by ``gain``; ``diverged`` seeds of the
    penalized arm diverge (their accuracy is then chance)."""
    runs = _runs(p)
    rng = np.random.default_rng(1)
    eps = runs.eps_star
    for n in H.r2_ns(p):
        runs.lam_r2[n] = 0.01
        runs.lam_r2_reasons[n] = {0.01: "admissible: chosen"}
        for s in p.seeds:
            shared = noise * rng.standard_normal()
            for arm, acc in ((H.SGD, 0.5 + gap), (H.LARGE, 0.5), (H.PENALTY, 0.5 + gain)):
                div = arm == H.PENALTY and s in diverged
                r = FakeResult(s, 0.1 if div else acc + shared, 0.1 if div else 1.0,
                               diverged=div)
                stage = "r2-penalty" if arm == H.PENALTY else "r2-gap"
                cell = H.Cell(stage, arm, n, eps, 0.01 if arm == H.PENALTY else 0.0, s)
                (runs.r2_penalty if arm == H.PENALTY else runs.r2_gap).append((cell, r))
    return runs


def test_r2_a_penalty_ahead_is_reproduced_at_both_cells():
    p = _r2_params()
    a = H.analyze(_r2_runs(p), p)
    for claim in ("penalty-gain-r2", "fb-penalty-gain"):
        assert a.verdicts[claim].startswith("reproduced"), a.verdicts[claim]
        assert "none of the 8 penalized runs diverged" in a.verdicts[claim]
    assert a.verdicts["penalty-r2"].startswith("reproduced"), a.verdicts["penalty-r2"]
    assert a.glue["hl_r2_lam"] == "0.01" and a.glue["hl_fb_diverged"] == "none"


def test_r2_a_diverged_penalized_run_is_counted_and_named_not_dropped():
    p = _r2_params()
    a = H.analyze(_r2_runs(p, diverged=(2, 5)), p)
    v = a.verdicts["penalty-gain-r2"]
    # counted at chance, the two seeds pull the interval below 0 or across it
    assert not v.startswith("reproduced") and "seeds 2, 5" in v and "counted at chance" in v
    assert not v.startswith("not assessable")


def test_r2_a_penalty_no_better_fails_and_says_what_it_could_detect():
    p = _r2_params()
    a = H.analyze(_r2_runs(p, gain=0.0), p)
    assert a.verdicts["penalty-gain-r2"].startswith("not reproduced (a difference of")
    assert a.verdicts["penalty-r2"].startswith("not reproduced")


def test_r2_still_training_keeps_the_registered_verdicts_and_says_how_far_it_came(tmp_path):
    from implicitreg.runs.execution import ExecConfig

    p = _r2_params()
    runs = _runs(p)
    # an empty store with training off: every run is missing, none trains
    off = {"store": tmp_path, "exec_config": ExecConfig(no_train=True, progress=False)}
    runs.r2_pending = H.r2_progress(p, runs.eps_star, off)
    assert runs.r2_pending.startswith("its runs are still training (committed so far: "
                                      "λ pilot 0 of 18, plain arms 0 of 32")
    a = H.analyze(runs, p)
    for claim in ("penalty-gain-r2", "penalty-r2", "fb-penalty-gain", "fb-penalty"):
        assert a.verdicts[claim] == "not assessable: " + runs.r2_pending
    assert a.verdicts["gap"] == H.analyze(_runs(p), p).verdicts["gap"]
    assert a.glue["hl_r2_pilot"] == a.glue["hl_fb_pilot"] == runs.r2_pending


def test_r2_without_a_gap_the_closure_is_not_assessable_naming_the_gap():
    p = _r2_params()
    a = H.analyze(_r2_runs(p, gap=0.0), p)
    assert a.verdicts["penalty-r2"].startswith("not assessable: no established gap")


def test_r2_lambda_rule_steps_one_below_the_largest_admissible():
    p = _r2_params()

    def pilot(bad):
        return pd.DataFrame([{"lam": lam, "fits": lam not in bad, "diverged": lam in bad,
                              "stat": 0.5, "fit_level": 1.0}
                             for lam in p.r2_lambda_grid for _ in range(3)])

    assert H.choose_lambda_r2(p, pilot(()))[0] == 0.01
    assert H.choose_lambda_r2(p, pilot((0.02,)))[0] == 0.005
    lam, why = H.choose_lambda_r2(p, pilot((0.01, 0.02)))
    assert lam == 0.005 and "no margin" in why[0.005]
    assert H.choose_lambda_r2(p, pilot((0.005,)))[0] is None
