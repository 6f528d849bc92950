"""The measurements behind the edge-of-stability chapter: sharpness against a known
spectrum, and the 2/ε stability threshold of GD on a quadratic."""
import math

import numpy as np
import pytest
import torch

from implicitreg.analysis import flows as F
from implicitreg.analysis import stability as S
from implicitreg.chapters.base import profiles

from conftest import assert_pilot_on_own_units, fake_run_labeled, ledger_glue_problems

SPECTRUM = [0.3, 1.0, 2.5, 4.0, 7.5, 10.0]


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_sharpness_matches_a_known_spectrum(method):
    p = S.quadratic_problem(SPECTRUM, seed=1)
    got = S.sharpness(p, p.theta0, method=method, iters=2000, tol=1e-12)
    assert abs(got - max(SPECTRUM)) / max(SPECTRUM) < 1e-6


def test_quadratic_problem_has_the_requested_hessian():
    p = S.quadratic_problem(SPECTRUM, seed=2)
    h = torch.autograd.functional.hessian(lambda th: p.loss(th, p.x, p.y), p.theta0)
    assert np.allclose(np.sort(torch.linalg.eigvalsh(h).numpy()), SPECTRUM, atol=1e-10)


def test_engine_power_iteration_on_the_same_spectrum():
    """The engine's probe (what the runs record) on a linear model whose Hessian is the
    quadratic's."""
    from implicitreg.engine.probes import top_eigenvalue

    p = S.quadratic_problem(SPECTRUM, seed=3)
    model = torch.nn.Linear(len(SPECTRUM), 1, bias=False).double()
    loss = lambda m, xx, yy: 0.5 * ((m(xx).squeeze(-1) - yy) ** 2).mean()  # noqa: E731
    got = float(top_eigenvalue(model, p.x, p.y, iters=2000, tol=1e-12, loss_fn=loss))
    assert abs(got - max(SPECTRUM)) / max(SPECTRUM) < 1e-6


@pytest.mark.parametrize("factor, stable", [(0.9, True), (0.99, True), (1.01, False),
                                            (1.1, False)])
def test_gd_on_a_quadratic_is_stable_exactly_below_two_over_lambda(factor, stable):
    lam = max(SPECTRUM)
    p = S.quadratic_problem(SPECTRUM, seed=4)
    eps = factor * 2 / lam
    path = S.gd_path(p, eps, 3000, every=100, progress=False)
    norms = np.linalg.norm(path.theta, axis=1)
    if stable:
        assert norms[-1] < 1e-3 * norms[0]
    else:
        assert norms[-1] > 1e3 * norms[0]


def test_gd_path_agrees_with_flows_gd():
    p = F.two_parameter_problem(m=2)
    path = S.gd_path(p, 0.05, 40, every=1, progress=False)
    assert np.allclose(path.theta, F.gd(p, 0.05, 40, record=True).numpy())
    assert np.allclose(path.t, 0.05 * np.arange(41))


def test_flow_path_recovers_the_exact_quadratic_flow():
    lam = np.array(SPECTRUM)
    p = S.quadratic_problem(SPECTRUM, seed=5)
    t = np.linspace(0, 2, 11)
    got = S.flow_path(p, "plain", 0.1, t, rtol=1e-11, atol=1e-13).theta
    # θ(t) = Q exp(−Λt) Qᵀ θ0, with Q from the Hessian XᵀX/n.
    w, q = np.linalg.eigh((p.x.T @ p.x / len(p.x)).numpy())
    want = np.stack([q @ (np.exp(-w * s) * (q.T @ p.theta0.numpy())) for s in t])
    assert np.allclose(got, want, atol=1e-8)
    assert np.allclose(w, np.sort(lam))


def test_measurements():
    x = [0, 5, 10, 15, 20]
    assert S.first_reach(x, [1, 2, 9, 12, 8], 9) == 10
    assert math.isnan(S.first_reach(x, [1, 2, 3, 4, 5], 9))
    assert S.fraction_in_band([10, 12, 7, 9.5], 10, 0.2) == 0.75
    assert S.loss_increases([3, 2, 2.5, 1, 1.2, 0.5]) == 2
    assert S.departure_time(x, [0, 0.01, 0.02, 0.5, 0.1], [0, 1, 1, 1, 1], 0.05) == 15
    assert math.isnan(S.departure_time(x, [0, 0, 0, 0, 0], [0, 1, 1, 1, 1], 0.05))


def test_cifar_mlp_problem_is_a_smooth_flat_loss():
    p = S.cifar_mlp_problem(n=20, side=4, widths=(5,), seed=0)
    assert p.x.shape == (20, 48) and p.x.dtype == torch.float64
    assert p.theta0.numel() == 48 * 5 + 5 + 5 * 10 + 10
    c0 = float(p.loss(p.theta0, p.x, p.y))
    assert abs(c0 - math.log(10)) < 0.5
    path = S.gd_path(p, 0.1, 5, progress=False)
    assert S.losses(p, path)[-1] < c0


