"""Where backward error analysis stops working: the edge of stability.

GD with step ε on a quadratic with top curvature λ is stable for ε < 2/λ and diverges
above. On neural networks, full-batch GD's sharpness (the top Hessian eigenvalue) rises
during training until it reaches about 2/ε and then hovers there (Cohen et al. 2021).
The modified flow of C + (ε/4)‖∇C‖² is an expansion in ελ, so it should describe GD only
while the sharpness stays well below 2/ε.

This module holds what the chapter computes on top of the runs of the engine:

- a small functional problem (:func:`cifar_mlp_problem`): a tanh MLP on a downsampled
  CIFAR-10 subset, parameters flattened, as a :class:`~implicitreg.analysis.flows.Problem`,
  so that GD iterates and accurate solutions of the flows of
  :mod:`~implicitreg.analysis.flows` are computed on the same function;
- GD and flow trajectories recorded at common times (:func:`gd_path`, :func:`flow_path`);
- the sharpness of a flat-parameter problem (:func:`sharpness`: Lanczos or power
  iteration on exact Hessian-vector products);
- the measurements of the chapter's criteria (:func:`first_reach`,
  :func:`fraction_in_band`, :func:`loss_increases`, :func:`departure_time`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from . import flows as F

ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}


# ------------------------------------------------------------------ problems
def flat_mlp(in_dim: int, widths: Sequence[int], out_dim: int, activation: str = "tanh",
             seed: int = 0):
    """A float64 MLP with PyTorch's default initialization (seeded), and a function
    ``apply(theta, x)`` that evaluates it at a flat parameter vector ``theta``.
    Returns (apply, theta0)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r}: one of {sorted(ACTIVATIONS)}")
    layers: list[torch.nn.Module] = []
    prev = in_dim
    # The layers draw their initial weights when they are built, so the seed goes first;
    # a forked generator leaves the caller's random state as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for w in widths:
            layers += [torch.nn.Linear(prev, w), ACTIVATIONS[activation]()]
            prev = w
        layers.append(torch.nn.Linear(prev, out_dim))
    net = torch.nn.Sequential(*layers).double()
    shapes = [p.shape for p in net.parameters()]
    sizes = [p.numel() for p in net.parameters()]
    theta0 = torch.cat([p.detach().flatten() for p in net.parameters()])
    act = {"tanh": torch.tanh, "relu": torch.relu}[activation]

    def apply(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # The layers written out rather than through functional_call, whose module
        # machinery costs more than the arithmetic on networks this small (the central
        # flow differentiates this function three times, thousands of times).
        parts = torch.split(theta, sizes)
        h = x
        for i in range(0, len(parts), 2):
            # h ← h Wᵀ + b, then the activation on every layer but the last
            h = torch.addmm(parts[i + 1], h, parts[i].view(shapes[i]).t())
            if i + 2 < len(parts):
                h = act(h)
        return h

    return apply, theta0


def cifar_mlp_problem(n: int = 256, side: int = 8, widths: Sequence[int] = (32, 32),
                      activation: str = "tanh", seed: int = 0, data_seed: int = 0,
                      data_root: str | None = None, loss: str = "cross-entropy"
                      ) -> F.Problem:
    """The loss of an MLP on a class-stratified CIFAR-10 subset of ``n`` training
    images (the engine's loader: the same normalization and subset rule as the runs),
    average-pooled to ``side`` x ``side`` pixels so that the input has 3·side² dimensions
    and an accurate ODE solution stays cheap. ``loss``: ``cross-entropy``, or ``mse``,
    the engine's square loss ½‖f(x) − onehot(y)‖² summed over the classes (Cohen et al.'s).
    All in float64; m = 1 (full batch)."""
    from ..engine.data import load
    from ..engine.objective import criterion

    if loss not in ("cross-entropy", "mse"):
        raise ValueError(f"loss {loss!r}: 'cross-entropy' or 'mse'")

    d = load("cifar10", n_train=n, n_test=10, data_seed=data_seed, root=data_root,
             dtype=torch.float32)
    x = d.x_train.double()
    if side != x.shape[-1]:
        x = torch.nn.functional.adaptive_avg_pool2d(x, side)
    x = x.flatten(1).contiguous()
    y = d.y_train.clone()
    apply, theta0 = flat_mlp(x.shape[1], widths, d.num_classes, activation, seed)

    def loss_fn(theta: torch.Tensor, xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return criterion(apply(theta, xx), yy, loss)

    arch = "-".join(str(v) for v in (x.shape[1], *widths, d.num_classes))
    return F.Problem(loss_fn, theta0, x, y, 1,
                     f"MLP {arch} ({activation}{', square loss' if loss == 'mse' else ''}), "
                     f"{n} CIFAR-10 images at {side}x{side}")


def quadratic_problem(eigenvalues: Sequence[float], seed: int = 0,
                      start: float = 1.0) -> F.Problem:
    """C(θ) = ½ θᵀHθ with H = Q diag(eigenvalues) Qᵀ for a random rotation Q, written as a
    mean over data rows so that it is a :class:`~implicitreg.analysis.flows.Problem`:
    C = ½ mean_i (x_i·θ)² with XᵀX/n = H. Starts from a random θ0 of norm ``start``."""
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64)
    d = lam.numel()
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    x = (d ** 0.5) * (q * lam.clamp(min=0).sqrt()).T  # rows x_i; XᵀX/d = Q Λ Qᵀ
    theta0 = torch.randn(d, generator=g, dtype=torch.float64)
    theta0 = start * theta0 / theta0.norm()

    def loss(theta: torch.Tensor, xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((xx @ theta - yy) ** 2).mean()

    return F.Problem(loss, theta0, x, torch.zeros(d, dtype=torch.float64), 1,
                     f"quadratic, top curvature {float(lam.max()):g}")


# ------------------------------------------------------------------ sharpness
def sharpness(p: F.Problem, theta: torch.Tensor | np.ndarray, method: str = "lanczos",
              iters: int = 100, tol: float = 1e-6, seed: int = 0) -> float:
    """Top Hessian eigenvalue of the full loss of ``p`` at ``theta`` from exact
    Hessian-vector products (forward over reverse mode). ``lanczos``: the largest
    algebraic eigenvalue by ARPACK's implicitly restarted Lanczos (``eigsh``, as Cohen et
    al. use Lanczos); ``power``: power iteration, the largest-magnitude eigenvalue, as the
    engine's probe computes it, stopped when the estimate changes by < ``tol``."""
    th = torch.as_tensor(theta, dtype=torch.float64)
    gfull = F.grad_c(p)

    def hv(v: torch.Tensor) -> torch.Tensor:
        return F.hvp_at(gfull, th, v).detach()

    dim = th.numel()
    g = torch.Generator().manual_seed(seed)
    v0 = torch.randn(dim, generator=g, dtype=torch.float64)
    if method == "power":
        v = v0 / v0.norm()
        lam = 0.0
        for _ in range(iters):
            w = hv(v)
            new = float(w @ v)
            v = w / max(float(w.norm()), 1e-300)
            if abs(new - lam) <= tol * abs(new):
                return new
            lam = new
        return lam
    if method != "lanczos":
        raise ValueError(f"method {method!r}: 'lanczos' or 'power'")
    if dim <= 2:
        h = torch.stack([hv(e) for e in torch.eye(dim, dtype=torch.float64)])
        return float(torch.linalg.eigvalsh(0.5 * (h + h.T)).max())
    from scipy.sparse.linalg import LinearOperator, eigsh

    op = LinearOperator((dim, dim), dtype=np.float64,
                        matvec=lambda v: hv(torch.from_numpy(np.ascontiguousarray(v).ravel())).numpy())
    vals = eigsh(op, k=1, which="LA", tol=tol, maxiter=iters * dim, v0=v0.numpy(),
                 return_eigenvectors=False)
    return float(vals.max())


# ------------------------------------------------------------------ trajectories
@dataclass
class Path:
    """States of one trajectory at the recorded steps (times t = step·ε)."""
    label: str
    steps: np.ndarray
    t: np.ndarray
    theta: np.ndarray
    """(len(steps), dim)"""


def gd_path(p: F.Problem, eps: float, steps: int, every: int = 1, progress: bool = True,
            diverge_at: float = 1e6) -> Path:
    """Full-batch GD θ ← θ − ε∇C(θ) from ``p.theta0`` for ``steps`` steps, recording
    every ``every`` steps (and the last). Stops early, recording the last state, when
    ‖θ − θ0‖ exceeds ``diverge_at`` or becomes non-finite (a diverging run)."""
    g = F.grad_c(p)
    th = p.theta0.clone()
    rec_steps, rec = [0], [th.numpy().copy()]
    for k in tqdm(range(1, steps + 1), desc=f"GD, ε = {eps:g}", disable=None if progress else True,
                  leave=False):
        th = (th - eps * g(th)).detach()
        gone = not bool(torch.isfinite(th).all()) or float((th - p.theta0).norm()) > diverge_at
        if k % every == 0 or k == steps or gone:
            rec_steps.append(k)
            rec.append(th.numpy().copy())
        if gone:
            break
    s = np.asarray(rec_steps)
    return Path("GD", s, s * eps, np.stack(rec))


def flow_path(p: F.Problem, kind: str, eps: float, t: Sequence[float],
              rtol: float = 1e-8, atol: float = 1e-10) -> Path:
    """The flow of C (``plain``) or of C + (ε/4)‖∇C‖² (``gd``) from ``p.theta0``, solved
    with the adaptive Runge–Kutta method of :func:`~implicitreg.analysis.flows.solve_flow`
    and recorded at the times ``t``."""
    t = np.asarray(t, dtype=np.float64)
    states = F.solve_flow(F.field(p, kind, eps), p.theta0, float(t[-1]), rtol=rtol,
                          atol=atol, t_eval=t)
    label = {"plain": "flow of C", "gd": "flow of C̃_GD"}.get(kind, kind)
    return Path(label, np.round(t / eps).astype(int), t, states)


def losses(p: F.Problem, path: Path) -> np.ndarray:
    with torch.no_grad():
        return np.array([float(p.loss(torch.from_numpy(th), p.x, p.y)) for th in path.theta])


def sharpness_along(p: F.Problem, path: Path, progress: bool = True, **kw) -> np.ndarray:
    return np.array([sharpness(p, th, **kw) for th in
                     tqdm(path.theta, desc=f"sharpness, {path.label}", disable=None if progress else True,
                          leave=False)])


# ------------------------------------------------------------------ measurements
def first_reach(x: Sequence[float], values: Sequence[float], threshold: float) -> float:
    """The first x at which ``values`` reaches ``threshold`` (NaN if never)."""
    x, v = np.asarray(x, dtype=float), np.asarray(values, dtype=float)
    hit = np.nonzero(v >= threshold)[0]
    return float(x[hit[0]]) if len(hit) else float("nan")


def fraction_in_band(values: Sequence[float], target: float, band: float) -> float:
    """Fraction of ``values`` within ±``band`` (relative) of ``target`` (NaN if empty)."""
    v = np.asarray(values, dtype=float)
    if not len(v):
        return float("nan")
    return float(np.mean(np.abs(v / target - 1.0) <= band))


def loss_increases(values: Sequence[float]) -> int:
    """Number of consecutive intervals in which ``values`` goes up."""
    v = np.asarray(values, dtype=float)
    return int(np.sum(np.diff(v) > 0))


def departure_time(t: Sequence[float], distance: Sequence[float], scale: Sequence[float],
                   tol: float) -> float:
    """The first time t > 0 at which ``distance`` exceeds ``tol`` x ``scale`` (e.g. the
    distance GD–flow against the distance the flow has travelled from θ0); NaN if never."""
    t, d, s = (np.asarray(a, dtype=float) for a in (t, distance, scale))
    bad = np.nonzero((t > 0) & ~(d <= tol * s))[0]  # NaN distances count as departed
    return float(t[bad[0]]) if len(bad) else float("nan")


def distances(a: Path, b: Path) -> np.ndarray:
    """‖θ_a − θ_b‖ at the common recorded steps (b is cut to a's length)."""
    n = min(len(a.theta), len(b.theta))
    return np.linalg.norm(a.theta[:n] - b.theta[:n], axis=1)


__all__ = ["flat_mlp", "cifar_mlp_problem", "quadratic_problem", "sharpness", "Path",
           "gd_path", "flow_path", "losses", "sharpness_along", "first_reach",
           "fraction_in_band", "loss_increases", "departure_time", "distances"]
