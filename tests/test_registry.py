"""One registry of every chapter's criteria, and the committed result sets' record of the
criteria they were made under."""
import dataclasses
import json
from pathlib import Path

import pytest

from implicitreg.chapters import registry
from implicitreg.chapters.criteria import Revision

ROOT = Path(__file__).resolve().parents[1]


def test_chapter_modules_with_criteria_are_found_by_themselves():
    found = registry.chapters()
    assert {"sgd_vs_gd", "edge_of_stability"} <= set(found)
    assert not {"base", "criteria", "registry"} & set(found)
    for name, mod in found.items():
        assert registry.criteria_hash(name) == registry.criteria_hash(name, as_of="2100-01-01")
        assert len(registry.entries(name)) == len(mod.CRITERIA) + len(getattr(mod, "REVISIONS", ()))


def test_committed_sets_were_judged_by_the_criteria_they_were_made_under():
    """Fails when a criterion in force when a committed set was made has been edited
    since, instead of revised (a Revision that keeps the original)."""
    assert registry.check_committed(ROOT) == []
    recorded = [(p, e) for p, e in registry.committed_entries(ROOT)
                if e.get("chapter") in registry.chapters()]
    assert recorded and all("criteria" in e for _, e in recorded)


def _manifest(root, chapter, window, fingerprint):
    (root / "results" / "workstation").mkdir(parents=True)
    (root / "results" / "workstation" / "manifest.json").write_text(json.dumps(
        {"chapters": [{"chapter": chapter, "status": "complete", "window": window,
                       "device": "CPU", "criteria": fingerprint}]}))


def test_an_edited_criterion_fails_and_a_recorded_revision_does_not(tmp_path, monkeypatch):
    from implicitreg.chapters import sgd_vs_gd as S

    window = "2026-11-26T23:39:57+00:00"
    _manifest(tmp_path, "sgd_vs_gd", window, registry.criteria_hash("sgd_vs_gd", as_of=window))
    assert registry.check_committed(tmp_path) == []
    # a recorded revision after the runs leaves the set's fingerprint as it was
    later = Revision(original="gap", reason="test", date="2026-12-31",
                     revised=dataclasses.replace(S.CRITERIA[0], claim="gap-test",
                                                 registered="2026-12-31"))
    monkeypatch.setattr(S, "REVISIONS", S.REVISIONS + (later,))
    assert registry.check_committed(tmp_path) == []
    # editing the registered criterion does not
    edited = (dataclasses.replace(S.CRITERIA[0], threshold="reproduced always"),) + S.CRITERIA[1:]
    monkeypatch.setattr(S, "CRITERIA", edited)
    (problem,) = registry.check_committed(tmp_path)
    assert "sgd_vs_gd" in problem and "edited" in problem


def test_a_backdated_revision_fails(tmp_path, monkeypatch):
    from implicitreg.chapters import sgd_vs_gd as S

    window = "2026-11-26T23:39:57+00:00"
    _manifest(tmp_path, "sgd_vs_gd", window, registry.criteria_hash("sgd_vs_gd", as_of=window))
    early = Revision(original="gap", reason="test", date="2026-11-26T21:00:00+00:00",
                     revised=dataclasses.replace(S.CRITERIA[0], claim="gap-test"))
    monkeypatch.setattr(S, "REVISIONS", S.REVISIONS + (early,))
    assert len(registry.check_committed(tmp_path)) == 1


def test_a_committed_set_without_a_fingerprint_is_reported(tmp_path):
    _manifest(tmp_path, "sgd_vs_gd", "2026-11-26T23:39:57+00:00", None)
    data = json.loads((tmp_path / "results" / "workstation" / "manifest.json").read_text())
    del data["chapters"][0]["criteria"]
    (tmp_path / "results" / "workstation" / "manifest.json").write_text(json.dumps(data))
    (problem,) = registry.check_committed(tmp_path)
    assert "no criteria fingerprint" in problem


def test_the_driver_records_the_fingerprint_of_a_committed_execution(tmp_path):
    from implicitreg.book.driver import committed_entry, record_committed_execution

    stamp = "2026-12-02T00:00:00+00:00"
    record_committed_execution(tmp_path, "sgd_vs_gd", "workstation", stamp, 1.0)
    entry = committed_entry(tmp_path, "workstation", "sgd_vs_gd")
    assert entry["criteria"] == registry.criteria_hash("sgd_vs_gd", as_of=stamp)
    assert registry.check_committed(tmp_path) == []


def test_made_table_shows_when_each_criterion_was_fixed_against_the_runs():
    t = registry.made_table("sgd_vs_gd", "workstation", ROOT)
    assert t.loc["gap", "fixed before the runs"] == "yes"
    assert t.loc["gap-r2", "fixed before the runs"].startswith("no")
    assert registry.made_table("sgd_vs_gd", "ci", ROOT)["runs made"].eq("in this build").all()
    assert "committed `workstation` result set" in registry.made_text("sgd_vs_gd",
                                                                       "workstation", ROOT)
