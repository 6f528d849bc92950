"""What a chapter page is made of when the site is assembled: the verdicts under the claim
(fed by the claims ledger), the registered criteria as short definition blocks, the data
behind each figure beside the page, missing values as "–", bounded bands drawn within
their bounds, and a build log without the kernel's transport warning."""
import copy
import io
import json
import os
import re
import threading
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from implicitreg.book import chapter, driver, figdata, pages, report, verdicts  # noqa: E402
from implicitreg.chapters import criteria, registry  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = report.load_claims(ROOT)
GLUED = {"hl_gap": "-2.00 points [-2.00, -2.00] over 2 of 2 seeds",
         "hl_detectable": "4.48 points",
         "hl_verdict_gap": "not reproduced (the other arm is ahead)",
         "hl_verdict_penalty": "not assessable: there is no established gap to close "
                               "(gap: not reproduced (the other arm is ahead))",
         "hl_verdict_penalty_paired": "not assessable: there is no established gap",
         "hl_verdict_penalty_r1": "reproduced: fraction 0.8 [0.6, 0.9]",
         "hl_verdict_penalty_r2": "partly reproduced; none of the 8 penalized runs diverged"}
PARAMS = {"profile": "smoke", "dataset": "cifar10", "n_grid": [32, 64], "seeds": [0, 1],
          "pilot_seeds": [100]}
CLAIM_CELL = ("# Title\n\n:::{admonition} Rerun this chapter\n:class: note dropdown\nx\n:::\n"
              "\n:::{admonition} The claim tested here\n:class: tip\nSGD wins.\n:::\n\n"
              "Intro text.")


def _box() -> str:
    entries = verdicts.entries_of(CLAIMS, "headline")
    return verdicts.verdict_box(entries, GLUED, PARAMS, {"gap": "(link)", "penalty": "(link)"})


# ------------------------------------------------------------------ the verdict box
def test_the_box_has_one_line_per_claim_of_the_ledger_with_its_latest_revision_beside_it():
    box = _box()
    entries = verdicts.entries_of(CLAIMS, "headline")
    lines = [line for line in box.splitlines() if line.startswith("- ")]
    # the gap, the penalty's gain and closure, the full-batch penalty's gain and closure
    assert len(lines) == len(entries) == 5
    gap = next(line for line in lines if line.startswith("- **gap**"))
    penalty = next(line for line in lines if line.startswith("- **penalty**"))
    assert gap.startswith("- **gap** {bdg-danger}`not reproduced (the other arm is ahead)`")
    # the statistic comes from the chapter's glue, as in the ledger, never typed here
    assert "{glue:text}`hl_gap`" in gap and "{glue:text}`hl_detectable`" in gap
    assert "{bdg-muted}`not assessable`" in penalty
    # the latest revision beside the registered verdict; the earlier ones are counted
    entry = next(e for e in entries if e["criterion"] == "penalty")
    latest = entry["revisions"][-1]["criterion"]
    assert f"revision `{latest}` " in penalty and "`penalty-paired`" not in penalty
    assert "(2 earlier revisions in the details)" in penalty
    assert "there is no established gap" not in box  # the reason is in the details
    # the registered criterion could not judge: the revision's numbers decide, and show
    latest_row = entry["revisions"][-1]
    assert all("{glue:text}`" + k + "`" in penalty for k in latest_row["effect"])
    # where the registered criterion judged, or the revision could not, the revision is
    # a badge alone
    for glued in ({**GLUED, "hl_verdict_penalty": "reproduced"},
                  {**GLUED, "hl_verdict_penalty_r2": "not assessable: not in this design"}):
        line = verdicts.claim_line(entry, glued, "")
        assert not any("{glue:text}`" + k + "`" in line for k in latest_row["effect"]
                       if k not in entry["effect"])
    title = next(line for line in box.splitlines() if line.startswith(":::{admonition}"))
    assert title == (":::{admonition} Verdicts at profile smoke: cifar10, n = 32, 64, "
                     "2 seeds, 1 pilot seed")


def test_every_chapter_of_the_ledger_gets_a_box_and_a_chapter_without_claims_none():
    for name in {c["chapter"] for c in CLAIMS}:
        entries = verdicts.entries_of(CLAIMS, name)
        box = verdicts.verdict_box(entries, {}, {"profile": "ci"}, {})
        assert box.count("\n- **") == len(entries), name
    assert verdicts.verdict_box([], {}, {"profile": "ci"}, {}) == ""


def test_the_box_goes_under_the_claim_not_the_rerun_box_and_only_once():
    once = verdicts.insert_box(CLAIM_CELL, _box())
    twice = verdicts.insert_box(once, _box())
    assert once == twice and once.count(verdicts.BOX_BEGIN) == 1
    assert once.index("SGD wins.") < once.index(verdicts.BOX_BEGIN) < once.index("Intro text.")


