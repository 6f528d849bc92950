"""Backward error analysis, numerically: discrete GD/SGD iterates against accurate
solutions of the gradient flows of C and of the modified losses

    C̃_GD  = C + (ε/4)‖∇C‖²                          (Barrett & Dherin 2021)
    C̃_SGD = C + (ε/4m) Σ_k ‖∇Ĉ_k‖²                  (Smith et al. 2021)

Everything works on a flat float64 parameter vector, so the flows can be handed to an
adaptive Runge–Kutta solver. Problems are small (a 2-parameter model, a small smooth
MLP) so that the solver's error is far below the effects measured.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch.func import functional_call, grad, jvp, vmap

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""loss(theta, x, y) -> scalar, theta a flat float64 vector."""


@dataclass
class Problem:
    """A loss on a flat parameter vector, the full data, and a fixed partition of the data
    into m equal minibatches (the setting of Smith et al.'s analysis)."""
    loss: LossFn
    theta0: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    m: int
    name: str = ""

    @property
    def xb(self) -> torch.Tensor:
        return self.x.reshape(self.m, -1, *self.x.shape[1:])

    @property
    def yb(self) -> torch.Tensor:
        return self.y.reshape(self.m, -1, *self.y.shape[1:])


# ------------------------------------------------------------------ example problems
def two_parameter_problem(m: int = 4, seed: int = 0) -> Problem:
    """C(a, b) = mean_i ½(y_i − a·b·x_i)²: the two-parameter linear network of Barrett &
    Dherin's figure 1, with scalar data split into m minibatches. Its minima form the
    hyperbola ab = ⟨xy⟩/⟨x²⟩; the implicit term prefers the flatter points with |a| ≈ |b|."""
    g = torch.Generator().manual_seed(seed)
    n = 4 * m
    x = 1.0 + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    y = 1.5 * x + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)

    def loss(theta: torch.Tensor, xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((yy - theta[0] * theta[1] * xx) ** 2).mean()

    return Problem(loss, torch.tensor([2.8, 0.2], dtype=torch.float64), x, y, m,
                   "two-parameter model")


def mlp_problem(n: int = 64, dim: int = 4, hidden: int = 8, m: int = 4,
                seed: int = 0) -> Problem:
    """A smooth (tanh) MLP regression on synthetic data, parameters flattened. Smoothness
    matters: the expansion behind the modified losses needs derivatives of C."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    w_true = torch.randn(dim, generator=g, dtype=torch.float64)
    y = torch.sin(x @ w_true) + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.Tanh(),
                              torch.nn.Linear(hidden, 1)).double()
    torch.manual_seed(seed)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.5)
    names = [k for k, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]
    sizes = [p.numel() for p in net.parameters()]
    theta0 = torch.cat([p.detach().flatten() for p in net.parameters()])

    def loss(theta: torch.Tensor, xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        parts = torch.split(theta, sizes)
        params = {k: v.view(s) for k, v, s in zip(names, parts, shapes)}
        out = functional_call(net, params, (xx,)).squeeze(-1)
        return 0.5 * ((out - yy) ** 2).mean()

    return Problem(loss, theta0, x, y, m, f"MLP {dim}-{hidden}-1 (tanh), {n} examples")


# ------------------------------------------------------------------ vector fields
def grad_c(p: Problem) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda th: grad(p.loss)(th, p.x, p.y)


def hvp_at(loss_grad: Callable[[torch.Tensor], torch.Tensor], th: torch.Tensor,
           v: torch.Tensor) -> torch.Tensor:
    """H v for the Hessian of the function whose gradient is ``loss_grad``."""
    return jvp(loss_grad, (th,), (v,))[1]


def _grad_at(p: Problem, th: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
             create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(θ as a leaf that requires grad, ∇ of the loss on (x, y) at θ)."""
    t = th.detach().requires_grad_(True)
    return t, torch.autograd.grad(p.loss(t, x, y), t, create_graph=create_graph)[0]


def field(p: Problem, kind: str, eps: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The negative gradient of C (``plain``), C̃_GD (``gd``) or C̃_SGD (``sgd``).

    ∇‖∇C‖² = 2H∇C, so ∇C̃_GD = ∇C + (ε/2)H∇C and ∇C̃_SGD = ∇C + (ε/2m)Σ_k Ĥ_k∇Ĉ_k.
    Plain autograd rather than torch.func: the solver calls a field some 10⁴ times on
    problems this small, where each call's cost is the transforms' overhead (about 8x
    for the GD flow), and Σ_k Ĥ_k∇Ĉ_k = ∇(½Σ_k‖∇Ĉ_k‖²) takes one double backward.
    """
    if kind == "plain":
        return lambda th: -_grad_at(p, th, p.x, p.y)[1]
    if kind == "gd":
        def f_gd(th: torch.Tensor) -> torch.Tensor:
            t, g = _grad_at(p, th, p.x, p.y, create_graph=True)
            hg = torch.autograd.grad(0.5 * (g * g).sum(), t)[0]
            return -(g.detach() + 0.5 * eps * hg)
        return f_gd
    if kind == "sgd":
        def f_sgd(th: torch.Tensor) -> torch.Tensor:
            t = th.detach().requires_grad_(True)
            half_sq = sum(0.5 * (g * g).sum() for g in (
                torch.autograd.grad(p.loss(t, xk, yk), t, create_graph=True)[0]
                for xk, yk in zip(p.xb, p.yb)))
            hg = torch.autograd.grad(half_sq, t)[0] / p.m
            return -(_grad_at(p, th, p.x, p.y)[1] + 0.5 * eps * hg)
        return f_sgd
    raise ValueError(f"unknown flow {kind!r}; one of plain, gd, sgd")


def modified_loss(p: Problem, kind: str, eps: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The modified loss itself (for checking its gradient against :func:`field`)."""
    if kind == "plain":
        return lambda th: p.loss(th, p.x, p.y)
    if kind == "gd":
        return lambda th: p.loss(th, p.x, p.y) + eps / 4 * grad(p.loss)(th, p.x, p.y).pow(2).sum()
    if kind == "sgd":
        def c(th: torch.Tensor) -> torch.Tensor:
            pen = sum(grad(p.loss)(th, xk, yk).pow(2).sum() for xk, yk in zip(p.xb, p.yb))
            return p.loss(th, p.x, p.y) + eps / (4 * p.m) * pen
        return c
    raise ValueError(kind)


def solve_flow(f: Callable[[torch.Tensor], torch.Tensor], theta0: torch.Tensor, t: float,
               rtol: float = 1e-10, atol: float = 1e-12, t_eval: Sequence[float] | None = None
               ) -> np.ndarray:
    """Integrate dθ/dt = f(θ) from 0 to t with an adaptive 8th-order Runge–Kutta method
    (DOP853). Returns θ(t), or the states at ``t_eval`` (shape (len, dim))."""
    from scipy.integrate import solve_ivp

    def rhs(_, y: np.ndarray) -> np.ndarray:
        return f(torch.from_numpy(y)).detach().numpy()

    sol = solve_ivp(rhs, (0.0, t), theta0.detach().numpy().astype(np.float64),
                    method="DOP853", rtol=rtol, atol=atol,
                    t_eval=None if t_eval is None else np.asarray(t_eval))
    if not sol.success:
        raise RuntimeError(f"flow solver failed: {sol.message}")
    return sol.y[:, -1] if t_eval is None else sol.y.T


# ------------------------------------------------------------------ discrete iterations
def gd(p: Problem, eps: float, steps: int, record: bool = False) -> torch.Tensor:
    """GD iterates; the endpoint, or all iterates (steps+1, dim) with ``record``."""
    th = p.theta0.clone()
    path = [th]
    for _ in range(steps):
        th = th - eps * _grad_at(p, th, p.x, p.y)[1]
        if record:
            path.append(th)
    return torch.stack(path) if record else th


def all_orders(m: int, limit: int, seed: int = 0, replacement: bool = False) -> torch.Tensor:
    """Minibatch index sequences of one epoch (shape (K, m)). Without replacement:
    every permutation of the m minibatches when m! ≤ ``limit`` (an exact average over
    orders), else ``limit`` random permutations. With replacement: every one of the m^m
    sequences when that is ≤ ``limit``, else ``limit`` random ones."""
    g = torch.Generator().manual_seed(seed)
    if replacement:
        if m ** m <= limit:
            return torch.tensor(list(itertools.product(range(m), repeat=m)))
        return torch.randint(0, m, (limit, m), generator=g)
    if math.factorial(m) <= limit:
        return torch.tensor(list(itertools.permutations(range(m))))
    return torch.stack([torch.randperm(m, generator=g) for _ in range(limit)])


def sgd_epochs(p: Problem, eps: float, orders: torch.Tensor, epochs: int = 1) -> torch.Tensor:
    """Endpoints (K, dim) of SGD from θ0 under each minibatch order in ``orders`` (K, m),
    all orders at once with ``torch.func.vmap``; each epoch reuses the same order."""
    xb, yb = p.xb, p.yb
    gk = grad(p.loss)

    # vmap cannot index a tensor with a batched index inside; gather the data per
    # step first: batches[i] is (K, b, ...) for step i.
    def run_gathered(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        th = p.theta0
        for _ in range(epochs):
            for i in range(xs.shape[0]):
                th = th - eps * gk(th, xs[i], ys[i])
        return th

    xs = xb[orders]  # (K, m, b, ...)
    ys = yb[orders]
    return vmap(run_gathered)(xs, ys) if len(orders) else torch.empty(0)


def sgd_epochs_loop(p: Problem, eps: float, orders: torch.Tensor, epochs: int = 1) -> torch.Tensor:
    """The same as :func:`sgd_epochs` with a Python loop over orders (for testing)."""
    gk = grad(p.loss)
    out = []
    for order in orders:
        th = p.theta0.clone()
        for _ in range(epochs):
            for k in order.tolist():
                th = th - eps * gk(th, p.xb[k], p.yb[k])
        out.append(th)
    return torch.stack(out)
