"""The book driver: execute each chapter notebook listed in the table of contents with
papermill at a named profile, then build the HTML with Jupyter Book 1 (execution off).

Layout: sources in ``notebooks/`` (chapter notebooks, stored without outputs) and
``book/`` (pages, ``_toc.yml``, ``references.bib``); profiles in
``notebooks/profiles/<chapter>.yaml``. Executed notebooks and the assembled site go to
``_build/site/``; the HTML to ``_build/html/``. Sources are never written.
"""
from __future__ import annotations

import ast
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import yaml

from . import budget
from .budget import load_budgets
from ..runs.committed import COMMITTED_PROFILES, committed_entry, write_manifest
from ..runs.execution import ExecConfig, environment
from ..runs.store import project_root

PROFILES = ("smoke", "ci", "workstation", "paper", "gpu")
# Every chapter has these; a committed profile (workstation, gpu) only where its runs were
# made.
REQUIRED_PROFILES = ("smoke", "ci", "paper")
PUBLISHED = "published"
DEFAULT_CELL_TIMEOUT = {"smoke": 600, "ci": 1800, "workstation": 2 * 3600,
                        "paper": 4 * 3600, "gpu": 4 * 3600}


class BookError(RuntimeError):
    """A chapter could not be executed or the book could not be built; says which."""


# ------------------------------------------------------------------ parameters
def parse_parameter_source(src: str) -> dict[str, Any]:
    """Names and literal values assigned in a parameters cell's source; annotated
    assignments (``lr: float = 0.05  # comment``) count like plain ones."""
    out: dict[str, Any] = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            out[target.id] = ast.literal_eval(value)
    return out


def parameter_cell_source(path: Path) -> str:
    """The source of the notebook's cell tagged ``parameters``."""
    nb = json.loads(Path(path).read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return "".join(cell["source"])
    raise BookError(f"{path}: no cell tagged 'parameters'")


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Names and default values of the notebook's cell tagged ``parameters``."""
    return parse_parameter_source(parameter_cell_source(path))


def _type_name(v: Any) -> str:
    return "list" if isinstance(v, (list, tuple)) else type(v).__name__


def check_values(label: str, declared: dict[str, Any], given: dict[str, Any]) -> None:
    """:func:`check_parameters` on a declaration already read; ``label`` names the
    notebook in the message (the chapters call this from their setup cell, so that plain
    papermill refuses bad values with the same message as the book driver)."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise BookError(f"{label}: unknown parameter(s) {unknown}; the notebook's "
                        f"parameters are {sorted(declared)}")
    for name, value in given.items():
        default = declared[name]
        if default is None or value is None:
            continue
        ok = _type_name(value) == _type_name(default) or (
            isinstance(default, float) and isinstance(value, int)
            and not isinstance(value, bool))
        if ok and isinstance(default, (list, tuple)) and default and value:
            ok = all(_type_name(v) == _type_name(default[0]) or (
                isinstance(default[0], float) and isinstance(v, int)) for v in value)
        if not ok:
            raise BookError(f"{label}: parameter {name} = {value!r} has type "
                            f"{_type_name(value)}; expected {_type_name(default)} like its "
                            f"default {default!r}")


def check_parameters(notebook: Path, given: dict[str, Any]) -> None:
    """Refuse unknown names and values whose type differs from the default's (an int is
    accepted for a float; a default of None accepts anything; None is accepted for any
    parameter and means "all" or "the engine's default" where the chapter says so)."""
    check_values(Path(notebook).name, notebook_parameters(notebook), given)


def load_profile(root: Path, chapter: str, profile: str) -> dict[str, Any]:
    path = root / "notebooks" / "profiles" / f"{chapter}.yaml"
    if not path.is_file():
        return {"profile": profile}
    profiles = yaml.safe_load(path.read_text()) or {}
    if profile not in profiles:
        raise BookError(f"{path}: no profile {profile!r}; it has {sorted(profiles)}")
    return {"profile": profile, **(profiles[profile] or {})}


def split_overrides(overrides: dict[str, Any], chapters: dict[str, Path]
                    ) -> dict[str, dict[str, Any]]:
    """A params file holds ``{chapter: {name: value}}`` entries and/or flat
    ``{name: value}`` entries; a flat one goes to every chapter that declares it."""
    per: dict[str, dict[str, Any]] = {c: {} for c in chapters}
    flat = {k: v for k, v in overrides.items() if k not in chapters}
    for c in chapters:
        per[c].update(overrides.get(c) or {})
    declared = {c: notebook_parameters(p) for c, p in chapters.items()}
    for name, value in flat.items():
        takers = [c for c in chapters if name in declared[c]]
        if not takers:
            raise BookError(f"parameter {name!r} in the params file is not declared by any "
                            f"chapter ({sorted(chapters)}) and is not a chapter name")
        for c in takers:
            per[c].setdefault(name, value)
    return per


def named_profile(profile: str, overrides: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The profile a chapter executes at, and its overrides: a params file that names a
    ``profile`` means exactly that profile's values plus its other entries, never the
    command line's profile with some names changed."""
    rest = dict(overrides)
    named = rest.pop("profile", None)
    if named is None or named == profile:
        return profile, rest
    if named not in PROFILES:
        raise BookError(f"the params file names profile {named!r}: one of {list(PROFILES)}")
    return named, rest


