"""The central-flow chapter: its parameters, its three criteria on synthetic cases built
to pass and built to fail, its premises, the cache of computed cases, and the smoke
profile end to end."""
import math
from pathlib import Path

import numpy as np
import pytest

from implicitreg.chapters import central_flow as C
from implicitreg.chapters.base import profiles
from implicitreg.chapters.criteria import criteria_hash

from conftest import ledger_glue_problems

ROOT = Path(__file__).resolve().parents[1]


# These problems are tiny: a second thread only adds contention.
pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------ parameters
def test_profiles_are_complete_instances_and_match_the_notebook():
    from implicitreg.book import parameters

    for name in profiles(C.CHAPTER):
        C.profile(name)  # every field, nothing else, valid values
    nb = parameters.notebook_parameters(ROOT / "notebooks" / "central_flow.ipynb")
    assert set(nb) - {"profile", "executed_at", "exec_config"} == set(C.Params.names())
    # the notebook's defaults are the ci profile, so that running it without a profile
    # means exactly the ci profile
    assert C.Params.from_values(nb) == C.profile("ci")
    assert {"smoke", "ci", "workstation", "paper"} <= set(profiles(C.CHAPTER))
    with pytest.raises(ValueError, match="unknown"):
        C.profile("smoke", no_such=1)


@pytest.mark.parametrize("change, match", [
    ({"eps": []}, "eps"), ({"eps": [0.1, -0.1]}, "eps"), ({"eps": [0.1, 0.1]}, "eps"),
    ({"seeds": []}, "seeds"), ({"seeds": [0, 0]}, "seeds"),
    ({"steps": 150, "every": 7}, "divide"), ({"avg_window": 5}, "even"),
    ({"avg_window": 400}, "avg_window"), ({"downsample": 3}, "divisor of 32"),
    ({"n_train": 5}, "n_train"), ({"widths": []}, "widths"), ({"eig_tol": 0.0}, "eig_tol"),
    ({"rtol": 0.0}, "rtol"), ({"substeps": 0}, "substeps"), ({"steps": 2.5}, "steps"),
])
def test_bad_parameters_are_refused_with_the_field_named(change, match):
    with pytest.raises(ValueError, match=match):
        C.profile("ci", **change)


def test_lists_become_tuples_and_design_covers_every_case():
    p = C.profile("workstation")
    assert isinstance(p.eps, tuple) and isinstance(p.seeds, tuple) and p.side == 8
    d = C.design(p)
    assert [c for c, _ in d] == [C.Case(e, s) for e in p.eps for s in p.seeds]
    keys = {C.case_key(s, "src") for _, s in d}
    assert len(keys) == len(d)
    # what the analysis alone reads does not change what is computed
    assert C.design(p.replace(avg_window=40))[0][1] == d[0][1]
    assert C.case_key(d[0][1], "src") != C.case_key(d[0][1], "other-source")


