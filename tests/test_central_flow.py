"""The central flow of GD: its k x k complementarity problem against brute force, its
eigen- and third-derivative building blocks against known values, and the flow against
what it must reduce to (gradient flow below 2/ε, projected gradient flow with one
critical direction, two copies of one problem side by side)."""
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from implicitreg.analysis import central_flow as CF
from implicitreg.analysis import flows as F
from implicitreg.analysis import stability as S


# These problems are tiny: a second thread only adds contention.
pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------ the k x k problem
def random_sdcp(k, rng, dim=12):
    """a with eigenvalues of both signs; B the Gram operator of symmetric pairs of
    vectors, as the flow builds it from third-derivative vectors."""
    v = rng.standard_normal((k, k, dim))
    v = 0.5 * (v + v.transpose(1, 0, 2))
    b = np.einsum("ijd,kld->ijkl", v, v)
    a = rng.standard_normal((k, k))
    return 0.5 * (a + a.T), b


def brute_force(a, b, rng, starts=6):
    """min over X = LLᵀ of the convex QP by BFGS from several random starts."""
    k = len(a)
    low = np.tril_indices(k)

    def x_of(z):
        m = np.zeros((k, k))
        m[low] = z
        return m @ m.T

    best = min((minimize(lambda z: CF.sdcp_objective(a, b, x_of(z)),
                         rng.standard_normal(len(low[0])), method="BFGS",
                         options={"gtol": 1e-12, "maxiter": 10000}) for _ in range(starts)),
               key=lambda r: r.fun)
    return x_of(best.x)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_sdcp_matches_brute_force(k):
    rng = np.random.default_rng(k)
    for _ in range(8):
        a, b = random_sdcp(k, rng)
        x = CF.solve_sdcp(a, b)
        ref = brute_force(a, b, rng)
        res = CF.sdcp_residuals(a, b, x)
        assert res["x_psd"] < 1e-12 and res["s_psd"] < 1e-9 and res["gap"] < 1e-9
        assert CF.sdcp_objective(a, b, x) <= CF.sdcp_objective(a, b, ref) + 1e-10
        assert np.abs(x - ref).max() < 1e-5 * max(1.0, np.abs(ref).max())


def test_sdcp_barrier_agrees_with_the_closed_form_for_one_direction():
    rng = np.random.default_rng(7)
    for _ in range(5):
        a, b = random_sdcp(1, rng)
        a = -np.abs(a)
        assert np.allclose(CF.solve_sdcp(a, b, method="barrier"), -a[0, 0] / b[0, 0, 0, 0],
                           rtol=1e-10, atol=0)


def test_sdcp_is_covariant_under_a_change_of_eigenbasis():
    """Σ = UXUᵀ must not depend on which basis of a degenerate eigenspace U is: rotating
    the basis by Q rotates a and B, and X must follow as QᵀXQ. This fails if
    off-diagonal pairs are weighted wrongly."""
    rng = np.random.default_rng(3)
    for k in (2, 3):
        a, b = random_sdcp(k, rng)
        q, _ = np.linalg.qr(rng.standard_normal((k, k)))
        a_rot = q.T @ a @ q
        b_rot = np.einsum("ia,jb,ijkl,kc,ld->abcd", q, q, b, q, q)
        x, x_rot = CF.solve_sdcp(a, b), CF.solve_sdcp(a_rot, b_rot)
        assert np.abs(x_rot - q.T @ x @ q).max() < 1e-9 * max(1.0, np.abs(x).max())


def test_sdcp_gives_no_oscillation_when_stable_and_refuses_without_feedback():
    rng = np.random.default_rng(4)
    _, b = random_sdcp(2, rng)
    assert np.array_equal(CF.solve_sdcp(np.diag([0.5, 0.0]), b), np.zeros((2, 2)))
    with pytest.raises(CF.NoCentralFlow):
        CF.solve_sdcp(np.diag([-1.0, 0.5]), np.zeros((2, 2, 2, 2)))


# ------------------------------------------------------------------ building blocks
def test_top_eigenpairs_on_a_known_spectrum_and_warm_start():
    spectrum = np.linspace(0.1, 5.0, 100)
    spectrum[-3:] = [7.0, 8.0, 10.0]
    p = S.quadratic_problem(spectrum, seed=5)
    cur = CF.Curvature(p, p.theta0)
    vals, u = CF.top_eigenpairs(cur.hvp, 100, 3, tol=1e-10)
    assert np.allclose(vals.numpy(), [10.0, 8.0, 7.0], rtol=1e-10)
    assert torch.allclose(cur.hvp(u), vals[:, None] * u, atol=1e-8)
    cold = cur.n_hvp
    cur.n_hvp = 0
    CF.top_eigenpairs(cur.hvp, 100, 3, v0=u, tol=1e-10)
    assert cur.n_hvp <= 6 < cold