# ------------------------------------------------------------------ toc
def toc_chapters(root: Path) -> dict[str, Path]:
    """Chapter name -> source notebook, for each ``notebooks/...`` entry of the toc."""
    toc = yaml.safe_load((root / "book" / "_toc.yml").read_text())
    found: dict[str, Path] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith("notebooks/"):
                name = Path(f).stem
                found[name] = root / "notebooks" / f"{name}.ipynb"
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        raise BookError(f"the table of contents lists notebooks that do not exist: {missing}")
    return found


# ------------------------------------------------------------------ execution
def execute_chapter(src: Path, out: Path, params: dict[str, Any], cell_timeout: int,
                    exec_config: ExecConfig | None = None) -> None:
    """Execute one chapter with papermill; its kernel receives ``exec_config`` (progress
    bars off: they would flood the logs) through the environment."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    check_parameters(src, params)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = (exec_config or ExecConfig.from_env()).replace(progress=False).to_env()
    # Figures must be captured as outputs whatever backend the caller's shell sets.
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        with environment(env):
            pm.execute_notebook(
                str(src), str(out), parameters=params, kernel_name="python3",
                cwd=str(src.parent), log_output=True, progress_bar=False,
                execution_timeout=cell_timeout, request_save_on_cell_execute=True,
            )
    except PapermillExecutionError as exc:
        raise BookError(f"notebook {src.name} failed in cell {exc.cell_index} "
                        f"(execution count {exc.exec_count}): {exc.ename}: {exc.evalue}. "
                        f"The partly executed notebook is {out}") from None
    hide_parameter_cells(out)
    insert_rerun_box(out, rerun_box(src))


def hide_parameter_cells(path: Path) -> None:
    """The raw parameter cells are replaced in the book by the chapter's readable
    parameter table, so tag them ``remove-cell``."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False))


def parameter_comments(src: str) -> dict[str, str]:
    """The comment at the end of each parameter's line in a parameters cell."""
    import io
    import tokenize

    names = {}
    for node in ast.parse(src).body:
        target = (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1
                  else node.target if isinstance(node, ast.AnnAssign) else None)
        if isinstance(target, ast.Name):
            names[node.end_lineno] = target.id
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT and tok.start[0] in names:
            out[names[tok.start[0]]] = tok.string.lstrip("#").strip()
    return out


def chapter_profiles(notebook: Path) -> list[str]:
    """The profiles named in the chapter's profile file, in file order."""
    f = notebook.parent / "profiles" / f"{notebook.stem}.yaml"
    if not f.is_file():
        return []
    return list(yaml.safe_load(f.read_text()) or {})


RERUN_EXAMPLE = ("lr", "lr_grid", "n_grid", "steps", "epochs", "seeds", "n_train",
                 "noise_levels", "gd_steps", "batch_sizes")


