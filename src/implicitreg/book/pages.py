"""The site around the executed chapters: the rerun box under each title, parameter
cells hidden, the verdicts under each claim, the data behind each figure beside its page,
the narrative pages, style sheet and config copied, MathJax vendored for offline reading,
and the Jupyter Book 1 build (execution off).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from . import verdicts
from .chapter import RUN_TABLE_GLUE
from .parameters import BookError, ChapterSource, toc_chapters
from ..runs.execution import is_complete
from .report import (DATA_SUFFIX, SCALE_MARKER, check_claims, claims_page, execution_report, glued_values,
                     load_claims, results_made, scale_table)


def hide_parameter_cells(path: Path) -> None:
    """The raw parameter cells are replaced in the book by the chapter's readable
    parameter table, so tag them ``remove-cell``."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False))


RERUN_EXAMPLE = ("lr", "lr_grid", "n_grid", "steps", "epochs", "seeds", "n_train",
                 "noise_levels", "gd_steps", "batch_sizes")


def rerun_box(src: Path, source: ChapterSource | None = None) -> str:
    """A MyST admonition telling the reader how to rerun this chapter: the commands at
    each of its profiles, a parameters file drawn from its own parameters cell, and
    where the results land (``source``: the chapter as the driver already read it)."""
    source = source or ChapterSource(src)
    name = source.name
    declared = source.declared
    comments = source.comments
    profiles = list(source.profiles)
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
        k for k in declared if k not in ("profile", "executed_at", "exec_config")][:3]
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


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


# ------------------------------------------------------------------ data beside the page
def data_folder(page: Path) -> Path:
    return page.parent / f"{page.stem}{DATA_SUFFIX}"


def _link_output(target: str, text: str) -> dict[str, Any]:
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/markdown": f"[{text}]({target})",
                     "text/plain": f"{text}: {target}"}}


def write_figure_data(nb: dict[str, Any], page: Path) -> int:
    """Write the table each figure of an executed chapter carries (its ``text/csv``
    output, see :mod:`.figdata`) beside the page, and link it under the figure. Returns
    how many were written; a notebook already treated has none left."""
    fresh = [o for c in nb["cells"] for o in c.get("outputs", ())
             if "text/csv" in o.get("data", {})]
    if not fresh:
        return 0
    folder = data_folder(page)
    for old in folder.glob(f"{page.stem}-figure-*.csv"):
        old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for cell in nb["cells"]:
        outputs = []
        for out in cell.get("outputs", ()):
            outputs.append(out)
            table = out.get("data", {}).pop("text/csv", None)
            if table is None:
                continue
            count += 1
            name = f"{page.stem}-figure-{count}.csv"
            (folder / name).write_text("".join(table) if isinstance(table, list) else table)
            outputs.append(_link_output(f"{folder.name}/{name}",
                                        f"Data behind this figure (CSV, {name})"))
            # The link is MyST (a download role in the HTML), not plain CommonMark.
            cell.setdefault("metadata", {}).setdefault("mystnb", {})["markdown_format"] = "myst"
        if "outputs" in cell:
            cell["outputs"] = outputs
    return count


RUN_TABLE_MIME = "application/papermill.record/text/csv"


def write_run_table(nb: dict[str, Any], page: Path) -> Path | None:
    """The chapter's table of runs (glued as CSV by ``chapter.glue_run_counts``), written
    beside the page; None where the chapter glued none."""
    (data_folder(page) / f"{page.stem}-runs.csv").unlink(missing_ok=True)
    for cell in nb["cells"]:
        for out in cell.get("outputs", ()):
            scrap = out.get("metadata", {}).get("scrapbook", {})
            table = out.get("data", {}).get(RUN_TABLE_MIME)
            if scrap.get("name") == RUN_TABLE_GLUE and table is not None:
                dest = data_folder(page) / f"{page.stem}-runs.csv"
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text("".join(table) if isinstance(table, list) else table)
                return dest
    return None


# ------------------------------------------------------------------ verdicts under the claim
def _glue_keys_in(text: str) -> set[str]:
    import re

    return {m.split(":")[0] for m in re.findall(r"\{glue(?::\w+)?\}`([^`]+)`", text)}


def detail_links(nb: dict[str, Any], chapter: str,
                 keys: dict[str, list[str]]) -> dict[str, str]:
    """Criterion → a link to the first cell after the opening one that pastes one of its
    verdicts (a target is put at the top of that cell); the claims ledger where none
    does."""
    links = {}
    for cid, wanted in keys.items():
        for i, cell in enumerate(nb["cells"][1:], start=1):
            if cell["cell_type"] != "markdown" or not set(wanted) & _glue_keys_in(_source(cell)):
                continue
            label = f"{chapter}-verdicts-{i}"
            if not _source(cell).startswith(f"({label})="):
                cell["source"] = f"({label})=\n" + _source(cell)
            links[cid] = "{ref}`details <" + label + ">`"
            break
        else:
            links[cid] = "{doc}`claims ledger <../claims>`"
    return links


def add_verdict_box(nb: dict[str, Any], chapter: str, claims: list[dict[str, Any]],
                    glued: dict[str, str], params: dict[str, Any]) -> None:
    """The verdicts of the chapter's claims under its claim (see :mod:`.verdicts`)."""
    entries = verdicts.entries_of(claims, chapter)
    first = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    if first is None:
        return
    links = detail_links(nb, chapter, verdicts.verdict_keys(entries)) if entries else {}
    box = verdicts.verdict_box(entries, glued, params, links)
    first["source"] = verdicts.insert_box(_source(first), box)


