"""Loss-landscape helpers the chapters call on trained models (they never run inside a
training run, so they are not part of the engine): Hutchinson's trace, filter-normalized
directions, loss along lines and planes, interpolation between two solutions and the
barrier on the line, weight matching of MLPs (permutation symmetry), the most negative
Hessian eigenvalue and the spectral density (negative curvature), and the jumps of the
training loss under a cyclical learning rate."""
from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import nn

from ..engine.gradients import criterion, hvp, loss_name, params_of
from ..engine.probes import frozen_buffers, predict


def hutchinson_trace(model: nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int = 20,
                     chunk: int | None = 1024, seed: int = 0,
                     loss_fn=None) -> tuple[float, float]:
    """Hutchinson estimate of tr(H) with Rademacher probes: (mean, standard error)."""
    params = params_of(model)
    g = torch.Generator(device="cpu").manual_seed(seed)
    vals = []
    with frozen_buffers(model):
        for _ in range(samples):
            v = [(torch.randint(0, 2, p.shape, generator=g) * 2 - 1).to(p.device, p.dtype)
                 for p in params]
            hv = hvp(model, x, y, v, chunk, loss_fn)
            vals.append(float(sum((a * b).sum() for a, b in zip(hv, v))))
    t = torch.tensor(vals, dtype=torch.float64)
    se = float(t.std(unbiased=True) / len(vals) ** 0.5) if len(vals) > 1 else float("nan")
    return float(t.mean()), se