def test_flat_mlp_is_seeded_whatever_the_random_state_and_leaves_it_alone():
    torch.manual_seed(123)
    apply, a = S.flat_mlp(6, (4, 3), 2, seed=5)
    torch.rand(10)
    assert torch.equal(a, S.flat_mlp(6, (4, 3), 2, seed=5)[1])
    assert not torch.equal(a, S.flat_mlp(6, (4, 3), 2, seed=6)[1])
    torch.manual_seed(1)
    want = torch.rand(1)
    torch.manual_seed(1)
    S.flat_mlp(6, (4, 3), 2, seed=5)
    assert torch.equal(torch.rand(1), want)
    # the forward pass written out is the network PyTorch builds from the same seed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3),
                                  torch.nn.Tanh(), torch.nn.Linear(3, 2)).double()
    x = torch.randn(7, 6, dtype=torch.float64)
    assert torch.equal(apply(a, x), net(x))


def test_cifar_mlp_problem_with_the_square_loss():
    p = S.cifar_mlp_problem(n=20, side=4, widths=(5,), seed=0, loss="mse")
    apply, theta0 = S.flat_mlp(48, (5,), 10, "tanh", 0)
    assert torch.equal(p.theta0, theta0) and "square loss" in p.name
    out = apply(theta0, p.x)
    want = 0.5 * ((out - torch.nn.functional.one_hot(p.y, 10).double()) ** 2).sum(1).mean()
    assert torch.allclose(p.loss(theta0, p.x, p.y), want, rtol=1e-14)
    with pytest.raises(ValueError, match="loss"):
        S.cifar_mlp_problem(n=20, side=4, widths=(5,), loss="hinge")


# ------------------------------------------------------------------ the engine's options
def test_mse_tanh_and_lanczos_defaults_leave_keys_unchanged():
    from implicitreg import RunConfig
    from implicitreg.runs.store import run_key

    cfg = RunConfig(dataset="synthetic", n_train=64, sharpness=True)
    same = cfg.replace(loss="cross-entropy", activation="relu", sharpness_method="power")
    for name in ("loss", "activation", "sharpness_method"):
        assert name not in cfg.key_dict()
    assert run_key(cfg, "synthetic") == run_key(same, "synthetic")
    for change in (dict(loss="mse"), dict(activation="tanh"), dict(sharpness_method="lanczos")):
        other = cfg.replace(**change)
        assert run_key(other, "synthetic") != run_key(cfg, "synthetic")
        assert list(change)[0] in other.key_dict()
    # without sharpness the method is ignored; a CNN cannot be tanh
    assert "sharpness_method" not in cfg.replace(sharpness=False,
                                                 sharpness_method="lanczos").key_dict()
    with pytest.raises(Exception, match="activation"):
        RunConfig(model="cnn", activation="tanh")


def test_mse_criterion_is_half_the_squared_error_summed_over_classes():
    from implicitreg.engine.gradients import criterion

    out = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([2, 0])
    # example 0: ½(1 + 0 + 1) = 1; example 1: ½(1) = 0.5
    assert torch.isclose(criterion(out, y, "mse"), torch.tensor(0.75))
    assert torch.allclose(criterion(out, y, "mse", reduction="none"), torch.tensor([1.0, 0.5]))


def test_every_gradient_path_uses_the_runs_loss():
    """The step, the vmapped micro-batch gradients, the penalty and the Hessian-vector
    product all differentiate the model's own loss."""
    from implicitreg.engine import gradients as G
    from implicitreg.engine.models import build_model

    torch.manual_seed(0)
    model = G.set_loss(build_model("mlp", (6,), 3, widths=(5,), activation="tanh"), "mse")
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    params = G.params_of(model)
    ref = torch.autograd.grad(G.criterion(model(x), y, "mse"), params)
    _, g = G.batch_grad(model, x, y, chunk=3)
    _, gv = G.microbatch_grads_vmap(model, x[None], y[None])
    for a, b, c in zip(ref, g, gv):
        assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, c[0], atol=1e-6)
    v = [torch.randn_like(p) for p in params]
    loss = lambda m, xx, yy: G.criterion(m(xx), yy, "mse")  # noqa: E731
    for a, b in zip(G.hvp(model, x, y, v), G.hvp(model, x, y, v, loss_fn=loss)):
        assert torch.allclose(a, b, atol=1e-6)
    _, pen_fd, _ = G.penalized_grad(model, x, y, reg="gd-modified", lam=0.1, micro_batch=8,
                                    method="double-backprop")
    gg = torch.autograd.grad(G.criterion(model(x), y, "mse"), params, create_graph=True)
    want = torch.autograd.grad(G.criterion(model(x), y, "mse") + 0.1 * G.sq_norm(gg), params)
    for a, b in zip(pen_fd, want):
        assert torch.allclose(a, b, atol=1e-5)


