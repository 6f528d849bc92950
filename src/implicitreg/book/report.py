"""What the built book reports about itself, from the executed notebooks: the claims
ledger (every claim pasted from its chapter's glued values), the execution report and
the scale table of the landing page.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import budget, ledger
from .budget import load_budgets
from .parameters import PROFILES, BookError, load_profile, notebook_parameters, toc_chapters
from ..runs.committed import committed_entry


def load_claims(root: Path) -> list[dict[str, Any]]:
    path = root / "book" / "claims.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else []


def claims_page(claims: list[dict[str, Any]],
                made: Mapping[str, ledger.Made] | None = None) -> str:
    """The ledger as MyST Markdown: numbers and verdicts are glue references into the
    executed chapters, so none is typed here. ``made`` (chapter → when its results were
    made) dates each revision against the results."""
    lines = [
        "# Claims ledger", "",
        "Each claim from the papers that this book tests, the chapter that tests it, the "
        "effect measured there and the verdict, computed in the chapter against a "
        "criterion stated in its opening box before the runs. The verdict in bold is the "
        "claim's: that of its criterion as registered. Where a criterion was revised, the "
        "revision's verdict stands in the row below, marked with the revision's id and "
        "with whether it was fixed before or after the results on this page were made. "
        "The numbers in a row are the statistic its verdict was computed from. Values are "
        "pasted from the executed chapters at the profile the book was built with.", "",
        "| claim | paper | chapter | measured | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    made = made or {}
    for c in claims:
        lines += ledger.table_rows(c, made.get(c["chapter"]))
    return "\n".join(lines) + "\n"


def results_made(root: Path, site: Path) -> dict[str, ledger.Made]:
    """Per executed chapter: when the results it shows were made (the first start of its
    runs, from their provenance, as the notebook glued it; else the start of its
    execution in this build)."""
    out = {}
    for r in execution_records(root, site):
        committed = committed_entry(root, r["profile"], r["chapter"]) is not None
        nb = site / "notebooks" / f"{r['chapter']}.ipynb"
        made = glued_values(nb).get("exec_runs_made", "") if nb.is_file() else ""
        first = made.split(" / ")[0].strip("'\"") if made else ""
        out[r["chapter"]] = ledger.Made(first or r["start"], committed)
    return out


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
        declared = notebook_parameters(src)
        try:
            prof_values = load_profile(root, name, profile) if profile in PROFILES else {}
        except BookError:
            prof_values = {}
        # What differs from the profile (the notebook's defaults where it says nothing):
        # the book driver injects every parameter, changed or not.
        base = {**declared, **prof_values}
        changed = {k: v for k, v in params.items()
                   if k not in ("profile", "executed_at", "exec_config") and base.get(k, object()) != v}
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


DATA_SUFFIX = "-data"
"""A chapter's CSV files live in ``notebooks/<chapter>-data/``, beside its page."""


def _run_table_link(site: Path, chapter: str) -> str:
    """A link to the chapter's table of runs, written beside its page when the site was
    assembled; "" where there is none."""
    rel = f"notebooks/{chapter}{DATA_SUFFIX}/{chapter}-runs.csv"
    return f"; [table of the runs (CSV)]({rel})" if (site / rel).is_file() else ""


def _when(stamp: str | None) -> str:
    return stamp.replace("T", " ")[:19] + " UTC" if stamp else "(not recorded)"


def execution_report(root: Path, site: Path, store_root: str | None = None) -> str:
    """The execution report page (MyST Markdown), from papermill's metadata in the
    executed notebooks and what each chapter glued about its runs; ``store_root`` is the
    build's run store (``None``: the default one)."""
    recs = execution_records(root, site)
    lines = ["# Execution report", "",
             "How each chapter of this build was executed, read from the metadata papermill "
             "writes into the executed notebooks (`_build/site/notebooks/`) when the book "
             "is built. *Changed* lists the parameters that differ from the chapter's "
             "profile (a params file or `-p` values); *runs* counts the distinct training "
             "runs a chapter used and how many of them were loaded from the run store "
             "rather than trained during this execution, with a link to its table of runs (CSV: "
             "each run's store key, configuration and final accuracy and loss). Each "
             "chapter's time is set against the budget of the profile it ran at in "
             "`notebooks/budgets.yaml`: the time it may take from an empty run store on a "
             "2-core CPU.", "",
             "| chapter | profile | changed from the profile | started | duration against "
             "its budget | status | runs (loaded from the store) | device | packages |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in recs:
        changed = ", ".join(f"`{k}` = `{v!r}`" for k, v in r["changed"].items()) or "none"
        trained = (None if r["runs"] is None else
                   int(r["runs"]) - int(r["loaded"] or 0))
        dur = budget.against_budget(
            float(r["duration"]) if isinstance(r["duration"], (int, float)) else None,
            load_budgets(root, r["profile"]).get(r["chapter"]), trained, r["profile"])
        runs = ("not recorded (the chapter does not call `chapter.glue_run_counts`)"
                if r["runs"] is None else "no training runs" if r["runs"] == "0" else
                f"{r['runs']} ({r['loaded']} loaded, "
                f"{int(r['runs']) - int(r['loaded'] or 0)} trained)") + _run_table_link(
                    site, r["chapter"])
        lines.append("| " + " | ".join(_md_cell(x) for x in [
            f"{{doc}}`notebooks/{r['chapter']}`", f"`{r['profile']}`", changed,
            _when(r["start"]), dur, r["status"], runs, r["device"], r["versions"]]) + " |")
    try:
        from ..runs.store import RunStore

        store = RunStore(store_root)
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
    """Every claim must follow the ledger's policy (:mod:`.ledger`) and be backed by its
    chapter: the chapter is in the book and has glued each key the ledger pastes."""
    chapters = toc_chapters(root)
    claims = load_claims(root)
    ledger.check(claims)
    for c in claims:
        if c["chapter"] not in chapters:
            raise BookError(f"claim {c['claim']!r}: chapter {c['chapter']} is not in the toc")
        have = glued_keys(site / "notebooks" / f"{c['chapter']}.ipynb")
        missing = [k for row in ledger.rows_of(c) for k in ledger.glue_keys(row)
                   if k not in have]
        if missing:
            raise BookError(f"claim {c['claim']!r} has no backing value(s) {missing} in "
                            f"the executed chapter {c['chapter']}")
