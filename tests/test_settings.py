"""Settings enter once: the environment is read by the entry points alone and handed down
as values (``ExecConfig``; the engine's data and kernel settings through
``ExecConfig.apply``)."""
import json
import re
from pathlib import Path

import pytest

import implicitreg as ir
from implicitreg.engine import data as D
from implicitreg.engine import native
from implicitreg.runs import execution
from implicitreg.runs.execution import BUILD_ENV, ENV, ExecConfig

ROOT = Path(__file__).resolve().parents[1]
READS = re.compile(r"os\.environ|os\.getenv|\bgetenv\(|from_env\(")

# Where the environment may be read: path → snippets of the lines allowed there ("*": the
# whole file). Everything else takes its settings as values; a chapter's kernel included,
# which gets a whole ExecConfig from the driver (test below).
ALLOWED = {
    # The one module that names every IMPLICITREG_* variable and reads them.
    "src/implicitreg/runs/execution.py": ("*",),
    # Entry points: the command line and the book driver's build_book.
    "src/implicitreg/cli.py": ("return ExecConfig.from_env(",),
    "src/implicitreg/book/driver.py": ("base_ex = exec_config or ExecConfig.from_env()",
                                       # the kernel's PYTHONPATH made absolute (it runs in
                                       # the notebook's folder): Python's setting, passed on
                                       'os.environ.get("PYTHONPATH", "")'),
    # Device selection: deterministic cuBLAS reads this variable, so it is set, not read.
    "src/implicitreg/engine/device.py": ('os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG"',),
    # The C++ compiler of the native kernel, named by CXX as in every C++ build.
    "src/implicitreg/engine/native.py": ('os.environ.get("CXX")',),
    # The golden runs force PyTorch's instruction-set variables on child processes and
    # report the ones in force; they are PyTorch's settings, not the project's.
    "src/implicitreg/golden.py": ("forced = {k: os.environ[k]",
                                  '"MKL_ENABLE_INSTRUCTIONS") if k in os.environ',
                                  "env = {**os.environ"),
}


def _sources() -> dict[str, list[str]]:
    """Relative path → lines of every package module and of every notebook's code."""
    out = {str(p.relative_to(ROOT)): p.read_text().splitlines()
           for p in sorted((ROOT / "src" / "implicitreg").rglob("*.py"))}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        out[str(nb.relative_to(ROOT))] = [line for c in cells if c["cell_type"] == "code"
                                         for line in "".join(c["source"]).splitlines()]
    return out


def test_the_environment_is_read_in_the_entry_points_only():
    found = []
    for path, lines in _sources().items():
        allowed = ALLOWED.get(path, ())
        for n, line in enumerate(lines, 1):
            if READS.search(line) and "*" not in allowed and not any(a in line for a in allowed):
                found.append(f"{path}:{n}: {line.strip()}")
    assert not found, ("the environment is read outside the entry points; take the setting "
                       "as a value (an ExecConfig field, or an argument the entry point "
                       "passes):\n" + "\n".join(found))


def test_every_allowed_read_is_still_there():
    sources = _sources()
    stale = [f"{path}: {a!r}" for path, allowed in ALLOWED.items() for a in allowed
             if a != "*" and not any(a in line and READS.search(line)
                                     for line in sources.get(path, []))]
    assert not stale, "allow-list entries that match nothing (remove them):\n" + "\n".join(stale)


def test_every_implicitreg_variable_is_named_in_execution():
    named = set(ENV.values()) | set(BUILD_ENV.values())
    seen = set()
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "notebooks").glob("*.ipynb"),
                 ROOT / "README.md"]:
        seen |= set(re.findall(r"IMPLICITREG_[A-Z_]*[A-Z]", path.read_text()))
    assert seen <= named, f"not named in runs/execution.py: {sorted(seen - named)}"
    assert len(named) == len(ENV) + len(BUILD_ENV)


