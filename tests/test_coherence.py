"""Coherent Gradients bookkeeping: winsorization, f_p + f_c = 1, proper accuracy."""
import contextlib
import tempfile

import numpy as np
import pytest
import torch

import implicitreg as ir
from implicitreg.engine.gradients import (_winsorized_grad_linear, per_example_grads, winsorize,
                                   winsorized_grad)
from implicitreg.engine.probes import coherence_fractions
from implicitreg.engine.models import build_model


def winsorize_reference(g: np.ndarray, c: int) -> np.ndarray:
    """Per coordinate: sort, clip to the (c+1)-th smallest and (c+1)-th largest."""
    out = g.copy()
    for j in range(g.shape[1]):
        col = np.sort(g[:, j])
        lo, hi = col[c], col[len(col) - 1 - c]
        out[:, j] = np.clip(g[:, j], lo, hi)
    return out


@pytest.mark.parametrize("c", [0, 1, 2, 3])
def test_winsorize_matches_a_sort_based_reference_including_ties(c):
    g = torch.tensor([[1.0, 5.0, 0.0], [2.0, 5.0, 0.0], [9.0, 5.0, -3.0], [-4.0, 1.0, 7.0],
                      [2.0, 5.0, 7.0], [0.0, -8.0, 7.0], [3.0, 2.0, 0.0], [2.0, 5.0, 1.0]])
    got = winsorize(g, c).numpy()
    np.testing.assert_array_equal(got, winsorize_reference(g.numpy(), c))


def test_winsorize_on_random_multidim_tensors():
    g = torch.randn(10, 3, 4).round(decimals=1)  # rounding makes ties
    got = winsorize(g, 2).reshape(10, -1).numpy()
    np.testing.assert_allclose(got, winsorize_reference(g.reshape(10, -1).numpy(), 2))


def test_winsorized_gradient_with_c0_is_the_plain_gradient():
    torch.manual_seed(0)
    model = build_model("mlp", (6,), 3, widths=(8,)).double()
    x, y = torch.randn(20, 6, dtype=torch.float64), torch.randint(0, 3, (20,))
    loss, g = winsorized_grad(model, x, y, 0)
    ref = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y),
                              list(model.parameters()))
    for a, b in zip(g, ref):
        torch.testing.assert_close(a, b)
    _, per = per_example_grads(model, x, y)
    loop = [torch.autograd.grad(torch.nn.functional.cross_entropy(model(x[i:i + 1]), y[i:i + 1]),
                                list(model.parameters())) for i in range(20)]
    for j, p in enumerate(per):
        torch.testing.assert_close(p, torch.stack([lg[j] for lg in loop]))


def _vmap_reference(model, x, y, c):
    _, per = per_example_grads(model, x, y)
    return [torch.from_numpy(winsorize_reference(g.flatten(1).double().numpy(), c))
            .mean(0).reshape(g.shape[1:]) for g in per]


@pytest.mark.parametrize("c,batch", [(1, 4), (2, 37), (4, 100), (8, 18), (8, 100)])
def test_compiled_winsorized_step_equals_the_reference(c, batch):
    """The kernel path (factored per-example gradients, insertion network, zero rows
    skipped) against sorting the vmapped per-example gradients. Inputs on a coarse grid
    and many inactive ReLUs make ties and exact zeros common."""
    from implicitreg.engine import native
    if native.kernel() is None:
        pytest.skip("no C++ compiler here: the PyTorch path is the only path")
    torch.manual_seed(c + batch)
    model = build_model("mlp", (1, 5, 7), 10, widths=(33, 17))
    x = torch.randint(-2, 3, (batch, 1, 5, 7)).float()
    x[: batch // 3] = 0.0  # whole examples of zeros: zero rows of inputs
    y = torch.randint(0, 10, (batch,))
    fast = _winsorized_grad_linear(model, x, y, c, contextlib.nullcontext)
    assert fast is not None, "the MLP should take the kernel path"
    assert winsorized_grad(model, x, y, c)[0] == fast[0]
    for a, b in zip(fast[1], _vmap_reference(model, x, y, c)):
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-6)


