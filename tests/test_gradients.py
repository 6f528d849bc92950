"""The numerics of the penalties: finite differences against double backprop, the
identities between regularizers, chunking and vmap against plain loops."""
import pytest
import torch

from implicitreg.engine.gradients import (batch_grad, hvp, microbatch_grads_loop,
                                   microbatch_grads_vmap, penalized_grad, sq_norm)
from implicitreg.engine.models import build_model


def _setup(n=48, dim=6, seed=0):
    torch.manual_seed(seed)
    model = build_model("mlp", (dim,), 3, widths=(10, 7)).double()
    x = torch.randn(n, dim, dtype=torch.float64)
    y = torch.randint(0, 3, (n,))
    return model, x, y


def _close(a, b, rtol):
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=rtol, atol=rtol * float(v.abs().max()))


@pytest.mark.parametrize("reg,micro", [("gd-modified", 48), ("sgd-modified", 12),
                                       ("sgd-modified", 16)])
@pytest.mark.parametrize("impl", ["vmap", "loop"])
def test_finite_difference_matches_double_backprop(reg, micro, impl):
    model, x, y = _setup()
    kw = dict(reg=reg, lam=0.3, micro_batch=micro)
    l1, g_fd, r1 = penalized_grad(model, x, y, method="finite-difference", fd_step=1e-6,
                                  impl=impl, **kw)
    l2, g_db, r2 = penalized_grad(model, x, y, method="double-backprop", **kw)
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(r1, r2)
    _close(g_fd, g_db, 1e-5)


def test_double_backprop_is_the_gradient_of_the_penalized_loss():
    """Against autograd of C + λ(1/m)Σ‖∇Ĉ_k‖² written out directly."""
    model, x, y = _setup()
    params = list(model.parameters())
    lam, b = 0.2, 16
    total = 0
    for k in range(3):
        xk, yk = x[k * b:(k + 1) * b], y[k * b:(k + 1) * b]
        lk = torch.nn.functional.cross_entropy(model(xk), yk)
        gk = torch.autograd.grad(lk, params, create_graph=True)
        total = total + (lk + lam * sq_norm(gk)) / 3
    ref = torch.autograd.grad(total, params)
    _, g, _ = penalized_grad(model, x, y, reg="sgd-modified", lam=lam, micro_batch=b,
                             method="double-backprop")
    _close(g, ref, 1e-10)


def test_sgd_modified_with_one_microbatch_equals_gd_modified():
    model, x, y = _setup()
    for method in ("finite-difference", "double-backprop"):
        a = penalized_grad(model, x, y, reg="sgd-modified", lam=0.5, micro_batch=48,
                           method=method, fd_step=1e-6)
        b = penalized_grad(model, x, y, reg="gd-modified", lam=0.5, micro_batch=7,
                           method=method, fd_step=1e-6)
        _close(a[1], b[1], 1e-12)
        torch.testing.assert_close(a[2], b[2])


def test_tail_examples_enter_the_plain_loss_only():
    """50 examples, b=16: three micro-batches carry the penalty, all 50 the loss."""
    model, x, y = _setup(n=50)
    lam = 0.0  # no penalty: the result must be the plain full-batch gradient
    loss, g, _ = penalized_grad(model, x, y, reg="sgd-modified", lam=lam, micro_batch=16,
                                fd_step=1e-6, impl="loop")
    ref_loss, ref = batch_grad(model, x, y)
    torch.testing.assert_close(loss, ref_loss)
    _close(g, ref, 1e-10)


def test_chunked_full_batch_gradient_equals_one_shot():
    model, x, y = _setup(n=50)
    l1, g1 = batch_grad(model, x, y)
    l2, g2 = batch_grad(model, x, y, chunk=7)
    torch.testing.assert_close(l1, l2)
    _close(g2, g1, 1e-12)


def test_vmap_microbatch_grads_equal_loop():
    model, x, y = _setup()
    xs, ys = x.view(4, 12, -1), y.view(4, 12)
    la, ga = microbatch_grads_vmap(model, xs, ys)
    lb, gb = microbatch_grads_loop(model, xs, ys)
    torch.testing.assert_close(la, lb)
    _close(ga, gb, 1e-10)


def test_hvp_matches_autograd_hessian():
    model, x, y = _setup(n=20, dim=3)
    model = build_model("mlp", (3,), 2, widths=(4,)).double()
    y = y % 2
    params = list(model.parameters())
    flat = torch.cat([p.detach().flatten() for p in params])
    shapes = [p.shape for p in params]

    def f(vec):
        out, i = [], 0
        for s in shapes:
            n = int(torch.tensor(s).prod())
            out.append(vec[i:i + n].view(s))
            i += n
        names = [n for n, _ in model.named_parameters()]
        logits = torch.func.functional_call(model, dict(zip(names, out)), (x,))
        return torch.nn.functional.cross_entropy(logits, y)

    H = torch.autograd.functional.hessian(f, flat)
    v = torch.randn_like(flat)
    vs, i = [], 0
    for p in params:
        vs.append(v[i:i + p.numel()].view(p.shape))
        i += p.numel()
    hv = torch.cat([t.flatten() for t in hvp(model, x, y, vs, chunk=6)])
    torch.testing.assert_close(hv, H @ v)