def rerun_box(src: Path) -> str:
    """A MyST admonition telling the reader how to rerun this chapter: the commands at
    each of its profiles, a parameters file drawn from its own parameters cell, and
    where the results land."""
    name = src.stem
    declared = notebook_parameters(src)
    comments = parameter_comments(parameter_cell_source(src))
    profiles = chapter_profiles(src)
    lines = [":::{admonition} Rerun this chapter", ":class: note dropdown", "",
             "From a clone of the repository (`make` creates `.venv` and installs the "
             "package on first use):", "", "```bash"]
    first = profiles[0] if profiles else "ci"
    for prof in profiles or [None]:
        opt = f" PROFILE={prof}" if prof else ""
        pm_opt = f" -p profile {prof}" if prof else ""
        out = f"{name}-{prof}.ipynb" if prof else f"{name}-out.ipynb"
        lines += ([f"# profile {prof}"] if prof else []) + [
            f"make execute ONLY={name}{opt}    # this chapter only, no HTML",
            f"make book{opt}    # every chapter, then the HTML",
            f"papermill notebooks/{name}.ipynb {out}{pm_opt}    # plain papermill, any folder",
        ]
    lines += [f"papermill --help-notebook notebooks/{name}.ipynb    # every parameter",
              "```", "", "With plain papermill, a named profile fills in its values; "
              "values given with `-p` override them.", ""]
    pick = [k for k in RERUN_EXAMPLE if k in declared][:3] or [
        k for k in declared if k not in ("profile", "executed_at")][:3]
    if pick:
        lines += ["To change parameters, write them into a file (values below are this "
                  "chapter's defaults) and pass it with `PARAMS`:", "", "```yaml",
                  "# my_params.yaml"]
        lines.append(f"{name}:")
        for k in pick:
            c = comments.get(k)
            lines.append(f"  {k}: {json.dumps(declared[k])}" + (f"  # {c}" if c else ""))
        lines += ["```", "", "```bash",
                  f"make execute ONLY={name} PROFILE={first} PARAMS=my_params.yaml",
                  f"papermill notebooks/{name}.ipynb out.ipynb -p profile {first} "
                  f"-p {pick[0]} {json.dumps(declared[pick[0]])}",
                  "```", ""]
    lines += ["Unknown names and values of the wrong type are refused before anything "
              "trains. The executed notebook lands in "
              f"`_build/site/notebooks/{name}.ipynb` and the page in "
              f"`_build/html/notebooks/{name}.html` (papermill writes where you tell it); "
              "every training run is stored in `results/runs/<key>/` (or under "
              "`$IMPLICITREG_RESULTS`) and is loaded, not retrained, the next time. "
              "The {doc}`execution report <../execution>` lists what this build ran.",
              ":::", ""]
    return "\n".join(lines)


