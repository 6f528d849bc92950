"""Every chapter module speaks the chapter protocol (implicitreg.chapters.protocol), and
what drives chapters (notebooks, result sets, the GPU edition) goes through it."""
import json
import types
from pathlib import Path

import pytest

from implicitreg.chapters import protocol, registry

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = registry.chapters()


def test_the_chapters_are_the_notebooks():
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert set(CHAPTERS) == notebooks


@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_chapter_module_speaks_the_protocol(name):
    mod = CHAPTERS[name]
    assert protocol.problems(mod) == []
    assert isinstance(mod, protocol.Chapter)
    assert protocol.load(name) is mod and mod.CHAPTER == name


@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_scale_description_reads_every_profile(name):
    mod = CHAPTERS[name]
    from implicitreg.chapters.base import profiles

    for prof in profiles(name):
        text = mod.scale_description(mod.Params.profile(prof))
        assert isinstance(text, str) and text


def test_a_module_that_falls_short_is_named_with_what_it_lacks():
    mod = types.ModuleType("implicitreg.chapters.half")
    mod.CHAPTER = "half"
    mod.run = lambda params: None  # takes no options
    mod.analyze = lambda runs, params: None
    bad = protocol.problems(mod)
    assert any("Params" in b for b in bad)
    assert any("neither design" in b for b in bad)
    assert any("run() does not take" in b for b in bad)
    for fn in ("summary", "scale_description", "figures"):
        assert any(f"no {fn}()" in b for b in bad), fn
    with pytest.raises(protocol.ProtocolError, match="half"):
        protocol.check(mod)


def test_notebooks_run_their_chapter_through_its_module():
    """A notebook calls its module's ``run``; none assembles runs of its own."""
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
                         if c["cell_type"] == "code")
        assert "run_labeled(" not in code and "run_many(" not in code, nb.name
        assert ".run(P, exec_config=EX)" in code, nb.name


def test_the_gpu_edition_trains_what_the_modules_run_returns(monkeypatch):
    from implicitreg.book import gpu_edition

    seen = {}

    def run(params, **options):
        seen.update(options)
        return protocol.RunSet({"a": 1, "b": 2})

    monkeypatch.setattr(CHAPTERS["edge_of_stability"], "run", run)
    got = gpu_edition.run_chapter("edge_of_stability", None, exec_config="settings")
    assert got == [("a", 1), ("b", 2)] and seen == {"exec_config": "settings"}


def test_the_reproducibility_check_runs_under_the_protocol(tmp_path):
    from implicitreg.chapters import reproducibility as R
    from implicitreg.runs.execution import ExecConfig

    p = R.Params.profile("smoke")
    runs = R.run(p, exec_config=ExecConfig(progress=False), store=tmp_path, progress=False)
    assert [label for label, _ in runs.all()] == ["first", "second", "resumed"]
    a = R.analyze(runs, p)
    assert set(R.summary(a, p)) == {"determinism", "resume"}
    assert R.figures(a, runs, p) == {}


def test_find_is_the_chapter_module_or_none():
    """The book's look-up of a notebook's chapter module: the module where there is one
    (unchecked), None for a notebook without one."""
    assert protocol.find("headline") is protocol.load("headline")
    assert protocol.find("no_such_chapter") is None


def test_verdict_glue_follows_the_modules_glue_maps():
    """Each verdict word under its VERDICT_GLUE key and its numbers under each of its
    STATISTIC_GLUE keys, in the order of VERDICT_GLUE."""
    from implicitreg.chapters.criteria import Verdict

    verdicts = {"b": Verdict("b", "not reproduced", "B's numbers"),
                "a": Verdict("a", "reproduced", "A's numbers")}
    g = protocol.verdict_glue(verdicts, {"a": "v_a", "b": "v_b"}, {"a": ("n_a",)})
    assert list(g.items()) == [("v_a", "reproduced"), ("n_a", "A's numbers"),
                               ("v_b", "not reproduced")]
