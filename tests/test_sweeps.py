"""Batched training of many models and the sweep executors."""
import numpy as np
import pytest

import implicitreg as ir
from implicitreg import golden
from implicitreg.engine.batched import BatchedTrainer, group_key, why_not_batchable

# Vmapped and separate kernels round differently; the tolerance is measured across
# instruction sets and thread counts (tests/golden/batched_vs_separate.json).
RTOL = golden.batched_tolerance()


def _compare(a, b, rtol=RTOL):
    dev = golden.metric_deviation(a, b)
    assert dev <= rtol, (f"relative deviation {dev:.2e} > tolerance {rtol:.2e} "
                         f"({golden.where()})")


@pytest.mark.parametrize("reg", golden.BATCHED_REGS)
def test_batched_runs_equal_separate_runs(tmp_path, reg):
    cfgs = golden.batched_variants(reg)
    alone = [ir.run(c, ir.RunStore(tmp_path / "alone")) for c in cfgs]
    together_store = ir.RunStore(tmp_path / "together")
    together = ir.run_batch(cfgs, together_store)
    for a, b in zip(alone, together):
        assert a.key == b.key and not b.cached
        _compare(a, b)
        for field in ("steps", "diverged", "n_params", "data_source"):
            assert a.summary[field] == b.summary[field]
    # stored under the same keys: a plain run now finds them
    assert all(ir.run(c, together_store).cached for c in cfgs)
    # and the tolerance still sees a 1% change of ε in one model
    moved = ir.run(cfgs[0].replace(lr=cfgs[0].lr * golden.DELIBERATE),
                   ir.RunStore(tmp_path / "moved"))
    assert golden.metric_deviation(together[0], moved) > RTOL


def test_batched_cnn_equals_separate(tiny, tmp_path):
    base = ir.RunConfig(dataset="cifar10", n_train=64, n_test=32, model="cnn", cnn_width=4,
                        batch_size=16, epochs=2, lr=0.05, progress=False)
    cfgs = [base.replace(seed=s) for s in range(3)]
    alone = [ir.run(c, ir.RunStore(tmp_path / "a")) for c in cfgs]
    for a, b in zip(alone, ir.run_batch(cfgs, ir.RunStore(tmp_path / "b"))):
        _compare(a, b)


def test_a_diverging_model_stops_alone_and_the_others_go_on(tiny, tmp_path):
    cfgs = [tiny.replace(seed=0), tiny.replace(seed=1, lr=1e6)]
    alone = [ir.run(c, ir.RunStore(tmp_path / "a")) for c in cfgs]
    together = ir.run_batch(cfgs, ir.RunStore(tmp_path / "b"))
    assert alone[1].summary["diverged"] and together[1].summary["diverged"]
    assert alone[1].summary["steps"] == together[1].summary["steps"]
    assert not together[0].summary["diverged"]
    _compare(alone[0], together[0])


def test_group_keys_separate_what_cannot_share_a_step(tiny):
    assert group_key(tiny) == group_key(tiny.replace(seed=5, lr=0.3, momentum=0.5))
    assert group_key(tiny) != group_key(tiny.replace(batch_size=16))
    assert group_key(tiny) != group_key(tiny.replace(label_noise=0.5))
    assert group_key(tiny.replace(method="gd")) is None
    assert "winsorized" in why_not_batchable(tiny.replace(winsorize=2))
    with pytest.raises(ValueError, match="cannot train as one batch"):
        BatchedTrainer([tiny, tiny.replace(batch_size=16)])


def test_batched_group_resumes_from_checkpoints(tiny, tmp_path):
    """A group killed after a checkpoint resumes and ends where an uninterrupted one does."""
    cfgs = [tiny.replace(seed=s, momentum=0.9 * (s % 2), epochs=4, checkpoint_every=5)
            for s in range(3)]
    st = ir.RunStore(tmp_path / "runs")
    paths = [st.checkpoint_path(ir.runs.store.run_key(c, "synthetic")) for c in cfgs]

    class Killed(Exception):
        pass

    def die(step):
        if step == 12:
            raise Killed

    with pytest.raises(Killed):
        BatchedTrainer(cfgs, checkpoint_paths=paths).train(on_step=die, progress=False)
    assert all(p.is_file() for p in paths)
    resumed = BatchedTrainer(cfgs, checkpoint_paths=paths)
    assert all(t.step == 10 for t in resumed.trainers)
    outs = resumed.train(progress=False)
    fresh = BatchedTrainer(cfgs).train(progress=False)
    for a, b in zip(outs, fresh):
        va = np.array([r["value"] for r in a.rows])
        vb = np.array([r["value"] for r in b.rows])
        np.testing.assert_allclose(va, vb, rtol=1e-5, atol=1e-6)