def test_third_derivative_vectors_match_finite_differences():
    p = F.mlp_problem(n=16, hidden=4)
    th = p.theta0
    cur = CF.Curvature(p, th)
    _, u = CF.top_eigenpairs(cur.hvp, th.numel(), 2)
    d = cur.third(u)
    v = torch.randn(th.numel(), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = 1e-4

    def m(w):
        hu = CF.Curvature(p, w).hvp(u)
        return u @ hu.T

    fd = (m(th + h * v) - m(th - h * v)) / (2 * h)
    assert torch.allclose(torch.einsum("ijd,d->ij", d, v), fd, rtol=1e-6, atol=1e-8)
    assert torch.equal(d[0, 1], d[1, 0])


# ------------------------------------------------------------------ the flow
def warm_mlp(t0=100.0):
    """The small tanh MLP moved along its gradient flow to time t0, where its sharpness
    (about 2.38) still rises steadily: a start free of GD's early transient."""
    p = F.mlp_problem()
    th = F.solve_flow(F.field(p, "plain", 0.0), p.theta0, t0, rtol=1e-9, atol=1e-11)
    return F.Problem(p.loss, torch.from_numpy(th), p.x, p.y, p.m, p.name)


def test_below_the_threshold_the_central_flow_is_gradient_flow():
    """With every eigenvalue below 2/ε, X = 0 and the Euler substeps are GD with step
    ε/substeps; and that stays close to the exact gradient flow."""
    p = F.mlp_problem()
    eps, steps, sub = 0.2, 30, 4
    run = CF.central_flow(p, eps, steps, substeps=sub, every=10, progress=False)
    assert run.n_critical.max() == 0 and np.all(run.trace_sigma == 0)
    assert np.array_equal(run.loss, run.predicted_loss)
    assert run.sharpness.max() < 0.5 * 2 / eps
    fine = F.gd(p, eps / sub, steps * sub, record=True)[::10 * sub].numpy()
    assert np.abs(run.theta - fine).max() < 1e-12
    exact = F.solve_flow(F.field(p, "plain", eps), p.theta0, steps * eps,
                         t_eval=run.t[run.theta_steps])
    drift = np.linalg.norm(run.theta - exact, axis=1)
    travelled = np.linalg.norm(exact - exact[0], axis=1)
    assert np.all(drift[1:] < 0.02 * travelled[1:])


def test_one_critical_direction_holds_the_sharpness_at_two_over_eps():
    p = warm_mlp()
    eps = 2 / 2.45
    run = CF.central_flow(p, eps, 120, progress=False)
    assert run.sharpness[0] < 0.975 * 2 / eps
    # Critical (above 0.975·2/ε) comes first; oscillations start once 2/ε is reached.
    near, hit = int(np.argmax(run.n_critical > 0)), int(np.argmax(run.trace_sigma > 0))
    assert 0 < near < hit < 60 and np.all(run.n_critical[near:] == 1)
    assert np.all(run.sharpness[:hit] < 2 / eps)
    held = run.sharpness[hit + 1:]
    assert len(held) > 50 and np.abs(held - 2 / eps).max() < 1e-5
    # Gradient flow itself would have gone past 2/ε: the oscillations hold it back.
    flow = S.flow_path(p, "plain", eps, [0.0, 120 * eps])
    assert S.sharpness(p, flow.theta[-1]) > 1.03 * 2 / eps
    # Where oscillations are present they cost loss: GD's average sits above L(w).
    on = run.trace_sigma > 0
    assert on[hit:].all()
    assert np.all(run.predicted_loss[on] > run.loss[on])
    assert np.allclose(run.predicted_loss[on] - run.loss[on],
                       run.trace_sigma[on] / eps, rtol=1e-4)


def test_one_critical_direction_is_projected_gradient_flow():
    """With one critical direction u, λ = uᵀHu and ∇λ = D_uu, the velocity is
    −ε times ∇L projected off ∇λ, plus the pull (2/ε − λ)/Δτ along ∇λ/‖∇λ‖² that puts λ
    back on 2/ε after the substep."""
    p = warm_mlp()
    eps, dt = 2 / 2.45, 0.25
    run = CF.central_flow(p, eps, 60, progress=False)
    assert run.n_critical[-1] == 1
    th = torch.from_numpy(run.theta[-1])
    s = CF.central_substep(p, eps, th, dt)
    assert s.n_critical == 1 and s.x[0, 0] > 0
    cur = CF.Curvature(p, th)
    grad_lam = cur.third(s.u[:1])[0, 0]
    g = cur.grad
    n2 = grad_lam @ grad_lam
    projected = g - (g @ grad_lam) / n2 * grad_lam
    want = -eps * projected + (2 / eps - s.eigs[0]) / dt * grad_lam / n2
    assert torch.allclose(s.velocity, want, rtol=1e-9, atol=1e-12 * float(want.norm()))


def test_sigma_gradient_is_the_gradient_of_sigma_dot_hessian():
    """∇⟨UXUᵀ, H(w)⟩ with UXUᵀ held fixed, against autograd of w ↦ Σ_ij X_ij u_iᵀH(w)u_j
    built from scratch, for an X with large off-diagonal entries."""
    p = F.mlp_problem(n=16, hidden=4)
    th = p.theta0
    cur = CF.Curvature(p, th)
    _, u = CF.top_eigenpairs(cur.hvp, th.numel(), 3)
    x = np.array([[1.0, 0.7, -0.4], [0.7, 0.8, 0.3], [-0.4, 0.3, 0.5]])
    t = th.clone().requires_grad_(True)
    g = torch.autograd.grad(p.loss(t, p.x, p.y), t, create_graph=True)[0]
    hu = torch.stack([torch.autograd.grad(g @ ui, t, create_graph=True)[0] for ui in u])
    sigma_h = (torch.from_numpy(x) * (u @ hu.T)).sum()
    want = torch.autograd.grad(sigma_h, t)[0]
    assert torch.allclose(CF.sigma_gradient(cur.third(u), x), want, rtol=1e-10, atol=1e-13)


def test_the_sdcp_data_predict_the_critical_block_one_substep_ahead():
    """a and B are the linearization of (2/ε)I − UᵀH(w + Δτ·dw/dτ)U in X: for any X
    (here one with a large off-diagonal entry) a short step with that X must move the
    frozen eigenvectors' block to (2/ε)I − (a + B[X]), up to O(Δτ²)."""
    p = warm_mlp()
    th = p.theta0
    eps, dt = 2 / S.sharpness(p, th), 0.01
    s = CF.central_substep(p, eps, th, dt, force_critical=2)
    assert s.margin.shape == (2, 2) and s.feedback.shape == (2, 2, 2, 2)
    u = s.u[:2]
    cur = CF.Curvature(p, th)
    d = cur.third(u)
    x = np.array([[0.02, 0.015], [0.015, 0.02]])
    velocity = -eps * (cur.grad + 0.5 * CF.sigma_gradient(d, x))
    before = (u @ cur.hvp(u).T).numpy()
    after = (u @ CF.Curvature(p, th + dt * velocity).hvp(u).T).numpy()
    want = 2 / eps * np.eye(2) - (s.margin + np.einsum("ijkl,kl->ij", s.feedback, x))
    assert np.abs(after - want).max() < 1e-3 * np.abs(after - before).max()
    # The step the substep itself took solves the SDCP it posed.
    assert max(CF.sdcp_residuals(s.margin, s.feedback, s.x).values()) < 1e-9


def test_two_identical_copies_run_as_two_single_flows():
    """A problem made of two identical independent copies has every eigenvalue twice;
    the two critical directions are any rotation of the copies' own (k = 2 with a
    non-diagonal X in general), and each copy must still follow the single flow."""
    p = warm_mlp()
    d = p.theta0.numel()

    def loss2(theta, x, y):
        return p.loss(theta[:d], x, y) + p.loss(theta[d:], x, y)

    pair = F.Problem(loss2, torch.cat([p.theta0, p.theta0]), p.x, p.y, p.m, "two copies")
    eps, steps = 2 / 2.45, 50
    one = CF.central_flow(p, eps, steps, every=10, eig_tol=1e-10, progress=False)
    with pytest.warns(UserWarning, match="grew"):
        two = CF.central_flow(pair, eps, steps, every=10, eig_tol=1e-10, progress=False)
    assert one.n_critical[-1] == 1 and two.n_critical[-1] == 2
    assert np.array_equal(two.n_critical, 2 * one.n_critical)
    assert np.allclose(two.trace_sigma, 2 * one.trace_sigma, rtol=1e-6, atol=1e-12)
    for half in (two.theta[:, :d], two.theta[:, d:]):
        assert np.abs(half - one.theta).max() < 1e-8
    assert np.abs(two.sharpness[one.trace_sigma > 0][1:] - 2 / eps).max() < 1e-5


def test_a_quadratic_has_a_central_flow_only_below_two_over_eps():
    """A quadratic has no third derivative to hold its curvature back: below 2/ε the
    central flow is the gradient flow, past it there is none (GD diverges)."""
    p = S.quadratic_problem([0.5, 2.0, 10.0], seed=2)
    run = CF.central_flow(p, 2 / 10.2, 5, progress=False)
    assert run.n_critical.max() == 1 and run.trace_sigma.max() == 0
    with pytest.raises(CF.NoCentralFlow):
        CF.central_flow(p, 2 / 9.5, 5, progress=False)


def test_records_line_up_with_gd_paths():
    p = F.mlp_problem()
    eps = 0.2
    run = CF.central_flow(p, eps, 7, every=3, progress=False)
    gd = S.gd_path(p, eps, 7, every=3, progress=False)
    assert list(run.theta_steps) == list(gd.steps) == [0, 3, 6, 7]
    assert np.allclose(run.path().t, gd.t) and len(run.loss) == 8
    assert np.allclose(run.t, eps * np.arange(8))
    assert S.distances(gd, run.path())[0] == 0.0
    assert math.isclose(run.loss[0], float(p.loss(p.theta0, p.x, p.y)))
