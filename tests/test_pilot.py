"""The pilot rule: which learning rates fit, the refined grid, steps per epoch."""
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from implicitreg.analysis import pilot


def fake_run(lr, train_curve, test, diverged=False):
    """A stand-in for a Result: a training-accuracy curve evaluated every 10 steps."""
    steps = 10 * np.arange(len(train_curve))
    curve = pd.DataFrame({"step": steps, "value": train_curve})
    return SimpleNamespace(config=SimpleNamespace(lr=lr), summary={"diverged": diverged},
                           curve=lambda metric, split: curve,
                           final=lambda metric, split: test)


def test_pilot_keeps_fitting_rates_and_picks_the_largest_gap():
    runs = [
        # ε = 0.05: both fit, by step 30 at the latest; gap 1 point
        ("S", fake_run(0.05, [0.1, 0.5, 0.99, 1.0], 0.50)),
        ("L", fake_run(0.05, [0.1, 0.6, 0.9, 0.995], 0.49)),
        # ε = 0.1: both fit; gap 3 points -> chosen
        ("S", fake_run(0.1, [0.1, 0.99, 1.0, 1.0], 0.53)),
        ("L", fake_run(0.1, [0.1, 0.995, 1.0, 1.0], 0.50)),
        # ε = 0.2: the small batch never fits
        ("S", fake_run(0.2, [0.1, 0.7, 0.8, 0.85], 0.60)),
        ("L", fake_run(0.2, [0.1, 1.0, 1.0, 1.0], 0.40)),
        # ε = 0.4: the large batch diverged
        ("S", fake_run(0.4, [0.1, 1.0, 1.0, 1.0], 0.30)),
        ("L", fake_run(0.4, [0.1, float("nan")], float("nan"), diverged=True)),
    ]
    c = pilot.choose_regime(runs, small_arm="S", large_arm="L", n_train=100, batch_size=10,
                            max_epochs=4)
    assert c.usable == [0.05, 0.1]
    assert c.best == 0.1
    # slowest fit at step 30 = 3 epochs of 10 steps; 1.25 × 3 = 3.75 -> 4 epochs (cap 4)
    assert c.epochs == {0.05: 4, 0.1: 2}
    assert "did not reach 99%" in c.reasons[0.2] and "S" in c.reasons[0.2]
    assert "diverged" in c.reasons[0.4]
    assert "Chosen: ε = 0.1" in c.describe()
    empty = pilot.choose_regime(runs[4:], small_arm="S", large_arm="L", n_train=100,
                                batch_size=10, max_epochs=4)
    assert empty.best is None and "nothing is confirmed" in empty.describe()


def test_refined_grid_and_steps():
    g = pilot.refined_grid(0.1, 3)
    assert g[1] == pytest.approx(0.1) and g[2] / g[1] == pytest.approx(math.sqrt(2), rel=1e-5)
    assert len(pilot.refined_grid(0.1, 5)) == 5
    assert pilot.steps_for(3, 100, 32) == 10
    assert pilot.subset_overlap([1, 2, 3], [3, 4]) == 1


def test_the_sd_of_a_power_statement_comes_from_the_pilot_at_its_upper_limit():
    """SD_RULE: pooled over cases (each about its own mean), then its one-sided 80% upper
    confidence limit, so that a small pilot does not promise more power than it has."""
    import numpy as np
    from scipy import stats as st

    from implicitreg.analysis import stats

    a, b = [1.0, 2.0, 3.0], [10.0, 10.5, 11.0, np.nan]  # the NaN is left out
    sd, df = stats.pooled_sd([a, b, [5.0]])  # a group of one adds no degree of freedom
    assert df == 4 and sd == pytest.approx(np.sqrt((2.0 + 0.5) / 4))
    up = stats.sd_upper(sd, df)
    assert up == pytest.approx(sd * np.sqrt(4 / st.chi2.ppf(0.2, 4))) and up > sd
    s = pilot.pooled_pilot_sd([a, b])
    assert s.usable and (s.sd, s.df, s.power_sd) == (pytest.approx(sd), 4, pytest.approx(up))
    assert "80% upper limit" in s.text()
    assert not pilot.pooled_pilot_sd([[1.0], []]).usable and not pilot.NO_PILOT.usable
    assert "no SD from the pilot" in pilot.NO_PILOT.text()
    # what a one-sided test detects from it
    assert stats.t_factor(5) == pytest.approx((st.t.ppf(0.95, 4) + st.t.ppf(0.8, 4)) / np.sqrt(5))
    assert np.isnan(stats.t_factor(1))
    assert stats.one_sample_p([1.0, 1.1, 0.9], 0.5) < 0.05 < stats.one_sample_p([1.0, 1.1, 0.9], 1.0)
    assert stats.one_sample_p([2.0, 2.0], 1.0) == 0.0 and np.isnan(stats.one_sample_p([2.0]))


def test_the_power_ladder():
    from implicitreg.chapters.criteria import (INCONCLUSIVE, Premise, combine_ladder,
                                               power_ladder)

    kw = dict(detected="d", reach="r", against="a")
    assert power_ladder(0.01, 0.9, 0.05, 0.1, 0.2, None, **kw) == "reproduced"
    assert power_ladder(0.9, 0.01, 0.05, 0.1, 0.2, None, **kw) == "not reproduced (a)"
    assert power_ladder(0.5, 0.5, 0.05, 0.1, 0.2, None, **kw).startswith("not reproduced (d would")
    assert power_ladder(0.5, 0.5, 0.05, 0.3, 0.2, None, **kw).startswith(INCONCLUSIVE)
    assert "no SD from a pilot" in power_ladder(0.5, 0.5, 0.05, float("nan"), 0.2, None, **kw)
    bad = Premise("the SD holds", False, "measured 3")
    assert power_ladder(0.5, 0.5, 0.05, 0.1, 0.2, bad, **kw).startswith("not assessable: the SD")
    assert combine_ladder(["reproduced", "not assessable: x"]) == "reproduced"
    assert combine_ladder(["reproduced", INCONCLUSIVE]) == "partly reproduced"
    assert combine_ladder(["not reproduced (a)", "not reproduced"]) == "not reproduced"
    assert combine_ladder(["not reproduced", INCONCLUSIVE]) == INCONCLUSIVE
    assert combine_ladder(["reproduced"], min_assessable=2) == "not assessable"
