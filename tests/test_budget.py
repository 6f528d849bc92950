"""The ci build's time budgets: every chapter has one, and they fit the book's."""
from __future__ import annotations

from pathlib import Path

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
    assert "not a test of the budget" in budget.against_budget(5, 90, trained=0)
    assert "no budget" in budget.against_budget(5, None)
    lines = budget.summary([{"chapter": "a", "seconds": 60.0, "trained": 3},
                            {"chapter": "b", "seconds": 50.0, "trained": 1}],
                           {"a": 90, "b": 40, "book": 100})
    assert "over budget by 10 s" in lines[1] and "over budget by 10 s" in lines[2]
