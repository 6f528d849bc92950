"""The Coherent Gradients chapter's module on synthetic results: verdicts from injected
effects, their absence, and failed premises; profiles and the notebook's parameters."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from implicitreg.chapters import coherent_gradients as C
from implicitreg.chapters.base import profiles
from implicitreg.chapters.criteria import criteria_hash

from conftest import ledger_glue_problems

REGISTERED_HASH = "60c77b94c60514a3"


class FakeResult:
    """What :func:`C.analyze` reads from a run: ``metrics``, ``curve``, ``summary``,
    ``provenance``."""

    def __init__(self, rows: list[tuple[str, str, int, float]], diverged: bool = False):
        self.metrics = pd.DataFrame(rows, columns=["split", "metric", "step", "value"])
        self.summary = {"diverged": diverged}
        self.provenance = {"data_source_detail": "synthetic test data"}

    def curve(self, metric: str, split: str) -> pd.DataFrame:
        m = self.metrics
        return (m[(m.metric == metric) & (m.split == split)][["step", "value"]]
                .sort_values("step").reset_index(drop=True))


def ramp(steps: np.ndarray, half_at: float) -> np.ndarray:
    """A fitted fraction that crosses 0.5 at ``half_at`` (never when it is inf)."""
    return np.clip(0.5 * steps / half_at, 0, 1) if np.isfinite(half_at) else 0.1 + 0 * steps


def curves(split_values: dict[tuple[str, str], np.ndarray], steps: np.ndarray):
    return [(split, metric, int(s), float(v)) for (split, metric), vals in split_values.items()
            for s, v in zip(steps, vals)]


def fake_results(p: C.Params, *, fitting: bool = True, coherent: bool = True,
                 winsor: bool = True, pristine_half: float = 200.0,
                 win_test: float = 0.9, base_overfit: float = 0.2,
                 diverged: tuple = ()) -> dict:
    out = {}
    steps = np.arange(0, p.steps + 1, p.eval_every)
    for q in p.noise_levels:
        early, late = (pristine_half, 3 * pristine_half)
        pr, co = (early, late) if fitting else (late, early)
        if not np.isfinite(pristine_half):
            pr = co = np.inf
        out[C.Arm("mnist", q)] = FakeResult(curves({
            ("train", "accuracy"): ramp(steps, pr), ("test", "accuracy"): ramp(steps, pr),
            ("train", "loss"): 2.3 * np.exp(-steps / p.steps),
            ("pristine", "accuracy"): ramp(steps, pr),
            ("corrupt", "accuracy"): ramp(steps, co)}, steps))
    psteps = np.arange(0, p.probe_steps + 1, p.probe_every)
    rng = np.random.default_rng(0)
    for q in [q for q in p.noise_levels if q < 1]:
        acc = (0.9 - 0.3 * q) if fitting else (0.5 + 0.3 * q)
        rows = curves({("pristine" if q > 0 else "train", "accuracy"):
                       np.full(len(psteps), acc)}, psteps)
        if 0 < q < 1:
            real = 0.5 if coherent else 1.0
            rows += curves({("probe", "corrupt_share"): np.full(len(psteps), q),
                            ("probe", "f_corrupt"): np.full(len(psteps), q * real)}, psteps)
            for j in range(p.coherence_nulls):
                # null worlds spread around 1, the real value sits among them when incoherent
                null = 0.8 + 0.4 * (j + 0.5) / p.coherence_nulls
                rows += curves({("probe", f"f_corrupt_null{j}"):
                                q * (null + 0.001 * rng.standard_normal(len(psteps)))}, psteps)
        out[C.Arm("probe", q)] = FakeResult(rows)
    csteps = np.arange(0, p.cifar_steps + 1, p.eval_every)
    for q in p.cifar_noise_levels:
        out[C.Arm("cifar", q)] = FakeResult(curves({
            ("train", "accuracy"): ramp(csteps, 300), ("test", "accuracy"): ramp(csteps, 300),
            ("pristine", "accuracy"): ramp(csteps, 300),
            ("corrupt", "accuracy"): ramp(csteps, 600)}, csteps))
    wsteps = np.arange(0, p.win_steps + 1, p.eval_every)
    for q in p.win_noise_levels:
        for c in p.win_c:
            overfit = base_overfit * (1 - 0.1 * c if winsor else 1.0)
            test = win_test if c == max(p.win_c) else 0.9
            final_train = (1 - q) * test + q / 10 + overfit
            frac = wsteps / wsteps[-1]
            out[C.Arm("win", q, c)] = FakeResult(curves({
                ("train", "accuracy"): frac * final_train,
                ("test", "accuracy"): frac * test}, wsteps))
    for arm in diverged:
        out[arm].summary["diverged"] = True
    return out


P = C.profile("ci")


def verdicts(**kw) -> dict:
    a = C.analyze(fake_results(P, **kw), P)
    return {k: v.verdict for k, v in a.verdicts.items()}


def test_injected_effects_are_reproduced():
    a = C.analyze(fake_results(P), P)
    v = {k: x.verdict for k, x in a.verdicts.items()}
    assert v == {"fitting": "reproduced", "coherence": "reproduced",
                 "winsorization": "reproduced"}, {k: x.text for k, x in a.verdicts.items()}
    assert a.glue["cg_pristine_first"] == "yes" and a.glue["cg_slower"] == "yes"
    assert a.glue["cg_v1"] == "reproduced" and "cg_overfit_50" in a.glue
    assert not ledger_glue_problems(C, a)
    assert a.glue["cg_source"] == "synthetic test data"
    # every real value is below all 19 null worlds: the smallest p-value, 1/20
    assert np.allclose(a.tests["p-value at init"], 1 / 20)
    # Holm over three noise levels: 3 × 0.05
    assert np.allclose(a.tests["p-value at init (Holm)"], 0.15)


def test_no_effect_is_not_reproduced():
    v = verdicts(fitting=False, coherent=False, winsor=False)
    assert v == {"fitting": "not reproduced", "coherence": "not reproduced",
                 "winsorization": "not reproduced"}
    a = C.analyze(fake_results(P, winsor=False), P)
    # a negative verdict states what one pair of runs could show, from the registered SD
    assert f"{C.detectable_single():.3f}" in a.verdicts["winsorization"].detail
    assert C.detectable_single(0.01) == pytest.approx(0.8416 * 0.01 * 2 ** 0.5, rel=1e-3)


def test_partly_reproduced_cases():
    res = fake_results(P)
    # the corrupt examples start below every null world but catch up within the window
    for q in (0.25, 0.5, 0.75):
        m = res[C.Arm("probe", q)].metrics
        late = (m.metric == "f_corrupt") & (m.step > 0)
        m.loc[late, "value"] = 2.0 * q
    assert C.analyze(res, P).verdicts["coherence"].verdict == (
        "partly reproduced (at initialization only)")


def test_an_arm_that_did_not_fit_is_not_assessable():
    # neither pristine nor corrupt examples reach half fitted: no order to compare
    v = C.analyze(fake_results(P, pristine_half=np.inf), P).verdicts["fitting"]
    assert v.verdict.startswith("not assessable") and "neither group" in v.verdict
    # the winsorized arm at chance-level test accuracy: its "lower overfit" is no evidence
    v = C.analyze(fake_results(P, win_test=0.1), P).verdicts["winsorization"]
    assert v.verdict.startswith("not assessable") and "0.100 with c = 8" in v.verdict
    # plain SGD does not overfit: nothing to reduce
    v = C.analyze(fake_results(P, base_overfit=0.0), P).verdicts["winsorization"]
    assert v.verdict.startswith("not assessable") and "final overfit 0.000" in v.verdict


def test_divergence_and_too_few_nulls_are_not_assessable():
    v = verdicts(diverged=(C.Arm("probe", 0.5), C.Arm("win", 0.5, 8)))
    assert v["fitting"].startswith("not assessable") and "probe, p = 0.5" in v["fitting"]
    assert v["coherence"].startswith("not assessable")
    assert v["winsorization"].startswith("not assessable")
    p = C.profile("ci", coherence_nulls=3)
    v = C.analyze(fake_results(p), p).verdicts["coherence"]
    assert v.verdict.startswith("not assessable") and "0.25" in v.verdict


def test_profiles_are_complete_instances_and_match_the_notebook():
    from implicitreg.book import parameters

    for name in profiles(C.CHAPTER):
        C.profile(name)
    nb = parameters.notebook_parameters(Path(__file__).resolve().parents[1] / "notebooks" /
                                    "coherent_gradients.ipynb")
    assert set(nb) - {"profile", "executed_at", "exec_config"} == set(C.Params.names())
    assert nb["profile"] == "ci"
    assert C.Params.from_values(nb) == C.profile("ci")
    with pytest.raises(ValueError, match="slow_step"):
        C.profile("ci", slow_step=21)


def test_design_labels_every_run_once():
    d = C.design(P)
    arms = [a for a, _ in d]
    assert len(set(arms)) == len(arms)
    assert sum(a.kind == "win" for a in arms) == len(P.win_noise_levels) * len(P.win_c)
    probes = {a.noise: c for a, c in d if a.kind == "probe"}
    assert probes[0.5].coherence_probe == P.coherence_probe and probes[0.0].coherence_probe == 0
    assert all(c.winsorize == a.c for a, c in d if a.kind == "win")


def test_registered_criteria_are_unchanged():
    """The criteria are the chapter's text fixed before its first runs (2026-11-25); a
    change must be a recorded revision, not an edit."""
    assert C.registered_hash() == criteria_hash(C.CRITERIA) == REGISTERED_HASH
    assert {c.registered for c in C.CRITERIA} == {"2026-11-25"}
    assert C.REVISIONS == ()
