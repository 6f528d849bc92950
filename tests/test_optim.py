"""The engine's optimizer choice and learning-rate schedule: Adam and RMSprop against
torch.optim, the triangular schedule, keys left unchanged at the defaults."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import implicitreg as ir
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