def test_lanczos_finds_the_top_eigenvalue_and_warm_starts():
    from implicitreg.engine.probes import lanczos_top

    p = S.quadratic_problem(SPECTRUM + [9.5], seed=6)
    model = torch.nn.Linear(len(SPECTRUM) + 1, 1, bias=False).double()
    loss = lambda m, xx, yy: 0.5 * ((m(xx).squeeze(-1) - yy) ** 2).mean()  # noqa: E731
    lam, vec = lanczos_top(model, p.x, p.y, iters=7, loss_fn=loss)
    assert abs(lam - 10.0) < 1e-8  # the basis spans the whole 7-dim space
    lam2, vec2 = lanczos_top(model, p.x, p.y, iters=2, v0=vec, loss_fn=loss)
    assert abs(lam2 - 10.0) < 1e-8  # started at the eigenvector, two steps suffice
    assert abs(abs(float(vec2[0].flatten() @ vec[0].flatten())) - 1) < 1e-8


def test_gd_multiplier_is_one_minus_eps_lambda_on_a_quadratic():
    """With one output and every label 0, the square loss ½(xθ − 1)² has the quadratic's
    Hessian XᵀX/n."""
    from implicitreg.engine.gradients import set_loss
    from implicitreg.engine.probes import gd_multiplier, lanczos_top

    p = S.quadratic_problem(SPECTRUM, seed=7)
    model = set_loss(torch.nn.Linear(len(SPECTRUM), 1, bias=False).double(), "mse")
    y = torch.zeros(len(p.x), dtype=torch.long)
    lam, vec = lanczos_top(model, p.x, y, iters=6)
    assert abs(lam - max(SPECTRUM)) < 1e-8
    before = [q.detach().clone() for q in model.parameters()]
    r, share = gd_multiplier(model, p.x, y, vec, lr=0.15)
    assert abs(r - (1 - 0.15 * lam)) < 1e-8
    assert 0 < abs(share) <= 1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# ------------------------------------------------------------------ the chapter's analysis
from implicitreg.chapters import edge_of_stability as E  # noqa: E402
from implicitreg.chapters.criteria import criteria_hash  # noqa: E402

# The fingerprint of the criteria as registered (see edge_of_stability.REGISTERED).
REGISTERED_HASH = "c53e7b407eb9f6f4"
REVISIONS_HASH = "354fe75cc86fa252"
# departure-r1 as it was before plateau-r1 joined it.
DEPARTURE_REVISION_HASH = "67f4ac012eb33a8b"
# departure-r1 and plateau-r1 as registered, before the workstation design's revisions
# (plateau-r2, departure-r2, sgd-r1) joined them.
CI_REVISIONS_HASH = "51aaa37b7a54cf72"


class FakeResult:
    """What analyze() reads from a run: curve(metric, split) and summary."""

    def __init__(self, steps, sharpness, loss, multiplier=None, diverged=False, share=None):
        self.c = {("sharpness", "eval"): sharpness, ("loss", "train"): loss}
        if multiplier is not None:
            self.c[("gd_multiplier", "eval")] = multiplier
            self.c[("top_grad_share", "eval")] = (np.full(len(multiplier), 0.5)
                                                  if share is None else share)
        self.steps = np.asarray(steps)
        self.summary = {"diverged": diverged}

    def curve(self, metric, split):
        import pandas as pd

        v = self.c.get((metric, split))
        if v is None:
            return pd.DataFrame({"step": [], "value": []})
        return pd.DataFrame({"step": self.steps[:len(v)], "value": np.asarray(v, float)})


def _params(**kw):
    base = dict(n_train=100, n_test=50, downsample=8, widths=[16], eps=[0.1, 0.05],
                steps=1000, eval_every=20, sharpness_iters=5, seed=0, sgd_eps=0.1,
                sgd_batches=[10, 50], sgd_seeds=[0, 1, 2], sparse_eval_every=50, ce_eps=0.1)
    return E.Params(**{**base, **kw})


def _gd_trace(eps, steps, cross_frac=0.4, level=1.05, wobble=0.03, spike=None):
    """Sharpness rising linearly to 2/ε at cross_frac of training, then hovering at
    level·2/ε; the multiplier follows 1 − ελ (so |r| ≥ 1 exactly where ελ ≥ 2)."""
    s = np.arange(0, steps + 1, 20)
    ratio = np.where(s < cross_frac * steps, 0.5 + 0.5 * s / (cross_frac * steps),
                     level + wobble * np.sin(s / 37.0))
    if spike is not None:
        ratio = np.where(s > cross_frac * steps, ratio * spike, ratio)
    lam = ratio * 2 / eps
    loss = 1.0 / (1 + s / 100) * (1 + 0.02 * (np.sin(s / 11.0) > 0))
    return s, lam, loss, 1 - eps * lam