# ------------------------------------------------------------------ synthetic cases
def synthetic(eps=0.2, seed=0, steps=200, every=5, start=0.7, s_star=60, fall=100,
              hover=1.05, tau_cf=None, err_cf=0.01, err_mf=0.08, d_cf=0.05, d_mf=0.2,
              status=None, rng_seed=0):
    """A case shaped like GD at the edge of stability: the sharpness rises linearly
    from ``start``·2/ε, crosses 2/ε at ``s_star``, overshoots until ``fall`` and then
    hovers around ``hover``·2/ε; the loss decays and, from ``fall`` on, oscillates with
    period two around its mean. The central flow's prediction is off the time-averaged
    loss by the fraction ``err_cf``, the modified flow's by ``err_mf``; the central flow
    is critical from ``tau_cf`` (default: ``s_star``)."""
    rng = np.random.default_rng(rng_seed)
    edge = 2 / eps
    tau_cf = s_star if tau_cf is None else tau_cf
    k = np.arange(steps + 1)
    rec = np.arange(0, steps + 1, every)
    slope = (1 - start) / s_star
    ratio = np.where(rec < fall, start + slope * rec,
                     hover + 0.02 * rng.standard_normal(len(rec)))
    mean = 0.3 * np.exp(-k / 300) + 0.1
    osc = np.where(k >= fall, 0.05 * mean * (-1.0) ** k, 0.0)
    series = {
        "gd_loss": mean + osc, "cf_loss": mean * (1 + err_cf) - 0.001,
        "cf_predicted": mean * (1 + err_cf), "cf_sharpness": np.minimum(
            start + slope * k, 1.0) * edge,
        "cf_trace": np.where(k >= tau_cf, 1e-3, 0.0),
        "cf_critical": np.where(k >= tau_cf, 1.0, 0.0),
        "rec": rec.astype(float), "gd_sharpness": ratio * edge,
        "gf_loss": mean[rec] * (1 - err_mf) * 0.99, "gf_sharpness": (start + slope * rec) * edge,
        "mf_loss": mean[rec] * (1 - err_mf), "mf_sharpness": (start + slope * rec) * edge,
        "dist_cf": np.linspace(0, d_cf, len(rec)), "dist_mf": np.linspace(0, d_mf, len(rec)),
        "dist_gf": np.linspace(0, 1.1 * d_mf, len(rec)),
        "travelled": np.linspace(0, 2.0, len(rec)),
    }
    st = {"gd": "", "cf": "", "gf": "", "mf": ""}
    st.update(status or {})
    return C.CaseResult(C.Case(eps, seed), series, st,
                        {"cpu_seconds": {"GD": 1.0, "central flow": 20.0}})


def params(eps=(0.2,), seeds=(0, 1, 2), steps=200, every=5, avg_window=20):
    return C.profile("ci", eps=list(eps), seeds=list(seeds), steps=steps, every=every,
                     avg_window=avg_window)


def cases(p, **kw):
    per_seed = kw.pop("per_seed", {})
    return {C.Case(e, s): synthetic(eps=e, seed=s, steps=p.steps, every=p.every,
                                    rng_seed=s, **{**kw, **per_seed.get(s, {})})
            for e in p.eps for s in p.seeds}


def test_window_mean_cancels_a_period_two_oscillation():
    x = 0.5 + 0.1 * (-1.0) ** np.arange(41)
    assert C.window_mean(x, 20, 4) == pytest.approx(0.5, abs=1e-15)
    assert math.isnan(C.window_mean(x, 1, 4)) and math.isnan(C.window_mean(x, 40, 4))
    steps = np.array([0, 5, 10, 15, 20])
    assert C.first_fall(steps, np.array([1.0, 2, 3, 2.5, 4]), after=5) == 15
    assert math.isnan(C.first_fall(steps, np.array([1.0, 2, 3, 4, 5]), after=0))


def test_one_sided_upper_bound():
    from scipy import stats

    v = [0.2, 0.3, 0.25]
    want = np.mean(v) + stats.t.ppf(0.95, 2) * np.std(v, ddof=1) / math.sqrt(3)
    assert C.one_sided_upper(v) == pytest.approx(want)
    assert math.isnan(C.one_sided_upper([0.2]))


def test_a_central_flow_that_tracks_gd_reproduces_every_claim():
    p = params()
    a = C.analyze(cases(p), p)
    assert {k: v.verdict for k, v in a.verdicts.items()} == {
        "loss": "reproduced", "sharpness": "reproduced", "distance": "reproduced"}
    row = a.cases.iloc[0]
    assert row["s*"] == 60 and row["τ_S"] == 100 and row["τ_CF"] == 60
    # the averaging window sits half a step early, which shifts both errors a little
    assert row["q"] == pytest.approx(0.01 / 0.08, rel=0.2)
    assert row["ρ"] == pytest.approx(0.25)
    assert ledger_glue_problems(C, a) == []
    for key in ("cf_phases", "cf_errors", "cf_distances", "cf_cost", "cf_start"):
        assert a.glue[key] and "nan" not in a.glue[key]


# ------------------------------------------------------------------ claim 1: the loss
def test_loss_fails_when_the_modified_flow_predicts_better():
    p = params()
    a = C.analyze(cases(p, err_cf=0.08, err_mf=0.02), p)
    assert a.verdicts["loss"].verdict == "not reproduced"
    assert a.loss.iloc[0]["mean"] > 1