def test_winsorized_step_without_the_kernel_is_the_same(monkeypatch):
    from implicitreg.engine import native
    torch.manual_seed(3)
    model = build_model("mlp", (20,), 4, widths=(16, 16))
    x, y = torch.randn(30, 20), torch.randint(0, 4, (30,))
    with_kernel = winsorized_grad(model, x, y, 3)[1]
    monkeypatch.setattr(native, "_lib", None)  # as when no compiler is found
    without = winsorized_grad(model, x, y, 3)[1]
    for a, b in zip(with_kernel, without):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_winsorized_step_of_a_cnn_uses_vmap_and_matches_the_reference():
    torch.manual_seed(4)
    model = build_model("cnn", (3, 8, 8), 10, cnn_width=4)
    x, y = torch.randn(12, 3, 8, 8), torch.randint(0, 10, (12,))
    got = winsorized_grad(model, x, y, 2)[1]
    for a, b in zip(got, _vmap_reference(model, x, y, 2)):
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-6)


def test_pristine_and_corrupt_fractions_sum_to_one():
    torch.manual_seed(1)
    model = build_model("mlp", (5,), 4, widths=(7,)).double()
    x, y = torch.randn(33, 5, dtype=torch.float64), torch.randint(0, 4, (33,))
    corrupt = torch.rand(33) < 0.4
    f = coherence_fractions(model, x, y, torch.stack([corrupt, ~corrupt]), chunk=10)
    torch.testing.assert_close(f.sum(), torch.tensor(1.0, dtype=f.dtype))
    # against the definition with explicit cross terms split equally
    _, gs = per_example_grads(model, x, y)
    G = torch.cat([g.flatten(1) for g in gs], 1) / 33
    gp, gc = G[~corrupt].sum(0), G[corrupt].sum(0)
    total = (gp + gc) @ (gp + gc)
    want_c = (gc @ gc + gp @ gc) / total
    torch.testing.assert_close(f[0], want_c)


@pytest.mark.parametrize("model_kind", ["mlp", "cnn"])
def test_coherence_fractions_of_many_masks_match_explicit_per_example_gradients(model_kind):
    """The forward-mode form (g_i · g for every example at once) against the masked sums
    of vmapped per-example gradients, for several masks and chunk sizes."""
    torch.manual_seed(2)
    shape = (5,) if model_kind == "mlp" else (3, 8, 8)
    model = build_model(model_kind, shape, 4, widths=(7,), cnn_width=3).double()
    x, y = torch.randn(23, *shape, dtype=torch.float64), torch.randint(0, 4, (23,))
    masks = torch.rand(6, 23) < 0.3
    _, gs = per_example_grads(model, x, y)
    G = torch.cat([g.flatten(1) for g in gs], 1) / 23
    g = G.sum(0)
    want = (masks.double() @ G) @ g / (g @ g)
    for chunk in (23, 5):
        torch.testing.assert_close(coherence_fractions(model, x, y, masks, chunk=chunk), want)


def test_label_noise_bookkeeping_and_proper_accuracy(store):
    cfg = ir.RunConfig(dataset="synthetic", n_train=300, n_test=100, widths=(16,),
                       batch_size=30, epochs=2, label_noise=0.4, progress=False,
                       coherence_probe=60)
    r = ir.run(cfg, store)
    ex = r.examples
    assert ex.corrupt.sum() == 120
    assert (ex.label[~ex.corrupt] == ex.clean_label[~ex.corrupt]).all()
    m = r.metrics
    acc = m[(m.metric == "accuracy")]
    last = acc[acc.step == acc.step.max()].set_index("split").value
    # train accuracy is the weighted mean of pristine and corrupt accuracies
    np.testing.assert_allclose(last["train"], 0.6 * last["pristine"] + 0.4 * last["corrupt"],
                               atol=1e-6)
    fp = m[m.metric == "f_pristine"].value.to_numpy()
    fc = m[m.metric == "f_corrupt"].value.to_numpy()
    np.testing.assert_allclose(fp + fc, 1.0, atol=1e-6)
    assert ir.analysis.proper_accuracy(0.4) == pytest.approx(1 - 0.4 + 0.04)
    assert ir.analysis.expected_train_accuracy(0.9, 0.4) == pytest.approx(0.6 * 0.9 + 0.04)