def _results(p, gd_kw=None, sgd_level=0.8, sgd_sd=0.02, diverged_eps=()):
    res = {}
    for e in p.eps:
        s, lam, loss, mult = _gd_trace(e, p.steps, **(gd_kw or {}))
        res[E.Arm("gd", e, seed=p.seed)] = FakeResult(s, lam, loss, mult,
                                                      diverged=e in diverged_eps)
    rng = np.random.default_rng(0)
    for b in p.sgd_batches:
        for seed in p.sgd_seeds:
            s = np.arange(0, p.steps + 1, 50)
            level = sgd_level + sgd_sd * rng.standard_normal()
            lam = np.full(len(s), level * 2 / p.sgd_eps)
            res[E.Arm("sgd", p.sgd_eps, b, seed)] = FakeResult(s, lam, np.ones(len(s)))
    return res


def test_analyze_hovering_at_two_over_eps_is_reproduced():
    p = _params()
    a = E.analyze(_results(p), p)
    assert a.verdicts["plateau"].verdict == "reproduced", a.verdicts["plateau"].text
    assert a.verdicts["departure"].verdict == "reproduced", a.verdicts["departure"].text
    assert a.verdicts["sgd"].verdict == "reproduced", a.verdicts["sgd"].text
    assert (a.departure["ελ at departure"].between(1.7, 2.3)).all()
    for key in ("eos_verdict", "eos_plateau_numbers", "eos_departure_verdict",
                "eos_sgd_ratios", "eos_loss_increases", "eos_criteria_hash"):
        assert isinstance(a.glue[key], str) and a.glue[key]
    assert "nan" not in a.glue["eos_plateau_numbers"]
    assert not ledger_glue_problems(E, a)


def test_analyze_overshooting_is_not_reproduced():
    p = _params()
    a = E.analyze(_results(p, gd_kw=dict(level=1.4)), p)
    assert a.verdicts["plateau"].verdict == "not reproduced", a.verdicts["plateau"].text
    # a median inside the band with a spike above 1.25 fails too
    a = E.analyze(_results(p, gd_kw=dict(level=1.05, wobble=0.25)), p)
    assert a.verdicts["plateau"].verdict == "not reproduced"


def test_analyze_diverged_or_late_runs_are_not_assessable():
    p = _params()
    a = E.analyze(_results(p, diverged_eps=(0.1, 0.05)), p)
    for v in a.verdicts.values():
        assert v.verdict == "not assessable", v.text
    assert "diverged" in a.glue["eos_plateau_numbers"]
    # crossing in the last third: not assessable, with the step in the reason
    a = E.analyze(_results(p, gd_kw=dict(cross_frac=0.95)), p)
    assert a.verdicts["plateau"].verdict == "not assessable"
    assert "last third" in a.verdicts["plateau"].detail
    assert a.verdicts["departure"].verdict == "not assessable"
    assert "not mid-horizon" in a.verdicts["departure"].detail
    assert a.verdicts["sgd"].verdict == "not assessable"


def test_analyze_sgd_at_gds_level_or_with_too_few_seeds():
    p = _params()
    a = E.analyze(_results(p, sgd_level=1.05), p)
    assert a.verdicts["sgd"].verdict == "not reproduced"
    p2 = _params(sgd_seeds=[0, 1])
    a = E.analyze(_results(p2), p2)
    assert a.verdicts["sgd"].verdict == "not assessable"
    assert "needs 3" in a.verdicts["sgd"].detail


def test_revised_departure_ignores_a_multiplier_along_a_negligible_component():
    """Before the crossing |r| ≥ 1 where the gradient has almost nothing along v: the
    registered statistic fires there (too early), the revision waits for the edge."""
    p = _params()
    res = _results(p)
    for e in p.eps:
        r = res[E.Arm("gd", e, seed=p.seed)]
        s = r.steps
        early = (s > 0.1 * p.steps) & (s < 0.3 * p.steps)
        r.c[("gd_multiplier", "eval")] = np.where(early, -2.0, r.c[("gd_multiplier", "eval")])
        r.c[("top_grad_share", "eval")] = np.where(s < 0.4 * p.steps, 0.01, 0.6)
    a = E.analyze(res, p)
    assert a.verdicts["departure"].verdict == "not reproduced"
    assert a.verdicts["departure-r1"].verdict == "reproduced", a.verdicts["departure-r1"].text
    assert not ledger_glue_problems(E, a)
    assert E.revisions_hash() == REVISIONS_HASH
    assert criteria_hash(E.REVISIONS[:1]) == DEPARTURE_REVISION_HASH
    assert criteria_hash(E.REVISIONS[:2]) == CI_REVISIONS_HASH
    assert [r.original for r in E.REVISIONS] == ["departure", "plateau", "plateau-r1",
                                                 "departure-r1", "sgd"]
    # the registry, not a typed date, says when plateau-r1 (and every later one) was fixed
    for r in E.REVISIONS[1:]:
        assert r.date == r.revised.registered == "" and not r.revised.results_before
    assert "not fitted to the chapter's ci numbers" in E.REVISIONS[1].reason


