"""The pilot rule, the verdict that needs power, downsampled inputs, and the committed
workstation result set in the published build."""
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import implicitreg as ir
from implicitreg import analysis
from implicitreg.analysis import pilot
from implicitreg.engine.config import ConfigError
from implicitreg.runs.store import run_key


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


def test_a_negative_verdict_needs_the_power_to_see_the_published_effect():
    e = analysis.Estimate
    v = analysis.difference_verdict
    assert v(e(0.02, 0.01, 0.03, 3), 0.01, 0.028, "SGD", "GD") == "reproduced"
    assert v(e(0.0, -0.05, 0.05, 3), 0.06, 0.028, "SGD", "GD").startswith("inconclusive")
    assert v(e(0.0, -0.01, 0.01, 3), 0.015, 0.028, "SGD", "GD").startswith("not reproduced (no")
    assert "GD is larger" in v(e(-0.02, -0.03, -0.01, 3), 0.015, 0.028, "SGD", "GD")
    assert "GD is larger" in v(e(-0.08, -0.15, -0.01, 3), 0.09, 0.028, "SGD", "GD")
    assert v(e(0.02, float("nan"), float("nan"), 1), float("nan"), 0.028, "SGD", "GD"
             ).startswith("not assessable")


def test_downsampled_images_are_block_means_and_the_default_keeps_old_keys():
    from implicitreg.engine.data import input_spec, load_for

    cfg = ir.RunConfig(dataset="mnist", n_train=20, n_test=10, model="cnn")
    full, half = load_for(cfg), load_for(cfg.replace(downsample=2))
    assert half.x_train.shape[1:] == (1, 14, 14) == input_spec(cfg.replace(downsample=2))[0]
    torch.testing.assert_close(half.x_train, torch.nn.functional.avg_pool2d(full.x_train, 2))
    assert "downsample" not in cfg.key_dict()
    assert run_key(cfg.replace(downsample=1), "s") == run_key(cfg, "s")
    assert run_key(cfg.replace(downsample=2), "s") != run_key(cfg, "s")
    for bad in (0, 3):
        with pytest.raises(ConfigError, match="downsample"):
            ir.RunConfig(dataset="cifar10", downsample=bad)
    with pytest.raises(ConfigError, match="downsample"):
        ir.RunConfig(dataset="synthetic", downsample=2)


def test_workstation_set_is_published_before_gpu_and_records_where_it_ran(tmp_path):
    from implicitreg.book.driver import (committed_entry, published_profile,
                                         record_committed_execution)
    from implicitreg.book.gpu_edition import write_manifest

    (tmp_path / "results" / "gpu").mkdir(parents=True)
    write_manifest(tmp_path / "results" / "gpu" / "manifest.json", {
        "created": "t", "device": "H100", "torch": "v",
        "chapters": [{"chapter": "sgd_vs_gd", "status": "complete"}]})
    assert published_profile(tmp_path, "sgd_vs_gd") == "gpu"
    record_committed_execution(tmp_path, "sgd_vs_gd", "workstation", "2026-01-01T00:00:00",
                               12.0)
    assert published_profile(tmp_path, "sgd_vs_gd") == "workstation"
    entry = committed_entry(tmp_path, "workstation", "sgd_vs_gd")
    assert entry["window"] == "2026-01-01T00:00:00" and entry["status"] == "complete"
    assert "CPU" in entry["device"] or torch.cuda.is_available()
    assert committed_entry(tmp_path, "ci", "sgd_vs_gd") is None
