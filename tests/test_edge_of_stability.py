"""The measurements behind the edge-of-stability chapter: sharpness against a known
spectrum, and the 2/ε stability threshold of GD on a quadratic."""
import math

import numpy as np
import pytest
import torch

from implicitreg.analysis import flows as F
from implicitreg.analysis import stability as S

SPECTRUM = [0.3, 1.0, 2.5, 4.0, 7.5, 10.0]


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_sharpness_matches_a_known_spectrum(method):
    p = S.quadratic_problem(SPECTRUM, seed=1)
    got = S.sharpness(p, p.theta0, method=method, iters=2000, tol=1e-12)
    assert abs(got - max(SPECTRUM)) / max(SPECTRUM) < 1e-6


def test_quadratic_problem_has_the_requested_hessian():
    p = S.quadratic_problem(SPECTRUM, seed=2)
    h = torch.autograd.functional.hessian(lambda th: p.loss(th, p.x, p.y), p.theta0)
    assert np.allclose(np.sort(torch.linalg.eigvalsh(h).numpy()), SPECTRUM, atol=1e-10)


def test_engine_power_iteration_on_the_same_spectrum():
    """The engine's probe (what the runs record) on a linear model whose Hessian is the
    quadratic's."""
    from implicitreg.engine.probes import top_eigenvalue

    p = S.quadratic_problem(SPECTRUM, seed=3)
    model = torch.nn.Linear(len(SPECTRUM), 1, bias=False).double()
    loss = lambda m, xx, yy: 0.5 * ((m(xx).squeeze(-1) - yy) ** 2).mean()  # noqa: E731
    got = float(top_eigenvalue(model, p.x, p.y, iters=2000, tol=1e-12, loss_fn=loss))
    assert abs(got - max(SPECTRUM)) / max(SPECTRUM) < 1e-6


@pytest.mark.parametrize("factor, stable", [(0.9, True), (0.99, True), (1.01, False),
                                            (1.1, False)])
def test_gd_on_a_quadratic_is_stable_exactly_below_two_over_lambda(factor, stable):
    lam = max(SPECTRUM)
    p = S.quadratic_problem(SPECTRUM, seed=4)
    eps = factor * 2 / lam
    path = S.gd_path(p, eps, 3000, every=100, progress=False)
    norms = np.linalg.norm(path.theta, axis=1)
    if stable:
        assert norms[-1] < 1e-3 * norms[0]
    else:
        assert norms[-1] > 1e3 * norms[0]


def test_gd_path_agrees_with_flows_gd():
    p = F.two_parameter_problem(m=2)
    path = S.gd_path(p, 0.05, 40, every=1, progress=False)
    assert np.allclose(path.theta, F.gd(p, 0.05, 40, record=True).numpy())
    assert np.allclose(path.t, 0.05 * np.arange(41))


def test_flow_path_recovers_the_exact_quadratic_flow():
    lam = np.array(SPECTRUM)
    p = S.quadratic_problem(SPECTRUM, seed=5)
    t = np.linspace(0, 2, 11)
    got = S.flow_path(p, "plain", 0.1, t, rtol=1e-11, atol=1e-13).theta
    # θ(t) = Q exp(−Λt) Qᵀ θ0, with Q from the Hessian XᵀX/n.
    w, q = np.linalg.eigh((p.x.T @ p.x / len(p.x)).numpy())
    want = np.stack([q @ (np.exp(-w * s) * (q.T @ p.theta0.numpy())) for s in t])
    assert np.allclose(got, want, atol=1e-8)
    assert np.allclose(w, np.sort(lam))


def test_measurements():
    x = [0, 5, 10, 15, 20]
    assert S.first_reach(x, [1, 2, 9, 12, 8], 9) == 10
    assert math.isnan(S.first_reach(x, [1, 2, 3, 4, 5], 9))
    assert S.fraction_in_band([10, 12, 7, 9.5], 10, 0.2) == 0.75
    assert S.loss_increases([3, 2, 2.5, 1, 1.2, 0.5]) == 2
    assert S.departure_time(x, [0, 0.01, 0.02, 0.5, 0.1], [0, 1, 1, 1, 1], 0.05) == 15
    assert math.isnan(S.departure_time(x, [0, 0, 0, 0, 0], [0, 1, 1, 1, 1], 0.05))


def test_cifar_mlp_problem_is_a_smooth_flat_loss():
    p = S.cifar_mlp_problem(n=20, side=4, widths=(5,), seed=0)
    assert p.x.shape == (20, 48) and p.x.dtype == torch.float64
    assert p.theta0.numel() == 48 * 5 + 5 + 5 * 10 + 10
    c0 = float(p.loss(p.theta0, p.x, p.y))
    assert abs(c0 - math.log(10)) < 0.5
    path = S.gd_path(p, 0.1, 5, progress=False)
    assert S.losses(p, path)[-1] < c0
