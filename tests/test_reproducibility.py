"""The reproducibility page's module: its verdicts on synthetic metric tables, its
premises, one real check on a tiny synthetic run, its profiles and its criteria."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from implicitreg.chapters import reproducibility as R
from implicitreg.chapters.base import profiles
from implicitreg.chapters.criteria import criteria_hash

ROOT = Path(__file__).resolve().parents[1]
REGISTERED_HASH = "644fa35af6ea6b11"


def _result(values, device="cpu", diverged=False, notes=()):
    steps = np.arange(len(values)) * 10
    metrics = pd.DataFrame({"metric": "loss", "split": "train", "step": steps,
                            "value": np.asarray(values, dtype=float)})
    return SimpleNamespace(metrics=metrics, summary={"diverged": diverged},
                           provenance={"device": device, "notes": list(notes)})


def _check(first, second, resumed=None, **kw):
    resumed = resumed or _result(first.metrics.value, notes=["resumed from a checkpoint at step 1"])
    return R.Check(first, second, resumed, stopped_at="deadline reached at step 1 of 40", **kw)


P = R.profile("ci")


def test_identical_tables_are_reproduced():
    a = _result([2.3, 1.1, 0.7])
    got = R.analyze(_check(a, _result([2.3, 1.1, 0.7])), P)
    assert got.verdicts["determinism"].verdict == "reproduced"
    assert got.verdicts["resume"].verdict == "reproduced"
    assert got.glue["repro_determinism_numbers"].startswith("3 metric values compared, 0 differ")


def test_a_differing_value_is_not_reproduced():
    a = _result([2.3, 1.1, 0.7])
    b = _result([2.3, 1.1, 0.7 + 1e-7])
    got = R.analyze(_check(a, b, resumed=_result([2.3, 1.2, 0.7], notes=["resumed"])), P)
    assert got.verdicts["determinism"].verdict == "not reproduced"
    assert "1 differ" in got.verdicts["determinism"].detail
    assert got.verdicts["resume"].verdict == "not reproduced"
    missing = R.analyze(_check(a, _result([2.3, 1.1])), P).verdicts["determinism"]
    assert missing.verdict == "not reproduced" and "1 rows in one table only" in missing.detail


def test_failed_premises_are_not_assessable():
    a = _result([2.3, 1.1, 0.7])
    v = R.analyze(_check(a, _result([2.3, 1.1, 0.7], device="cuda")), P).verdicts["determinism"]
    assert v.verdict == "not assessable" and "devices: cpu, cuda" in v.detail
    v = R.analyze(_check(a, _result([2.3, 1.1, 0.7]), resumed=_result([2.3, 1.1, 0.7])),
                  P).verdicts["resume"]
    assert v.verdict == "not assessable" and "no note of a resume" in v.detail
    refused = R.analyze(R.Check(no_train=True), P)
    assert all(v.verdict == "not assessable" for v in refused.verdicts.values())


def test_the_check_on_a_tiny_synthetic_run(monkeypatch):
    monkeypatch.delenv("IMPLICITREG_NO_TRAIN", raising=False)
    p = R.profile("smoke")
    c = R.check(p)
    assert "step 1 of" in c.stopped_at
    a = R.analyze(c, p)
    assert a.verdicts["determinism"].verdict == "reproduced", a.verdicts["determinism"].text
    assert a.verdicts["resume"].verdict == "reproduced", a.verdicts["resume"].text
    monkeypatch.setenv("IMPLICITREG_NO_TRAIN", "1")
    assert R.check(p).no_train


def test_tables_from_an_empty_checkout(tmp_path):
    assert R.profiles_table(None) is None
    assert R.committed_sets_table(None).empty and R.bench_table(tmp_path).empty
    timings, gpu = R.timings_table(tmp_path)
    assert timings.empty and not gpu
    t = R.profiles_table(ROOT / "notebooks" / "profiles")
    assert ("reproducibility", "check_steps") in t.index


def test_profiles_are_complete_instances_and_match_the_notebook():
    from implicitreg.book import parameters

    for name in profiles(R.CHAPTER):
        R.profile(name)
    nb = parameters.notebook_parameters(ROOT / "notebooks" / "reproducibility.ipynb")
    assert set(nb) - {"profile", "executed_at", "exec_config"} == set(R.Params.names())
    assert R.Params.from_values(nb) == R.profile("ci")
    with pytest.raises(ValueError, match="check_steps"):
        R.profile("ci", check_steps=1)


def test_registered_criteria_are_unchanged():
    assert R.registered_hash() == criteria_hash(R.CRITERIA) == REGISTERED_HASH
    assert [c.claim for c in R.CRITERIA] == ["determinism", "resume"]
    assert R.REVISIONS == ()
