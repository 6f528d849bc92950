"""The engine: everything that determines a run's numbers, and nothing else.

Configuration, data loading, models, gradients and penalties, the SGD update, the
training loop (single and batched), the native kernel and the probes a run records. The
run store keys a run by its configuration, its data source and :data:`NUMERICS_VERSION`;
:func:`source_hash` (this folder's source) goes into every run's provenance only.

``NUMERICS_VERSION`` is bumped by hand when a change alters numbers. The golden tests
(``tests/test_golden.py``) retrain a handful of tiny configurations and compare them with
the committed ``tests/golden/``; a mismatch says to bump it and regenerate them with
``implicitreg golden --write``. A refactor that changes no number
leaves every key, and so every committed result set, valid.

What a key is made of and when to bump: ``CONTRIBUTING.md`` at the top of the project.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

NUMERICS_VERSION = 1
"""Bumped by hand whenever an engine change alters any number a run produces."""

HERE = Path(__file__).parent


def source_files() -> list[Path]:
    """The engine's source files, in a fixed order: the Python modules and the kernel."""
    return sorted([*HERE.glob("*.py"), *HERE.glob("csrc/*.cpp")])


def source_hash() -> str:
    """Hash of the engine's source (kept in provenance; not part of run keys)."""
    h = hashlib.sha256()
    for path in source_files():
        h.update(path.relative_to(HERE).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
