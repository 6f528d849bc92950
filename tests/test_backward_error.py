"""The backward-error chapter module: its verdicts on synthetic error curves with known
slopes, its premises, its profiles and its registered criteria."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from implicitreg.chapters import backward_error as B
from implicitreg.chapters.base import profiles
from implicitreg.chapters.criteria import criteria_hash

from conftest import ledger_glue_problems

ROOT = Path(__file__).resolve().parents[1]
REGISTERED_HASH = "fa44cef739dd2835"


def _errors(p: B.Params, shift: float = 0.0, scale: float = 1e-2, exact: bool = True,
            seed: int = 0) -> B.Computed:
    """Errors c·ε^(predicted + shift) with a little multiplicative noise, for every case
    the chapter fits."""
    g = np.random.default_rng(seed)
    rows = []
    for (section, kind), order in B.PREDICTED.items():
        epss = [p.T / n for n in p.gd_steps] if section == "gd" else list(p.sgd_eps)
        for problem in ("two-parameter", "MLP"):
            for e in epss:
                err = scale * e ** (order + shift) * np.exp(0.01 * g.standard_normal())
                rows.append({"section": section, "problem": problem, "eps": e, "flow": kind,
                             "error": err, "scale": 3.0, "orders": 720 if exact else 500,
                             "exact": exact or section == "gd"})
    return B.Computed(pd.DataFrame(rows))


def test_predicted_slopes_are_reproduced():
    p = B.profile("ci")
    a = B.analyze(B.Runs(_errors(p)), p)
    for claim in ("gd", "sgd", "replace"):
        assert a.verdicts[claim].verdict == "reproduced", a.verdicts[claim].text
    assert a.glue["verdict_gd"] == "reproduced"
    assert a.glue["slope_gd_gd_mlp"].startswith("2.0")
    assert a.glue["n_orders"] == 720
    assert not ledger_glue_problems(B, a)


def test_slopes_one_order_off_are_not_reproduced():
    p = B.profile("ci")
    a = B.analyze(B.Runs(_errors(p, shift=-1.0)), p)
    for claim in ("gd", "sgd", "replace"):
        assert a.verdicts[claim].verdict == "not reproduced", a.verdicts[claim].text


def test_one_wrong_case_makes_a_claim_partly_reproduced():
    p = B.profile("ci")
    c = _errors(p)
    e = c.errors
    wrong = (e.section == "gd") & (e.flow == "gd") & (e.problem == "MLP")
    e.loc[wrong, "error"] = e.loc[wrong, "eps"] ** 1.0  # O(ε), not O(ε²)
    a = B.analyze(B.Runs(c), p)
    assert a.verdicts["gd"].verdict == "partly reproduced"
    assert a.verdicts["gd"].cases["MLP, flow of C̃_GD"] == "not reproduced"


def test_errors_at_the_solver_tolerance_are_not_assessable():
    p = B.profile("ci")
    a = B.analyze(B.Runs(_errors(p, scale=1e-12)), p)
    v = a.verdicts["gd"]
    assert v.verdict == "not assessable", v.text
    assert "solver's tolerance" in v.detail and "< 3e-11" in v.detail
    assert a.glue["slope_gd_gd_mlp"].startswith("not assessable")


def test_a_sampled_mean_over_orders_is_not_assessable():
    p = B.profile("ci")
    a = B.analyze(B.Runs(_errors(p, exact=False)), p)
    assert a.verdicts["gd"].verdict == "reproduced"
    for claim in ("sgd", "replace"):
        v = a.verdicts[claim]
        assert v.verdict == "not assessable", v.text
        assert "500 sampled orders" in v.detail


def test_too_few_fitted_points_are_not_assessable():
    p = B.profile("ci", fit_points=2)
    v = B.analyze(B.Runs(_errors(p)), p).verdicts["gd"]
    assert v.verdict == "not assessable" and "2 fitted" in v.detail


def test_compute_on_a_tiny_problem_gives_every_case():
    p = B.profile("smoke", gd_steps=[16, 32, 64], sgd_eps=[0.02, 0.01, 0.005], m=3,
                  m_replacement=2)
    c = B.compute(p, pictures=False)
    assert set(zip(c.errors.section, c.errors.flow)) == set(B.PREDICTED)
    assert c.errors.exact.all()
    a = B.analyze(B.Runs(c), p)
    assert a.slope("gd", "MLP", "gd")["verdict"] == "reproduced"
    assert len(a.slopes) == 2 * len(B.PREDICTED)


def test_design_keeps_the_sgd_vs_gd_configuration():
    from implicitreg import RunConfig

    p = B.profile("ci")
    d = dict(B.design(p))
    assert set(d) == {(arm, s) for arm in ("SGD", "GD") for s in p.run_seeds}
    # As the chapter built it before it was a module, so that the stored runs load.
    base = RunConfig(dataset="cifar10", n_train=1024, n_test=2000, model="mlp",
                     widths=(256,), batch_size=32, lr=0.05, steps=480, eval_every=48,
                     progress=False)
    assert d[("SGD", 1)].key_dict() == base.replace(method="sgd", seed=1).key_dict()
    assert d[("GD", 2)].key_dict() == base.replace(method="gd", seed=2).key_dict()


def test_profiles_are_complete_instances_and_match_the_notebook():
    from implicitreg.book import parameters

    for name in profiles(B.CHAPTER):
        B.profile(name)
    nb = parameters.notebook_parameters(ROOT / "notebooks" / "backward_error.ipynb")
    assert set(nb) - {"profile", "executed_at", "exec_config"} == set(B.Params.names())
    assert B.Params.from_values(nb) == B.profile("ci")
    with pytest.raises(ValueError, match="unknown"):
        B.profile("smoke", no_such=1)
    with pytest.raises(ValueError, match="fit_points"):
        B.profile("smoke", fit_points=0)


def test_registered_criteria_are_unchanged():
    assert B.registered_hash() == criteria_hash(B.CRITERIA) == REGISTERED_HASH
    assert [c.claim for c in B.CRITERIA] == ["gd", "sgd", "replace"]
    assert all(c.registered == "2026-11-25" for c in B.CRITERIA)
    assert B.REVISIONS == ()
