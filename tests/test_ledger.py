"""The claims ledger's one policy: the registered criterion's verdict is the claim's, each
revision shown stands beside it marked as such, and every row quotes exactly the
statistic of the verdict on that row."""
import copy
import json
from pathlib import Path

import pytest

from implicitreg.book import ledger, report
from implicitreg.book.parameters import BookError
from implicitreg.chapters import registry

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = report.load_claims(ROOT)


def _entry(chapter: str, criterion: str) -> dict:
    return copy.deepcopy(next(c for c in CLAIMS if c["chapter"] == chapter
                              and c["criterion"] == criterion))


def test_the_ledger_follows_its_policy():
    assert ledger.problems(CLAIMS) == []


def test_every_row_quotes_exactly_the_statistic_of_its_criterion():
    chapters = registry.chapters()
    for c in CLAIMS:
        mod = chapters[c["chapter"]]
        registered = {x.claim for x in mod.CRITERIA}
        revised = {r.revised.claim for r in mod.REVISIONS}
        assert c["criterion"] in registered, c["claim"]
        for row in ledger.rows_of(c):
            cid = row["criterion"]
            assert cid in registered | revised, (c["claim"], cid)
            assert sorted(row["effect"]) == sorted(mod.STATISTIC_GLUE[cid]), (c["claim"], cid)
            assert row["verdict"] == mod.VERDICT_GLUE[cid], (c["claim"], cid)
        for row in c.get("revisions") or []:
            assert row["criterion"] in revised, (c["claim"], row["criterion"])


def test_every_chapter_names_glue_keys_only_for_its_own_criteria():
    for name, mod in registry.chapters().items():
        ids = {x.claim for x in mod.CRITERIA} | {r.revised.claim for r in mod.REVISIONS}
        assert set(getattr(mod, "STATISTIC_GLUE", {})) <= ids, name
        assert set(getattr(mod, "VERDICT_GLUE", {})) <= ids, name


def test_the_slope_line_quotes_the_statistic_of_each_verdict():
    e = _entry("lr_batch_law", "slope")
    assert e["effect"] == ["lb_slope", "lb_detectable_registered"]
    assert e["verdict"] == "lb_verdict_slope"
    [r2] = e["revisions"]
    assert r2["criterion"] == "slope-r2"
    assert r2["effect"] == ["lb_slope_fitted", "lb_detectable"]
    assert r2["verdict"] == "lb_verdict_slope_r2"


def test_a_row_that_quotes_another_criterions_statistic_is_refused():
    # the slope over every cell beside the verdict of the slope over the cells that fit
    old = _entry("lr_batch_law", "slope")
    old.update(effect=["lb_slope", "lb_detectable"], verdict="lb_v1")
    found = "\n".join(ledger.problems([old]))
    assert "effect ['lb_slope', 'lb_detectable'] is not the statistic of slope" in found
    assert "verdict 'lb_v1' is not that of slope" in found
    swapped = _entry("lr_batch_law", "slope")
    swapped["revisions"][0]["effect"] = ["lb_slope", "lb_detectable_registered"]
    assert "is not the statistic of slope-r2" in "\n".join(ledger.problems([swapped]))


def test_a_revision_that_judges_the_claim_now_cannot_be_left_out():
    hidden = _entry("landscape_claims", "perm")
    hidden["revisions"] = []
    assert ledger.problems([hidden]) == [
        f"claim {hidden['claim']!r}: revision perm-r2 judges the claim now and must be shown"]


def test_unknown_or_misplaced_criteria_are_refused():
    e = _entry("lr_batch_law", "slope")
    e["criterion"] = "slope-r2"  # a revision cannot stand as the claim's criterion
    assert "is not a registered criterion" in ledger.problems([e])[0]
    e = _entry("lr_batch_law", "slope")
    e["revisions"].append({**e["revisions"][0], "criterion": "penalty-r2"})
    assert "'penalty-r2' is not a revision of slope" in "\n".join(ledger.problems([e]))
    e = _entry("lr_batch_law", "slope")
    e["effect_text"] = "slope {0}"  # the detectable slope would not be shown
    assert "effect_text must place every effect key" in ledger.problems([e])[0]


def test_the_chain_of_revisions_and_the_one_that_judges_now():
    mod = registry.chapters()["sgd_vs_gd"]
    assert ledger.chain(mod, "eps") == ["eps-r1", "eps-r2", "eps-r3"]
    assert ledger.latest(mod, "eps") == {"eps-r3"}
    assert ledger.latest(mod, "gap") == {"gap-r2"}
    assert ledger.chain(registry.chapters()["backward_error"], "gd") == []


