"""The landscape helpers of the chapter notebooks/landscape_claims.ipynb: weight
matching, barriers, negative curvature, cyclical jumps."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from implicitreg.analysis import landscape as L
from implicitreg.engine.models import MLP


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
