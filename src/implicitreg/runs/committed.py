"""Committed result sets: ``results/<profile>/manifest.json`` says where and when each
chapter's runs of a committed profile were made. The book driver, the GPU edition and the
criteria registry all read or write it, so it lives below them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Profiles whose runs are executed once and committed under results/<profile>/runs,
# largest first: the published build (profile "published") re-plots each chapter from the
# first of these whose committed result set covers it, and executes the rest at ci. A
# workstation set carries a chapter's whole design (pilot, confirmation, every cell); the
# gpu set one cell of it at a larger n, so the workstation set comes first.
COMMITTED_PROFILES = ("paper", "workstation", "gpu")


def committed_entry(root: Path, profile: str, chapter: str) -> dict[str, Any] | None:
    """The manifest entry of ``chapter`` in the committed result set ``profile``: where
    and when its runs were made (None when the profile is not a committed one)."""
    manifest = root / "results" / profile / "manifest.json"
    if profile not in COMMITTED_PROFILES or not manifest.is_file():
        return None
    entries = json.loads(manifest.read_text()).get("chapters", [])
    return next((e for e in entries if e.get("chapter") == chapter), None)


def write_manifest(path: Path, window: dict[str, Any]) -> dict[str, Any]:
    """Append this window to the manifest; ``chapters`` keeps each chapter's latest
    entry (what the published build reads), ``windows`` every window's record."""
    old = json.loads(path.read_text()) if path.is_file() else {}
    windows = old.get("windows", []) + [window]
    latest: dict[str, Any] = {}
    for w in windows:
        for entry in w["chapters"]:
            latest[entry["chapter"]] = {**entry, "window": w["created"],
                                        "device": w["device"], "torch": w["torch"]}
    manifest = {"chapters": list(latest.values()), "windows": windows}
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


__all__ = ["COMMITTED_PROFILES", "committed_entry", "write_manifest"]
