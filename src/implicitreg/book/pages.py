"""The site around the executed chapters: the rerun box under each title, parameter
cells hidden, the narrative pages and config copied, MathJax vendored for offline
reading, and the Jupyter Book 1 build (execution off).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .parameters import (BookError, chapter_profiles, notebook_parameters,
                         parameter_cell_source, parameter_comments)
from .report import (SCALE_MARKER, check_claims, claims_page, execution_report, load_claims,
                     results_made, scale_table)


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
    """Copy the narrative pages and the config into the site folder, write the claims
    ledger, vendor MathJax (from ``mathjax_dir`` if given); ``store_root``: the build's
    run store, for the execution report."""
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
    (site / "execution.md").write_text(execution_report(root, site, store_root))
    claims = load_claims(root)
    if claims:
        check_claims(root, site)
        (site / "claims.md").write_text(claims_page(claims, results_made(root, site)))
    config = yaml.safe_load((root / "_config.yml").read_text())
    mathjax = vendor_mathjax(root, mathjax_dir)
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