def _page(made):
    return report.claims_page(CLAIMS, made).splitlines()


def test_revisions_are_marked_with_their_id_and_their_date_against_the_results():
    before_r2 = ledger.Made("2026-12-01T05:00:00+00:00", True)  # slope-r2: 06:12
    lines = _page({"lr_batch_law": before_r2})
    i = next(k for k, x in enumerate(lines) if x.startswith("| The learning rate with"))
    assert "**{glue:text}`notebooks/lr_batch_law.ipynb::lb_verdict_slope:s`**" in lines[i]
    assert lines[i + 1].startswith(
        "| ↳ revision `slope-r2` (revised after these results were made) | | |")
    assert "lb_slope_fitted" in lines[i + 1] and "lb_slope:s" not in lines[i + 1]
    assert "**" not in lines[i + 1]  # the claim's verdict is the registered one
    after = _page({"lr_batch_law": ledger.Made("2026-12-01T13:31:26+00:00", True)})
    assert "(revised before these results were made)" in after[i + 1]
    build = _page({"lr_batch_law": ledger.Made("2027-01-01T00:00:00", False)})
    assert "(revised before this build)" in build[i + 1]
    assert "is not recorded" in _page({})[i + 1]


def test_a_criterion_registered_after_its_results_says_so():
    e = _entry("where_they_end", "drift")
    mod = registry.chapters()["where_they_end"]
    fixed = registry.item_times("where_they_end")[mod.CRITERIA[0].claim]
    early = ledger.Made("2000-01-01", True)
    assert "(criterion `drift` registered after these results were made)" in \
        ledger.table_rows(e, early)[0]
    assert "registered after" not in ledger.table_rows(e, ledger.Made(fixed, True))[0]


def test_the_page_has_one_row_per_claim_and_per_revision_shown():
    rows = [x for x in _page({})
            if x.startswith("| ") and not x.startswith(("| claim", "| ---"))]
    shown = sum(1 + len(c.get("revisions") or []) for c in CLAIMS)
    assert len(rows) == shown
    for c in CLAIMS:
        for row in ledger.rows_of(c):
            for key in ledger.glue_keys(row):
                assert f"notebooks/{c['chapter']}.ipynb::{key}:s" in "\n".join(rows)


def _executed(site: Path, keys_by_chapter: dict, start="2027-01-01T00:00:00") -> None:
    """Executed notebooks as papermill and myst-nb leave them: the glued names in
    scrapbook outputs, the execution in the metadata."""
    (site / "notebooks").mkdir(parents=True)
    for chapter, keys in keys_by_chapter.items():
        outputs = [{"output_type": "display_data", "data": {"text/plain": "'x'"},
                    "metadata": {"scrapbook": {"name": k, "mime_prefix": ""}}} for k in keys]
        nb = {"cells": [{"cell_type": "code", "source": "", "outputs": outputs}],
              "metadata": {"papermill": {"parameters": {"profile": "ci"},
                                         "start_time": start, "end_time": start}}}
        (site / "notebooks" / f"{chapter}.ipynb").write_text(json.dumps(nb))


def _ledger_keys() -> dict:
    out: dict = {}
    for c in CLAIMS:
        for row in ledger.rows_of(c):
            out.setdefault(c["chapter"], set()).update(ledger.glue_keys(row))
    return out


def test_the_claims_check_passes_on_backed_chapters_and_names_a_missing_key(tmp_path):
    keys = _ledger_keys()
    _executed(tmp_path / "ok", keys)
    report.check_claims(ROOT, tmp_path / "ok")
    made = report.results_made(ROOT, tmp_path / "ok")
    assert made["lr_batch_law"] == ledger.Made("2027-01-01T00:00:00", False)
    keys["lr_batch_law"].discard("lb_slope_fitted")
    _executed(tmp_path / "short", keys)
    with pytest.raises(BookError, match="lb_slope_fitted"):
        report.check_claims(ROOT, tmp_path / "short")


def test_the_claims_check_refuses_a_ledger_off_its_policy(tmp_path, monkeypatch):
    bad = copy.deepcopy(CLAIMS)
    next(c for c in bad if c["criterion"] == "slope")["revisions"] = []
    monkeypatch.setattr(report, "load_claims", lambda root: bad)
    _executed(tmp_path, _ledger_keys())
    with pytest.raises(BookError, match="revision slope-r2 judges the claim now"):
        report.check_claims(ROOT, tmp_path)