def test_winsorize_needs_a_batch_big_enough():
    with pytest.raises(ir.ConfigError, match="winsorize"):
        ir.RunConfig(batch_size=8, winsorize=4)
    with pytest.raises(ir.ConfigError, match="coherence_probe"):
        ir.RunConfig(coherence_probe=10)


@pytest.mark.parametrize("c", [2, 4, 6, 8])
def test_the_kernel_gives_the_same_bits_at_every_vector_width(c):
    """Builds for AVX-512 (16 lanes where the CPU has it), AVX2 (haswell, 8 lanes) and
    baseline x86-64 (4 lanes; from c = 5 on AVX2 takes two passes): each lane sums its
    coordinate over the examples in the same order, so the widths agree bit for bit."""
    import platform

    from implicitreg.engine import native
    if native.kernel() is None or platform.machine() != "x86_64":
        pytest.skip("needs a C++ compiler and an x86-64 CPU")
    torch.manual_seed(c)
    d = torch.randn(64, 40).relu_()
    a = torch.randn(64, 50)
    outs, widths = [], []
    try:
        for march in ("native", "haswell", "x86-64"):
            native.set_target(march)
            widths.append(native.lanes())
            outs.append(native.winsorized_outer_mean(d, a, c))
    finally:
        native.set_target("native")
    assert widths[1:] == [8, 4]
    for out in outs[1:]:
        assert torch.equal(out, outs[0])


@pytest.mark.parametrize("c", [1, 3, 8])
def test_the_kernel_finds_the_bias_bounds_that_topk_finds(c):
    """The bias gradients are clipped to bounds from the kernel: they must be the values
    top-k finds (zeros and ties included), at every vector width, so that the winsorized
    bias gradient keeps the bits of ``winsorize(d, c).mean(0)``."""
    import platform

    from implicitreg.engine import native
    if native.kernel() is None or platform.machine() != "x86_64":
        pytest.skip("needs a C++ compiler and an x86-64 CPU")
    torch.manual_seed(10 + c)
    d = torch.randint(-3, 4, (41, 37)).float() * torch.randn(41, 37).relu_()
    hi = torch.topk(d, c + 1, dim=0).values[-1]
    lo = -torch.topk(-d, c + 1, dim=0).values[-1]
    try:
        for march in ("native", "haswell", "x86-64"):
            native.set_target(march)
            got = native.winsorize_bounds(d, c)
            assert torch.equal(got[0], hi) and torch.equal(got[1], lo), march
    finally:
        native.set_target("native")


def test_the_run_layer_passes_the_kernel_settings_to_the_engine(monkeypatch):
    from implicitreg.engine import native
    from implicitreg.runs import runner
    from implicitreg.runs.execution import ExecConfig

    seen = {}
    monkeypatch.setattr(native, "set_enabled", lambda on: seen.update(on=on))
    monkeypatch.setattr(native, "set_target", lambda march: seen.update(march=march))
    ex = ExecConfig.from_env({"IMPLICITREG_NATIVE": "0", "IMPLICITREG_KERNEL_MARCH": "haswell"})
    cfg = ir.RunConfig(dataset="synthetic", n_train=32, n_test=16, widths=(8,), batch_size=8,
                    winsorize=1, steps=2, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        runner.run(cfg, tmp, exec_config=ex)
    assert seen == {"on": False, "march": "haswell"}
