"""A small Sphinx extension the book loads: it removes duplicated inline scripts.

sphinx-thebe (loaded by Jupyter Book) registers its configuration script once per
``env-before-read-docs`` event; when that event fires more than once, pages carry the
same ``const`` declarations twice and the browser reports a SyntaxError.
"""
from __future__ import annotations

from typing import Any


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict,
                    doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    unique = []
    for js in scripts:
        # The same inline script appears once with filename None and once with "":
        # compare what is rendered.
        key = (str(getattr(js, "filename", js) or ""),
               repr(sorted(getattr(js, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    scripts[:] = unique


def setup(app: Any) -> dict[str, Any]:
    # Early: html-page-context is emitted with emit_firstresult, so handlers after one
    # that returns a template name never run.
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
