"""The registry: when each criterion was fixed (results/registry.json, not dates typed into
code), the guard that keeps a committed set from training under an unregistered design,
and the check that every committed window was judged by the criteria it was made under."""
import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from implicitreg.chapters import registry
from implicitreg.chapters.criteria import Revision

ROOT = Path(__file__).resolve().parents[1]


def test_chapter_modules_with_criteria_are_found_by_themselves():
    found = registry.chapters()
    assert {"sgd_vs_gd", "edge_of_stability", "headline"} <= set(found)
    assert not {"base", "criteria", "registry"} & set(found)
    for name, mod in found.items():
        assert len(registry.items(name)) == len(mod.CRITERIA) + len(getattr(mod, "REVISIONS", ()))


def test_an_items_fingerprint_is_its_text_not_its_typed_date():
    from implicitreg.chapters import sgd_vs_gd as S

    c = S.CRITERIA[0]
    assert registry.item_fingerprint(c) == registry.item_fingerprint(
        dataclasses.replace(c, registered="1999-01-01"))
    assert registry.item_fingerprint(c) != registry.item_fingerprint(
        dataclasses.replace(c, threshold=c.threshold + "."))


def test_every_criterion_has_a_full_time_from_the_registry():
    for name in registry.chapters():
        times = registry.item_times(name, ROOT)
        assert set(times) == set(registry.items(name)), name
        assert all("T" in t and t.endswith("+00:00") for t in times.values()), name


def test_committed_sets_were_judged_by_the_criteria_they_were_made_under():
    """Every window of every committed manifest maps to a registration whose criteria
    still read as registered."""
    assert registry.check_committed(ROOT) == []
    recorded = [(p, e) for p, e in registry.committed_entries(ROOT)
                if e.get("chapter") in registry.chapters()]
    complete = [e for _, e in recorded if e.get("status") == "complete"]
    assert sum("criteria" in e or "design" in e for e in complete) >= len(complete) - 1


def _project(tmp_path, windows):
    """A project folder with the real registry and a workstation manifest of ``windows``
    (each a list of chapter entries)."""
    (tmp_path / "results" / "workstation").mkdir(parents=True)
    shutil.copy2(ROOT / registry.REGISTRY, tmp_path / registry.REGISTRY)
    (tmp_path / "results" / "workstation" / "manifest.json").write_text(json.dumps(
        {"chapters": windows[-1], "windows": [
            {"created": f"2026-12-0{i + 1}T00:00:00+00:00", "device": "CPU", "chapters": w}
            for i, w in enumerate(windows)]}))
    return tmp_path


def _sgd_window():
    e = next(e for p, e in registry.committed_entries(ROOT)
             if p == "workstation" and e["chapter"] == "sgd_vs_gd" and "criteria" in e)
    return {k: e[k] for k in ("chapter", "status", "criteria", "params")}


def test_an_edit_followed_by_a_replot_fails(tmp_path, monkeypatch):
    """A re-plot adds a window; the window that trained the set still names what its
    criteria read then, so an edit shows whatever came after."""
    from implicitreg.chapters import sgd_vs_gd as S

    trained = _sgd_window()
    edited = (dataclasses.replace(S.CRITERIA[0], threshold="reproduced always"),) + S.CRITERIA[1:]
    monkeypatch.setattr(S, "CRITERIA", edited)
    replot = {"chapter": "sgd_vs_gd", "status": "complete", "replot": True,
              "design": registry.design_fingerprint("sgd_vs_gd", trained["params"])}
    problems = registry.check_committed(_project(tmp_path, [[trained], [replot]]))
    assert any("edited instead of revised" in p and "'gap'" in p for p in problems)
    assert any("no registration" in p for p in problems)


def test_a_registered_revision_leaves_the_set_valid_and_an_unregistered_one_does_not(
        tmp_path, monkeypatch):
    from implicitreg.chapters import sgd_vs_gd as S

    root = _project(tmp_path, [[_sgd_window()]])
    assert registry.check_committed(root) == []
    later = Revision(original="gap", reason="test",
                     revised=dataclasses.replace(S.CRITERIA[0], claim="gap-test",
                                                 registered=""))
    monkeypatch.setattr(S, "REVISIONS", S.REVISIONS + (later,))
    (problem,) = registry.check_committed(root)
    assert "gap-test" in problem and "implicitreg register" in problem
    doc = json.loads((root / registry.REGISTRY).read_text())
    doc["registrations"].append({"chapter": "sgd_vs_gd", "profile": "workstation",
                                 "items": registry.items("sgd_vs_gd"),
                                 "time": "2026-12-31T00:00:00+00:00", "source": "register"})
    (root / registry.REGISTRY).write_text(json.dumps(doc))
    assert registry.check_committed(root) == []
    assert registry.item_times("sgd_vs_gd", root)["gap-test"] == "2026-12-31T00:00:00+00:00"


def test_a_window_without_a_fingerprint_is_reported(tmp_path):
    w = _sgd_window()
    del w["criteria"]
    (problem,) = registry.check_committed(_project(tmp_path, [[w]]))
    assert "no criteria fingerprint" in problem