def test_loss_fails_when_the_interval_reaches_one():
    """Mean ratio below 1 but one seed the other way: the upper bound decides."""
    p = params()
    a = C.analyze(cases(p, per_seed={0: {"err_cf": 0.01, "err_mf": 0.08},
                                     1: {"err_cf": 0.02, "err_mf": 0.08},
                                     2: {"err_cf": 0.09, "err_mf": 0.08}}), p)
    r = a.loss.iloc[0]
    assert r["mean"] < 1 <= r["upper bound"]
    assert a.verdicts["loss"].verdict == "not reproduced"


def test_loss_and_distance_need_two_initializations():
    p = params(seeds=(0,))
    a = C.analyze(cases(p), p)
    for claim in ("loss", "distance"):
        assert a.verdicts[claim].verdict == "not assessable"
        assert "needs 2" in a.verdicts[claim].detail
    assert a.verdicts["sharpness"].verdict == "reproduced"
    # the premise the two claims share is given once
    assert a.glue["cf_premises_failed"].count("needs 2") == 1
    assert not a.glue["cf_premises_failed"].startswith("not assessable")
    assert C.analyze(cases(params()), params()).glue["cf_premises_failed"] == "none"


def test_a_failed_flow_or_a_gd_that_never_settles_is_not_assessable():
    p = params()
    failed = cases(p, per_seed={1: {"status": {"mf": "the modified flow solver failed (x)"}},
                                2: {"status": {"cf": "the central flow stopped existing"}}})
    a = C.analyze(failed, p)
    assert a.verdicts["loss"].verdict == "not assessable"
    assert "solver failed" in a.verdicts["loss"].detail
    # GD's sharpness never falls after the crossing: no EoS phase to compare on
    p2 = params()
    a2 = C.analyze(cases(p2, fall=10_000), p2)
    for v in a2.verdicts.values():
        assert v.verdict == "not assessable"
        assert "never fell" in v.detail
    # GD diverged
    a3 = C.analyze(cases(p, status={"gd": "GD diverged at step 150"}), p)
    assert all(v.verdict == "not assessable" for v in a3.verdicts.values())
    assert "GD diverged at step 150" in a3.glue["cf_premises_failed"]


# ------------------------------------------------------------------ claim 2: sharpness
def test_sharpness_fails_outside_the_band():
    p = params()
    a = C.analyze(cases(p, hover=1.2), p)
    assert a.verdicts["sharpness"].verdict == "not reproduced"
    assert not a.sharpness["within band"].any() and a.sharpness["on time"].all()


def test_sharpness_fails_when_the_central_flow_turns_critical_at_another_time():
    p = params()
    a = C.analyze(cases(p, tau_cf=30), p)
    assert a.verdicts["sharpness"].verdict == "not reproduced"
    assert a.sharpness["within band"].all() and not a.sharpness["on time"].any()
    # within 10% of s* plus the recording interval is on time
    b = C.analyze(cases(p, tau_cf=60 + 11), p)
    assert b.verdicts["sharpness"].verdict == "reproduced"


def test_sharpness_fails_when_the_central_flow_is_never_critical():
    p = params()
    a = C.analyze(cases(p, tau_cf=10_000), p)
    assert a.verdicts["sharpness"].verdict == "not reproduced"
    assert "never" in a.verdicts["sharpness"].detail


def test_sharpness_is_partly_reproduced_when_some_cases_fail():
    p = params()
    a = C.analyze(cases(p, per_seed={2: {"hover": 1.3}}), p)
    assert a.verdicts["sharpness"].verdict == "partly reproduced"


def test_a_start_above_the_edge_is_not_assessable_for_the_timing():
    p = params()
    a = C.analyze(cases(p, start=0.95, s_star=10, fall=40), p)
    assert a.verdicts["sharpness"].verdict == "not assessable"
    assert "0.95·2/ε" in a.verdicts["sharpness"].detail
    # the other claims do not depend on where GD started
    assert a.verdicts["loss"].verdict == "reproduced"


