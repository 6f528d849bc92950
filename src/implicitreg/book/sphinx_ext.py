"""A small Sphinx extension the book loads.

- It switches Thebe off for good. Jupyter Book always loads sphinx-thebe, which then puts
  on every page a Binder configuration pointing at an unrelated example repository
  (``binder-examples/jupyter-stacks-datascience``) and a script that would fetch Thebe
  from a CDN. The book offers launch buttons (plain links to the source notebooks on
  Colab and Binder) instead, so these scripts and nodes are removed.
- It removes duplicated inline scripts: sphinx-thebe registers its configuration script
  once per ``env-before-read-docs`` event; when that event fires more than once, pages
  carry the same ``const`` declarations twice and the browser reports a SyntaxError.
"""
from __future__ import annotations

from typing import Any

THEBE_MARKERS = ("THEBE_JS_URL", "sphinx-thebe", "thebe_selector")


def _is_thebe(asset: Any) -> bool:
    text = " ".join(str(x) for x in (getattr(asset, "filename", asset) or "",
                                       getattr(asset, "attributes", {}).get("body", "")))
    return any(m in text for m in THEBE_MARKERS)


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict,
                    doctree: Any) -> None:
    for key in ("css_files",):
        if context.get(key):
            context[key][:] = [c for c in context[key] if not _is_thebe(c)]
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    unique = []
    for js in scripts:
        if _is_thebe(js):
            continue
        # The same inline script appears once with filename None and once with "":
        # compare what is rendered.
        key = (str(getattr(js, "filename", js) or ""),
               repr(sorted(getattr(js, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    scripts[:] = unique


def _drop_thebe_nodes(app: Any, doctree: Any, docname: str) -> None:
    """Remove the per-page Thebe configuration sphinx-thebe appends to each doctree."""
    from docutils import nodes

    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        if "x-thebe-config" in text or text.strip().startswith("<script>kernelName"):
            node.parent.remove(node)


def setup(app: Any) -> dict[str, Any]:
    # Early: html-page-context is emitted with emit_firstresult, so handlers after one
    # that returns a template name never run.
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    # Late: after sphinx-thebe's own doctree-resolved handler has appended its nodes.
    app.connect("doctree-resolved", _drop_thebe_nodes, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
