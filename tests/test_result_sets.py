"""Every committed result set of a chapter is re-read without training and shown beside
the others, with its premises and verdicts."""
from implicitreg.chapters import result_sets, sgd_vs_gd as S


def test_the_committed_sgd_vs_gd_sets_are_shown_side_by_side_under_the_current_premises():
    table = result_sets.side_by_side(S)
    assert {"workstation", "gpu"} <= set(table.columns)
    for col in ("workstation", "gpu"):
        assert "could not be re-read" not in table.loc["scale", col]
    # the gpu set's SGD did not fit its training set: its gap is not assessable, with numbers
    assert table.loc["gap", "gpu"].startswith("not assessable")
    assert "91–97% training accuracy" in table.loc["gap", "gpu"]
    assert "16,384" in table.loc["scale", "gpu"]


def test_a_set_that_cannot_be_re_read_says_why(tmp_path, monkeypatch):
    import json

    (tmp_path / "results" / "workstation" / "runs").mkdir(parents=True)
    (tmp_path / "results" / "workstation" / "manifest.json").write_text(json.dumps({
        "chapters": [{"chapter": "sgd_vs_gd", "status": "complete", "window": "2026-01-01",
                      "device": "CPU"}]}))
    table = result_sets.side_by_side(S, root=tmp_path)
    assert "could not be re-read" in table.loc["scale", "workstation"]
    assert "training is switched off" in table.loc["scale", "workstation"]


def test_a_committed_set_is_re_read_with_the_parameters_it_recorded(tmp_path):
    """After a profile changes, a set that recorded its parameters is still re-read as it
    was made; the driver records them with every committed execution."""
    import json
    import shutil
    from pathlib import Path

    from implicitreg.book.driver import record_committed_execution
    from implicitreg.runs.committed import committed_entry

    root = Path(__file__).resolve().parents[1]
    made = S.profile("workstation")
    recorded = {n: getattr(made, n) for n in S.Params.names()}
    recorded = {k: list(v) if isinstance(v, tuple) else v for k, v in recorded.items()}
    record_committed_execution(tmp_path, "sgd_vs_gd", "workstation", "2026-12-02T00:00:00",
                               1.0, {"profile": "workstation", **recorded})
    entry = committed_entry(tmp_path, "workstation", "sgd_vs_gd")
    assert entry["params"] == json.loads(json.dumps(recorded))
    shutil.copytree(root / "results" / "workstation" / "runs",
                    tmp_path / "results" / "workstation" / "runs")
    p, a = result_sets.reread(S, "workstation", tmp_path / "results" / "workstation" / "runs",
                              entry["params"])
    assert p == made and a.glue["n_max"] == "4,096"


def test_a_superseded_design_stays_listed_beside_the_latest(tmp_path):
    """A profile's earlier entry made with other recorded parameters is shown, marked
    superseded; the latest entry is the profile's own column."""
    import json
    import shutil
    from pathlib import Path

    from implicitreg.book.driver import record_committed_execution
    from implicitreg.chapters import lr_batch_law as L

    root = Path(__file__).resolve().parents[1]
    dest = tmp_path / "results" / "workstation"
    dest.mkdir(parents=True)
    shutil.copy(root / "results" / "workstation" / "manifest.json", dest / "manifest.json")
    shutil.copytree(root / "results" / "workstation" / "runs", dest / "runs")
    made = json.loads((dest / "manifest.json").read_text())["chapters"][1]
    assert made["chapter"] == "lr_batch_law"
    new = {**made["params"], "epochs": made["params"]["epochs"] + 1}
    record_committed_execution(tmp_path, "lr_batch_law", "workstation",
                               "2026-12-09T00:00:00+00:00", 1.0, new)
    found = result_sets.committed_profiles("lr_batch_law", tmp_path)
    labels = [e["label"] for e in found]
    assert labels[0] == "workstation" and labels[1].endswith("(superseded)")
    table = result_sets.side_by_side(L, root=tmp_path)
    old = table[labels[1]]
    assert "could not be re-read" not in old["scale"]  # the earlier set re-reads
    assert "could not be re-read" in table["workstation"]["scale"]  # its runs are not made