def _seeds(p, levels, **kw):
    """Results with one GD run per ε for each seed of ``levels`` (seed → plateau level)."""
    res = _results(p, gd_kw=dict(level=levels[p.seed], **kw))
    for seed, level in levels.items():
        for e in p.eps:
            s, lam, loss, mult = _gd_trace(e, p.steps, level=level, **kw)
            res[E.Arm("gd", e, seed=seed)] = FakeResult(s, lam, loss, mult)
    return res


def test_plateau_r1_widens_the_band_above_two_over_eps_only():
    p = _params()
    # hovering 15% above 2/ε: outside the registered band, inside the revised one
    a = E.analyze(_seeds(p, {0: 1.15, 1: 1.14, 2: 1.16}), p)
    assert a.verdicts["plateau"].verdict == "not reproduced"
    v = a.verdicts["plateau-r1"]
    assert v.verdict == "reproduced", v.text
    assert "median over 3 seeds 1.145·2/ε (seeds 1.145, 1.135, 1.155)" in v.detail
    assert not ledger_glue_problems(E, a)
    assert len(a.plateau_seeds) == 3 * len(p.eps)
    # the registered criteria still judge the chapter's seed alone
    assert a.plateau["median / (2/ε)"].tolist() == pytest.approx([1.145, 1.145], abs=1e-3)
    # above the widened edge, or below the lower one (kept): not reproduced
    for levels in ({0: 1.25, 1: 1.24, 2: 1.23}, {0: 0.85, 1: 0.86, 2: 0.84}):
        v = E.analyze(_seeds(p, levels, wobble=0.01), p).verdicts["plateau-r1"]
        assert v.verdict == "not reproduced", (levels, v.text)
    # a median inside the band with a spike above the registered maximum
    v = E.analyze(_seeds(p, {0: 1.05, 1: 1.05, 2: 1.05}, wobble=0.25), p).verdicts["plateau-r1"]
    assert v.verdict == "not reproduced"
    assert E.PLATEAU_HIGH == pytest.approx(1.2)
    assert E.PLATEAU_HIGH >= E.SOURCE_PLATEAU + E.PLATEAU_BAND


def test_plateau_r1_judges_only_a_multi_seed_set():
    p = _params()
    # one run per ε, like the ci set: not assessable, whatever its level
    v = E.analyze(_results(p, gd_kw=dict(level=1.15)), p).verdicts["plateau-r1"]
    assert v.verdict == "not assessable"
    assert "1 seed meets the premises at ε = 0.1 (needs 3)" in v.detail
    # a seed that diverged is left out and named
    res = _seeds(p, {0: 1.1, 1: 1.1, 2: 1.1})
    res[E.Arm("gd", 0.1, seed=2)].summary["diverged"] = True
    v = E.analyze(res, p).verdicts["plateau-r1"]
    assert v.cases["ε = 0.1"].startswith("not assessable") and "seed 2: the run diverged" in \
        v.cases["ε = 0.1"]
    # one ε left: fewer than the two assessable the aggregate needs
    assert v.verdict == "not assessable"


def test_departure_needs_two_consecutive_evaluations():
    assert E.departure_index(np.array([0.5, -1.2, 0.3, -1.0, -1.1])) == 3
    assert E.departure_index(np.array([1.2, 1.5])) == 0
    assert E.departure_index(np.array([0.5, -1.2])) is None


def test_profiles_are_complete_instances_and_match_the_notebook():
    from pathlib import Path

    from implicitreg.book import parameters

    raw = profiles(E.CHAPTER)
    for name in raw:
        E.profile(name)  # every field, nothing else, valid values
    nb = parameters.notebook_parameters(Path(__file__).resolve().parents[1] / "notebooks" /
                                    "edge_of_stability.ipynb")
    assert set(nb) - {"profile", "executed_at", "exec_config"} == set(E.Params.names())
    # the notebook's defaults are the ci profile, so that running it without a profile
    # means exactly the ci profile
    assert E.Params.from_values(nb) == E.profile("ci")
    assert E.profile("smoke", steps=7).steps == 7
    with pytest.raises(ValueError, match="unknown"):
        E.profile("smoke", no_such=1)


