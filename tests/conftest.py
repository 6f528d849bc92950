import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("IMPLICITREG_PROGRESS", "0")


@pytest.fixture
def store(tmp_path):
    from implicitreg import RunStore

    return RunStore(tmp_path / "runs")


@pytest.fixture
def tiny():
    """A tiny synthetic config that trains in well under a second."""
    from implicitreg import RunConfig

    return RunConfig(dataset="synthetic", n_train=256, n_test=128, synthetic_dim=16,
                     widths=(32,), batch_size=32, epochs=2, lr=0.1, progress=False)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (for tiny problems, where a second thread only
    adds contention); a module takes it for all its tests with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def f64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def copy_project(dst: Path) -> Path:
    """A copy of the book sources and package, so that builds in tests never touch the
    working tree's _build or results."""
    import shutil

    dst.mkdir(parents=True)
    for item in ["_config.yml", "book", "notebooks", "src"]:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dst / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst / item)
    return dst


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """The whole book built once at the smoke profile: (project root, html folder)."""
    from implicitreg.book import driver as book

    base = tmp_path_factory.mktemp("smoke-book")
    root = copy_project(base / "project")
    old = os.environ.get("IMPLICITREG_RESULTS")
    os.environ["IMPLICITREG_RESULTS"] = str(base / "runs")
    try:
        html = book.build_book(profile="smoke", root=root)
    finally:
        if old is None:
            os.environ.pop("IMPLICITREG_RESULTS", None)
        else:
            os.environ["IMPLICITREG_RESULTS"] = old
    return root, html


def ledger_glue_problems(mod, analysis) -> list[str]:
    """What keeps a chapter's analysis from backing the claims ledger ([] when nothing):
    a key of a criterion's statistic or verdict (the module's STATISTIC_GLUE and
    VERDICT_GLUE) missing from its glue, or a verdict key that holds another criterion's
    verdict."""
    glue, out = analysis.glue, []
    for cid, keys in mod.STATISTIC_GLUE.items():
        out += [f"{cid}: statistic key {k} not glued" for k in keys if k not in glue]
    for cid, key in mod.VERDICT_GLUE.items():
        if key not in glue:
            out.append(f"{cid}: verdict key {key} not glued")
            continue
        v = analysis.verdicts.get(cid)
        word = getattr(v, "verdict", v)
        if v is not None and not str(glue[key]).startswith(word):
            out.append(f"{cid}: {key} = {glue[key]!r}, its verdict is {word!r}")
    return out


def assert_pilot_on_own_units(design, pilot_seeds) -> None:
    """A staged design's first stage, where every seed is a unit of its own: every run is
    the pilot's, on ``pilot_seeds``, each seed on a training subset of its own
    (``data_seed`` = the seed)."""
    assert {r.stage for r, _ in design} == {"pilot"}
    assert {r.seed for r, _ in design} == set(pilot_seeds)
    assert all(c.data_seed == r.seed for r, c in design)


def fake_run_labeled(monkeypatch, results, check=None) -> list:
    """Stands in for ``implicitreg.runs.sweeps.run_labeled``: each design it is handed
    (recorded in the list returned) is answered from ``results`` (label → result), the
    labels it lacks left out; ``check(design, options)`` sees every call."""
    calls = []

    def run_labeled(design, **options):
        calls.append(design)
        if check is not None:
            check(design, options)
        return [(r, results[r]) for r, _ in design if r in results]

    monkeypatch.setattr("implicitreg.runs.sweeps.run_labeled", run_labeled)
    return calls

