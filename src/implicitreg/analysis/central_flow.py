"""The central flow of gradient descent at the edge of stability (Cohen, Damian,
Talwalkar, Kolter & Lee 2024, "Understanding Optimization in Deep Learning with Central
Flows").

At the edge of stability GD oscillates along the top Hessian eigenvectors while its
sharpness hovers at 2/ε. The central flow follows the time average of those
oscillations: with time counted in GD steps,

    dw/dτ = −ε [∇L(w) + ½ ∇⟨Σ, H(w)⟩],      Σ = U X Uᵀ,

where U (dim x k) holds the orthonormal top Hessian eigenvectors whose eigenvalues are
near or above 2/ε (the critical ones), X ⪰ 0 is the k x k covariance of the
oscillations in that basis, and the gradient of ⟨Σ, H(w)⟩ is taken with Σ held fixed:
∇⟨Σ, H⟩ = Σ_ij X_ij ∇(u_iᵀ H(w) u_j), a third-derivative term. In the project's time
t = ε·τ (that of :func:`~implicitreg.analysis.stability.gd_path`) this reads
dw/dt = −∇L − ½∇⟨Σ, H⟩. Along the flow GD's time-averaged loss is predicted to be

    L(w) + ½ ⟨Σ, H(w)⟩ = L(w) + ½ Σ_i X_ii λ_i  ≈  L(w) + tr(Σ)/ε   (λ_i ≈ 2/ε),

and the critical eigenvalues stay at 2/ε. Before any eigenvalue gets near 2/ε, X = 0
and the central flow is the gradient flow.

**The complementarity problem.** X is fixed by asking that the curvature stay stable
one Euler step of length Δτ ahead. Write D_ij = ∇_w(u_iᵀ H(w) u_j) (U frozen),
g = ∇L(w), λ_i the critical eigenvalues, and

    a      = (2/ε) I − diag(λ) + Δτ ε C,          C_ij   = ⟨D_ij, g⟩,
    B[X]   = Δτ (ε/2) Σ_kl G_ijkl X_kl,           G_ijkl = ⟨D_ij, D_kl⟩.

Then (2/ε)I − Uᵀ H(w + Δτ dw/dτ) U ≈ a + B[X] to first order in Δτ, and X solves the
semidefinite complementarity problem SDCP(a, B):

    X ⪰ 0,    S := a + B[X] ⪰ 0,    ⟨X, S⟩ = 0

(oscillations only where the curvature would otherwise pass 2/ε, and there exactly
enough of them to hold it at 2/ε). Both sums run over all ordered pairs (i, j), so
off-diagonal entries count twice; B is a Gram operator, hence positive semidefinite, and
the SDCP is the optimality condition of the convex problem

    minimize  ½⟨X, B[X]⟩ + ⟨a, X⟩   over  X ⪰ 0,

solved here by :func:`solve_sdcp` (closed form for k = 1, a log-det barrier method
otherwise; k is at most a few). This is the discretization of the authors' reference
implementation (its ``step_central``/``central_flow_substep``: a = next residual,
B = Δτ·(−dH/dt's X part), the pair sums weighted 2 off the diagonal).

:func:`central_flow` integrates the flow with a fixed Euler step (the flow is not smooth
where directions become critical) on a :class:`~implicitreg.analysis.flows.Problem`, so
its records line up with GD's (:func:`~implicitreg.analysis.stability.gd_path`). One
substep costs a gradient, a warm-started top-eigenpair solve by Hessian-vector products
(:func:`top_eigenpairs`), k Hessian-vector products kept for double backward and
k(k+1)/2 third-derivative vectors, and the small SDCP.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from . import flows as F
from . import stability as S


# ------------------------------------------------------------------ the k x k problem
def _svec_basis(k: int) -> np.ndarray:
    """An orthonormal basis (k(k+1)/2, k, k) of the symmetric k x k matrices under
    ⟨X, Y⟩ = tr(XY), so that the problem becomes an ordinary QP in k(k+1)/2 numbers."""
    out = []
    for i in range(k):
        for j in range(i, k):
            e = np.zeros((k, k))
            if i == j:
                e[i, i] = 1.0
            else:
                e[i, j] = e[j, i] = 1.0 / math.sqrt(2.0)
            out.append(e)
    return np.stack(out) if out else np.zeros((0, k, k))


class NoCentralFlow(ValueError):
    """The SDCP has no solution: a critical direction's curvature passes 2/ε while no
    third-derivative term pulls it back (e.g. on a quadratic), so GD diverges there."""


def sdcp_objective(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> float:
    """½⟨X, B[X]⟩ + ⟨a, X⟩, the convex function whose minimizer over X ⪰ 0 solves
    SDCP(a, B)."""
    bx = np.einsum("ijkl,kl->ij", b, x)
    return float(0.5 * np.sum(x * bx) + np.sum(a * x))


def sdcp_residuals(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> dict[str, float]:
    """How far X is from solving SDCP(a, B): the most negative eigenvalue of X and of
    S = a + B[X] (0 when PSD) and the gap |⟨X, S⟩|."""
    s = a + np.einsum("ijkl,kl->ij", b, x)
    s = 0.5 * (s + s.T)
    xs = 0.5 * (x + x.T)
    return {"x_psd": float(max(0.0, -np.linalg.eigvalsh(xs).min())) if len(x) else 0.0,
            "s_psd": float(max(0.0, -np.linalg.eigvalsh(s).min())) if len(x) else 0.0,
            "gap": float(abs(np.sum(xs * s)))}


def solve_sdcp(a: np.ndarray, b: np.ndarray, tol: float = 1e-13,
               method: str = "auto") -> np.ndarray:
    """X solving SDCP(a, B): X ⪰ 0, S = a + B[X] ⪰ 0, ⟨X, S⟩ = 0.

    ``a`` is a symmetric k x k matrix, ``b`` a k x k x k x k array with
    B[X]_ij = Σ_kl b_ijkl X_kl, positive semidefinite as an operator on symmetric
    matrices (negative eigenvalues of its symmetric part are taken as rounding and
    dropped). The problem is solved as min_{X ⪰ 0} ½⟨X, B[X]⟩ + ⟨a, X⟩: in closed form
    for k = 1 (``method='auto'``), else by a log-det barrier method with damped Newton
    steps in the k(k+1)/2 coordinates of symmetric matrices (``'barrier'``), stopped when
    the duality gap k·μ falls below ``tol`` in units where ‖a‖ = ‖B‖ = 1.
    Raises :class:`NoCentralFlow` when the problem is unbounded (some direction has
    negative margin and no curvature of B).
    """
    a = 0.5 * (np.asarray(a, dtype=np.float64) + np.asarray(a, dtype=np.float64).T)
    b = np.asarray(b, dtype=np.float64)
    k = a.shape[0]
    if k == 0 or np.linalg.eigvalsh(a).min() >= 0:
        # Already stable with no oscillation: X = 0 satisfies all three conditions.
        return np.zeros((k, k))
    basis = _svec_basis(k)
    c = np.einsum("pij,ij->p", basis, a)
    q = np.einsum("pij,ijkl,qkl->pq", basis, b, basis)
    q = 0.5 * (q + q.T)
    lam, vec = np.linalg.eigh(q)
    q = (vec * np.clip(lam, 0.0, None)) @ vec.T
    scale_c, scale_q = float(np.linalg.norm(c)), float(np.clip(lam, 0.0, None).max())
    if scale_q <= 1e-14 * scale_c:
        raise NoCentralFlow("curvature past 2/ε with no third-derivative feedback")
    c, q = c / scale_c, q / scale_q
    if k == 1 and method == "auto":
        # ½ q x² + c x over x ≥ 0: the vertex when it is positive, else 0.
        x = np.array([max(0.0, -c[0] / q[0, 0])])
    elif method in ("auto", "barrier"):
        x = _barrier(c, q, basis, tol)
    else:
        raise ValueError(f"method {method!r}: 'auto' or 'barrier'")
    # Undo the normalization: a + B[X] = 0 on the active face scales X by ‖a‖/‖B‖.
    return np.einsum("p,pij->ij", x, basis) * (scale_c / scale_q)


def _barrier(c: np.ndarray, q: np.ndarray, basis: np.ndarray, tol: float) -> np.ndarray:
    """Minimize ½xᵀqx + cᵀx − μ log det X(x) for decreasing μ (X(x) = Σ_p x_p E_p).

    The barrier keeps X positive definite; at its minimizer S = μX⁻¹ is positive
    definite too and ⟨X, S⟩ = kμ, so the complementarity gap is kμ and driving μ to 0
    drives the iterate to the SDCP's solution. Each centering is damped Newton, which for
    this self-concordant function stays inside the cone and converges from anywhere.
    """
    k = basis.shape[1]

    def smat(v: np.ndarray) -> np.ndarray:
        return np.einsum("p,pij->ij", v, basis)

    x = np.einsum("pij,ij->p", basis, np.eye(k))
    mu = 1.0
    for _ in range(80):
        last = math.inf
        for _ in range(200):
            xi = np.linalg.inv(smat(x))
            # ∇(−log det X) = −X⁻¹, read off in the same coordinates.
            grad = q @ x + c - mu * np.einsum("pij,ij->p", basis, xi)
            # Hessian of −log det X in these coordinates: ⟨E_p, X⁻¹ E_q X⁻¹⟩.
            m = np.einsum("ij,qjk,kl->qil", xi, basis, xi)
            hess = q + mu * np.einsum("pij,qij->pq", basis, m)
            dx = -np.linalg.solve(hess, grad)
            # Newton decrement: the step's length in the local (Hessian) norm.
            dec = math.sqrt(max(0.0, -float(grad @ dx)))
            # Converged, or (in the quadratic phase) stalled at rounding.
            if dec < 1e-13 or (dec < 1e-6 and dec >= last):
                break
            last = dec
            # Damped while far from the center, full steps in the quadratic phase; the
            # halving only guards against rounding at the cone's boundary.
            step = 1.0 if dec < 0.25 else 1.0 / (1.0 + dec)
            while step > 1e-12:
                try:
                    np.linalg.cholesky(smat(x + step * dx))
                    break
                except np.linalg.LinAlgError:
                    step *= 0.5
            x = x + step * dx
        if not np.all(np.isfinite(x)) or np.linalg.norm(x) > 1e12:
            raise NoCentralFlow("unbounded SDCP: a negative margin B does not see")
        if k * mu < tol:
            break
        mu *= 0.1
    return x


# ------------------------------------------------------------------ curvature at one point
class Curvature:
    """The loss at one θ with its gradient kept differentiable, so that Hessian-vector
    products and third-derivative vectors reuse one autograd graph (double backward was
    faster than forward-over-reverse on CPU for the MLPs here)."""

    def __init__(self, p: F.Problem, theta: torch.Tensor):
        self.t = theta.detach().clone().requires_grad_(True)
        self.loss = p.loss(self.t, p.x, p.y)
        self.g = torch.autograd.grad(self.loss, self.t, create_graph=True)[0]
        self.n_hvp = 0
        self.n_d3 = 0

    @property
    def grad(self) -> torch.Tensor:
        return self.g.detach()

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """H v for the rows of ``v`` (b, dim)."""
        v = v.reshape(-1, self.t.numel())
        self.n_hvp += len(v)
        if len(v) > 8:
            # Many rows (a whole Hessian of a small problem): one vmapped backward pass
            # instead of a Python loop of tiny ones, where the loss's ops allow vmap.
            try:
                return torch.autograd.grad(self.g, self.t, v, retain_graph=True,
                                           is_grads_batched=True)[0]
            except RuntimeError:
                pass
        return torch.stack([torch.autograd.grad(self.g, self.t, row, retain_graph=True)[0]
                            for row in v])

    def third(self, u: torch.Tensor) -> torch.Tensor:
        """D_ij = ∇_w(u_iᵀ H(w) u_j) for the rows u_i of ``u`` (k, dim), as a
        (k, k, dim) array symmetric in (i, j); k(k+1)/2 of them are computed."""
        k = len(u)
        hu = [torch.autograd.grad(self.g, self.t, u[j], create_graph=True)[0] for j in range(k)]
        self.n_hvp += k
        out = torch.empty(k, k, self.t.numel(), dtype=u.dtype)
        for i in range(k):
            for j in range(i, k):
                d = torch.autograd.grad(hu[j] @ u[i], self.t, retain_graph=True)[0]
                out[i, j] = out[j, i] = d
                self.n_d3 += 1
        return out


# ------------------------------------------------------------------ top eigenpairs
def top_eigenpairs(hvp: Callable[[torch.Tensor], torch.Tensor], dim: int, n: int,
                   v0: torch.Tensor | None = None, tol: float = 1e-6, max_blocks: int = 40,
                   seed: int = 0, dense_below: int = 64
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n`` largest (algebraic) eigenvalues of a symmetric operator, descending,
    and their unit eigenvectors as rows (n, dim).

    ``hvp`` maps rows (b, dim) to their images. Block Krylov with full
    reorthogonalization and Rayleigh–Ritz, started from ``v0`` (n, dim) (the previous
    eigenvectors along a flow, which is what makes consecutive solves cheap), stopped
    when every residual ‖Hu − λu‖ is below ``tol``·max|λ|. Below ``dense_below``
    dimensions the operator is applied to the identity and diagonalized exactly.
    """
    dtype = torch.float64
    if dim <= dense_below:
        h = hvp(torch.eye(dim, dtype=dtype))
        vals, vecs = torch.linalg.eigh(0.5 * (h + h.T))
        return vals.flip(0)[:n].clone(), vecs.flip(1)[:, :n].T.clone()
    if v0 is None or len(v0) < n:
        g = torch.Generator().manual_seed(seed)
        extra = torch.randn(n - (0 if v0 is None else len(v0)), dim, generator=g, dtype=dtype)
        v0 = extra if v0 is None else torch.cat([v0.to(dtype), extra])
    block = torch.linalg.qr(v0[:n].T.to(dtype)).Q.T
    basis, images = [block], [hvp(block)]
    for _ in range(max_blocks):
        q = torch.cat(basis)
        hq = torch.cat(images)
        t = q @ hq.T
        vals, vecs = torch.linalg.eigh(0.5 * (t + t.T))
        vals, y = vals.flip(0)[:n], vecs.flip(1)[:, :n]
        u, hu = y.T @ q, y.T @ hq
        res = (hu - vals[:, None] * u).norm(dim=1)
        if float(res.max()) <= tol * float(vals.abs().max()) or len(q) >= dim:
            break
        # The next Krylov block: H applied to the last one, made orthogonal to all
        # before (twice, since the basis loses orthogonality once Ritz values converge).
        w = images[-1]
        for _ in range(2):
            w = w - (w @ q.T) @ q
        w_q, r = torch.linalg.qr(w.T)
        keep = r.diagonal().abs() > 1e-10 * float(w.norm())
        if not bool(keep.any()):
            break
        block = w_q.T[keep]
        basis.append(block)
        images.append(hvp(block))
    u = u / u.norm(dim=1, keepdim=True)
    return vals.clone(), u