def filter_normalized_direction(model: nn.Module, seed: int = 0) -> list[torch.Tensor]:
    """A random direction scaled filter by filter to the norms of the model's weights
    (Li et al. 2018): each output unit's slice (a row of a linear layer, an output channel
    of a convolution) gets the norm of the same slice of the weights; biases and
    normalization parameters get zero, so the direction lives in the weights that matter."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for p in model.parameters():
        d = torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device)
        if p.dim() <= 1:
            out.append(torch.zeros_like(p))
            continue
        dn = d.flatten(1).norm(dim=1).clamp(min=1e-12)
        pn = p.detach().flatten(1).norm(dim=1)
        out.append((d.flatten(1) * (pn / dn)[:, None]).view_as(p))
    return out


@torch.no_grad()
def loss_along(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               directions: Sequence[Sequence[torch.Tensor]], coords: torch.Tensor
               ) -> torch.Tensor:
    """Mean loss at θ + Σ_j coords[i, j] d_j for each row i of ``coords`` (k, n_dirs):
    1-D slices with one direction, 2-D surfaces with two. The model is left unchanged."""
    params = params_of(model)
    saved = [p.detach().clone() for p in params]
    out = []
    try:
        for row in coords:
            for p, s0 in zip(params, saved):
                p.copy_(s0)
            for c, d in zip(row.tolist(), directions):
                torch._foreach_add_(params, list(d), alpha=c)
            logits = predict(model, x)
            out.append(criterion(logits, y, loss_name(model)))
    finally:
        for p, s0 in zip(params, saved):
            p.copy_(s0)
    return torch.stack(out)


def interpolate_states(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                       t: float) -> dict[str, torch.Tensor]:
    """(1 − t)·a + t·b for floating-point entries of two state dicts (integer buffers,
    such as BatchNorm's batch counter, are taken from ``a``)."""
    return {k: (1 - t) * v + t * b[k] if v.is_floating_point() else v for k, v in a.items()}


# The same probes a run records, for the chapters to apply to restored models.
from ..engine.probes import loss_acc, top_eigenvalue  # noqa: E402,F401


# ---- barriers on straight lines -------------------------------------------------------
@torch.no_grad()
def interpolation_path(model: nn.Module, a: dict[str, torch.Tensor],
                       b: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                       points: int = 11) -> dict[str, list[float]]:
    """Loss and accuracy of ``model`` at the states (1 − t)·a + t·b for ``points`` values
    of t in [0, 1]: {"t", "loss", "accuracy"}. The model's own state is restored."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out: dict[str, list[float]] = {"t": [], "loss": [], "accuracy": []}
    try:
        for t in torch.linspace(0, 1, points).tolist():
            model.load_state_dict(interpolate_states(a, b, t))
            lo, ac = loss_acc(predict(model, x), y)
            out["t"].append(t)
            out["loss"].append(float(lo))
            out["accuracy"].append(float(ac))
    finally:
        model.load_state_dict(saved)
    return out


def barrier_height(values: Sequence[float]) -> float:
    """The largest excess of a path's values over the straight line between its end
    values (Frankle et al.'s and Entezari et al.'s barrier; ≥ 0 up to rounding)."""
    v = torch.tensor(list(values), dtype=torch.float64)
    t = torch.linspace(0, 1, len(v), dtype=torch.float64)
    return float((v - ((1 - t) * v[0] + t * v[-1])).max())


# ---- permutation symmetry of MLPs -----------------------------------------------------
def mlp_linears(model: nn.Module) -> list[nn.Linear]:
    """The linear layers of an MLP (``engine.models.MLP``: Linear-ReLU-...-Linear), in
    order; an error for anything else, since only their hidden units can be permuted
    freely."""
    mods = [m for m in model.modules() if len(list(m.children())) == 0]
    kinds = [type(m) for m in mods if not isinstance(m, nn.Flatten)]
    lin = [m for m in mods if isinstance(m, nn.Linear)]
    expect = [nn.Linear, nn.ReLU] * (len(lin) - 1) + [nn.Linear]
    if kinds != expect:
        raise ValueError("weight matching needs an MLP of Linear and ReLU layers, got "
                         + ", ".join(k.__name__ for k in kinds))
    return lin


def permuted_state(model: nn.Module, perms: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` with the units of hidden layer l reordered by
    ``perms[l]`` (new unit i is old unit perms[l][i]): the rows of layer l and the columns
    of layer l + 1 move together, so the network computes the same function."""
    lin = mlp_linears(model)
    if len(perms) != len(lin) - 1:
        raise ValueError(f"{len(lin) - 1} hidden layers but {len(perms)} permutations")
    names = {id(p): n for n, p in model.named_parameters()}
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for layer, p in enumerate(perms):
        w, b, nxt = lin[layer].weight, lin[layer].bias, lin[layer + 1].weight
        state[names[id(w)]] = state[names[id(w)]][p]
        state[names[id(b)]] = state[names[id(b)]][p]
        state[names[id(nxt)]] = state[names[id(nxt)]][:, p]
    return state


def weight_matching(model_a: nn.Module, model_b: nn.Module, max_iter: int = 100,
                    seed: int = 0) -> list[torch.Tensor]:
    """Permutations of the hidden units of ``model_b`` that bring its weights closest to
    ``model_a``'s (Ainsworth et al. 2023, weight matching): coordinate ascent over the
    layers in random order, each step a linear assignment
    (``scipy.optimize.linear_sum_assignment``) maximizing Σ⟨W_a, P W_b P'ᵀ⟩ over the
    weights and biases that touch the layer, until no permutation changes. Apply them
    with :func:`permuted_state`."""
    from scipy.optimize import linear_sum_assignment

    la, lb = mlp_linears(model_a), mlp_linears(model_b)
    wa = [m.weight.detach().double().cpu() for m in la]
    ba = [m.bias.detach().double().cpu() for m in la]
    wb = [m.weight.detach().double().cpu() for m in lb]
    bb = [m.bias.detach().double().cpu() for m in lb]
    hidden = len(la) - 1
    perms = [torch.arange(w.shape[0]) for w in wa[:hidden]]
    rng = torch.Generator().manual_seed(seed)
    for _ in range(max_iter):
        changed = False
        for layer in torch.randperm(hidden, generator=rng).tolist():
            w_in = wb[layer] if layer == 0 else wb[layer][:, perms[layer - 1]]
            w_out = wb[layer + 1] if layer + 1 == hidden else wb[layer + 1][perms[layer + 1]]
            score = (wa[layer] @ w_in.T + torch.outer(ba[layer], bb[layer])
                     + wa[layer + 1].T @ w_out)
            _, cols = linear_sum_assignment(score.numpy(), maximize=True)
            new = torch.as_tensor(cols, dtype=torch.long)
            if not torch.equal(new, perms[layer]):
                old_score = score[torch.arange(len(new)), perms[layer]].sum()
                if score[torch.arange(len(new)), new].sum() > old_score + 1e-12:
                    perms[layer], changed = new, True
        if not changed:
            break
    return perms


# ---- negative curvature ---------------------------------------------------------------
def _flat(ts: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in ts])


