"""The papermill driver and the book build."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from implicitreg.book import driver, parameters, report

from conftest import copy_project

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "sgd_vs_gd.ipynb"


def test_notebook_parameters_are_read_from_the_tagged_cell():
    params = parameters.notebook_parameters(CHAPTER)
    assert params["profile"] == "ci"
    assert isinstance(params["reg_scale"], float) and isinstance(params["seeds"], list)
    assert isinstance(params["lr_grid"], list) and isinstance(params["n_grid"], list)


@pytest.mark.parametrize("given,match", [
    ({"learning_rate": 0.1}, "unknown parameter"),
    ({"batch_size": "fast"}, "has type str"),
    ({"steps": 1.5}, "has type float"),
    ({"seeds": [0.5]}, "seeds"),
    ({"augment": 1}, "augment"),
    # the list is a list: the element is what is wrong, and the message says so
    ({"lr_grid": ["abc"]}, r"lr_grid = \['abc'\] has an element 'abc' of type str; "
                           r"expected elements of type float"),
])
def test_bad_parameters_are_refused_before_execution(given, match, tmp_path):
    out = tmp_path / "out.ipynb"
    with pytest.raises(parameters.BookError, match=match):
        driver.execute_chapter(CHAPTER, out, given, cell_timeout=60)
    assert not out.exists()  # refused before anything ran


def test_int_is_accepted_for_a_float_parameter():
    parameters.check_parameters(CHAPTER, {"reg_scale": 1, "steps": 10, "seeds": [1, 2]})


def test_every_toc_chapter_has_the_required_profiles():
    chapters = parameters.toc_chapters(ROOT)
    assert "sgd_vs_gd" in chapters
    for name, path in chapters.items():
        prof = ROOT / "notebooks" / "profiles" / f"{name}.yaml"
        if not prof.exists():
            continue
        profiles = yaml.safe_load(prof.read_text())
        assert set(parameters.REQUIRED_PROFILES) <= set(profiles), name
        assert set(profiles) <= set(parameters.PROFILES), name
        for p in profiles:  # every profile value is a declared, well-typed parameter
            parameters.check_parameters(path, profiles[p] or {})


def test_params_file_overrides_split_per_chapter():
    chapters = parameters.toc_chapters(ROOT)
    per = parameters.split_overrides({"seeds": [7], "sgd_vs_gd": {"lr": 0.5}}, chapters)
    assert per["sgd_vs_gd"] == {"lr": 0.5, "seeds": [7]}
    with pytest.raises(parameters.BookError, match="not declared"):
        parameters.split_overrides({"no_such_parameter": 1}, chapters)


def test_a_params_file_that_names_a_profile_executes_exactly_that_profile():
    # Not the command line's profile with the file's names changed: a mixture of two.
    assert parameters.named_profile("ci", {"profile": "smoke", "seeds": [1]}) == (
        "smoke", {"seeds": [1]})
    assert parameters.named_profile("ci", {"seeds": [1]}) == ("ci", {"seeds": [1]})
    with pytest.raises(parameters.BookError, match="names profile 'tiny'"):
        parameters.named_profile("ci", {"profile": "tiny"})


@pytest.mark.slow
@pytest.mark.book
def test_smoke_profile_executes_and_the_book_builds(smoke_book):
    """The whole pipeline at the smoke profile, in a copy of the project: papermill runs
    every chapter, then Jupyter Book builds with -W (warnings are errors)."""
    root, html = smoke_book
    assert (html / "index.html").is_file() or (html / "intro.html").is_file()
    page = (html / "notebooks" / "sgd_vs_gd.html").read_text()
    assert "<img" in page and "Final test accuracy" in page
    assert "acc_sgd" not in page  # glue keys were replaced by values
    executed = json.loads((root / "_build" / "site" / "notebooks" / "sgd_vs_gd.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])
    # the source notebook is untouched: no outputs, no rerun box
    src = json.loads((root / "notebooks" / "sgd_vs_gd.ipynb").read_text())
    assert all(not c.get("outputs") for c in src["cells"] if c["cell_type"] == "code")
    assert "Rerun this chapter" not in json.dumps(src)


@pytest.mark.slow
@pytest.mark.book
def test_built_pages_rerun_box_launch_buttons_report_and_sitemap(smoke_book):
    root, html = smoke_book
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].removeprefix("https://github.com/")
    for name in parameters.toc_chapters(root):
        page = (html / "notebooks" / f"{name}.html").read_text()
        assert "Rerun this chapter" in page, name
        # launch buttons open the source notebook in the repository, not an executed copy
        assert f"colab.research.google.com/github/{repo}/blob/main/notebooks/{name}.ipynb" in page
        assert f"mybinder.org/v2/gh/{repo}/main?urlpath=lab/tree/notebooks/{name}.ipynb" in page
        assert "binder-examples" not in page and "x-thebe-config" not in page, name
        assert "nan%" not in page and "nan (n=" not in page, name
    report = (html / "execution.html").read_text()
    for name in parameters.toc_chapters(root):
        assert name in report
    assert "completed" in report and "smoke" in report and "loaded" in report
    intro = (html / "intro.html").read_text()
    assert "scale-table" not in intro and "smoke" in intro
    sitemap = (html / "sitemap.xml").read_text()
    assert config["html"]["baseurl"] + "notebooks/sgd_vs_gd.html" in sitemap


@pytest.mark.slow
def test_failing_notebook_names_notebook_and_cell(tmp_path, monkeypatch):
    root = copy_project(tmp_path / "project")
    monkeypatch.setenv("IMPLICITREG_RESULTS", str(tmp_path / "runs"))
    nb = json.loads(CHAPTER.read_text())
    nb["cells"].insert(3, {"cell_type": "code", "id": "deliberate-failure",
                           "metadata": {}, "outputs": [],
                           "execution_count": None,
                           "source": "raise RuntimeError('deliberate failure')"})
    (root / "notebooks" / "sgd_vs_gd.ipynb").write_text(json.dumps(nb))
    with pytest.raises(parameters.BookError, match=r"sgd_vs_gd.ipynb failed in cell .*deliberate"):
        driver.build_book(profile="smoke", root=root, only=["sgd_vs_gd"], build=False)


def test_the_driver_passes_its_exec_config_to_the_chapter_as_one_parameter(tmp_path,
                                                                          monkeypatch):
    """Settings given in code reach the chapter's runs through its ``exec_config``
    parameter, with no IMPLICITREG_* variable set: training switched off on an empty
    store stops the chapter before it trains."""
    from implicitreg.runs.execution import ENV, ExecConfig

    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)
    src = ROOT / "notebooks" / "headline.ipynb"
    ex = ExecConfig(store_root=str(tmp_path / "empty"), no_train=True)
    with pytest.raises(parameters.BookError, match="training is switched off"):
        driver.execute_chapter(src, tmp_path / "out.ipynb", {"profile": "smoke"}, 600, ex)
    injected = json.loads((tmp_path / "out.ipynb").read_text())["metadata"]["papermill"]
    assert injected["parameters"]["exec_config"]["no_train"] is True


def test_each_profile_file_and_parameters_cell_is_read_once_per_chapter(monkeypatch):
    """From the profile file to the chapter's Params: the driver reads each chapter's
    profile file once and parses its parameters cell once (the rerun box included), and
    the kernel, handed every value and a whole exec_config, reads neither again."""
    import collections

    from implicitreg.book import chapter, pages
    from implicitreg.chapters import protocol
    from implicitreg.runs.execution import ExecConfig, as_parameter

    reads, parses = collections.Counter(), collections.Counter()
    read_text = Path.read_text
    parse = parameters.parse_parameter_cell

    def counting_read(self, *a, **k):
        if self.suffix in (".yaml", ".ipynb") and self.parent.name in ("profiles", "notebooks"):
            reads[self.name] += 1
        return read_text(self, *a, **k)

    def counting_parse(src):
        parses["cell"] += 1
        return parse(src)

    kernel = {}

    def execute(source, out, values, timeout, ex):  # the driver's hand-over, then the kernel
        pages.rerun_box(source.notebook, source)
        given = chapter.chapter_parameters({**values, "exec_config": as_parameter(ex)},
                                           source.label)
        kernel[source.name] = protocol.load(source.name).Params.from_values(given)

    monkeypatch.setattr(Path, "read_text", counting_read)
    monkeypatch.setattr(parameters, "parse_parameter_cell", counting_parse)
    monkeypatch.setattr(driver, "execute_values", execute)
    monkeypatch.setattr(driver, "_trained", lambda nb: None)
    only = ["headline", "sgd_vs_gd"]
    driver.build_book("smoke", root=ROOT, only=only, build=False,
                      exec_config=ExecConfig(no_train=True))
    assert {n: reads[f"{n}.yaml"] for n in only} == {n: 1 for n in only}
    assert {n: reads[f"{n}.ipynb"] for n in only} == {n: 1 for n in only}
    assert sum(parses.values()) == len(only)
    from implicitreg.chapters import headline as H

    assert kernel["headline"] == H.Params.profile("smoke")


def test_the_chapter_kernel_starts_with_the_allocator_settings_unless_given(tmp_path,
                                                                             monkeypatch):
    """The kernel (and the worker processes it spawns) inherit the malloc settings that
    keep freed memory; a value the caller set wins, and the caller's environment is as
    it was afterwards."""
    import os

    import papermill as pm

    seen = {}
    monkeypatch.setattr(pm, "execute_notebook",
                        lambda *a, **k: seen.update({n: os.environ.get(n)
                                                     for n in driver.ALLOCATOR}))
    monkeypatch.setattr(driver, "hide_parameter_cells", lambda out: None)
    monkeypatch.setattr(driver, "insert_rerun_box", lambda out, box: None)
    monkeypatch.setenv("MALLOC_TOP_PAD_", "123")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    src = ROOT / "notebooks" / "headline.ipynb"
    driver.execute_chapter(src, tmp_path / "out.ipynb", {"profile": "smoke"}, 600)
    assert seen["MALLOC_TOP_PAD_"] == "123"
    assert seen["MALLOC_TRIM_THRESHOLD_"] == driver.ALLOCATOR["MALLOC_TRIM_THRESHOLD_"]
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


def test_cli_run_prints_a_json_summary(tmp_path):
    out = subprocess.run([sys.executable, "-m", "implicitreg.cli", "run", "--dataset",
                          "synthetic", "--n-train", "64", "--n-test", "32", "--widths", "8",
                          "--batch-size", "16", "--epochs", "1", "--store", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 4 and summary["data_source"] == "synthetic"


def test_cli_rejects_bad_values_with_one_message(tmp_path):
    out = subprocess.run([sys.executable, "-m", "implicitreg.cli", "run", "--lr", "-1",
                          "--store", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "RunConfig.lr = -1.0" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "implicitreg.cli", "run", "--epochs", "two"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--epochs" in out.stderr


@pytest.mark.slow
@pytest.mark.book
def test_no_built_page_shows_nan(smoke_book):
    """A missing value reads "–" on every page (tables, glued text, the ledger)."""
    import re

    _, html = smoke_book
    found = []
    for page in html.rglob("*.html"):
        if "_static" in page.parts:
            continue
        text = re.sub(r"<(script|style)\b.*?</\1>", "", page.read_text(), flags=re.S)
        text = re.sub(r"<[^>]+>", " ", text)
        found += [f"{page.relative_to(html)}: ...{m.group(0)}..."
                  for m in re.finditer(r".{0,40}\b(?:nan|NaN|NAN)\b.{0,20}", text)]
    assert not found, "\n".join(found[:20])


@pytest.mark.slow
@pytest.mark.book
def test_each_chapter_opens_with_its_verdicts_and_has_its_data_beside_it(smoke_book):
    """The verdict box under each claim, fed by the claims ledger; the criteria collapsed
    as definition blocks; every figure's CSV and the run table beside the page."""
    root, html = smoke_book
    claims = report.load_claims(ROOT)
    site = root / "_build" / "site" / "notebooks"
    for name in {c["chapter"] for c in claims}:
        page = (html / "notebooks" / f"{name}.html").read_text()
        figure = 'src="../_images/'
        assert page.count('class="verdicts admonition"') == 1, name
        assert page.index("verdicts admonition") < page.index(figure), name
        for c in (c for c in claims if c["chapter"] == name):
            assert f"<strong>{c['criterion']}</strong>" in page, (name, c["criterion"])
        assert "Registered criteria (statistic, threshold, premises, power, dates)" in page
        assert "<th>statistic</th>" not in page, f"{name}: the criteria table came back"
        figures = sorted((site / f"{name}-data").glob(f"{name}-figure-*.csv"))
        assert len(figures) == page.count(figure) and figures, name
        assert all("panel" in f.read_text().splitlines()[0] for f in figures), name
        assert (site / f"{name}-data" / f"{name}-runs.csv").is_file(), name
    execution = (html / "execution.html").read_text()
    assert execution.count("-runs.csv") >= len({c["chapter"] for c in claims})