def test_each_claim_links_to_the_cell_that_works_its_verdict_out():
    nb = {"cells": [{"cell_type": "markdown", "source": CLAIM_CELL},
                    {"cell_type": "markdown", "source": "## Method\n\nNo verdict here."},
                    {"cell_type": "markdown",
                     "source": "## What the runs show\n\nGap: **{glue:text}`hl_verdict_gap_word`**."}]}
    entries = verdicts.entries_of(CLAIMS, "headline")
    links = pages.detail_links(nb, "headline", verdicts.verdict_keys(entries))
    assert links["gap"] == "{ref}`details <headline-verdicts-2>`"
    assert nb["cells"][2]["source"].startswith("(headline-verdicts-2)=\n## What the runs show")
    assert "claims" in links["penalty"]  # no cell pastes it: the ledger has it


def test_a_failed_premise_is_said_once_and_verdicts_read_as_their_phrase():
    premise = ("every SGD run fits (90% training accuracy at each of the last 3 "
               "evaluations) (SGD: 1 of 2 runs fit, lowest 87.5%)")
    texts = [f"not assessable: {premise}", f"not assessable: n = 160: {premise}",
             "inconclusive at this scale (detectable 4.48 points, above 1.5)",
             f"not assessable: there is no established gap to close (gap: not assessable: "
             f"{premise})"]
    assert verdicts.failed_premises(texts) == [premise, "there is no established gap to close"]
    assert [verdicts.verdict_word(t) for t in texts] == [
        "not assessable", "not assessable",
        "inconclusive at this scale (detectable 4.48 points, above 1.5)", "not assessable"]
    per_case = "n = 32: no detectable difference; n = 64: reproduced"
    assert verdicts.verdict_word(per_case) == per_case
    # a statistic that quotes the verdict it rests on loses the quote, kept once above
    assert verdicts.brief(f"not computed: no gap to close (gap: not assessable: {premise})") \
        == "not computed: no gap to close"


# ------------------------------------------------------------------ registered criteria
@pytest.mark.parametrize("name", sorted(registry.chapters()))
def test_the_criteria_read_as_definition_blocks_with_revisions_under_their_original(name):
    mod = registry.chapters()[name]
    text = criteria.criteria_markdown(mod.CRITERIA, mod.REVISIONS,
                                      registry.item_times(name))
    assert not re.search(r"^\|", text, re.M), "no Markdown table"
    for c in mod.CRITERIA:
        assert f"**`{c.claim}`** " in text
    for r in mod.REVISIONS:
        at = text.index(f"> **`{r.revised.claim}`**, revision of `{r.original}`")
        assert text.index(f"**`{mod.CRITERIA[0].claim}`**") < at
    for field in ("*statistic*", "*threshold*", "*dates*"):
        assert text.count(f"- {field}:") >= len(mod.CRITERIA)
    assert all(len(line) < 2000 for line in text.splitlines())


# ------------------------------------------------------------------ data behind figures
def _figure():
    import matplotlib.pyplot as plt
    import seaborn as sns

    from implicitreg.analysis.plots import band_plot

    runs = pd.DataFrame([{"step": s, "value": [0.05, 0.95][seed] + 0.001 * s, "arm": arm,
                          "seed": seed, "diverged": False}
                         for arm in ("SGD", "GD") for seed in (0, 1) for s in (0, 10, 20)])
    runs.attrs["metric"] = "accuracy"
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    band_plot(runs, "step", "value", "arm", ax=axes[0])
    axes[0].set(title="test accuracy", xlabel="step")
    axes[0].axhline(0.5, color="k")
    sns.stripplot(data=runs, x="arm", y="value", ax=axes[1], color="0.3")
    axes[1].errorbar([0, 1], [0.5, 0.6], yerr=[[0.1, 0.1], [0.2, 0.2]], fmt="o")
    grid = np.linspace(-1, 1, 3)
    figdata._keep_contour_grid()
    axes[2].contourf(grid, grid, np.outer(grid, grid), levels=4)
    return fig


def test_the_table_behind_a_figure_has_its_lines_bands_points_intervals_and_surface():
    table = figdata.figure_table(_figure())
    kinds = set(table.kind)
    assert {"line", "band", "point", "mean and interval", "surface",
            "horizontal line"} <= kinds
    band = table[table.kind == "band"]
    assert set(band.series) == {"SGD (n=2)", "GD (n=2)"}  # named from the legend
    # two seeds at 5% and 95%: a t band would run from about -5 to 6; it is cut at 0 and 1
    assert band.low.min() == 0 and band.high.max() == 1
    points = table[(table.kind == "point") & (table.panel == "panel 2")]
    assert set(points.x) == {"SGD", "GD"}  # a strip plot's jittered x reads as its arm
    assert len(table[table.kind == "surface"]) == 9
    assert "nan" not in figdata.to_csv(table).lower()