def test_design_uses_the_square_loss_tanh_and_lanczos():
    p = E.profile("ci")
    d = E.design(p)
    kinds = [a.kind for a, _ in d]
    assert kinds.count("gd") == len(p.eps) and kinds.count("gd-ce") == 1
    assert kinds.count("sgd") == len(p.sgd_batches) * len(p.sgd_seeds)
    for arm, cfg in d:
        assert cfg.activation == "tanh" and cfg.sharpness_method == "lanczos"
        assert cfg.loss == ("cross-entropy" if arm.kind == "gd-ce" else "mse")
        assert cfg.eval_examples == p.n_train


def test_registered_criteria_are_unchanged():
    """The criteria were registered before the chapter's runs; a change must be a
    recorded revision that keeps the original, not an edit."""
    assert E.registered_hash() == criteria_hash(E.CRITERIA)
    assert E.registered_hash() == REGISTERED_HASH


# ------------------------------------------------------------------ the workstation design
def _ws_params(**kw):
    base = dict(gd_seeds=[0, 1, 2, 3, 4], sgd_seeds=[0, 1, 2, 3, 4],
                pilot_seeds=[100, 101, 102], subset_per_seed=True)
    return _params(**{**base, **kw})


def _spread(seed, scale):
    """A deterministic spread across seeds, mean zero over 0..4 and over 100..102."""
    return scale * (((seed % 100) % 5) - 2 if seed < 100 else (seed % 100) - 1)


def _ws_results(p, level=1.05, level_sd=0.01, sgd=0.8, sgd_sd=0.01, cross=0.4,
                wobble=0.03, late=(), pilot_level=None, gd_level=None):
    """Every run of a design with a pilot: GD at every ε (pilot: the whole grid), SGD at
    sgd_eps, on the pilot and the confirmation seeds. A seed's plateau sits at
    ``level`` + its spread (``gd_level(seed)`` where given); SGD of a seed at ``sgd`` (+
    spread) times its GD's plateau; ``late`` holds the (ε, seed) whose sharpness crosses
    2/ε in the last third."""
    res = {}
    for stage, seeds in (("pilot", p.pilot_seeds), ("", p.gd_seeds)):
        lv = pilot_level if (stage and pilot_level is not None) else level
        for e in p.eps:
            for s in seeds:
                lev = gd_level(s) if gd_level else lv + _spread(s, level_sd)
                st, lam, loss, mult = _gd_trace(e, p.steps, level=lev, wobble=wobble,
                                                cross_frac=0.9 if (e, s) in late else cross)
                res[E.Arm("gd", e, seed=s, stage=stage)] = FakeResult(st, lam, loss, mult)
        for b in p.sgd_batches:
            for s in seeds:
                st = np.arange(0, p.steps + 1, 50)
                gd_lev = gd_level(s) if gd_level else lv + _spread(s, level_sd)
                lam = np.full(len(st), (sgd + _spread(s, sgd_sd)) * gd_lev * 2 / p.sgd_eps)
                res[E.Arm("sgd", p.sgd_eps, b, s, stage)] = FakeResult(st, lam, np.ones(len(st)))
    return res


def test_workstation_design_is_staged_with_a_pilot_on_its_own_seeds_and_subsets(monkeypatch):
    p = _ws_params()
    pilot = E.design(p)
    assert_pilot_on_own_units(pilot, p.pilot_seeds)
    assert len(pilot) == len(p.eps) * 3 + len(p.sgd_batches) * 3
    # a later stage: the confirmation at the ε the pilot kept, GD at sgd_eps always
    conf = E.design_confirmation(p, [0.05])
    gd = {(a.eps, a.seed) for a, _ in conf if a.kind == "gd"}
    assert gd == {(e, s) for e in (0.1, 0.05) for s in p.gd_seeds}
    conf = dict(E.design_confirmation(p, []))
    assert {a.eps for a in conf if a.kind == "gd"} == {p.sgd_eps}
    # SGD and GD of one seed share initialization and subset: the pair of sgd-r1
    for a, c in conf.items():
        assert (c.seed, c.data_seed) == (a.seed, a.seed) and a.stage == ""
    # run(): the pilot, then the confirmation at what choose_eps kept
    calls = fake_run_labeled(monkeypatch, _ws_results(p, late={(0.05, 101)}))
    runs = E.run(p)
    assert len(calls) == 2 and calls[0] == E.design_pilot(p)
    assert {a.eps for a, _ in calls[1] if a.kind == "gd"} == {0.1}
    kept, why = E.choose_eps(p, runs)
    assert kept == [0.1] and why[0.05].startswith("dropped: seed 101: it reached")
    # without a pilot the design is the one before it: one GD seed, every ε, subset 0
    ci = E.profile("ci")
    assert E.design(ci) == E.design_confirmation(ci, ci.eps)
    assert {c.data_seed for _, c in E.design(ci)} == {0}
    assert E.STAGED and "pilot" in E.STAGED


