"""Crash safety and concurrency of the run store, with real processes and signals."""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd

import implicitreg as ir

ARGS = ["--dataset", "synthetic", "--n-train", "512", "--n-test", "128", "--widths", "64",
        "--batch-size", "8", "--epochs", "150", "--eval-every", "640", "--momentum", "0.9",
        "--lr", "0.02", "--label-noise", "0.2", "--progress", "false"]


def _cli(store, *extra):
    return [sys.executable, "-m", "implicitreg.cli", "run", *ARGS, "--store", str(store),
            *extra]


def _config(**kw):
    return ir.RunConfig(dataset="synthetic", n_train=512, n_test=128, widths=(64,),
                        batch_size=8, epochs=150, eval_every=640, momentum=0.9, lr=0.02,
                        label_noise=0.2, progress=False, **kw)


def test_killed_run_resumes_from_its_checkpoint_to_identical_metrics(tmp_path):
    store = ir.RunStore(tmp_path / "killed")
    proc = subprocess.Popen(_cli(store.root, "--checkpoint-every", "50"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    key = ir.runs.store.run_key(_config(checkpoint_every=50), "synthetic")
    ck = store.checkpoint_path(key)
    deadline = time.time() + 120
    while not ck.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # let it run past the first checkpoint
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ck.exists() and store.load(key) is None  # nothing half-written is "finished"
    resumed = ir.run(_config(checkpoint_every=50), store)
    assert any("resumed" in n for n in resumed.provenance["notes"])
    assert not ck.exists()  # removed once the run is stored
    whole = ir.run(_config(), ir.RunStore(tmp_path / "whole"))
    pd.testing.assert_frame_equal(resumed.metrics, whole.metrics)
    pd.testing.assert_frame_equal(resumed.examples, whole.examples)


def test_two_processes_asking_for_one_run_train_it_once(tmp_path):
    procs = [subprocess.Popen(_cli(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    summaries = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert summaries[0]["key"] == summaries[1]["key"]
    assert sorted(s["cached"] for s in summaries) == [False, True]
    assert summaries[0]["test_accuracy"] == summaries[1]["test_accuracy"]
    runs = [p for p in os.listdir(tmp_path) if not p.startswith(".")]
    assert runs == [summaries[0]["key"]]