def insert_rerun_box(path: Path, box: str) -> None:
    """Put ``box`` under the title of the executed notebook (never into the source)."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        head, sep, rest = src.partition("\n")
        if head.startswith("# "):
            cell["source"] = head + "\n\n" + box + "\n" + rest.lstrip("\n")
        else:
            cell["source"] = box + "\n" + src
        break
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False))


MATHJAX_VERSION = "3.2.2"
MATHJAX_ENTRY = "tex-mml-chtml.js"  # the component Sphinx loads from a CDN by default


def vendor_mathjax(root: Path) -> Path | None:
    """A local MathJax 3 (``es5`` folder) so that math renders without internet:
    ``$IMPLICITREG_MATHJAX_DIR`` if set, else unpacked once from the npm registry's
    ``mathjax`` package into ``_build/vendor``. None when neither is possible."""
    env = os.environ.get("IMPLICITREG_MATHJAX_DIR")
    if env:
        if not (Path(env) / MATHJAX_ENTRY).is_file():
            raise BookError(f"IMPLICITREG_MATHJAX_DIR={env} has no {MATHJAX_ENTRY}")
        return Path(env)
    dest = root / "_build" / "vendor" / f"mathjax-{MATHJAX_VERSION}"
    if (dest / MATHJAX_ENTRY).is_file():
        return dest
    npm = shutil.which("npm")
    if npm is None:
        return None
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([npm, "pack", f"mathjax@{MATHJAX_VERSION}",
                               "--pack-destination", tmp], capture_output=True, text=True)
        tarballs = list(Path(tmp).glob("mathjax-*.tgz"))
        if proc.returncode or not tarballs:
            print(f"npm pack mathjax failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
            return None
        staging = Path(tmp) / "x"
        with tarfile.open(tarballs[0]) as tar:
            for m in tar.getmembers():
                rel = m.name.removeprefix("package/es5/")
                if rel == m.name or not m.isfile():
                    continue
                # One combined entry point plus the components it loads on demand; the
                # speech-rule engine and the other combined builds are left out (18 MB).
                top = rel.split("/")[0]
                if top == "sre" or (rel.endswith(".js") and "/" not in rel
                                    and rel != MATHJAX_ENTRY):
                    continue
                m.name = rel
                tar.extract(m, staging, filter="data")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(str(staging), dest)
    return dest


def load_claims(root: Path) -> list[dict[str, Any]]:
    path = root / "book" / "claims.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else []


def claims_page(claims: list[dict[str, Any]]) -> str:
    """The ledger as MyST Markdown: numbers and verdicts are glue references into the
    executed chapters, so none is typed here."""
    lines = [
        "# Claims ledger", "",
        "Each claim from the papers that this book tests, the chapter that tests it, the "
        "effect measured there and the verdict, computed in the chapter against a "
        "criterion stated in its opening box before the runs. Values are pasted from the "
        "executed chapters at the profile the book was built with.", "",
        "| claim | paper | chapter | measured | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in claims:
        nb = f"notebooks/{c['chapter']}.ipynb"
        # The trailing ":s" is the format spec; without one the role would split the key.
        refs = ["{glue:text}`" + f"{nb}::{k}:s" + "`" for k in c["effect"]]
        effect = c["effect_text"].format(*refs)
        verdict = "**{glue:text}`" + f"{nb}::{c['verdict']}:s" + "`**"
        lines.append(f"| {c['claim']} | {{cite:t}}`{c['paper']}` | "
                     f"{{doc}}`notebooks/{c['chapter']}` | {effect} | {verdict} |")
    return "\n".join(lines) + "\n"


def glued_keys(notebook: Path) -> set[str]:
    """Names glued in an executed notebook (myst-nb's glue outputs)."""
    nb = json.loads(notebook.read_text())
    keys = set()
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            md = out.get("metadata", {})
            if "scrapbook" in md:
                keys.add(md["scrapbook"]["name"])
    return keys


def glued_values(notebook: Path) -> dict[str, str]:
    """Glued names and their plain-text values in an executed notebook."""
    nb = json.loads(notebook.read_text())
    out = {}
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            md = o.get("metadata", {})
            if "scrapbook" in md:
                prefix = md["scrapbook"].get("mime_prefix", "")
                text = o.get("data", {}).get(prefix + "text/plain", "")
                text = "".join(text) if isinstance(text, list) else str(text)
                if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
                    text = text[1:-1]
                out[md["scrapbook"]["name"]] = text
    return out


def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def execution_records(root: Path, site: Path) -> list[dict[str, Any]]:
    """Per executed chapter: what papermill recorded (parameters, start, end, duration,
    status) and what the chapter glued about itself (device, versions, run counts)."""
    records = []
    for name, src in toc_chapters(root).items():
        out = site / "notebooks" / f"{name}.ipynb"
        if not out.is_file():
            continue
        meta = json.loads(out.read_text()).get("metadata", {}).get("papermill", {})
        params = dict(meta.get("parameters") or {})
        profile = params.get("profile", "(default)")
        try:
            prof_values = load_profile(root, name, profile) if profile in PROFILES else {}
        except BookError:
            prof_values = {}
        changed = {k: v for k, v in params.items()
                   if k not in ("profile", "executed_at") and prof_values.get(k, object()) != v}
        declared = notebook_parameters(src)
        used = {**declared, **params}
        glued = glued_values(out)
        data = [str(used["dataset"])] if "dataset" in used else []
        data += [f"{k}={'all' if v is None else v}" for k, v in used.items()
                 if k.endswith("n_train") or k == "n_grid"]
        runs = glued.get("exec_runs")
        records.append({
            "chapter": name, "profile": profile, "changed": changed,
            "start": meta.get("start_time"), "end": meta.get("end_time"),
            "duration": meta.get("duration"),
            "status": "failed" if meta.get("exception") else (
                "completed" if meta.get("end_time") else "not finished"),
            "runs": runs, "loaded": glued.get("exec_runs_loaded"),
            "device": glued.get("exec_device", "(not recorded)"),
            "versions": glued.get("exec_versions", "(not recorded)"),
            "data": ", ".join(data) or "synthetic problems only",
        })
    return records


def _when(stamp: str | None) -> str:
    return stamp.replace("T", " ")[:19] + " UTC" if stamp else "(not recorded)"


def execution_report(root: Path, site: Path) -> str:
    """The execution report page (MyST Markdown), from papermill's metadata in the
    executed notebooks and what each chapter glued about its runs."""
    recs = execution_records(root, site)
    lines = ["# Execution report", "",
             "How each chapter of this build was executed, read from the metadata papermill "
             "writes into the executed notebooks (`_build/site/notebooks/`) when the book "
             "is built. *Changed* lists the parameters that differ from the chapter's "
             "profile (a params file or `-p` values); *runs* counts the distinct training "
             "runs a chapter used and how many of them were loaded from the run store "
             "rather than trained during this execution. Each chapter's time is set against "
             "its budget in `notebooks/budgets.yaml`: the time it may take from an empty "
             "run store on a 2-core CPU.", "",
             "| chapter | profile | changed from the profile | started | duration against "
             "its budget | status | runs (loaded from the store) | device | packages |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in recs:
        changed = ", ".join(f"`{k}` = `{v!r}`" for k, v in r["changed"].items()) or "none"
        trained = (None if r["runs"] is None else
                   int(r["runs"]) - int(r["loaded"] or 0))
        dur = budget.against_budget(
            float(r["duration"]) if isinstance(r["duration"], (int, float)) else None,
            load_budgets(root, r["profile"]).get(r["chapter"]), trained)
        runs = ("not recorded (the chapter does not call `chapter.glue_run_counts`)"
                if r["runs"] is None else "no training runs" if r["runs"] == "0" else
                f"{r['runs']} ({r['loaded']} loaded, "
                f"{int(r['runs']) - int(r['loaded'] or 0)} trained)")
        lines.append("| " + " | ".join(_md_cell(x) for x in [
            f"{{doc}}`notebooks/{r['chapter']}`", f"`{r['profile']}`", changed,
            _when(r["start"]), dur, r["status"], runs, r["device"], r["versions"]]) + " |")
    try:
        from ..runs.store import RunStore

        store = RunStore(ExecConfig.from_env().store_root)
        lines += ["", f"The run store used by this build holds {len(store.keys())} runs."]
    except Exception:  # a report without the store line is still a report
        pass
    return "\n".join(lines) + "\n"


SCALE_MARKER = "<!-- scale-table -->"


def scale_table(root: Path, site: Path) -> str:
    """For the landing page: at which scale each chapter's published figures were made."""
    lines = ["| chapter | profile | data | runs made on | runs made |",
             "| --- | --- | --- | --- | --- |"]
    for r in execution_records(root, site):
        made = committed_entry(root, r["profile"], r["chapter"])
        device, when = ((made["device"], _when(made.get("window"))) if made else
                        (r["device"], _when(r["start"])))
        lines.append("| " + " | ".join(_md_cell(x) for x in [
            f"{{doc}}`notebooks/{r['chapter']}`", f"`{r['profile']}`", r["data"],
            device, when]) + " |")
    return "\n".join(lines) + "\n"


def check_claims(root: Path, site: Path) -> None:
    """Every claim must be backed by its chapter: the chapter is in the book and has
    glued each key the ledger pastes."""
    chapters = toc_chapters(root)
    for c in load_claims(root):
        if c["chapter"] not in chapters:
            raise BookError(f"claim {c['claim']!r}: chapter {c['chapter']} is not in the toc")
        have = glued_keys(site / "notebooks" / f"{c['chapter']}.ipynb")
        missing = [k for k in [*c["effect"], c["verdict"]] if k not in have]
        if missing:
            raise BookError(f"claim {c['claim']!r} has no backing value(s) {missing} in "
                            f"the executed chapter {c['chapter']}")


def _favicon(path: Path) -> None:
    """A plain 32x32 icon, drawn here so that no binary file lives in the sources."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.ellipse((2, 2, 29, 29), fill=(31, 119, 180, 255))
    draw.line((9, 22, 16, 9, 23, 22), fill=(255, 255, 255, 255), width=3)
    img.save(path)


def assemble_site(root: Path, site: Path) -> None:
    """Copy the narrative pages and the config into the site folder, write the claims
    ledger, vendor MathJax."""
    for item in (root / "book").iterdir():
        dest = site / item.name
        if item.is_dir():
            shutil.copytree(item, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(item, dest)
    _favicon(site / "favicon.png")
    intro = site / "intro.md"
    if intro.is_file() and SCALE_MARKER in intro.read_text():
        intro.write_text(intro.read_text().replace(SCALE_MARKER, scale_table(root, site)))
    (site / "execution.md").write_text(execution_report(root, site))
    claims = load_claims(root)
    if claims:
        check_claims(root, site)
        (site / "claims.md").write_text(claims_page(claims))
    config = yaml.safe_load((root / "_config.yml").read_text())
    mathjax = vendor_mathjax(root)
    if mathjax is None:
        print("warning: no local MathJax (npm not found); pages will load it from a CDN",
              file=sys.stderr)
    else:
        # Not under _static: Jupyter Book would add every .js file there to every page.
        shutil.copytree(mathjax, site / "_vendor" / "mathjax", dirs_exist_ok=True)
        sphinx_cfg = config.setdefault("sphinx", {}).setdefault("config", {})
        sphinx_cfg["html_static_path"] = ["_vendor"]
        sphinx_cfg["mathjax_path"] = f"mathjax/{MATHJAX_ENTRY}"
    (site / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def run_jupyter_book(site: Path, root: Path) -> None:
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(site),
           "--path-output", str(root), "-W", "-n", "--keep-going", "--builder", "html"]
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=root)
    if proc.returncode:
        raise BookError(f"jupyter-book build failed (exit {proc.returncode}); see the "
                        "warnings above")


def record_committed_execution(root: Path, chapter: str, profile: str, stamp: str,
                               wall_time_s: float) -> None:
    """Enter a chapter executed at a committed profile into results/<profile>/manifest.json
    (where and when its runs were made, under which criteria), so that the published
    build picks it up."""
    import platform

    import torch


    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available() else
              f"CPU ({platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} threads)")
    from ..chapters import registry

    entry = {"chapter": chapter, "profile": profile, "status": "complete",
             "wall_time_s": round(wall_time_s, 1)}
    if chapter in registry.chapters():
        # The criteria the set was made under: a later edit of them fails a test unless
        # it is a recorded revision.
        entry["criteria"] = registry.criteria_hash(chapter, as_of=stamp)
    (root / "results" / profile).mkdir(parents=True, exist_ok=True)
    write_manifest(root / "results" / profile / "manifest.json", {
        "created": stamp, "device": device, "torch": torch.__version__, "dry_run": False,
        "chapters": [entry]})


def published_profile(root: Path, chapter: str) -> str:
    """The largest committed result set that covers ``chapter`` (its manifest lists the
    chapter as complete), else ``ci``."""
    for p in COMMITTED_PROFILES:
        entry = committed_entry(root, p, chapter)
        if entry is not None and entry.get("status") == "complete":
            return p
    return "ci"


def build_book(profile: str = "ci", params_file: str | os.PathLike | None = None,
               only: Iterable[str] | None = None, build: bool = True,
               cell_timeout: int | None = None, root: Path | None = None,
               exec_config: ExecConfig | None = None) -> Path:
    """Execute the chapters at ``profile`` (plus overrides from ``params_file``) and
    build the HTML book. Returns the path of ``_build/html``."""
    root = root or project_root()
    if root is None:
        raise BookError("run this from inside the project (no _config.yml with "
                        "src/implicitreg found above the working directory)")
    if profile not in PROFILES + (PUBLISHED,):
        raise BookError(f"profile {profile!r} is not allowed: one of "
                        f"{list(PROFILES + (PUBLISHED,))}")
    chapters = toc_chapters(root)
    selected = list(chapters) if only is None else list(only)
    bad = [c for c in selected if c not in chapters]
    if bad:
        raise BookError(f"unknown chapter(s) {bad}; the toc lists {sorted(chapters)}")
    overrides: dict[str, Any] = {}
    if params_file is not None:
        p = Path(params_file)
        if not p.is_file():
            raise BookError(f"params file {p} does not exist")
        overrides = yaml.safe_load(p.read_text()) or {}
        if not isinstance(overrides, dict):
            raise BookError(f"params file {p} must hold a mapping of names to values")
    per_chapter = split_overrides(overrides, chapters)
    base_ex = exec_config or ExecConfig.from_env()
    site = root / "_build" / "site"
    site.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    timed: list[dict[str, Any]] = []
    for name in selected:
        chosen = published_profile(root, name) if profile == PUBLISHED else profile
        chosen, per_chapter[name] = named_profile(chosen, per_chapter[name])
        if chosen in COMMITTED_PROFILES and chosen not in chapter_profiles(chapters[name]):
            # Committed profiles exist for some chapters only; the others run at ci.
            print(f"{name} has no {chosen} profile: executing it at ci", flush=True)
            chosen = "ci"
        ex = base_ex
        committed = root / "results" / chosen / "runs"
        if chosen in COMMITTED_PROFILES and ex.store_root is None and (
                committed.is_dir() or profile != PUBLISHED):
            # Committed result sets live here: rebuilding re-plots them, and executing
            # the profile adds its missing runs to them.
            committed.mkdir(parents=True, exist_ok=True)
            ex = ex.replace(store_root=str(committed),
                            no_train=ex.no_train or profile == PUBLISHED)
            print(f"using the committed {chosen} run store {committed}", flush=True)
        t0 = time.time()
        params = {**load_profile(root, name, chosen), **per_chapter[name]}
        if "executed_at" in notebook_parameters(chapters[name]):
            params.setdefault("executed_at", stamp)
        print(f"== executing {name} (profile {chosen}) with {params}", flush=True)
        execute_chapter(chapters[name], site / "notebooks" / f"{name}.ipynb", params,
                        cell_timeout or DEFAULT_CELL_TIMEOUT[chosen], ex)
        seconds = time.time() - t0
        if chosen in COMMITTED_PROFILES and profile != PUBLISHED and not ex.no_train:
            record_committed_execution(root, name, chosen, stamp, seconds)
        timed.append({"chapter": name, "seconds": seconds, "profile": chosen,
                      "trained": _trained(site / "notebooks" / f"{name}.ipynb")})
        print(f"== {name}: " + budget.against_budget(
            seconds, load_budgets(root, chosen).get(name), timed[-1]["trained"]), flush=True)
    missing = [n for n in chapters if not (site / "notebooks" / f"{n}.ipynb").is_file()]
    if build:
        if missing:
            raise BookError(f"chapters {missing} have not been executed; run without --only")
        t0 = time.time()
        assemble_site(root, site)
        run_jupyter_book(site, root)
        timed.append({"chapter": "HTML build", "seconds": time.time() - t0})
    if timed:
        print(f"== time against the {profile} budgets (notebooks/budgets.yaml):", flush=True)
        print("\n".join(budget.summary(timed, load_budgets(root, profile))), flush=True)
    return root / "_build" / "html"


def _trained(notebook: Path) -> int | None:
    """Runs a chapter trained during its execution, from what it glued."""
    glued = glued_values(notebook) if notebook.is_file() else {}
    try:
        return int(glued["exec_runs"]) - int(glued.get("exec_runs_loaded") or 0)
    except (KeyError, ValueError):
        return None
