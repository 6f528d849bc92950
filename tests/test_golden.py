"""The engine's numbers are pinned: tiny configurations retrained and compared with the
committed tests/golden/ files (see implicitreg.golden for what to do on a mismatch)."""
import json

import pytest

from implicitreg import golden
from implicitreg.engine import NUMERICS_VERSION
from implicitreg.runs.store import run_key


@pytest.mark.parametrize("case", list(golden.CASES))
def test_golden_case_reproduces(case):
    expected = json.loads(golden.path(case).read_text())
    problems = golden.compare(expected, golden.compute(case))
    assert not problems, (
        f"golden case {case} changed: {problems[:3]}. If the engine's numbers changed on "
        "purpose, bump NUMERICS_VERSION in src/implicitreg/engine/__init__.py and run "
        "`.venv/bin/implicitreg golden --write`; otherwise the change broke them.")


@pytest.mark.parametrize("case", list(golden.CASES))
def test_golden_keys_are_stable(case):
    """A refactor that changes no number keeps every run key (committed result sets
    stay valid); the committed files record the keys."""
    from implicitreg.engine.data import resolve_source

    expected = json.loads(golden.path(case).read_text())
    for cfg, run in zip(golden.configs(case), expected["runs"]):
        assert run_key(cfg, resolve_source(cfg.dataset, cfg.data_root)) == run["key"]


def test_compare_reports_a_changed_number():
    expected = json.loads(golden.path("sgd").read_text())
    changed = json.loads(json.dumps(expected))
    changed["runs"][0]["metrics"][-1][3] *= 1 + 1e-4
    assert golden.compare(expected, changed)
    assert not golden.compare(expected, expected)


def test_older_numerics_version_is_not_served(tmp_path, monkeypatch):
    """A run stored under another NUMERICS_VERSION has another key: it is retrained, or
    refused with both versions named when training is off."""
    import implicitreg as ir
    from implicitreg.runs import store as store_mod

    cfg = golden.configs("sgd")[0]
    st = ir.RunStore(tmp_path)
    old = ir.run(cfg, st)
    monkeypatch.setattr(store_mod, "NUMERICS_VERSION", NUMERICS_VERSION + 1)
    monkeypatch.setattr("implicitreg.runs.runner.NUMERICS_VERSION", NUMERICS_VERSION + 1)
    new_key = store_mod.run_key(cfg, "synthetic", NUMERICS_VERSION + 1)
    assert new_key != old.key
    assert st.older_version(cfg, "synthetic") == NUMERICS_VERSION
    with pytest.raises(ir.MissingRunError, match=f"NUMERICS_VERSION {NUMERICS_VERSION}"):
        ir.run(cfg, st, exec_config=ir.ExecConfig(no_train=True))