def _executed(tmp_path: Path) -> tuple[dict, Path]:
    nb = {"cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [
            {"output_type": "display_data", "metadata": {},
             "data": {"image/png": "iVBOR", "text/csv": "panel,x,y\np,1,2\n",
                      "text/plain": "<Figure>"}},
            {"output_type": "display_data", "metadata": {},
             "data": {"text/html": "<table></table>"}}], "source": ""},
        {"cell_type": "code", "metadata": {}, "source": "", "outputs": [
            {"output_type": "display_data",
             "metadata": {"scrapbook": {"name": chapter.RUN_TABLE_GLUE,
                                        "mime_prefix": "application/papermill.record/"}},
             "data": {pages.RUN_TABLE_MIME: "run,label\nabc,SGD\n"}}]}]}
    page = tmp_path / "notebooks" / "demo.ipynb"
    page.parent.mkdir(parents=True)
    return nb, page


def test_each_figure_table_is_written_beside_the_page_and_linked_under_the_figure(tmp_path):
    nb, page = _executed(tmp_path)
    assert pages.write_figure_data(nb, page) == 1
    csv = page.parent / "demo-data" / "demo-figure-1.csv"
    assert csv.read_text() == "panel,x,y\np,1,2\n"
    outputs = nb["cells"][0]["outputs"]
    assert "text/csv" not in outputs[0]["data"]
    assert outputs[1]["data"]["text/markdown"] == (
        "[Data behind this figure (CSV, demo-figure-1.csv)](demo-data/demo-figure-1.csv)")
    assert nb["cells"][0]["metadata"]["mystnb"]["markdown_format"] == "myst"
    assert pages.write_figure_data(nb, page) == 0 and len(outputs) == 3  # done once
    assert pages.write_run_table(nb, page).read_text() == "run,label\nabc,SGD\n"


def test_the_execution_report_links_each_chapters_run_table(tmp_path):
    site = tmp_path / "site"
    (site / "notebooks" / "demo-data").mkdir(parents=True)
    assert report._run_table_link(site, "demo") == ""
    (site / "notebooks" / "demo-data" / "demo-runs.csv").write_text("run\n")
    assert report._run_table_link(site, "demo") == (
        "; [table of the runs (CSV)](notebooks/demo-data/demo-runs.csv)")


# ------------------------------------------------------------------ missing values
def test_missing_values_read_as_a_dash_in_text_and_tables():
    assert chapter.missing_as_dash("p = nan, Holm-adjusted nan; nan%; banana") == (
        "p = –, Holm-adjusted –; –; banana")
    frame = pd.DataFrame({"p": [0.5, np.nan], "value": ["x", "None"]})
    html = chapter._html_without_nan(frame._repr_html_())
    # a parameter whose value is None says so: only what pandas writes for missing goes
    assert "NaN" not in html and html.count("<td>–</td>") == 1 and "<td>None</td>" in html


# ------------------------------------------------------------------ the build's log
def test_the_kernels_transport_warning_is_dropped_and_the_rest_of_its_stderr_kept():
    read, write = os.pipe()
    sink = io.StringIO()
    thread = threading.Thread(target=driver.forward_stderr, args=(read, sink))
    thread.start()
    with os.fdopen(write, "w") as pipe:
        pipe.write("[IPKernelApp] WARNING | Kernel is running over TCP without encryption. "
                   "All communication is sent in plain text.\n")
        pipe.write("a real problem\n")
    thread.join(5)
    assert sink.getvalue() == "a real problem\n"


def test_the_kernel_gets_an_absolute_pythonpath(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", "src")
    assert driver._kernel_path() == {"PYTHONPATH": str(tmp_path / "src")}
    monkeypatch.delenv("PYTHONPATH")
    assert driver._kernel_path() == {}


def test_the_verdict_box_entries_follow_the_ledger_policy():
    # the box is fed by the same entries the ledger checks; a changed entry changes both
    entry = copy.deepcopy(verdicts.entries_of(CLAIMS, "headline")[0])
    entry["effect_text"] = "gap {0}, power {1}"
    line = verdicts.claim_line(entry, GLUED, "(link)")
    assert "gap {glue:text}`hl_gap`, power {glue:text}`hl_detectable`" in line
    assert json.dumps(verdicts.verdict_keys([entry])) == json.dumps(
        {"gap": ["hl_verdict_gap", "hl_verdict_gap_word"]})


def test_interval_bars_of_an_accuracy_are_cut_at_its_range():
    import matplotlib.pyplot as plt

    from implicitreg.analysis.plots import ci_errorbars
    from implicitreg.analysis.stats import mean_ci

    # two seeds at 1% and 99%: a t interval over them runs far past 0 and 100
    e = mean_ci(np.array([1.0, 99.0]))
    assert e.low < 0 and e.high > 100
    fig, ax = plt.subplots()
    ci_errorbars(ax, {"arm": e}, bounds=(0.0, 100.0))
    t = figdata.figure_table(fig)
    bar = t[t.kind == "mean and interval"]
    assert bar.low.min() == 0 and bar.high.max() == 100
    plt.close(fig)


def test_the_scale_line_leaves_out_a_stage_the_profile_does_not_run():
    line = verdicts.scale_line({"profile": "ci", "n_train": 1000, "gd_seeds": [],
                                "pilot_seeds": [], "seed": 0, "sgd_seeds": [0, 1, 2]})
    assert line == "profile ci: n = 1000, 1 seed, 3 sgd seeds"