def _unflat(v: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for p in like:
        out.append(v[i:i + p.numel()].view_as(p).to(p.dtype))
        i += p.numel()
    return out


def most_negative_eigenvalue(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                             iters: int = 100, shift: float | None = None, seed: int = 0,
                             tol: float = 1e-5, chunk: int | None = 1024,
                             loss_fn=None) -> tuple[float, float]:
    """The smallest (most negative) Hessian eigenvalue of the mean loss on (x, y), by power
    iteration on the shifted operator σI − H, whose top eigenvalue is σ − λ_min, with σ
    the largest-magnitude eigenvalue found by power iteration (so σI − H ⪰ 0). Returns
    (λ_min, σ). Power iteration approaches σ − λ_min from below, so λ_min is approached
    from above: a negative value is a conservative estimate of negative curvature."""
    params = params_of(model)
    if shift is None:
        shift = abs(float(top_eigenvalue(model, x, y, iters=max(iters // 2, 20), chunk=chunk,
                                         seed=seed + 1, loss_fn=loss_fn)))
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(sum(p.numel() for p in params), generator=g, dtype=torch.float64)
    v /= v.norm()
    mu = 0.0
    with frozen_buffers(model):
        for _ in range(iters):
            hv = _flat(hvp(model, x, y, _unflat(v.to(params[0].device), params), chunk,
                           loss_fn)).double().cpu()
            bv = shift * v - hv
            new = float(v @ bv)
            v = bv / bv.norm().clamp(min=1e-300)
            done = abs(new - mu) <= tol * max(abs(new), 1e-12)
            mu = new
            if done:
                break
    return shift - mu, shift


def _rademacher(n: int, g: torch.Generator) -> torch.Tensor:
    """A unit vector of ``n`` entries ±1/√n (float64), the signs drawn from ``g``."""
    v = (torch.randint(0, 2, (n,), generator=g) * 2 - 1).double()
    v /= v.norm()
    return v


def _lanczos(matvec, like: Sequence[torch.Tensor], v: torch.Tensor, steps: int
             ) -> torch.Tensor:
    """The tridiagonal matrix (float64, on the CPU) of at most ``steps`` Lanczos steps,
    with full reorthogonalization, of the symmetric operator ``matvec`` on tensors shaped
    as ``like``, from the unit vector ``v``; fewer steps where the Krylov space stops
    growing. Shared by :func:`hessian_spectrum_slq` and :func:`lanczos_extremes`, so that
    one start vector gives both the same Ritz values."""
    n = v.numel()
    basis, alpha, beta = [v], [], []
    for j in range(min(steps, n)):
        w = _flat(matvec(_unflat(basis[-1].to(like[0].device), like))).double().cpu()
        alpha.append(float(w @ basis[-1]))
        Q = torch.stack(basis)
        w = w - Q.T @ (Q @ w)
        w = w - Q.T @ (Q @ w)
        b = float(w.norm())
        if j == steps - 1 or b < 1e-10:
            break
        beta.append(b)
        basis.append(w / b)
    k = len(alpha)
    T = torch.diag(torch.tensor(alpha, dtype=torch.float64))
    if k > 1:
        off = torch.tensor(beta[:k - 1], dtype=torch.float64)
        T += torch.diag(off, 1) + torch.diag(off, -1)
    return T


def hessian_spectrum_slq(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                         steps: int = 30, probes: int = 2, seed: int = 0,
                         chunk: int | None = 1024, loss_fn=None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stochastic Lanczos quadrature of the Hessian's spectral density (Ghorbani et al.
    2019): ``probes`` Lanczos runs of ``steps`` steps (full reorthogonalization) from
    Rademacher vectors. Returns (nodes, weights), weights summing to 1: the density is
    approximately Σ_i w_i δ(λ − node_i); the extreme nodes approximate λ_min and λ_max."""
    params = params_of(model)
    n = sum(p.numel() for p in params)
    g = torch.Generator(device="cpu").manual_seed(seed)
    nodes, weights = [], []
    with frozen_buffers(model):
        for _ in range(probes):
            T = _lanczos(lambda v: hvp(model, x, y, v, chunk, loss_fn), params,
                         _rademacher(n, g), steps)
            evals, evecs = torch.linalg.eigh(T)
            nodes.append(evals)
            weights.append(evecs[0] ** 2 / probes)
    return torch.cat(nodes), torch.cat(weights)


def negative_mass(nodes: torch.Tensor, weights: torch.Tensor, below: float) -> float:
    """The fraction of the spectral density of :func:`hessian_spectrum_slq` at eigenvalues
    below ``below`` (e.g. −0.01 × λ_max: curvature that is negative by more than rounding
    and quadrature error)."""
    return float(weights[nodes < below].sum())


def ggn_vp(model: nn.Module, x: torch.Tensor, y: torch.Tensor, v: Sequence[torch.Tensor],
           chunk: int | None = 1024) -> list[torch.Tensor]:
    """Product G v of the generalized Gauss–Newton matrix of the mean cross-entropy on
    (x, y) with ``v``: G = (1/n) Σ_i J_iᵀ (diag(p_i) − p_i p_iᵀ) J_i, J_i the Jacobian of
    example i's logits and p_i its softmax. G is the Hessian without the term in the
    logits' own curvature, positive semi-definite by construction, so that an estimate of
    its smallest eigenvalue shows what an estimator reports where no negative curvature
    exists (its own noise)."""
    from torch.func import functional_call, jvp, vjp

    if loss_name(model) != "cross-entropy":
        raise ValueError("ggn_vp: cross-entropy models only")
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach() for p in params_of(model))
    buffers = dict(model.named_buffers())
    tangents = tuple(t.to(p.dtype) for t, p in zip(v, params))
    n = x.shape[0]
    chunk = n if chunk is None else chunk
    out = [torch.zeros_like(p) for p in params]
    with frozen_buffers(model):
        for i in range(0, n, chunk):
            xc = x[i:i + chunk]

            def logits(*q, xc=xc):
                return functional_call(model, {**dict(zip(names, q)), **buffers}, (xc,))

            z, jv = jvp(logits, params, tangents)
            prob = torch.softmax(z.detach(), dim=1)
            hjv = prob * jv - prob * (prob * jv).sum(1, keepdim=True)
            _, pull = vjp(logits, *params)
            torch._foreach_add_(out, pull(hjv.detach() / n))
    return out


def lanczos_extremes(matvec, like: Sequence[torch.Tensor], steps: int, seed: int = 0
                     ) -> tuple[float, float]:
    """The smallest and largest Ritz values of ``steps`` Lanczos steps (full
    reorthogonalization, float64, from a Rademacher vector drawn with ``seed``, as in
    :func:`hessian_spectrum_slq`) of the symmetric operator ``matvec`` on tensors shaped
    as ``like``."""
    n = sum(p.numel() for p in like)
    g = torch.Generator(device="cpu").manual_seed(seed)
    evals = torch.linalg.eigvalsh(_lanczos(matvec, like, _rademacher(n, g), steps))
    return float(evals.min()), float(evals.max())


def curvature_against_null(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
                           probes: int, seed: int = 0, chunk: int | None = 1024,
                           known: tuple[float, float] | None = None) -> dict:
    """Negative curvature read against the estimator's own noise: ``probes`` Lanczos runs
    of ``steps`` steps from Rademacher vectors (seeds ``seed``, ``seed + 1``, ...) on the
    Hessian H and, with the same vectors, on the Gauss–Newton matrix G (positive
    semi-definite, :func:`ggn_vp`). Returns the smallest Ritz value of H over the probes
    and the largest (``h_min``, ``h_max``), their ratio ``ratio`` = h_min/h_max, and the
    null floor ``floor``: the smallest of G's ratios θ_min/θ_max over the probes, what the
    estimator reports for an operator without negative curvature. ``known``: the Hessian's
    extreme Ritz values of the first probe where they were computed already (by
    :func:`hessian_spectrum_slq` with one probe, ``steps`` steps and ``seed``: the same
    start vector)."""
    params = params_of(model)
    h_min, h_max, floor = float("inf"), float("-inf"), float("inf")
    with frozen_buffers(model):
        for k in range(probes):
            lo, hi = (known if k == 0 and known is not None else
                      lanczos_extremes(lambda v: hvp(model, x, y, v, chunk), params, steps,
                                       seed + k))
            h_min, h_max = min(h_min, lo), max(h_max, hi)
            g_lo, g_hi = lanczos_extremes(lambda v: ggn_vp(model, x, y, v, chunk), params,
                                          steps, seed + k)
            floor = min(floor, g_lo / g_hi if g_hi > 0 else float("nan"))
    return {"h_min": h_min, "h_max": h_max,
            "ratio": h_min / h_max if h_max > 0 else float("nan"), "floor": floor}


# ---- cyclical learning rates ----------------------------------------------------------
def _cycles(steps: list[int], cycle_steps: int) -> Iterator[tuple[int, list[int], list[int]]]:
    """Per whole cycle of ``cycle_steps`` steps up to the last of ``steps`` (the steps of
    the evaluations): the cycle's index, the positions in ``steps`` of its evaluations
    (both ends included) and of those in its rising half."""
    n_cycles = max(steps) // cycle_steps if steps else 0
    for c in range(n_cycles):
        lo, mid, hi = c * cycle_steps, c * cycle_steps + cycle_steps // 2, (c + 1) * cycle_steps
        idx = [i for i, s in enumerate(steps) if lo <= s <= hi]
        yield c, idx, [i for i in idx if steps[i] <= mid]


def cycle_rises(steps: Sequence[int], loss: Sequence[float], cycle_steps: int) -> list[dict]:
    """For each cycle of a cyclical schedule with evaluations at ``steps``: the largest
    factor by which the training loss rises in the cycle's rising half over its smallest
    value earlier in the cycle (``rise``, 1 when it never rises), that earlier minimum
    (``pre_min``, at the largest rise), and the factor by which the loss at the cycle's
    last evaluation stands above it (``back``). The continuous form of
    :func:`cycle_jumps`' jump and re-convergence."""
    import math

    out = []
    steps, loss = list(steps), list(loss)
    for c, idx, rising in _cycles(steps, cycle_steps):
        rise, pre, run_min = 1.0, math.nan, math.inf
        for k, i in enumerate(rising):
            if k and run_min > 0 and loss[i] / run_min > rise:
                rise, pre = loss[i] / run_min, run_min
            run_min = min(run_min, loss[i])
        if math.isnan(pre):
            pre = run_min
        end = loss[idx[-1]] if idx else math.nan
        out.append({"cycle": c, "rise": rise, "pre_min": pre, "end_loss": end,
                    "back": end / pre if pre and pre > 0 else math.nan})
    return out


def cycle_jumps(steps: Sequence[int], loss: Sequence[float], cycle_steps: int,
                factor: float = 2.0, reconverge: float = 1.5) -> list[dict]:
    """For each cycle of a cyclical schedule with evaluations at ``steps``: the first
    evaluation in its rising half at which the training loss exceeds ``factor`` times its
    smallest value earlier in the cycle (a *jump*), and whether the loss at the cycle's
    last evaluation is back below ``reconverge`` times that pre-jump minimum. One dict per
    cycle: cycle, jump_step (None when no jump), before_step (the evaluation before the
    jump), pre_min, peak (largest loss in the cycle), end_loss, reconverged."""
    import math

    out = []
    steps, loss = list(steps), list(loss)
    for c, idx, rising in _cycles(steps, cycle_steps):
        row = {"cycle": c, "jump_step": None, "before_step": None, "pre_min": math.nan,
               "peak": max((loss[i] for i in idx), default=math.nan),
               "end_loss": loss[idx[-1]] if idx else math.nan, "reconverged": False}
        run_min = math.inf
        for k, i in enumerate(rising):
            if k and loss[i] > factor * run_min:
                row.update(jump_step=steps[i], before_step=steps[rising[k - 1]],
                           pre_min=run_min)
                break
            run_min = min(run_min, loss[i])
        if row["jump_step"] is not None:
            row["reconverged"] = bool(row["end_loss"] < reconverge * row["pre_min"])
        out.append(row)
    return out