# ------------------------------------------------------------------ the guard
def _unregistered(monkeypatch):
    """The headline's design changed (a later profile value), not registered."""
    from implicitreg.chapters import headline as H

    edited = (dataclasses.replace(H.CRITERIA[0], threshold=H.CRITERIA[0].threshold + " "),)
    monkeypatch.setattr(H, "CRITERIA", edited + H.CRITERIA[1:])


def test_the_guard_names_the_command_and_passes_other_profiles(monkeypatch):
    from implicitreg.chapters import headline as H

    _unregistered(monkeypatch)
    values = dataclasses.asdict(H.profile("workstation"))
    with pytest.raises(registry.RegistrationError, match="implicitreg register headline "
                                                         "--profile workstation"):
        registry.require_registered("headline", "workstation", values, ROOT)
    registry.require_registered("headline", "ci", dataclasses.asdict(H.profile("ci")), ROOT)


def test_the_book_driver_and_the_command_line_refuse_before_any_training(monkeypatch, tmp_path,
                                                                         capsys):
    from implicitreg import cli
    from implicitreg.book import driver

    _unregistered(monkeypatch)
    executed = []
    monkeypatch.setattr(driver, "execute_values", lambda *a, **k: executed.append(a))
    monkeypatch.setenv("IMPLICITREG_RESULTS", str(tmp_path / "runs"))
    with pytest.raises(registry.RegistrationError):
        driver.build_book(profile="workstation", only=["headline"], build=False, root=ROOT,
                          exec_config=driver.ExecConfig(store_root=str(tmp_path / "runs")))
    monkeypatch.chdir(ROOT)
    assert cli.main(["book", "--profile", "workstation", "--only", "headline",
                     "--no-build"]) == 1
    assert "implicitreg register headline" in capsys.readouterr().err
    assert not executed


def test_the_gpu_edition_refuses_an_unregistered_design(monkeypatch):
    from implicitreg.book import gpu_edition
    from implicitreg.chapters import sgd_vs_gd as S

    monkeypatch.setattr(gpu_edition, "run_chapter", lambda *a, **k: pytest.fail("trained"))
    edited = (dataclasses.replace(S.CRITERIA[0], threshold="edited"),) + S.CRITERIA[1:]
    monkeypatch.setattr(S, "CRITERIA", edited)
    with pytest.raises(registry.RegistrationError, match="sgd_vs_gd"):
        gpu_edition.train_chapter(ROOT, "sgd_vs_gd", "gpu", None)


def test_a_notebook_run_by_hand_meets_the_guard(monkeypatch):
    from implicitreg.book import chapter
    from implicitreg.chapters import headline as H

    values = {**dataclasses.asdict(H.profile("workstation")), "profile": "workstation"}
    chapter.execution({**values, "exec_config": {"no_train": True}}, H.CHAPTER)
    _unregistered(monkeypatch)
    with pytest.raises(registry.RegistrationError):
        chapter.execution(values, H.CHAPTER)
    chapter.execution({**values, "exec_config": {"no_train": True}}, H.CHAPTER)


def test_register_needs_a_committed_unmodified_module_and_records_its_commit(tmp_path):
    from conftest import copy_project

    root = copy_project(tmp_path / "p")
    (root / "results").mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=root, check=True,  # noqa: E731
                                    capture_output=True, text=True).stdout.strip()
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    module = root / "src" / "implicitreg" / "chapters" / "headline.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    with pytest.raises(registry.RegistrationError, match="uncommitted"):
        registry.register("headline", "workstation", root)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "y")
    entry = registry.register("headline", "workstation", root)
    assert entry["commit"] == git("rev-parse", "HEAD") and entry["time"].endswith("+00:00")
    assert entry["fingerprint"] == registry.design_fingerprint("headline", entry["params"])
    assert json.loads((root / registry.REGISTRY).read_text())["registrations"][-1] == entry


# ------------------------------------------------------------------ when runs were made
class _Run:
    def __init__(self, created, wall):
        self.provenance = {"created": created, "wall_time_s": wall}


def test_runs_made_is_read_from_the_runs_provenance():
    runs = [_Run("2026-12-01T05:28:14+00:00", 600), _Run("2026-12-01T12:51:00+00:00", 10)]
    assert registry.run_interval(runs) == ("2026-12-01T05:18:14+00:00",
                                           "2026-12-01T12:51:00+00:00")
    assert "2026-12-01 05:18:14–12:51:00 UTC" in registry.made_text("x", "ci", runs, ROOT)


def test_made_table_compares_each_registration_with_the_first_run_it_judges():
    before = [_Run("2026-12-01T06:00:00+00:00", 60)]
    t = registry.made_table("headline", "workstation", {"*": before,
                                                        "penalty-r1": before}, ROOT)
    assert t.loc["gap", "fixed before its runs"] == "yes"
    assert t.loc["penalty-r1", "fixed before its runs"].startswith("no")
    assert registry.made_table("headline", "ci", {}, ROOT)["fixed before its runs"].eq(
        "no run judged yet").all()