def test_params_refuse_a_pilot_that_shares_seeds_or_subsets():
    with pytest.raises(ValueError, match="none of the confirmation"):
        _ws_params(pilot_seeds=[0, 100])
    with pytest.raises(ValueError, match="subset_per_seed"):
        _ws_params(subset_per_seed=False)
    with pytest.raises(ValueError, match="seed = 0 among them"):
        _ws_params(gd_seeds=[1, 2, 3])
    with pytest.raises(ValueError, match="at least two"):
        _ws_params(pilot_seeds=[100])


def _ws(**kw):
    p = kw.pop("p", None) or _ws_params()
    return E.analyze(_ws_results(p, **kw), p)


def test_workstation_revisions_reproduce_injected_effects_with_power_from_the_pilot():
    a = _ws()
    for cid in ("plateau-r2", "departure-r2", "sgd-r1"):
        assert a.verdicts[cid].verdict == "reproduced", a.verdicts[cid].text
        assert "SD across the pilot's seeds" in a.verdicts[cid].detail
    assert a.eps_confirmed == [0.1, 0.05]
    assert set(a.sds) == {"plateau-r2", "departure-r2", "sgd-r1"}
    assert all(sd.usable and sd.df == 4 for sd in a.sds.values())  # 2 cases × (3 − 1)
    assert a.sds["plateau-r2"].power_sd > a.sds["plateau-r2"].sd  # its 80% upper limit
    assert not ledger_glue_problems(E, a)
    assert "kept: every pilot seed" in a.glue["eos_pilot_choice"]
    assert "each seed an initialization and a training subset" in a.glue["eos_seeds"]
    # the pilot's runs enter no verdict: pilot seeds far outside the band change nothing
    b = _ws(pilot_level=1.6)
    assert b.verdicts["plateau-r2"].verdict == "reproduced"
    assert b.eps_confirmed == [0.1, 0.05]


def test_plateau_r2_fails_outside_the_band_and_on_a_spike():
    v = _ws(level=1.225, level_sd=0.002, wobble=0.01).verdicts["plateau-r2"]
    assert v.verdict == "not reproduced", v.text
    assert set(v.cases.values()) == {"not reproduced (the mean lies outside [0.9, 1.2])"}
    v = _ws(level=0.8, level_sd=0.002, wobble=0.01).verdicts["plateau-r2"]
    assert set(v.cases.values()) == {"not reproduced (the mean lies outside [0.9, 1.2])"}
    v = _ws(level=1.05, wobble=0.25).verdicts["plateau-r2"]
    assert v.verdict == "not reproduced" and "exceeds 1.25" in v.detail


def test_plateau_r2_undecided_needs_power_from_the_pilot():
    # at the band's edge with a small spread: neither test rejects; the pilot's SD gives
    # the equivalence test the reach of the 0.12 margin: not reproduced, with its power
    v = _ws(level=1.2, level_sd=0.005, wobble=0.002).verdicts["plateau-r2"]
    assert v.verdict == "not reproduced", v.text
    assert "equivalence within a margin of 0.12 would have been detected" in v.cases["ε = 0.1"]
    # the same, with a pilot whose seeds scatter widely: inconclusive at this scale
    v = _ws(level=1.2, level_sd=0.005, wobble=0.002,
            gd_level=lambda s: 1.2 + (0.3 * (s - 101) if s >= 100 else 0.0025 * (s - 2))
            ).verdicts["plateau-r2"]
    assert v.verdict == "inconclusive at this scale", v.text
    # without a pilot nothing gives power: inconclusive, never not reproduced
    p = _params(gd_seeds=[0, 1, 2, 3, 4], sgd_seeds=[0, 1, 2, 3, 4], subset_per_seed=True)
    v = E.analyze(_ws_results(p, level=1.2, level_sd=0.005, wobble=0.002), p)
    assert v.verdicts["plateau-r2"].verdict == "inconclusive at this scale"
    assert "no SD from a pilot" in v.verdicts["plateau-r2"].detail
    # a confirmation far more spread out than its pilot: the power statement does not hold
    v = _ws(wobble=0.002, gd_level=lambda s: 1.19 + (0.001 * (s - 101) if s >= 100
                                                     else 0.02 * (s % 5 - 2))
            ).verdicts["plateau-r2"]
    assert v.verdict.startswith("not assessable"), v.text
    assert "at most 2× the SD the pilot measured for power" in v.cases["ε = 0.1"]


