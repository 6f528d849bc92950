"""The training engine and the run store."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

import implicitreg as ir
from implicitreg.engine.config import ConfigError, RunConfig
from implicitreg.engine.data import corrupt_labels, load
from implicitreg.engine.training import Trainer


def test_gd_step_equals_sgd_step_with_full_batch(tiny):
    cfg_gd = tiny.replace(method="gd", steps=1, gd_chunk=50, precision="float64")
    cfg_sgd = tiny.replace(method="sgd", batch_size=tiny.n_train, steps=1, precision="float64")
    a, b = Trainer(cfg_gd), Trainer(cfg_sgd)
    a.train(), b.train()
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)


def test_label_noise_corrupts_exactly_the_fraction_and_never_the_test_set():
    y = np.repeat(np.arange(10), 100)
    for p in (0.0, 0.25, 0.5, 1.0):
        noisy, mask = corrupt_labels(y, p, seed=3)
        assert mask.sum() == round(p * len(y))
        assert (noisy[~mask] == y[~mask]).all()
        # a permutation: the label histogram of the picked examples is unchanged
        assert np.array_equal(np.bincount(noisy[mask], minlength=10),
                              np.bincount(y[mask], minlength=10))
    clean = load("synthetic", n_train=200, n_test=100, label_noise=0.0, data_seed=1)
    noisy = load("synthetic", n_train=200, n_test=100, label_noise=0.5, data_seed=1)
    assert int(noisy.corrupt.sum()) == 100
    assert torch.equal(clean.y_test, noisy.y_test)
    assert torch.equal(clean.x_test, noisy.x_test)
    assert torch.equal(noisy.clean_y_train, clean.y_train)
    assert (noisy.y_train != noisy.clean_y_train).sum() > 50  # most picked labels moved


def test_cached_run_is_reused_and_bit_identical(tiny, store):
    r1 = ir.run(tiny, store)
    assert not r1.cached
    r2 = ir.run(tiny, store)
    assert r2.cached and r2.key == r1.key
    pd.testing.assert_frame_equal(r1.metrics, r2.metrics)
    r3 = ir.run(tiny, store, force=True)  # retrain: same numbers on the CPU
    pd.testing.assert_frame_equal(r1.metrics, r3.metrics)
    assert r1.summary["test_accuracy"] == r3.summary["test_accuracy"]
    prov = json.loads((store.path(r1.key) / "provenance.json").read_text())
    assert prov["data_source"] == "synthetic" and "torch" in prov["versions"]


def test_execution_fields_do_not_change_the_key(tiny, store):
    r1 = ir.run(tiny, store)
    r2 = ir.run(tiny.replace(progress=True, device="cpu"), store)
    assert r2.cached and r2.key == r1.key
    assert ir.run(tiny.replace(lr=0.05), store).key != r1.key


def test_diverging_run_is_stored_as_diverged_and_a_sweep_goes_on(tiny, store):
    results = ir.sweep(tiny.replace(epochs=3, eval_every=2), {"lr": [0.1, 1e6]}, store)
    ok, bad = results
    assert not ok.summary["diverged"]
    assert bad.summary["diverged"] and bad.summary["steps"] < ok.summary["steps"]
    assert len(bad.metrics) > 0
    again = ir.run(bad.config, store)
    assert again.cached and again.summary["diverged"]


def test_damaged_result_is_recomputed_with_a_warning(tiny, store):
    r1 = ir.run(tiny, store)
    path = store.path(r1.key) / "metrics.parquet"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="damaged"):
        r2 = ir.run(tiny, store)
    assert not r2.cached
    pd.testing.assert_frame_equal(r1.metrics, r2.metrics)


@pytest.mark.parametrize("changes,word", [
    ({"lr": -0.1}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"reg": "sgd-modified", "batch_size": 32, "micro_batch": 5}, "micro_batch"),
    ({"label_noise": 1.5}, "label_noise"),
    ({"dataset": "imagenet"}, "dataset"),
    ({"method": "adam"}, "method"),
    ({"model": "vit"}, "model"),
    ({"batch_size": 0}, "batch_size"),
    ({"epochs": 2.5}, "epochs"),
    ({"widths": (0,)}, "widths"),
    ({"momentum": 1.0}, "momentum"),
    ({"augment": True}, "augment"),
])
def test_bad_configs_raise_naming_the_parameter(tiny, changes, word):
    with pytest.raises(ConfigError, match=word):
        tiny.replace(**changes)


def test_batch_larger_than_data_raises_before_training(tiny, store):
    with pytest.raises(ConfigError, match="batch_size"):
        ir.run(tiny.replace(batch_size=1000), store)
    assert store.keys() == []


def test_unknown_field_in_dict_raises():
    with pytest.raises(ConfigError, match="learning_rate"):
        RunConfig.from_dict({"learning_rate": 0.1})


def test_gradient_and_layer_statistics_change_no_other_number(tiny, store):
    """``grad_stats=False`` only leaves the three statistics out: every other metric,
    the examples' fit steps and the layer statistics are the same bits (and so with
    ``layer_stats``). The default (on) leaves the key as it was before the field
    existed."""
    cfg = tiny.replace(label_noise=0.25, layer_stats=True, sharpness=True, sharpness_iters=5)
    on, off = ir.run(cfg, store), ir.run(cfg.replace(grad_stats=False), store)
    assert on.key != off.key and "grad_stats" not in cfg.key_dict()
    stats = {"grad_norm2_full", "grad_norm2_minibatch", "grad_variance"}
    assert stats <= set(on.metrics.metric) and not stats & set(off.metrics.metric)
    kept = on.metrics[~on.metrics.metric.isin(stats)].drop(columns="run")
    pd.testing.assert_frame_equal(kept.reset_index(drop=True),
                                  off.metrics.drop(columns="run").reset_index(drop=True))
    pd.testing.assert_frame_equal(on.examples, off.examples)
    # Layer statistics are measurements too: one run can serve a study that reads them
    # and one that does not.
    plain = ir.run(cfg.replace(layer_stats=False), store).metrics
    layers = on.metrics.split.str.startswith("layer:")
    pd.testing.assert_frame_equal(on.metrics[~layers].drop(columns="run").reset_index(drop=True),
                                  plain.drop(columns="run").reset_index(drop=True))


def test_measurements_are_recorded(tiny, store):
    r = ir.run(tiny.replace(reg="sgd-modified", micro_batch=8, sharpness=True,
                            sharpness_iters=5, label_noise=0.25), store)
    names = set(zip(r.metrics.split, r.metrics.metric))
    for want in [("train", "loss"), ("test", "accuracy"), ("eval", "grad_norm2_full"),
                 ("eval", "grad_norm2_minibatch"), ("eval", "grad_variance"),
                 ("eval", "grad_norm2_micro"), ("eval", "sharpness"),
                 ("eval", "weight_norm"), ("eval", "distance_from_init"),
                 ("pristine", "accuracy"), ("corrupt", "accuracy"),
                 ("train", "running_penalty")]:
        assert want in names, want
    m = r.metrics
    full = m[(m.metric == "grad_norm2_full")].value.to_numpy()
    mini = m[(m.metric == "grad_norm2_minibatch")].value.to_numpy()
    var = m[(m.metric == "grad_variance")].value.to_numpy()
    np.testing.assert_allclose(mini - full, var, rtol=1e-4, atol=1e-6)
    assert (var >= -1e-6).all()
    ex = r.examples
    assert len(ex) == tiny.n_train and ex.corrupt.sum() == round(0.25 * tiny.n_train)
    assert (ex.first_learned_step >= -1).all()


@pytest.mark.parametrize("method", ["sgd", "sgd-replacement", "gd"])
@pytest.mark.parametrize("reg", ["none", "gd-modified", "sgd-modified"])
def test_every_method_and_regularizer_trains(tiny, store, method, reg):
    r = ir.run(tiny.replace(method=method, reg=reg, micro_batch=8, steps=16,
                            lr=0.1), store)
    assert not r.summary["diverged"]
    assert math.isfinite(r.summary["test_loss"])
    # learning happened: better than chance on this easy-ish task
    assert r.summary["train_accuracy"] > 0.2


def test_fixed_partition_reuses_the_same_minibatches(tiny):
    t = Trainer(tiny.replace(fixed_partition=True))
    from implicitreg.engine.training import make_epoch_batches
    a = make_epoch_batches(t.cfg, t.n, t.gen, t.partition)
    b = make_epoch_batches(t.cfg, t.n, t.gen, t.partition)
    key = lambda batches: sorted(tuple(sorted(r.tolist())) for r in batches)  # noqa: E731
    assert key(a) == key(b)
    assert not torch.equal(a, b)  # the order of minibatches changes