def test_sweep_batches_resumes_and_matches_one_run_at_a_time(tiny, tmp_path):
    grid = {"seed": [0, 1, 2], "lr": [0.05, 0.1], "batch_size": [16, 32]}
    st = ir.RunStore(tmp_path / "grid")
    calls = []
    import implicitreg.runs.sweeps as sw
    real = sw.train

    def spy(cfgs, *a, **k):
        calls.append(len(cfgs))
        return real(cfgs, *a, **k)

    sw.train = spy
    try:
        ir.sweep(tiny, {"seed": [0, 1], "lr": [0.05], "batch_size": [16]}, st)  # a grid that died early
        results = ir.sweep(tiny, grid, st, max_batch=4)
    finally:
        sw.train = real
    assert calls[0] == 2  # the first two cells trained as one batch
    assert sorted(calls[1:]) == [2, 4, 4]  # 10 missing cells: batch 16 -> 4, batch 32 -> 4 + 2
    alone = [ir.run(r.config, ir.RunStore(tmp_path / "alone")) for r in results]
    for a, b in zip(alone, results):
        assert a.key == b.key
        _compare(a, b)
    assert [r.config.seed for r in results] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]


def test_sweep_in_worker_processes(tiny, tmp_path):
    st = ir.RunStore(tmp_path / "grid")
    grid = {"seed": [0, 1], "method": ["sgd", "gd"]}
    results = ir.sweep(tiny.replace(gd_chunk=64), grid, st, workers=2)
    assert [r.config.method for r in results] == ["sgd", "gd", "sgd", "gd"]
    assert sorted(st.keys()) == sorted(r.key for r in results)
    assert not any(r.cached for r in results), "trained in a worker counts as trained"
    again = ir.sweep(tiny.replace(gd_chunk=64), grid, st, workers=2)
    assert all(r.cached for r in again)


def test_sweep_rejects_bad_executor_parameters(tiny, tmp_path):
    with pytest.raises(ir.ConfigError, match="backend"):
        ir.sweep(tiny, {"seed": [0]}, tmp_path, backend="slurm")
    with pytest.raises(ir.ConfigError, match="workers"):
        ir.sweep(tiny, {"seed": [0]}, tmp_path, workers=0)


@pytest.mark.cluster
def test_ray_backend_on_a_local_ray_instance(tiny, tmp_path):
    """A real local Ray instance (no mocks): tasks train on Ray workers and ship their
    runs back into the caller's store, under the keys a local run would use."""
    ray = pytest.importorskip("ray", reason="the [cluster] extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        grid = {"seed": [0, 1, 2], "batch_size": [16, 32]}
        st = ir.RunStore(tmp_path / "from-ray")
        results = ir.sweep(tiny, grid, st, backend="ray", max_batch=2)
    finally:
        ray.shutdown()
    assert sorted(st.keys()) == sorted(r.key for r in results) and len(results) == 6
    assert not any(r.cached for r in results)
    local = ir.sweep(tiny, grid, ir.RunStore(tmp_path / "local"), batch=False)
    for a, b in zip(local, results):
        assert a.key == b.key
        _compare(a, b)
        assert b.provenance["data_source"] == "synthetic"


def test_run_many_keeps_order_trains_repeats_once_and_reads_the_environment(
        tiny, tmp_path, monkeypatch):
    st = ir.RunStore(tmp_path / "runs")
    cfgs = [tiny.replace(seed=1), tiny.replace(method="gd"), tiny.replace(seed=1)]
    results = ir.run_many(cfgs, st, keep_model=True)
    assert results[0].key == results[2].key and len(st.keys()) == 2
    assert all((r.path / "model.pt").is_file() for r in results)
    monkeypatch.setenv("IMPLICITREG_SWEEP_BACKEND", "nowhere")
    with pytest.raises(ir.ConfigError, match="nowhere"):
        ir.run_many(cfgs, st)


def test_only_small_models_are_batched_on_a_cpu(tiny):
    from implicitreg.engine.batched import n_params, worth_batching
    big = tiny.replace(dataset="mnist", widths=(2048,))
    assert n_params(big) == 784 * 2048 + 2048 + 2048 * 10 + 10
    assert worth_batching(tiny) and not worth_batching(big)
    # convolutions batch slower than they run one after the other on a CPU
    assert not worth_batching(tiny.replace(dataset="cifar10", model="cnn", cnn_width=4))


def test_run_many_passes_the_exec_config_given_in_code_to_every_run(tiny, tmp_path,
                                                                      monkeypatch):
    from implicitreg.runs import runner
    from implicitreg.runs.execution import ExecConfig

    seen = []
    real = runner.train

    def spy(cfgs, keys, source, st, ex, *a, **kw):
        seen.append(ex)
        return real(cfgs, keys, source, st, ex, *a, **kw)

    monkeypatch.setattr("implicitreg.runs.sweeps.train", spy)
    ex = ExecConfig(native_kernel=False, kernel_march="haswell", deadline=4e9)
    ir.run_many([tiny.replace(seed=5)], ir.RunStore(tmp_path / "runs"), exec_config=ex)
    assert seen and all(e.native_kernel is False and e.kernel_march == "haswell"
                        and e.deadline == 4e9 and e.progress is False for e in seen)