# ------------------------------------------------------------------ the flow
def sigma_gradient(d: torch.Tensor, x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """∇_w⟨Σ, H(w)⟩ for Σ = UXUᵀ held fixed, from D = :meth:`Curvature.third` (U).

    The sum runs over all ordered pairs, so each off-diagonal X_ij enters twice, as it
    does in ⟨UXUᵀ, H⟩ = Σ_ij X_ij u_iᵀHu_j."""
    # ∇⟨UXUᵀ, H⟩ = Σ_ij X_ij ∇(u_iᵀ H u_j)
    return torch.einsum("ij,ijd->d", torch.as_tensor(x, dtype=d.dtype), d)


@dataclass
class Substep:
    """What one substep measured at its starting point and the velocity it took."""
    loss: float
    eigs: np.ndarray
    """tracked top Hessian eigenvalues, descending"""
    n_critical: int
    x: np.ndarray
    """k x k covariance of the oscillations in the critical eigenbasis"""
    trace_sigma: float
    predicted_loss: float
    """L(w) + ½⟨Σ, H(w)⟩, GD's predicted time-averaged loss"""
    velocity: torch.Tensor
    """dw/dτ"""
    u: torch.Tensor
    """tracked eigenvectors as rows, for warm-starting the next solve"""
    n_hvp: int
    n_d3: int
    margin: np.ndarray
    """a of the SDCP: (2/ε)I − UᵀHU one substep ahead without oscillations"""
    feedback: np.ndarray
    """b of the SDCP (k, k, k, k): what the oscillations add to that margin"""


def central_substep(p: F.Problem, eps: float, theta: torch.Tensor, dt: float,
                    u0: torch.Tensor | None = None, n_eigs: int = 2,
                    threshold: float = 0.975, eig_tol: float = 1e-6,
                    force_critical: int | None = None) -> Substep:
    """The central-flow velocity dw/dτ at ``theta`` for an Euler step of ``dt`` GD steps.

    Directions count as critical when their eigenvalue exceeds ``threshold``·2/ε (the
    authors' 1.95/ε): including some just below 2/ε costs third derivatives but no
    accuracy, since the SDCP gives them no oscillation until they need it.
    ``force_critical`` takes that many top directions whatever their eigenvalues (for
    measuring the cost of a k-direction step).
    """
    cur = Curvature(p, theta)
    g = cur.grad
    vals, u = top_eigenpairs(cur.hvp, theta.numel(), n_eigs, v0=u0, tol=eig_tol)
    crit = 2.0 / eps
    k = int((vals > threshold * crit).sum()) if force_critical is None else force_critical
    loss = float(cur.loss.detach())
    if k == 0:
        return Substep(loss, vals.numpy(), 0, np.zeros((0, 0)), 0.0, loss, -eps * g, u,
                       cur.n_hvp, cur.n_d3, np.zeros((0, 0)), np.zeros((0, 0, 0, 0)))
    uk = u[:k]
    d = cur.third(uk)
    flat = d.reshape(k * k, -1)
    # C_ij = ⟨∇(u_iᵀHu_j), ∇L⟩: how the gradient step alone moves UᵀHU.
    c = (flat @ g).reshape(k, k).numpy()
    # G_ijkl = ⟨∇(u_iᵀHu_j), ∇(u_kᵀHu_l)⟩: how the oscillations' own term moves it.
    gram = (flat @ flat.T).reshape(k, k, k, k).numpy()
    # The stability margin (2/ε)I − UᵀHU one substep ahead, without and with X.
    a = crit * np.eye(k) - np.diag(vals[:k].numpy()) + dt * eps * c
    b = dt * (eps / 2.0) * gram
    x = solve_sdcp(a, b)
    velocity = -eps * (g + 0.5 * sigma_gradient(d, x))
    # GD's time-averaged loss: L + ½⟨Σ, H⟩ with UᵀHU = diag(λ).
    predicted = loss + 0.5 * float(np.sum(np.diag(x) * vals[:k].numpy()))
    return Substep(loss, vals.numpy(), k, x, float(np.trace(x)), predicted, velocity, u,
                   cur.n_hvp, cur.n_d3, a, b)


@dataclass
class CentralFlowRun:
    """A central-flow trajectory recorded at whole GD steps τ = 0, 1, ..., with the
    quantities of its first substep at each (the authors' convention); ``theta`` only at
    ``theta_steps`` (every ``every`` steps and the last, as :func:`stability.gd_path`)."""
    eps: float
    steps: np.ndarray
    loss: np.ndarray
    predicted_loss: np.ndarray
    eigs: np.ndarray
    """(len(steps), n) tracked Hessian eigenvalues, descending (NaN-padded if the
    tracked number grew)"""
    n_critical: np.ndarray
    trace_sigma: np.ndarray
    theta_steps: np.ndarray
    theta: np.ndarray
    x: list[np.ndarray] = field(default_factory=list)
    n_hvp: int = 0
    n_d3: int = 0

    @property
    def t(self) -> np.ndarray:
        """Time in the units of the project's flows: t = ε·τ."""
        return self.eps * self.steps

    @property
    def sharpness(self) -> np.ndarray:
        return self.eigs[:, 0]

    def path(self, label: str = "central flow") -> S.Path:
        """The recorded states as a :class:`~implicitreg.analysis.stability.Path`, so that
        :func:`~implicitreg.analysis.stability.distances` compares them with GD's."""
        return S.Path(label, self.theta_steps, self.eps * self.theta_steps, self.theta)


def central_flow(p: F.Problem, eps: float, steps: int, substeps: int = 4, n_eigs: int = 2,
                 threshold: float = 0.975, every: int = 1, eig_tol: float = 1e-6,
                 theta0: torch.Tensor | None = None, progress: bool = True) -> CentralFlowRun:
    """Integrate the central flow of GD with step size ``eps`` for ``steps`` GD steps of
    time, with ``substeps`` Euler substeps per step (the authors use 4), from
    ``theta0`` (default ``p.theta0``).

    The top ``n_eigs`` eigenpairs are tracked with warm starts; when all of them are
    critical one more is tracked, so that no critical direction goes unseen. Raises
    :class:`NoCentralFlow` where the flow stops existing (GD diverges there).
    """
    th = (p.theta0 if theta0 is None else theta0).detach().clone().to(torch.float64)
    dt = 1.0 / substeps
    u = None
    rec: dict[str, list] = {k: [] for k in ("steps", "loss", "pred", "eigs", "k", "tr", "x")}
    thetas, theta_steps = [], []
    n_hvp = n_d3 = 0
    for step in tqdm(range(steps + 1), desc=f"central flow, ε = {eps:g}",
                     disable=None if progress else True, leave=False):
        for sub in range(substeps):
            s = central_substep(p, eps, th, dt, u, n_eigs, threshold, eig_tol)
            n_hvp, n_d3 = n_hvp + s.n_hvp, n_d3 + s.n_d3
            if s.n_critical == len(s.eigs):
                # Every tracked direction is critical: track one more from now on.
                n_eigs += 1
            u = s.u
            if sub == 0:
                rec["steps"].append(step)
                rec["loss"].append(s.loss)
                rec["pred"].append(s.predicted_loss)
                rec["eigs"].append(s.eigs)
                rec["k"].append(s.n_critical)
                rec["tr"].append(s.trace_sigma)
                rec["x"].append(s.x)
                if step % every == 0 or step == steps:
                    theta_steps.append(step)
                    thetas.append(th.numpy().copy())
                if step == steps:
                    break
            th = (th + dt * s.velocity).detach()
    width = max(len(e) for e in rec["eigs"])
    eigs = np.full((len(rec["eigs"]), width), np.nan)
    for i, e in enumerate(rec["eigs"]):
        eigs[i, :len(e)] = e
    if width > len(rec["eigs"][0]):
        warnings.warn(f"central flow: tracked eigenvalues grew to {width}", stacklevel=2)
    return CentralFlowRun(eps, np.asarray(rec["steps"]), np.asarray(rec["loss"]),
                          np.asarray(rec["pred"]), eigs, np.asarray(rec["k"]),
                          np.asarray(rec["tr"]), np.asarray(theta_steps), np.stack(thetas),
                          rec["x"], n_hvp, n_d3)


__all__ = ["NoCentralFlow", "solve_sdcp", "sdcp_objective", "sdcp_residuals", "Curvature",
           "top_eigenpairs", "sigma_gradient", "Substep", "central_substep", "CentralFlowRun",
           "central_flow"]