# ------------------------------------------------------------------ claim 3: distance
def test_distance_fails_when_gd_ends_nearer_the_modified_flow():
    p = params()
    a = C.analyze(cases(p, d_cf=0.3, d_mf=0.2), p)
    assert a.verdicts["distance"].verdict == "not reproduced"
    assert a.distance.iloc[0]["mean"] == pytest.approx(1.5)


def test_verdicts_combine_over_step_sizes():
    p = params(eps=(0.2, 0.1))
    good = cases(p)
    bad = cases(params(eps=(0.1,)), d_cf=0.3, d_mf=0.2)
    a = C.analyze({**good, **bad}, p)
    assert a.verdicts["distance"].verdict == "partly reproduced"
    assert set(a.verdicts["distance"].cases) == {"ε = 0.2", "ε = 0.1"}


def test_the_figure_summary_and_scale_in_words():
    import matplotlib

    matplotlib.use("Agg")
    p = params(eps=(0.2, 0.1))
    a = C.analyze(cases(p), p)
    fig = C.fig_flows(a, p)
    assert len(fig.axes) == 6
    s = C.summary(a, p)
    assert set(s) == {"cases", "loss", "sharpness", "distance"}
    p2 = params(eps=(0.2,), seeds=(0, 3))
    a2 = C.analyze(cases(p2), p2)
    assert set(C.figures(a2, {}, p2)) == {"flows", "flows, seed 3"}
    assert s["loss"].startswith("reproduced")
    assert "fc-tanh 16-16" in C.scale_description(p)


def test_registered_criteria_are_unchanged():
    """A change must be a recorded revision that keeps the original, not an edit."""
    assert C.registered_hash() == criteria_hash(C.CRITERIA) == REGISTERED_HASH
    assert all(c.registered == "" for c in C.CRITERIA)
    assert set(C.STATISTIC_GLUE) == set(C.VERDICT_GLUE) == {c.claim for c in C.CRITERIA}


REGISTERED_HASH = "3a54fed4f693d02b"


# ------------------------------------------------------------------ the cache and the smoke run
def test_a_case_is_cached_with_its_checksum(tmp_path):
    r = synthetic()
    C.save_case(tmp_path, "k1", r)
    back = C.load_case(tmp_path, "k1", r.case)
    assert back.cached and back.status == r.status
    for k, v in r.series.items():
        assert np.array_equal(back[k], v)
    (tmp_path / "k1" / "series.npz").write_bytes(b"damaged")
    with pytest.warns(RuntimeWarning, match="damaged"):
        assert C.load_case(tmp_path, "k1", r.case) is None


def test_nothing_is_computed_when_computing_is_switched_off(tmp_path):
    from implicitreg.runs.execution import ExecConfig
    from implicitreg.runs.runner import MissingRunError

    with pytest.raises(MissingRunError, match="not in"):
        C.run(C.profile("smoke"), store=tmp_path, progress=False,
              exec_config=ExecConfig(no_train=True, progress=False))


def test_nothing_is_computed_past_the_deadline(tmp_path, monkeypatch):
    """A deadline already past: the run stops before its first case with the engine's
    DeadlineReached, naming the cases done and left, and computes nothing."""
    import time

    from implicitreg.engine.training import DeadlineReached
    from implicitreg.runs.execution import ExecConfig

    def no_computing(*args, **kw):
        raise AssertionError("a case was computed past the deadline")

    monkeypatch.setattr(C, "compute_case", no_computing)
    p = C.profile("smoke")
    n = len(C.design(p))
    with pytest.raises(DeadlineReached, match=f"0 of {n} case\\(s\\) done .* {n} left"):
        C.run(p, store=tmp_path, progress=False,
              exec_config=ExecConfig(progress=False, deadline=time.time() - 1))
    assert not (tmp_path / "flows").exists()
    # a worker process of a parallel run starts no case past the deadline either
    case, _ = C.design(p)[0]
    ex = ExecConfig(progress=False, deadline=time.time() - 1)
    assert C._compute_and_save(p, case, "k", str(tmp_path), ex) == (case, None)
    assert not (tmp_path / "k").exists()


