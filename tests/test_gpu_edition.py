"""The GPU edition is prepared on a CPU: its dry run runs the chapters' designs at the
smoke profile, and a run stopped at a deadline resumes to the same numbers."""
import time

import pytest
import torch

import implicitreg as ir
from implicitreg.engine.training import DeadlineReached


def test_dry_run_runs_every_chapter_with_a_gpu_profile(tmp_path):
    from conftest import copy_project

    from implicitreg.book.gpu_edition import gpu_chapters, gpu_edition
    from implicitreg.book.parameters import load_profile

    def chapter_values(root, chapter):
        return load_profile(root, chapter, "smoke")
    from implicitreg.chapters import registry

    project_copy = copy_project(tmp_path / "project")
    chapters = gpu_chapters(project_copy)
    assert chapters[0] == "sgd_vs_gd"
    manifest = gpu_edition(deadline_s=600, dry_run=True, root=project_copy)
    assert [e["chapter"] for e in manifest["chapters"]] == chapters
    for entry in manifest["chapters"]:
        assert entry["status"] == "complete" and entry["runs"] > 0, entry
        assert entry["design"] == registry.design_fingerprint(
            entry["chapter"], registry.params_values(entry["chapter"], chapter_values(
                project_copy, entry["chapter"])))
    assert (project_copy / "_build" / "gpu-dry-run" / "manifest.json").is_file()
    # nothing of the notebooks is executed: the module's design is the source of the runs
    import implicitreg.book.gpu_edition as G

    assert not hasattr(G, "PRELUDE") and not hasattr(G, "train_cells")


def test_deadline_checkpoints_and_the_next_window_resumes(tiny, tmp_path):
    cfg = tiny.replace(steps=40, eval_every=10)
    st = ir.RunStore(tmp_path / "store")
    with pytest.raises(DeadlineReached):
        ir.run(cfg, st, exec_config=ir.ExecConfig(deadline=time.time() - 1))
    key = st.keys()
    assert not key  # nothing stored as finished
    assert any((st.root / ".checkpoints").iterdir())
    resumed = ir.run(cfg, st, exec_config=ir.ExecConfig())
    assert any("resumed" in n for n in resumed.provenance["notes"])
    whole = ir.run(cfg, ir.RunStore(tmp_path / "whole"))
    assert resumed.metrics.value.tolist() == whole.metrics.value.tolist()


def test_the_committed_gpu_result_set_loads_without_training():
    """Every run of the committed gpu result set is found under the current keys."""
    from pathlib import Path

    from implicitreg.book.gpu_edition import train_chapter

    root = Path(__file__).resolve().parents[1]
    store = root / "results" / "gpu" / "runs"
    if not store.is_dir():
        pytest.skip("no committed gpu result set")
    entry = train_chapter(root, "sgd_vs_gd", "gpu",
                          ir.ExecConfig(no_train=True, store_root=str(store)))
    assert entry["status"] == "complete" and entry["trained"] == 0


def test_published_build_uses_the_committed_result_set_that_covers_a_chapter(tmp_path):
    from implicitreg.book.driver import published_profile
    from implicitreg.book.gpu_edition import write_manifest

    root = tmp_path
    (root / "results" / "gpu").mkdir(parents=True)
    window = {"created": "t", "device": "d", "torch": "v", "chapters": [
        {"chapter": "sgd_vs_gd", "status": "stopped at the deadline"}]}
    write_manifest(root / "results" / "gpu" / "manifest.json", window)
    assert published_profile(root, "sgd_vs_gd") == "ci"  # incomplete: not published
    window = dict(window, chapters=[{"chapter": "sgd_vs_gd", "status": "complete"}])
    m = write_manifest(root / "results" / "gpu" / "manifest.json", window)
    assert len(m["windows"]) == 2
    assert published_profile(root, "sgd_vs_gd") == "gpu"
    assert published_profile(root, "lr_batch_law") == "ci"


def test_workstation_set_is_published_before_gpu_and_records_where_it_ran(tmp_path):
    from implicitreg.book.driver import (committed_entry, published_profile,
                                         record_committed_execution)
    from implicitreg.book.gpu_edition import write_manifest

    (tmp_path / "results" / "gpu").mkdir(parents=True)
    write_manifest(tmp_path / "results" / "gpu" / "manifest.json", {
        "created": "t", "device": "H100", "torch": "v",
        "chapters": [{"chapter": "sgd_vs_gd", "status": "complete"}]})
    assert published_profile(tmp_path, "sgd_vs_gd") == "gpu"
    record_committed_execution(tmp_path, "sgd_vs_gd", "workstation", "2026-01-01T00:00:00",
                               12.0)
    assert published_profile(tmp_path, "sgd_vs_gd") == "workstation"
    entry = committed_entry(tmp_path, "workstation", "sgd_vs_gd")
    assert entry["window"] == "2026-01-01T00:00:00" and entry["status"] == "complete"
    expected = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU ("
    assert entry["device"].startswith(expected)
    assert committed_entry(tmp_path, "ci", "sgd_vs_gd") is None
