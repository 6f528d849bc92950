"""Coherent Gradients bookkeeping: winsorization, f_p + f_c = 1, proper accuracy."""
import numpy as np
import pytest
import torch

import implicitreg as ir
from implicitreg.gradients import per_example_grads, winsorize, winsorized_grad
from implicitreg.measure import coherence_fractions
from implicitreg.models import build_model


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
