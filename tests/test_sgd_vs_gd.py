"""The sgd_vs_gd chapter's analysis on synthetic results: its verdicts, their premises,
the recorded revisions, the design and the profiles."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from implicitreg.analysis.pilot import PilotChoice
from implicitreg.chapters import registry, sgd_vs_gd as S
from implicitreg.chapters.criteria import criteria_hash

from conftest import ledger_glue_problems

ROOT = Path(__file__).resolve().parents[1]
# The fingerprint of the criteria as registered (see sgd_vs_gd.REGISTERED).
REGISTERED_HASH = "dc9933af08194c5c"


class FakeResult:
    """What analyze() reads from a run: config.steps/seed, final(), summary, provenance."""

    def __init__(self, seed, test, train, diverged=False, steps=100):
        self.config = SimpleNamespace(seed=seed, steps=steps)
        self.values = {("accuracy", "test"): test, ("accuracy", "train"): train}
        self.summary = {"diverged": diverged}
        self.provenance = {"data_source_detail": "synthetic"}
        self.cached = True

    def final(self, metric, split):
        return float(self.values.get((metric, split), float("nan")))

    def curve(self, metric, split):
        return pd.DataFrame({"step": [self.config.steps], "epoch": [1],
                             "value": [self.final(metric, split)]})


def _params(**kw):
    return S.profile("ci", **{"seeds": [0, 1, 2], "lr_grid": [0.05, 0.1],
                              "n_grid": [256, 512, 1024], **kw})


def _runs(p, gap=0.03, base=0.5, noise=0.001, train=None, gap_at=None, eps_usable=None,
          pen_fraction=0.8, diverged=()):
    """Confirmation results with SGD ahead of the large batch by ``gap`` (or by
    ``gap_at[(n, ε)]``); ``train[(arm, n, ε)]`` sets a training accuracy (default 1.0);
    ``diverged`` holds (arm, n, ε, seed) that diverged."""
    usable = eps_usable or sorted(p.lr_grid)
    choice = PilotChoice(usable=usable, epochs={lr: 10 for lr in usable}, best=max(usable))
    sgd, large, pen = S.arm_names(p)
    rng = np.random.default_rng(0)
    conf = []
    cells = [(p.n_max, lr) for lr in usable] + [(n, choice.best) for n in p.n_grid
                                                   if n != p.n_max]
    for n, lr in cells:
        g = (gap_at or {}).get((n, lr), gap)
        arms = [(sgd, base + g), (large, base)]
        if n == p.n_max and lr == choice.best:
            arms.append((pen, base + pen_fraction * g))
        for arm, acc in arms:
            for s in p.seeds:
                r = FakeResult(s, acc + noise * rng.standard_normal(),
                               (train or {}).get((arm, n, lr), 1.0),
                               diverged=(arm, n, lr, s) in diverged)
                conf.append((S.Cell("confirmation", arm, n, lr, s), r))
    return S.Runs([], choice, conf)


def test_an_injected_gap_is_reproduced_and_the_penalty_closes_most_of_it():
    p = _params()
    a = S.analyze(_runs(p, gap=0.03), p)
    assert a.glue["sgd_verdict"] == "reproduced"
    assert a.glue["pen_verdict"] == "reproduced", a.glue["closure"]
    assert a.glue["n_verdict"] == "the gap is detectable from n = 256"
    # every registered criterion is judged too
    assert set(a.verdicts) == {c.claim for c in S.all_criteria()}
    assert a.glue["sgd_verdict_gap"] == "reproduced"
    assert "nan" not in a.glue["gap"] and "nan" not in a.glue["n_text"]


def test_no_gap_with_a_small_registered_sd_is_not_reproduced():
    p = _params()
    a = S.analyze(_runs(p, gap=0.0), p)
    assert a.glue["sgd_verdict"] == "not reproduced (no significant difference at this scale)"
    assert a.glue["n_verdict"] == "no n of the grid shows a detectable gap"
    assert a.glue["pen_verdict"].startswith("not assessable: there is no established")
    # the power comes from the SD assumed, not from the cell's own spread
    assert a.gaps.detectable.iloc[0] == pytest.approx(
        S.stats.detectable_from_sd(S.SD_ARM, 3, 3))


def test_an_arm_that_did_not_fit_is_not_assessable_with_its_numbers():
    p = _params()
    train = {("SGD", p.n_max, 0.1): 0.93}
    a = S.analyze(_runs(p, gap=0.03, train=train), p)
    v = a.glue["sgd_verdict"]
    assert v.startswith("not assessable: "), v
    assert "SGD at 93% training accuracy in 3 seeds, threshold 99%" in v
    assert a.glue["pen_verdict"].startswith("not assessable")
    # the criterion as registered did not check the fit: its verdict stands beside
    assert a.glue["sgd_verdict_gap"] == "reproduced"
    # the n sweep leaves the unfit cell out of the family and says so
    assert "n = 1,024 not assessable" in a.glue["n_verdict"]
    assert a.glue["n_verdict"].startswith("the gap is detectable from n = 256")


def test_the_registered_and_the_revised_verdicts_are_glued_with_their_own_statistics():
    p = _params()
    train = {("SGD", p.n_max, 0.1): 0.93}
    a = S.analyze(_runs(p, gap=0.03, train=train), p)
    assert not ledger_glue_problems(S, a)
    g = a.glue
    # the registered gap is reproduced, so its closure is computed; the revision's
    # gap is not assessable, so its closure is not
    assert g["pen_verdict_penalty"] == "reproduced", g["closure_registered"]
    assert g["closure_registered"][0].isdigit() and g["closure"].startswith("not computed")
    assert "own spread" in g["detectable_own"] and "assumed" in g["detectable"]
    assert g["eps_text_registered"].startswith("gap at ε = 0.1 minus gap at ε = 0.05")
    assert "Holm" not in g["n_text_registered"] and "Holm" in g["n_text"]


def test_a_diverged_run_is_a_failed_premise():
    p = _params()
    a = S.analyze(_runs(p, diverged={("B = 256", p.n_max, 0.1, 1)}), p)
    assert "1 of 3 B = 256 runs diverged" in a.glue["sgd_verdict"]


def test_eps_criteria_registered_and_revised():
    p = _params()
    gap_at = {(p.n_max, 0.1): 0.05, (p.n_max, 0.05): 0.01}
    a = S.analyze(_runs(p, gap_at=gap_at), p)
    assert a.glue["eps_verdict"] == "reproduced"
    assert a.glue["eps_verdict_eps_r1"] == "reproduced"
    # ε* is the largest usable ε here, so the registered comparison (ε* against the
    # smallest) is the same comparison
    assert a.glue["eps_verdict_eps"] == "reproduced"
    # the shrinkage rests on SGD at ε = 0.1 that did not fit: not assessable
    a = S.analyze(_runs(p, gap_at=gap_at, train={("SGD", p.n_max, 0.1): 0.85}), p)
    assert a.glue["eps_verdict"].startswith("not assessable")
    assert "SGD at 85% training accuracy" in a.glue["eps_verdict"]
    # one usable ε: nothing to compare
    a = S.analyze(_runs(p, eps_usable=[0.1]), p)
    assert a.glue["eps_verdict"].startswith("not assessable: only one learning rate")


def test_a_significant_effect_the_other_way_under_both_orders():
    """The order registered first read an underpowered significant reversal as
    inconclusive; the revision of 5f251c9 reads it as not reproduced."""
    p = _params(seeds=[0, 1])
    a = S.analyze(_runs(p, gap=-0.08, noise=0.008), p)
    assert a.glue["sgd_verdict_gap"].startswith("inconclusive"), a.glue["sgd_verdict_gap"]
    assert a.glue["sgd_verdict_gap_r1"] == "not reproduced (B = 256 is larger at this scale)"
    assert a.glue["sgd_verdict"] == "not reproduced (B = 256 is larger at this scale)"
    assert not ledger_glue_problems(S, a)


def test_no_usable_eps_leaves_every_verdict_not_assessable():
    p = _params()
    runs = S.Runs([], PilotChoice(usable=[], epochs={}, best=None), [])
    a = S.analyze(runs, p)
    for key in ("sgd_verdict", "eps_verdict", "pen_verdict", "n_verdict"):
        assert a.glue[key].startswith("not assessable"), key


def test_design_pilot_then_a_confirmation_from_the_choice():
    p = S.profile("ci")
    pilot = S.design(p)
    assert {c.stage for c, _ in pilot} == {"pilot"}
    assert len(pilot) == 2 * len(p.lr_grid) * len(p.pilot_seeds)
    choice = PilotChoice(usable=[0.1], epochs={0.1: 12}, best=0.1)
    conf = S.design_confirmation(p, choice)
    head = [c for c, _ in conf if c.n == p.n_max]
    assert len(head) == 3 * len(p.seeds)  # SGD, large batch and penalty
    assert len(conf) == len(head) + 2 * len(p.seeds) * (len(p.n_grid) - 1)
    for c, cfg in conf:
        assert (cfg.n_train, cfg.lr, cfg.seed, cfg.data_seed) == (c.n, c.lr, c.seed, p.data_seed)
        assert cfg.eval_every == max(1, cfg.steps // p.evals_per_run)
    assert S.design_confirmation(p, PilotChoice([], {}, None)) == []


def test_profiles_are_complete_instances_and_the_notebook_is_the_ci_profile():
    from implicitreg.book import parameters
    from implicitreg.chapters.base import profiles

    for name in profiles(S.CHAPTER):
        assert S.profile(name).CHAPTER == S.CHAPTER  # every field, nothing else
    assert {"smoke", "ci", "workstation", "paper", "gpu"} <= set(profiles(S.CHAPTER))
    nb = parameters.notebook_parameters(ROOT / "notebooks" / "sgd_vs_gd.ipynb")
    assert set(nb) - {"profile", "executed_at", "exec_config"} == set(S.Params.names())
    assert nb["profile"] == "ci"
    assert S.Params.from_values(nb) == S.profile("ci")
    with pytest.raises(ValueError, match="unknown"):
        S.profile("smoke", no_such=1)


def test_registered_criteria_are_unchanged():
    """The criteria as registered before the runs; a change must be a recorded revision
    that keeps the original."""
    assert S.registered_hash() == criteria_hash(S.CRITERIA) == REGISTERED_HASH
    originals = {c.claim for c in S.CRITERIA}
    revised = {r.revised.claim for r in S.REVISIONS}
    times = registry.item_times(S.CHAPTER)
    for r in S.REVISIONS:
        assert r.original in originals | revised
        assert times[r.revised.claim] >= times[r.original]
    assert set(S.CURRENT.values()) <= revised


def test_a_spread_far_above_the_sd_assumed_fails_the_power_premise():
    """Power comes from the SD assumed; runs that do not bear it out make the stated
    power, and so a negative verdict, not assessable."""
    p = _params()
    a = S.analyze(_runs(p, gap=0.0, noise=0.03), p)
    v = a.glue["sgd_verdict"]
    assert v.startswith("not assessable: ") and "SD assumed for power (0.5 points)" in v, v
    assert "measured" in v