def finish_chapter(page: Path, source: Path, claims: list[dict[str, Any]]) -> None:
    """What an executed chapter gets when the site is assembled: its data files beside
    the page and its verdicts under the claim. Safe to repeat."""
    nb = json.loads(page.read_text())
    write_figure_data(nb, page)
    write_run_table(nb, page)
    given = nb.get("metadata", {}).get("papermill", {}).get("parameters") or {}
    # The book driver injects every parameter (with a whole exec_config); another
    # execution may have injected a few over the notebook's defaults.
    params = given if is_complete(given.get("exec_config")) else {
        **ChapterSource(source).declared, **given}
    add_verdict_box(nb, page.stem, claims, glued_values(page), params)
    page.write_text(json.dumps(nb, indent=1, ensure_ascii=False))


STYLE_DIR = "_static"
"""The book's own style sheets, in ``book/_static``."""


MATHJAX_VERSION = "3.2.2"


MATHJAX_ENTRY = "tex-mml-chtml.js"  # the component Sphinx loads from a CDN by default


def vendor_mathjax(root: Path, mathjax_dir: str | None = None) -> Path | None:
    """A local MathJax 3 (``es5`` folder) so that math renders without internet:
    ``mathjax_dir`` if given (the driver passes ``$IMPLICITREG_MATHJAX_DIR``), else
    unpacked once from the npm registry's ``mathjax`` package into ``_build/vendor``.
    None when neither is possible."""
    if mathjax_dir:
        if not (Path(mathjax_dir) / MATHJAX_ENTRY).is_file():
            raise BookError(f"IMPLICITREG_MATHJAX_DIR={mathjax_dir} has no {MATHJAX_ENTRY}")
        return Path(mathjax_dir)
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


def _favicon(path: Path) -> None:
    """A plain 32x32 icon, drawn here so that no binary file lives in the sources."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.ellipse((2, 2, 29, 29), fill=(31, 119, 180, 255))
    draw.line((9, 22, 16, 9, 23, 22), fill=(255, 255, 255, 255), width=3)
    img.save(path)


def assemble_site(root: Path, site: Path, mathjax_dir: str | None = None,
                  store_root: str | None = None) -> None:
    """Copy the narrative pages, style sheets and the config into the site folder,
    finish each executed chapter (data files, verdicts), write the claims ledger, vendor
    MathJax (from ``mathjax_dir`` if given); ``store_root``: the build's run store, for
    the execution report."""
    for item in (root / "book").iterdir():
        dest = site / item.name
        if item.name == STYLE_DIR:
            continue  # see _static_files
        if item.is_dir():
            shutil.copytree(item, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(item, dest)
    _favicon(site / "favicon.png")
    claims = load_claims(root)
    for name, source in toc_chapters(root).items():
        page = site / "notebooks" / f"{name}.ipynb"
        if page.is_file():
            finish_chapter(page, source, claims)
    intro = site / "intro.md"
    if intro.is_file() and SCALE_MARKER in intro.read_text():
        intro.write_text(intro.read_text().replace(SCALE_MARKER, scale_table(root, site)))
    (site / "execution.md").write_text(execution_report(root, site, store_root))
    if claims:
        check_claims(root, site)
        (site / "claims.md").write_text(claims_page(claims, results_made(root, site)))
    config = yaml.safe_load((root / "_config.yml").read_text())
    sphinx_cfg = config.setdefault("sphinx", {}).setdefault("config", {})
    _static_files(root, site, sphinx_cfg)
    mathjax = vendor_mathjax(root, mathjax_dir)
    if mathjax is None:
        print("warning: no local MathJax (npm not found); pages will load it from a CDN",
              file=sys.stderr)
    else:
        shutil.copytree(mathjax, site / "_vendor" / "mathjax", dirs_exist_ok=True)
        sphinx_cfg["mathjax_path"] = f"mathjax/{MATHJAX_ENTRY}"
    (site / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def _static_files(root: Path, site: Path, sphinx_cfg: dict[str, Any]) -> None:
    """The style sheets of ``book/_static`` go to ``_vendor``, the site's static folder,
    and are named in ``html_css_files``: a ``_static`` folder in the site would make
    Jupyter Book add every .js file of every static folder to every page, MathJax's
    components included."""
    shutil.rmtree(site / STYLE_DIR, ignore_errors=True)
    vendor = site / "_vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    sheets = sorted((root / "book" / STYLE_DIR).glob("*.css"))
    for sheet in sheets:
        shutil.copy2(sheet, vendor / sheet.name)
    sphinx_cfg["html_static_path"] = ["_vendor"]
    css = list(sphinx_cfg.get("html_css_files") or [])
    sphinx_cfg["html_css_files"] = css + [s.name for s in sheets if s.name not in css]


def run_jupyter_book(site: Path, root: Path) -> None:
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(site),
           "--path-output", str(root), "-W", "-n", "--keep-going", "--builder", "html"]
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=root)
    if proc.returncode:
        raise BookError(f"jupyter-book build failed (exit {proc.returncode}); see the "
                        "warnings above")
