"""Every committed run is found again: its key re-derives, unchanged, from the config and
the data source it recorded (see CONTRIBUTING.md, "What a run is")."""
import json
from pathlib import Path

from implicitreg.engine import NUMERICS_VERSION
from implicitreg.engine.config import RunConfig
from implicitreg.runs.store import run_key

ROOT = Path(__file__).resolve().parents[1]


def committed_runs() -> list[Path]:
    return sorted(p.parent for p in ROOT.glob("results/*/runs/*/config.json"))


def test_every_committed_run_key_re_derives_from_its_config_and_data_source():
    runs = committed_runs()
    assert runs, "no committed run found under results/*/runs"
    wrong = []
    for d in runs:
        cfg = RunConfig.from_dict(json.loads((d / "config.json").read_text()))
        prov = json.loads((d / "provenance.json").read_text())
        got = run_key(cfg, prov["data_source"])
        if got != d.name or prov.get("key") != d.name:
            wrong.append(f"{d.relative_to(ROOT)}: derives {got}, provenance says "
                         f"{prov.get('key')}")
    assert not wrong, (
        f"{len(wrong)} of {len(runs)} committed runs no longer find their key, so a "
        "rebuild would retrain them (or refuse under IMPLICITREG_NO_TRAIN). A new config "
        "field needs an entry in ADDED_FIELD_DEFAULTS or EXECUTION_FIELDS; a change of "
        "numbers needs a NUMERICS_VERSION bump (see CONTRIBUTING.md):\n" + "\n".join(wrong[:20]))


def test_committed_runs_were_made_under_the_current_numerics_version():
    old = [d.name for d in committed_runs()
           if json.loads((d / "provenance.json").read_text()).get("numerics_version")
           != NUMERICS_VERSION]
    assert not old, f"runs made under another NUMERICS_VERSION: {old[:20]}"
