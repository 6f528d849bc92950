"""The penalty's diagnosis: the step-length record behind revision penalty-r2's clipping
norm, and the collapse detector its tables and prose read."""
import numpy as np
import pandas as pd
import pytest

from implicitreg.analysis import divergence as dv
from implicitreg.chapters import headline as H


def test_step_norms_records_every_update_and_repeats(tiny):
    a = dv.step_norms(tiny, until=10)
    b = dv.step_norms(tiny, until=10)
    assert sorted(a.metric.unique()) == ["batch_loss", "batch_penalty", "step_grad_norm"]
    assert a.step.nunique() == 10
    pd.testing.assert_frame_equal(a, b)
    # plain SGD moves by ε·‖g‖, so the recorded norm is the batch gradient's: positive
    assert (a[a.metric == "step_grad_norm"].value > 0).all()


def test_step_norms_glue_counts_the_updates_over_the_norm():
    g = np.r_[np.full(97, 1.0), np.full(3, 8.0)]
    d = pd.DataFrame({"step": np.arange(100), "metric": "step_grad_norm", "value": g})
    text = H.step_norms_glue({"stepnorms_sgd_seed4": d}, 5.0)["hl_diag_sgd_steps"]
    assert text.startswith("seed 4: longer than 5 in 3.0% of its 100 updates")
    assert H.step_norms_glue({}, 5.0) == {"hl_diag_sgd_steps": "not measured"}


def test_the_committed_record_is_read_against_the_workstation_norm():
    steps = H.load_step_norms()
    if not steps:
        pytest.skip("no committed step-length record in this copy")
    text = H.step_norms_glue(steps, None)["hl_diag_sgd_steps"]
    assert "longer than 5 in" in text


def test_collapse_step_finds_a_fitted_run_losing_its_fit_and_not_a_quiet_one():
    quiet = np.r_[np.linspace(2.3, 0.01, 50), np.full(50, 0.01)]
    rows = lambda loss: pd.DataFrame({"step": np.arange(len(loss)), "metric": "batch_loss",
                                      "value": loss})
    assert np.isnan(H.collapse_step(rows(quiet)))
    jumped = quiet.copy()
    jumped[70] = 2.5
    assert H.collapse_step(rows(jumped)) == 70
    blown = quiet.copy()
    blown[80] = np.nan
    assert H.collapse_step(rows(blown)) == 80


def test_diagnose_penalty_asks_for_lambda_unless_it_records_step_lengths(capsys):
    from implicitreg import cli

    with pytest.raises(SystemExit):
        cli.main(["diagnose-penalty", "--seed", "0"])
    assert "--lam" in capsys.readouterr().err
