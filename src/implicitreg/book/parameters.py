"""A chapter's parameters as the book reads them: the notebook's cell tagged
``parameters`` (names, defaults, comments), its named profiles
(``notebooks/profiles/<chapter>.yaml``), a params file's overrides, the checks that refuse
unknown names and wrong types before anything trains, and the table of contents that
lists the chapters.
"""
from __future__ import annotations

import ast
import functools
import json
from pathlib import Path
from typing import Any

import yaml


PROFILES = ("smoke", "ci", "workstation", "paper", "gpu")


# Every chapter has these; a committed profile (workstation, gpu) only where its runs were
# made.
REQUIRED_PROFILES = ("smoke", "ci", "paper")


PUBLISHED = "published"


class BookError(RuntimeError):
    """A chapter could not be executed or the book could not be built; says which."""


def parse_parameter_source(src: str) -> dict[str, Any]:
    """Names and literal values assigned in a parameters cell's source; annotated
    assignments (``lr: float = 0.05  # comment``) count like plain ones."""
    return parse_parameter_cell(src)[0]


def parse_parameter_cell(src: str) -> tuple[dict[str, Any], dict[str, str]]:
    """One parse of a parameters cell's source: (name -> literal value, name -> the
    comment at the end of its line)."""
    import io
    import tokenize

    values: dict[str, Any] = {}
    lines: dict[int, str] = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            values[target.id] = ast.literal_eval(value)
            lines[node.end_lineno] = target.id
    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT and tok.start[0] in lines:
            comments[lines[tok.start[0]]] = tok.string.lstrip("#").strip()
    return values, comments


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
        if not _same_type(value, default):
            raise BookError(f"{label}: parameter {name} = {value!r} has type "
                            f"{_type_name(value)}; expected {_type_name(default)} like its "
                            f"default {default!r}")
        wrong = _wrong_elements(value, default)
        if wrong:
            raise BookError(f"{label}: parameter {name} = {value!r} has an element "
                            f"{wrong[0]!r} of type {_type_name(wrong[0])}; expected elements "
                            f"of type {_type_name(default[0])} like its default {default!r}")


def _same_type(value: Any, default: Any) -> bool:
    """Same type name, or an int where a float is expected (a bool is no number here)."""
    return _type_name(value) == _type_name(default) or (
        isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool))


def _wrong_elements(value: Any, default: Any) -> list[Any]:
    """The elements of a list whose type differs from the default's elements (the list
    itself has the right type, so a message about it would blame the wrong thing)."""
    if not isinstance(default, (list, tuple)) or not default or not value:
        return []
    return [v for v in value if not _same_type(v, default[0])]


def check_parameters(notebook: Path, given: dict[str, Any]) -> None:
    """Refuse unknown names and values whose type differs from the default's (an int is
    accepted for a float; a default of None accepts anything; None is accepted for any
    parameter and means "all" or "the engine's default" where the chapter says so)."""
    check_values(Path(notebook).name, notebook_parameters(notebook), given)


class ChapterSource:
    """One chapter as the book driver reads it, each part at most once: its notebook's
    cell tagged ``parameters`` (parsed once into defaults and comments) and its profile
    file ``notebooks/profiles/<chapter>.yaml`` beside the notebook. The driver hands
    the chapter's kernel the values it made from them, so the kernel reads neither."""

    def __init__(self, notebook: Path):
        self.notebook = Path(notebook)
        self.name = self.notebook.stem
        self.label = self.notebook.name
        self.profile_file = self.notebook.parent / "profiles" / f"{self.name}.yaml"

    @functools.cached_property
    def cell(self) -> str:
        """The source of the cell tagged ``parameters``."""
        return parameter_cell_source(self.notebook)

    @functools.cached_property
    def _parsed(self) -> tuple[dict[str, Any], dict[str, str]]:
        return parse_parameter_cell(self.cell)

    @property
    def declared(self) -> dict[str, Any]:
        """Names and defaults of the parameters cell, in its order."""
        return dict(self._parsed[0])

    @property
    def comments(self) -> dict[str, str]:
        """The comment after each parameter (its meaning)."""
        return dict(self._parsed[1])

    @functools.cached_property
    def profiles(self) -> dict[str, dict[str, Any]]:
        """Profile name -> its values, in file order; {} without a profile file."""
        if not self.profile_file.is_file():
            return {}
        return {k: dict(v or {}) for k, v in
                (yaml.safe_load(self.profile_file.read_text()) or {}).items()}

    def profile(self, profile: str) -> dict[str, Any]:
        """``{"profile": profile, **its values}`` (as :func:`load_profile`)."""
        if not self.profile_file.is_file():
            return {"profile": profile}
        if profile not in self.profiles:
            raise BookError(f"{self.profile_file}: no profile {profile!r}; it has "
                            f"{sorted(self.profiles)}")
        return {"profile": profile, **self.profiles[profile]}


def load_profile(root: Path, chapter: str, profile: str) -> dict[str, Any]:
    path = root / "notebooks" / "profiles" / f"{chapter}.yaml"
    if not path.is_file():
        return {"profile": profile}
    profiles = yaml.safe_load(path.read_text()) or {}
    if profile not in profiles:
        raise BookError(f"{path}: no profile {profile!r}; it has {sorted(profiles)}")
    return {"profile": profile, **(profiles[profile] or {})}


def split_overrides(overrides: dict[str, Any], chapters: dict[str, Path],
                    sources: dict[str, ChapterSource] | None = None
                    ) -> dict[str, dict[str, Any]]:
    """A params file holds ``{chapter: {name: value}}`` entries and/or flat
    ``{name: value}`` entries; a flat one goes to every chapter that declares it
    (``sources``: the chapters as already read, so that no cell is parsed twice)."""
    per: dict[str, dict[str, Any]] = {c: {} for c in chapters}
    flat = {k: v for k, v in overrides.items() if k not in chapters}
    for c in chapters:
        per[c].update(overrides.get(c) or {})
    if not flat:
        return per
    sources = sources or {c: ChapterSource(p) for c, p in chapters.items()}
    declared = {c: sources[c].declared for c in chapters}
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


def parameter_comments(src: str) -> dict[str, str]:
    """The comment at the end of each parameter's line in a parameters cell."""
    return parse_parameter_cell(src)[1]


def chapter_profiles(notebook: Path) -> list[str]:
    """The profiles named in the chapter's profile file, in file order."""
    f = notebook.parent / "profiles" / f"{notebook.stem}.yaml"
    if not f.is_file():
        return []
    return list(yaml.safe_load(f.read_text()) or {})
