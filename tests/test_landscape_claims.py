"""The engine's optimizer choice and learning-rate schedule, and the landscape helpers of
the chapter notebooks/landscape_claims.ipynb: weight matching, barriers, negative
curvature, cyclical jumps."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import implicitreg as ir
from implicitreg.analysis import landscape as L
from implicitreg.engine.config import ConfigError
from implicitreg.engine.models import MLP
from implicitreg.engine.optim import adam_update_, rmsprop_update_
from implicitreg.runs.store import run_key


def test_triangular_schedule():
    c = ir.RunConfig(lr=1.0, lr_min=0.2, lr_schedule="triangular", cycle_steps=4)
    assert [c.lr_at(s) for s in range(9)] == pytest.approx(
        [0.2, 0.6, 1.0, 0.6, 0.2, 0.6, 1.0, 0.6, 0.2])
    assert ir.RunConfig(lr=0.3).lr_at(17) == 0.3
    with pytest.raises(ConfigError, match="lr_min"):
        ir.RunConfig(lr=0.1, lr_min=0.2, lr_schedule="triangular")
    with pytest.raises(ConfigError, match="cycle_steps"):
        ir.RunConfig(lr_schedule="triangular", cycle_steps=3)
    with pytest.raises(ConfigError, match="optimizer"):
        ir.RunConfig(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="momentum"):
        ir.RunConfig(optimizer="adam", momentum=0.9)


def test_defaults_keep_old_keys_and_new_choices_change_them():
    base = ir.RunConfig(dataset="synthetic", n_train=64, widths=(8,))
    d = base.key_dict()
    for name in ("optimizer", "lr_schedule", "lr_min", "cycle_steps"):
        assert name not in d
    k = run_key(base, "synthetic")
    assert run_key(base.replace(optimizer="sgd"), "synthetic") == k
    assert run_key(base.replace(lr_min=0.01), "synthetic") == k  # ignored when constant
    keys = {run_key(base.replace(optimizer=o), "synthetic") for o in ("adam", "rmsprop")}
    tri = base.replace(lr_schedule="triangular", lr_min=0.01)
    keys |= {run_key(tri, "synthetic"), run_key(tri.replace(cycle_steps=10), "synthetic")}
    assert k not in keys and len(keys) == 4


@pytest.mark.parametrize("kind", ["adam", "rmsprop", "rmsprop-momentum"])
def test_adam_and_rmsprop_match_torch(kind):
    torch.manual_seed(0)
    net = MLP(5, (7,), 3)
    ref = copy.deepcopy(net)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    if kind == "adam":
        opt = torch.optim.Adam(ref.parameters(), lr=0.01, weight_decay=0.01, foreach=False)
    else:
        opt = torch.optim.RMSprop(ref.parameters(), lr=0.01, weight_decay=0.01, foreach=False,
                                  momentum=0.9 if kind.endswith("momentum") else 0.0)
    state = None
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(x), y).backward()
        opt.step()
        params = list(net.parameters())
        grads = torch.autograd.grad(nn.functional.cross_entropy(net(x), y), params)
        if kind == "adam":
            state = adam_update_(params, grads, state, 0.01, 0.01)
        else:
            state = rmsprop_update_(params, grads, state, 0.01,
                                    0.9 if kind.endswith("momentum") else 0.0, 0.01)
    for p, q in zip(net.parameters(), ref.parameters()):
        assert torch.equal(p, q)


def test_adam_run_resumes_from_a_checkpoint(tmp_path):
    from implicitreg.engine.training import Trainer

    cfg = ir.RunConfig(dataset="synthetic", n_train=64, n_test=32, widths=(8,), batch_size=16,
                       optimizer="adam", lr=0.01, lr_schedule="triangular", lr_min=0.001,
                       cycle_steps=4, steps=8, eval_every=4, progress=False)
    whole = Trainer(cfg).train(progress=False)
    t = Trainer(cfg, checkpoint_path=tmp_path / "ck.pt")
    for s in range(3):
        t.advance(s)
    t.save_checkpoint()
    resumed = Trainer(cfg, checkpoint_path=tmp_path / "ck.pt")
    assert resumed.opt_state["step"] == 3.0
    out = resumed.train(progress=False)
    final = [r for r in whole.rows if r["step"] == 8 and r["metric"] == "loss"]
    final2 = [r for r in out.rows if r["step"] == 8 and r["metric"] == "loss"]
    assert final == final2


def test_batched_training_refuses_other_optimizers_and_schedules():
    from implicitreg.engine.batched import why_not_batchable

    assert why_not_batchable(ir.RunConfig(optimizer="adam")) is not None
    assert why_not_batchable(ir.RunConfig(lr_schedule="triangular")) is not None


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float64, 1e-13)])
def test_permuted_network_computes_the_same_function(dtype, tol):
    torch.manual_seed(0)
    net = MLP(6, (9, 5), 4).to(dtype)
    perms = [torch.randperm(9), torch.randperm(5)]
    twin = copy.deepcopy(net)
    twin.load_state_dict(L.permuted_state(net, perms))
    x = torch.randn(32, 6, dtype=dtype)
    assert not torch.equal(twin.net[1].weight, net.net[1].weight)
    assert torch.allclose(twin(x), net(x), atol=tol, rtol=0)


def test_weight_matching_undoes_a_permutation():
    torch.manual_seed(1)
    net = MLP(6, (9, 5), 4)
    perms = [torch.randperm(9), torch.randperm(5)]
    shuffled = copy.deepcopy(net)
    shuffled.load_state_dict(L.permuted_state(net, perms))
    found = L.weight_matching(net, shuffled)
    back = L.permuted_state(shuffled, found)
    for k, v in net.state_dict().items():
        assert torch.equal(back[k], v)


def test_barrier_height():
    assert L.barrier_height([1.0, 3.0, 2.0]) == pytest.approx(1.5)
    assert L.barrier_height([1.0, 0.5, 0.0]) == pytest.approx(0.0)


class _Point(nn.Module):
    def __init__(self, xy):
        super().__init__()
        self.xy = nn.Parameter(torch.tensor(xy, dtype=torch.float64))


def _saddle_loss(model, x, y):  # f(a, b) = a² − 3b², Hessian diag(2, −6)
    a, b = model.xy
    return a ** 2 - 3 * b ** 2


def test_most_negative_eigenvalue_of_a_saddle():
    m = _Point([0.3, -0.2])
    x, y = torch.zeros(1, 1), torch.zeros(1, dtype=torch.long)
    lam, shift = L.most_negative_eigenvalue(m, x, y, iters=200, loss_fn=_saddle_loss)
    assert shift == pytest.approx(6.0, rel=1e-3)
    assert lam == pytest.approx(-6.0, rel=1e-3)
    nodes, w = L.hessian_spectrum_slq(m, x, y, steps=2, probes=1, loss_fn=_saddle_loss)
    assert sorted(nodes.tolist()) == pytest.approx([-6.0, 2.0])
    assert float(w.sum()) == pytest.approx(1.0)
    assert L.negative_mass(nodes, w, -0.01) == pytest.approx(0.5)


def test_cycle_jumps():
    steps = list(range(0, 21, 2))
    loss = [1.0, 0.5, 0.4, 2.0, 1.0, 0.3, 0.2, 0.15, 0.1, 0.1, 0.1]
    rows = L.cycle_jumps(steps, loss, cycle_steps=12)
    assert len(rows) == 1
    assert rows[0]["jump_step"] == 6 and rows[0]["before_step"] == 4
    assert rows[0]["pre_min"] == 0.4 and rows[0]["reconverged"]
    flat = L.cycle_jumps(steps, [1.0] * len(steps), cycle_steps=10)
    assert [r["jump_step"] for r in flat] == [None, None]