def test_cached_cases_stay_and_count_as_done_past_the_deadline(tmp_path, monkeypatch):
    import time

    from implicitreg.engine.data import resolve_source
    from implicitreg.engine.training import DeadlineReached
    from implicitreg.runs.execution import ExecConfig
    from implicitreg.runs.runner import MissingRunError

    monkeypatch.setattr(C, "compute_case", lambda *a, **kw: pytest.fail("computed"))
    p = C.profile("smoke")
    ex = ExecConfig(progress=False, deadline=time.time() - 1)
    ex.apply()
    (case, spec), *rest = C.design(p)
    key = C.case_key(spec, resolve_source("cifar10"))
    C.save_case(tmp_path / "flows", key,
                synthetic(eps=case.eps, seed=case.seed, steps=p.steps, every=p.every))
    n = 1 + len(rest)
    with pytest.raises(DeadlineReached, match=f"1 of {n} case\\(s\\) done .* {n - 1} left"):
        C.run(p, store=tmp_path, progress=False, exec_config=ex)
    assert C.load_case(tmp_path / "flows", key, case) is not None
    # a later call (here with computing switched off) finds it: only the others are missing
    missing = f"^{n - 1} case\\(s\\) of central_flow are not in"
    with pytest.raises(MissingRunError, match=missing):
        C.run(p, store=tmp_path, progress=False,
              exec_config=ExecConfig(no_train=True, progress=False))


def test_smoke_profile_end_to_end(tmp_path):
    """GD and the three flows on real CIFAR-10 images at the smoke scale: computed once,
    cached, re-read without computing, analysed and plotted."""
    import matplotlib

    from implicitreg.runs.execution import ExecConfig

    matplotlib.use("Agg")
    p = C.profile("smoke")
    ex = ExecConfig(progress=False)
    runs = C.run(p, store=tmp_path, progress=False, exec_config=ex)
    assert list(runs) == [c for c, _ in C.design(p)]
    # the chapter protocol: every case as (label, result) pairs, the figures on demand
    assert [c for c, _ in runs.all()] == list(runs)
    r = next(iter(runs.values()))
    assert not r.cached and all(v == "" for v in r.status.values())
    s = r.series
    # all four start from the same weights with the same loss
    assert s["dist_cf"][0] == s["dist_mf"][0] == s["dist_gf"][0] == 0.0
    assert s["gd_loss"][0] == pytest.approx(s["cf_loss"][0]) == pytest.approx(s["mf_loss"][0])
    assert np.isfinite(s["gd_loss"]).all() and np.isfinite(s["cf_predicted"]).all()
    # where Σ ≠ 0 the predicted loss carries the oscillations' ½⟨Σ, H⟩ > 0
    on = s["cf_trace"] > 0
    assert np.all(s["cf_predicted"][on] > s["cf_loss"][on])
    again = C.run(p, store=tmp_path, progress=False,
                  exec_config=ExecConfig(no_train=True, progress=False))
    assert all(x.cached for x in again.values())
    assert np.array_equal(next(iter(again.values()))["dist_cf"], s["dist_cf"])
    a = C.analyze(again, p)
    assert ledger_glue_problems(C, a) == []
    assert set(a.verdicts) == {"loss", "sharpness", "distance"}
    assert C.run_counts(again) == {"exec_runs": len(again),
                                   "exec_runs_loaded": len(again),
                                   "exec_runs_made": C.run_counts(runs)["exec_runs_made"]}
    C.fig_flows(a, p)
    figs = C.figures(a, again, p)
    assert list(figs) == ["flows"] + [f"flows, seed {s}" for s in p.seeds[1:]]
    assert len(figs["flows"]().axes) == 3 * len(p.eps)
    # the book's table of the chapter's runs: one row per case, its cache key first
    table = C.case_table(again)
    assert list(table.columns[:3]) == ["run", "label", "loaded from the store"]
    assert table["run"].str.len().eq(20).all() and table["loaded from the store"].all()
    # every number the prose quotes is glued, by the analysis or by the notebook itself
    import json
    import re

    nb = json.loads((ROOT / "notebooks" / "central_flow.ipynb").read_text())
    prose = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    used = set(re.findall(r"\{glue:text\}`([^`:]+)`", prose))
    assert used and used - set(a.glue) == {"cf_scale", "cf_made"}
