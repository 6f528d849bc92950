"""Chapters outside the book driver: plain papermill from any folder, the parameter help
papermill prints, the rerun box the driver adds, and diverged runs reported in words."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from implicitreg.analysis.stats import Estimate, mean_ci_runs
from implicitreg.book import pages, parameters, report

ROOT = Path(__file__).resolve().parents[1]
# The chapters whose parameter cells are typed and commented (new chapters should be too).
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# The cheapest chapter at the smoke profile: three runs of eight steps.
CHAPTER = ROOT / "notebooks" / "sgd_vs_gd.ipynb"


def _papermill(tmp_path, monkeypatch, parameters):
    import papermill as pm

    monkeypatch.setenv("IMPLICITREG_RESULTS", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # neither the project nor its notebooks/ folder
    out = elsewhere / "out.ipynb"
    pm.execute_notebook(str(CHAPTER), str(out), parameters=parameters, kernel_name="python3",
                        cwd=str(elsewhere), progress_bar=False)
    return out


@pytest.mark.slow
def test_a_chapter_runs_under_plain_papermill_from_another_folder(tmp_path, monkeypatch):
    out = _papermill(tmp_path, monkeypatch, {"profile": "smoke", "seeds": [0]})
    values = report.glued_values(out)
    # the smoke profile's values were filled in (n_grid [32, 64]), the given seeds kept
    assert values["n_max"] == "64" and values["n_seeds"] == "1"
    assert values["exec_profile"] == "smoke" and int(values["exec_runs"]) > 3
    assert values["sgd_verdict"] and "nan" not in " ".join(values.values())
    meta = json.loads(out.read_text())["metadata"]["papermill"]
    assert meta["exception"] is None


@pytest.mark.parametrize("given", [{"lr": "fast"}, {"steps": 1.5}, {"learning_rate": 0.1}])
def test_plain_papermill_refuses_bad_values_with_the_driver_message(given, tmp_path,
                                                                    monkeypatch):
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(parameters.BookError) as expected:
        parameters.check_parameters(CHAPTER, given)
    with pytest.raises(PapermillExecutionError) as got:
        _papermill(tmp_path, monkeypatch, {"profile": "smoke", **given})
    assert got.value.ename == "BookError"
    assert str(expected.value) in got.value.evalue
    assert not (tmp_path / "runs").exists()  # refused before anything trained


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_help_notebook_lists_every_parameter_with_a_type_and_a_comment(notebook):
    out = subprocess.run([str(Path(sys.executable).parent / "papermill"), "--help-notebook",
                          str(notebook)], capture_output=True, text=True, check=True).stdout
    declared = parameters.notebook_parameters(notebook)
    comments = parameters.parameter_comments(parameters.parameter_cell_source(notebook))
    assert set(comments) == set(declared), f"parameters without a comment: " \
        f"{sorted(set(declared) - set(comments))}"
    text = " ".join(out.split())
    for name in declared:
        assert f"{name}: " in out and "(default " in out, name
        # papermill prints the type and the comment (wrapped) next to each name
        assert " ".join(comments[name].split()[:3]) in text, name


def test_rerun_box_names_every_profile_and_a_params_file():
    box = pages.rerun_box(CHAPTER)
    profiles = yaml.safe_load((ROOT / "notebooks" / "profiles" / "sgd_vs_gd.yaml").read_text())
    for prof in profiles:
        assert f"make execute ONLY=sgd_vs_gd PROFILE={prof}" in box
        assert f"make book PROFILE={prof}" in box
        assert f"papermill notebooks/sgd_vs_gd.ipynb sgd_vs_gd-{prof}.ipynb -p profile {prof}" in box
    assert "sgd_vs_gd:\n  lr_grid: [0.1]" in box and "results/runs/" in box


def test_the_repository_url_is_one_value():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["repository-code"] == url
    for nb in NOTEBOOKS:  # the install fallback of the setup cells
        text = nb.read_text()
        if "git+https://" in text:
            assert f"git+{url}" in text, nb.name


def test_diverged_estimates_read_in_words():
    assert mean_ci_runs([0.5, 0.6], [True, True]).fmt(100, 1, "%") == "diverged in 2 of 2 seeds"
    assert "diverged in 1 of 3 seeds" in mean_ci_runs([0.5, 0.6, float("nan")]).fmt(100, 1, "%")
    assert Estimate(0.5, 0.4, 0.6, 3).fmt(100, 1, "%") == "50.0% [40.0, 60.0]"
    assert "nan" not in Estimate(float("nan"), float("nan"), float("nan"), 0).fmt()