@pytest.mark.slow
@pytest.mark.book
def test_claims_ledger_is_backed_by_the_chapters(smoke_book):
    root, html = smoke_book
    claims = report.load_claims(ROOT)
    assert len(claims) >= 5
    page = (html / "claims.html").read_text()
    for c in claims:
        assert c["chapter"] in page
    assert page.count("<tr") >= len(claims) + 1
    assert "::" not in page  # every glue reference was resolved


@pytest.mark.slow
@pytest.mark.book
def test_a_claim_without_backing_fails(smoke_book, tmp_path, monkeypatch):
    from implicitreg.chapters import sgd_vs_gd

    root, _ = smoke_book
    # a row that follows the ledger's policy but pastes a key the chapter never glued
    monkeypatch.setitem(sgd_vs_gd.STATISTIC_GLUE, "n-r1", ("no_such_key",))
    claims = report.load_claims(ROOT)
    entry = next(c for c in claims if c["chapter"] == "sgd_vs_gd" and c["criterion"] == "n")
    entry["revisions"][0]["effect"] = ["no_such_key"]
    fake = tmp_path / "root"
    (fake / "book").mkdir(parents=True)
    (fake / "notebooks").mkdir()
    shutil.copy(ROOT / "book" / "_toc.yml", fake / "book" / "_toc.yml")
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(nb, fake / "notebooks" / nb.name)
    (fake / "book" / "claims.yaml").write_text(yaml.safe_dump(claims, allow_unicode=True))
    with pytest.raises(parameters.BookError, match="no_such_key"):
        report.check_claims(fake, root / "_build" / "site")
