"""The backward-error-analysis machinery of implicitreg.analysis.flows."""
import numpy as np
import pytest
import torch
from torch.func import grad

from implicitreg.analysis import flows as F
from implicitreg.analysis import loglog_slope


@pytest.fixture(params=["two", "mlp"])
def problem(request):
    return F.two_parameter_problem(m=4) if request.param == "two" else F.mlp_problem(n=32, m=4)


def test_flow_solver_converges_as_the_tolerance_shrinks(problem):
    f = F.field(problem, "gd", 0.05)
    ref = F.solve_flow(f, problem.theta0, 1.0, rtol=1e-12, atol=1e-14)
    errs = [np.linalg.norm(F.solve_flow(f, problem.theta0, 1.0, rtol=r, atol=r * 1e-2) - ref)
            for r in (1e-3, 1e-6, 1e-9)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 1e-8


def test_flow_solver_matches_a_closed_form():
    """dθ/dt = −θ (C = ½‖θ‖² on one example): θ(t) = θ0 e^{−t}."""
    p = F.Problem(lambda th, x, y: 0.5 * (th ** 2).sum() + 0 * x.sum(),
                  torch.tensor([1.0, -2.0], dtype=torch.float64),
                  torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64), 2)
    got = F.solve_flow(F.field(p, "plain", 0.1), p.theta0, 2.0)
    np.testing.assert_allclose(got, p.theta0.numpy() * np.exp(-2.0), rtol=1e-9)


@pytest.mark.parametrize("kind", ["plain", "gd", "sgd"])
def test_modified_loss_gradients_match_autograd(problem, kind):
    eps = 0.1
    th = problem.theta0 + 0.1
    want = -grad(F.modified_loss(problem, kind, eps))(th)
    got = F.field(problem, kind, eps)(th)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("replacement", [False, True])
def test_vmap_over_orders_equals_a_loop(problem, replacement):
    orders = F.all_orders(problem.m, 30, replacement=replacement)
    a = F.sgd_epochs(problem, 0.05, orders, epochs=2)
    b = F.sgd_epochs_loop(problem, 0.05, orders, epochs=2)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_all_orders_enumerates_permutations_exactly():
    o = F.all_orders(4, 1000)
    assert o.shape == (24, 4)
    assert len({tuple(r) for r in o.tolist()}) == 24
    o = F.all_orders(3, 1000, replacement=True)
    assert o.shape == (27, 3)
    assert F.all_orders(8, 50).shape == (50, 8)


def test_gd_error_slopes_against_plain_and_modified_flow():
    """The central claim on the smooth MLP: error vs ε has slope ~1 against the flow of C
    and ~2 against the flow of C̃_GD (fixed time T)."""
    p = F.mlp_problem(n=32, m=4)
    epss = [1 / n for n in (16, 32, 64, 128)]
    err = {"plain": [], "gd": []}
    for e in epss:
        th = F.gd(p, e, round(1 / e)).numpy()
        for k in err:
            err[k].append(np.linalg.norm(th - F.solve_flow(F.field(p, k, e), p.theta0, 1.0)))
    assert abs(loglog_slope(epss, err["plain"]).slope - 1) < 0.2
    assert abs(loglog_slope(epss, err["gd"]).slope - 2) < 0.2