def test_plateau_r2_needs_three_seeds_and_names_an_epsilon_the_pilot_dropped():
    p = _ws_params()
    res = _ws_results(p, late={(0.05, 100)})
    a = E.analyze(res, p)
    assert a.eps_confirmed == [0.1]
    assert a.verdicts["plateau-r2"].cases["ε = 0.05"].startswith(
        "not assessable: the pilot dropped ε = 0.05 (seed 100: it reached")
    # one confirmed ε is fewer than the two the aggregate needs
    assert a.verdicts["plateau-r2"].verdict == "not assessable"
    # the registered criteria judge the confirmed ε only
    assert a.plateau["ε"].tolist() == [0.1]
    p2 = _ws_params(gd_seeds=[0, 1], sgd_seeds=[0, 1])
    v = E.analyze(_ws_results(p2), p2).verdicts["plateau-r2"]
    assert v.verdict == "not assessable" and "(needs 3)" in v.detail


def test_departure_r2_fails_without_a_departure_or_outside_the_band():
    # hovering at 0.97·2/ε: |1 − ελ| < 1, GD never leaves the flow along v
    v = _ws(level=0.97, wobble=0.005).verdicts["departure-r2"]
    assert v.verdict == "not reproduced", v.text
    assert "no departure within 1000 steps at seeds 0, 1, 2, 3, 4" in v.detail
    # departing at ε·λ ≈ 2.6
    v = _ws(level=1.3, wobble=0.005).verdicts["departure-r2"]
    assert v.verdict == "not reproduced" and "outside [1.7, 2.3]" in v.cases["ε = 0.1"]
    v = _ws().verdicts["departure-r2"]
    assert v.verdict == "reproduced"


def test_sgd_r1_pairs_by_seed_and_samples_gds_variation():
    # GD of the chapter's seed plateaus high, the others low; SGD at the others' level:
    # against the one GD run (as registered) SGD stays below, against its own seed's GD
    # it does not, and sgd-r1 finds SGD's plateau at GD's
    lv = {0: 1.25, 1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}
    p = _ws_params()
    res = _ws_results(p, gd_level=lambda s: lv.get(s, 1.0), wobble=0.002, sgd_sd=0.002)
    for b in p.sgd_batches:
        for s in p.gd_seeds:
            st = np.arange(0, p.steps + 1, 50)
            res[E.Arm("sgd", p.sgd_eps, b, s)] = FakeResult(
                st, np.full(len(st), (1.0 + 0.002 * (s % 5 - 2)) * 2 / p.sgd_eps), np.ones(len(st)))
    a = E.analyze(res, p)
    assert a.verdicts["sgd"].verdict == "reproduced"
    v = a.verdicts["sgd-r1"]
    assert v.verdict != "reproduced", v.text
    assert "seed 0" not in v.detail or "1.00" in v.detail
    # SGD above GD's plateau: the opposite test rejects
    v = _ws(sgd=1.2).verdicts["sgd-r1"]
    assert v.verdict == "not reproduced"
    assert set(v.cases.values()) == {"not reproduced (SGD's median lies above GD's)"}
    # at GD's level with the pilot's small spread: a ratio of 0.9 would have been seen
    v = _ws(sgd=1.0, sgd_sd=0.002, wobble=0.001).verdicts["sgd-r1"]
    assert v.verdict == "not reproduced" and "0.9 would have been detected" in v.detail
    # a pair whose GD did not reach 2/ε before the second half is left out and named
    p = _ws_params()
    res = _ws_results(p, late={(0.1, 3)})
    v = E.analyze(res, p).verdicts["sgd-r1"]
    assert v.verdict == "reproduced" and "seed 3: GD reached 0.9·2/ε only at step" in v.detail


# Every criterion and revision of the chapter, with synthetic runs it must fail on and runs
# it must pass on (workstation-shaped runs; the registered criteria read the chapter's seed).
CAN_FAIL = {
    "plateau": dict(level=1.4, wobble=0.01),
    "plateau-r1": dict(level=1.4, wobble=0.01),
    "plateau-r2": dict(level=1.4, wobble=0.01),
    "departure": dict(level=0.97, wobble=0.005),
    "departure-r1": dict(level=0.97, wobble=0.005),
    "departure-r2": dict(level=0.97, wobble=0.005),
    "sgd": dict(sgd=1.05),
    "sgd-r1": dict(sgd=1.05),
}


@pytest.mark.parametrize("claim", sorted(CAN_FAIL))
def test_every_criterion_can_fail_and_can_pass(claim):
    assert set(CAN_FAIL) == {c.claim for c in E.CRITERIA} | {r.revised.claim
                                                               for r in E.REVISIONS}
    assert _ws().verdicts[claim].verdict == "reproduced", _ws().verdicts[claim].text
    v = _ws(**CAN_FAIL[claim]).verdicts[claim]
    assert v.verdict.startswith("not reproduced"), v.text