def _quadratic(n=40, d=6, seed=0):
    """Loss ½ mean (w·x)²: its Hessian is XᵀX/n, with a spectrum numpy can compute."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.2, 3, d,
                                                                             dtype=torch.float64)
    model = torch.nn.Linear(d, 1, bias=False).double()
    loss = lambda m, xx, yy: 0.5 * (m(xx).squeeze(-1) ** 2).mean()  # noqa: E731
    return model, x, torch.zeros(n), loss, (x.T @ x / n).numpy()


def test_top_eigenvalue_on_a_quadratic_with_known_spectrum():
    import numpy as np

    from implicitreg.engine.probes import top_eigenvalue
    model, x, y, loss, H = _quadratic()
    want = np.linalg.eigvalsh(H).max()
    got = float(top_eigenvalue(model, x, y, iters=500, tol=1e-12, loss_fn=loss))
    assert abs(got - want) / want < 1e-6


def test_hutchinson_trace_on_a_known_matrix():
    import numpy as np

    from implicitreg.analysis.landscape import hutchinson_trace
    model, x, y, loss, H = _quadratic()
    mean, se = hutchinson_trace(model, x, y, samples=400, loss_fn=loss)
    assert abs(mean - np.trace(H)) < 4 * se + 1e-9
    assert se < 0.2 * np.trace(H)


def test_interpolation_endpoints_equal_the_two_models():
    from implicitreg.analysis.landscape import interpolate_states
    a = build_model("mlp", (4,), 3, widths=(5,)).state_dict()
    torch.manual_seed(9)
    b = build_model("mlp", (4,), 3, widths=(5,)).state_dict()
    for k in a:
        torch.testing.assert_close(interpolate_states(a, b, 0.0)[k], a[k])
        torch.testing.assert_close(interpolate_states(a, b, 1.0)[k], b[k])
        torch.testing.assert_close(interpolate_states(a, b, 0.5)[k], (a[k] + b[k]) / 2)


def test_loss_slice_passes_through_the_model_and_leaves_it_unchanged():
    from implicitreg.analysis.landscape import filter_normalized_direction, loss_along
    model, x, y = _setup()
    before = [p.clone() for p in model.parameters()]
    d = filter_normalized_direction(model, seed=1)
    for p, q in zip(model.parameters(), d):  # filter norms match the weights'
        if p.dim() > 1:
            torch.testing.assert_close(q.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))
    vals = loss_along(model, x, y, [d], torch.tensor([[-1.0], [0.0], [1.0]], dtype=torch.float64))
    ref = torch.nn.functional.cross_entropy(model(x), y)
    torch.testing.assert_close(vals[1], ref.detach())
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q)


@pytest.mark.parametrize("loss", ["cross-entropy", "mse"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_the_gram_form_of_the_mlp_penalty_equals_the_loop(loss, activation):
    """engine/lowrank.py computes the same finite-difference penalty gradient without
    per-micro-batch weight tensors: equal to the loop in float64 up to rounding."""
    from implicitreg.engine.gradients import penalized_grad, set_loss
    from implicitreg.engine.models import MLP

    torch.manual_seed(0)
    model = set_loss(MLP(20, (32, 24), 10, activation=activation).double(), loss)
    # 36 examples in micro-batches of 8: the last 4 enter the plain loss only.
    x, y = torch.randn(36, 20, dtype=torch.float64), torch.randint(0, 10, (36,))
    out = {impl: penalized_grad(model, x, y, reg="sgd-modified", lam=0.05, micro_batch=8,
                                impl=impl) for impl in ("loop", "lowrank")}
    (l0, g0, r0), (l1, g1, r1) = out["loop"], out["lowrank"]
    assert torch.allclose(l0, l1, rtol=1e-12) and torch.allclose(r0, r1, rtol=1e-12)
    for a, b in zip(g0, g1):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-13)


def test_the_gram_form_is_chosen_only_where_it_is_smaller():
    from implicitreg.engine import lowrank
    from implicitreg.engine.models import MLP

    assert lowrank.pays(MLP(784, (2048,), 10), 32)
    assert not lowrank.pays(MLP(8, (16,), 10), 64)
    assert lowrank.mlp_layers(torch.nn.Linear(3, 2)) is None
