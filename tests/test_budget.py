"""The ci build's time budgets: every chapter has one, and they fit the book's."""
from __future__ import annotations

from pathlib import Path

import pytest

from implicitreg.book import budget, parameters

ROOT = Path(__file__).resolve().parents[1]


def test_every_chapter_has_a_ci_budget_and_they_fit_the_book():
    budgets = budget.load_budgets(ROOT, "ci")
    chapters = parameters.toc_chapters(ROOT)
    assert set(chapters) <= set(budgets), set(chapters) - set(budgets)
    assert sum(v for k, v in budgets.items() if k != "book") <= budgets["book"]


def test_time_against_budget_in_words():
    assert "within budget" in budget.against_budget(50, 90)
    assert "over budget by 10 s" in budget.against_budget(100, 90)
    assert "over budget by 0.4 s" in budget.against_budget(77.4, 77)
    assert "not a test of the budget" in budget.against_budget(5, 90, trained=0)
    assert "no budget" in budget.against_budget(5, None)
    lines = budget.summary([{"chapter": "a", "seconds": 60.0, "trained": 3},
                            {"chapter": "b", "seconds": 50.0, "trained": 1}],
                           {"a": 90, "b": 40, "book": 100})
    assert "over budget by 10 s" in lines[1] and "over budget by 10 s" in lines[2]


def test_a_time_names_the_profile_whose_budget_it_is_held_to():
    budgets = {"ci": {"a": 90, "book": 100}, "smoke": {}}.get
    assert budget.against_budget(50, 90, profile="ci") == (
        "50 s of 90 s, the ci budget (56%): within budget")
    assert budget.against_budget(5, None, profile="smoke") == "5 s (no budget at profile smoke)"
    # a params file that names profile smoke: the chapters ran at smoke, whatever the
    # command line said, and nothing reads "within budget"
    rows = [{"chapter": "a", "seconds": 5.0, "trained": 3, "profile": "smoke"},
            {"chapter": "HTML build", "seconds": 2.0, "profile": "smoke"}]
    heading = budget.profiles_heading({"smoke"}, lambda p: budgets(p) or {})
    lines = budget.summary(rows, lambda p: budgets(p) or {})
    assert heading == "== time (profile smoke has no budgets in notebooks/budgets.yaml):"
    assert all("no budget at profile smoke" in line for line in lines), lines
    assert not any("within budget" in line for line in lines)
    mixed = [{"chapter": "a", "seconds": 60.0, "trained": 3, "profile": "ci"},
             {"chapter": "b", "seconds": 5.0, "trained": 3, "profile": "smoke"}]
    lines = budget.summary(mixed, lambda p: budgets(p) or {})
    assert "the ci budget" in lines[0] and "no budget at profile smoke" in lines[1]
    assert "no one budget applies" in lines[2]
    assert "ci, smoke" in budget.profiles_heading({"ci", "smoke"}, lambda p: {})


def test_worker_hints_name_chapters_of_the_toc_and_are_read_per_profile(tmp_path):
    hints = budget.load_workers(ROOT, "ci")
    assert set(hints) <= set(parameters.toc_chapters(ROOT)) and all(
        n >= 1 for n in hints.values())
    assert budget.load_workers(ROOT, "smoke") == {}
    (tmp_path / "notebooks").mkdir()
    (tmp_path / budget.BUDGETS_FILE).write_text("ci: {book: 9}\nworkers: {ci: {a: 0}}\n")
    with pytest.raises(ValueError, match="workers must be integers >= 1"):
        budget.load_workers(tmp_path, "ci")


def test_the_driver_applies_a_worker_hint_only_when_asked(tmp_path, monkeypatch):
    """A chapter named in the workers section gets that many processes (at most one per
    CPU) where the command line chose none; otherwise the given ExecConfig stands."""
    from implicitreg.book import driver
    from implicitreg.runs.execution import ExecConfig

    seen = {}
    monkeypatch.setattr(driver, "execute_values",
                        lambda source, out, values, timeout, ex: seen.update({source.name: ex}))
    monkeypatch.setattr(driver, "_trained", lambda nb: None)
    monkeypatch.setattr(budget, "load_workers", lambda root, profile: {"headline": 2})
    monkeypatch.setattr(driver.os, "cpu_count", lambda: 2)
    ex = ExecConfig(store_root=str(tmp_path / "runs"))
    only = ["headline", "lr_batch_law"]
    driver.build_book("smoke", root=ROOT, only=only, build=False, exec_config=ex,
                      worker_hints=True)
    assert seen["headline"].workers == 2 and seen["lr_batch_law"].workers == 1
    driver.build_book("smoke", root=ROOT, only=only, build=False, exec_config=ex)
    assert seen["headline"].workers == 1
    monkeypatch.setattr(driver.os, "cpu_count", lambda: 1)
    driver.build_book("smoke", root=ROOT, only=only, build=False, exec_config=ex,
                      worker_hints=True)
    assert seen["headline"].workers == 1
    import torch

    monkeypatch.setattr(driver.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(driver, "resolve_device", lambda name: torch.device("cuda"))
    driver.build_book("smoke", root=ROOT, only=only, build=False, exec_config=ex,
                      worker_hints=True)
    assert seen["headline"].workers == 1, "the hints were measured on CPUs"