@pytest.fixture
def engine_settings(monkeypatch):
    """Restore the engine's per-process settings after a test that applies others."""
    monkeypatch.setattr(D, "_settings", D.settings())
    for name in ("_enabled", "_march", "_lib"):
        monkeypatch.setattr(native, name, getattr(native, name))
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)


def test_implicitreg_data_reaches_the_engine_through_a_library_call(
        engine_settings, monkeypatch, tiny, tmp_path):
    """A script calling ``implicitreg.run`` with no settings gets the shell's: the data
    root and the kernel's cache follow IMPLICITREG_DATA."""
    monkeypatch.setenv("IMPLICITREG_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("IMPLICITREG_NO_DOWNLOAD", "1")
    ir.run(tiny, ir.RunStore(tmp_path / "runs"))
    assert D.data_root() == tmp_path / "data"
    assert native._cache_dir() == tmp_path / "data" / "native"
    assert D.settings().download is False


def test_settings_built_in_code_keep_the_entry_points_data_settings(engine_settings, tmp_path):
    ExecConfig(data_root=str(tmp_path / "data"), offline_data=str(tmp_path / "offline"),
               no_download=True).apply()
    ExecConfig(no_train=True, native_kernel=False).apply()
    s = D.settings()
    assert (s.root, s.offline, s.download) == (str(tmp_path / "data"),
                                               str(tmp_path / "offline"), False)
    assert D.offline_dirs() == [tmp_path / "offline"]
    assert native.kernel() is None


def test_the_book_build_setting_is_read_from_its_variable():
    assert execution.build_setting("mathjax_dir", {"IMPLICITREG_MATHJAX_DIR": "/x"}) == "/x"
    assert execution.build_setting("mathjax_dir", {}) is None
    assert ExecConfig.from_env({"IMPLICITREG_DATA": "/d", "IMPLICITREG_NO_DOWNLOAD": "1",
                                "IMPLICITREG_OFFLINE_DATA": "/o"}).replace(progress=False) \
        == ExecConfig(data_root="/d", offline_data="/o", no_download=True, progress=False)


def test_the_kernel_reads_no_setting_profile_or_cell_under_the_driver(monkeypatch, tmp_path):
    """What the book driver hands a chapter's kernel (every value, validated, and a whole
    exec_config) is all the kernel uses: it reads no variable, no profile file, no
    parameters cell and no history, and a store left None is the project's."""
    from implicitreg.book import chapter, driver, parameters
    from implicitreg.runs import runner
    from implicitreg.runs.execution import as_parameter
    from implicitreg.runs.store import project_store_root

    source = parameters.ChapterSource(ROOT / "notebooks" / "headline.ipynb")
    values = driver.chapter_values(source, {**source.profile("smoke"), "seeds": [3, 4]})
    given = ExecConfig(store_root=str(tmp_path / "runs"), no_train=True, progress=False)
    namespace = {**values, "exec_config": as_parameter(given)}

    def refuse(*a, **k):
        raise AssertionError("read under the driver")

    monkeypatch.setattr(ExecConfig, "from_env", classmethod(refuse))
    for name in ("notebook_parameters", "locate_notebook", "chapter_profile_values",
                 "_history"):
        monkeypatch.setattr(chapter, name, refuse)
    got = chapter.chapter_parameters(namespace, "headline.ipynb")
    assert got["seeds"] == [3, 4] and got["lr_grid"] == values["lr_grid"]
    assert chapter.execution(got, "headline") == given
    assert runner._as_store(None, ExecConfig()).root == project_store_root()


def test_a_notebook_run_by_hand_fills_what_it_is_not_given_from_the_shell(monkeypatch):
    from implicitreg.runs.execution import as_parameter, from_parameter

    monkeypatch.setenv("IMPLICITREG_NO_TRAIN", "1")
    assert from_parameter({}).no_train and from_parameter({"workers": 2}).no_train
    assert not from_parameter(as_parameter(ExecConfig())).no_train  # whole: read nothing
    with pytest.raises(execution.ExecError, match="unknown field"):
        from_parameter({"threads": 2})
