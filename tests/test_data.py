"""The data layer on the real offline archives in ../shared/data."""
import gzip
import shutil

import numpy as np
import pytest
import torch

import implicitreg as ir
from implicitreg.engine import data as D
from implicitreg.engine.config import ConfigError
from implicitreg.runs.store import run_key

needs_offline = pytest.mark.skipif(not D.offline_dirs(), reason="no shared/data folder found")


@needs_offline
def test_cifar10_offline_archive_full_shapes_and_balance():
    raw = D.load_raw("cifar10")
    assert raw.source == D.resolve_source("cifar10")
    assert raw.x_train.shape == (50000, 32, 32, 3) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(raw.y_train).tolist() == [5000] * 10
    assert np.bincount(raw.y_test).tolist() == [1000] * 10
    assert raw.classes[0] == "airplane" and raw.classes[-1] == "truck"
    # real photographs: channel means as documented for this copy
    means = raw.x_train.mean(axis=(0, 1, 2), dtype=np.float64) / 255
    assert np.all(np.abs(means - [0.4914, 0.4822, 0.4465]) < 0.002)


@needs_offline
def test_cifar10_tensors_on_device_stratified_subset():
    d = D.load("cifar10", n_train=1000, n_test=500, data_seed=0)
    assert d.x_train.shape == (1000, 3, 32, 32) and d.x_train.dtype == torch.float32
    assert d.y_train.dtype == torch.int64 and d.x_train.device.type == "cpu"
    assert torch.bincount(d.y_train).tolist() == [100] * 10
    assert torch.bincount(d.y_test).tolist() == [50] * 10
    expected = {"offline-cifar10-jpeg": "JPEG copy", "torchvision": "torchvision files"}
    assert expected[D.resolve_source("cifar10")] in d.source_detail
    # normalized: roughly zero mean, unit std per channel
    assert abs(float(d.x_train.mean())) < 0.2 and 0.7 < float(d.x_train.std()) < 1.3
    again = D.load("cifar10", n_train=1000, n_test=500, data_seed=0)
    assert torch.equal(d.x_train, again.x_train)
    other = D.load("cifar10", n_train=1000, n_test=500, data_seed=1)
    assert not np.array_equal(d.train_index, other.train_index)


@needs_offline
def test_mnist_offline_split_is_stratified_and_recorded():
    raw = D.load_raw("mnist", mnist_holdout=0.2, data_seed=0)
    if raw.source == "torchvision":
        pytest.skip("canonical MNIST files present; the offline split is not used")
    assert raw.source == "offline-mnist-t10k-split"
    assert raw.x_train.shape == (8000, 28, 28, 1) and raw.x_test.shape == (2000, 28, 28, 1)
    assert "10,000-image test split" in raw.source_detail
    counts_tr, counts_te = np.bincount(raw.y_train), np.bincount(raw.y_test)
    full = counts_tr + counts_te
    np.testing.assert_allclose(counts_te / full, 0.2, atol=0.01)
    # disjoint: no held-out image is also a training image
    tr = {x.tobytes() for x in raw.x_train}
    assert sum(x.tobytes() in tr for x in raw.x_test) < 5  # MNIST has a few duplicates


def _from_the_shell(monkeypatch, **variables: str) -> None:
    """Set ``variables`` in the shell and hand them to the engine the way an entry point
    does; the process's data settings are restored after the test."""
    from implicitreg.engine import native
    from implicitreg.runs.execution import ExecConfig

    monkeypatch.setattr(D, "_settings", D.settings())
    for name in ("_enabled", "_march", "_lib"):
        monkeypatch.setattr(native, name, getattr(native, name))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    ExecConfig.from_env().apply()


def test_missing_data_fails_with_instructions(tmp_path, monkeypatch):
    _from_the_shell(monkeypatch, IMPLICITREG_OFFLINE_DATA=str(tmp_path / "nothing"),
                    IMPLICITREG_NO_DOWNLOAD="1")
    for name in ("cifar10", "mnist"):
        with pytest.raises(D.DataError, match="download=True") as info:
            D.load_raw(name, root=tmp_path / "root")
        assert "IMPLICITREG_OFFLINE_DATA" in str(info.value)


@needs_offline
def test_archive_failing_its_checksum_is_refused(tmp_path, monkeypatch):
    src = D.offline_dirs()[0]
    bad = tmp_path / "data"
    (bad / "mnist").mkdir(parents=True)
    for rel in D.MNIST_OFFLINE:
        shutil.copy(src / rel, bad / rel)
    with gzip.open(bad / "mnist/t10k-labels-idx1-ubyte.gz", "rb") as fh:
        labels = bytearray(fh.read())
    labels[100] = (labels[100] + 1) % 10
    with gzip.open(bad / "mnist/t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(bytes(labels))
    _from_the_shell(monkeypatch, IMPLICITREG_OFFLINE_DATA=str(bad))
    with pytest.raises(D.DataError, match="checksum"):
        D.load_raw("mnist", root=tmp_path / "root")


def test_n_train_larger_than_data_is_a_config_error():
    with pytest.raises(ConfigError, match="n_train"):
        D.load("synthetic", n_train=100, n_test=10).x_train  # fine
        from implicitreg import RunConfig, run
        run(RunConfig(dataset="mnist", n_train=10**6, progress=False))


def test_stratified_subset_properties():
    y = np.repeat(np.arange(5), [100, 200, 300, 50, 350])
    idx = D.stratified_subset(y, 100, seed=0)
    assert len(idx) == 100 and len(set(idx)) == 100
    counts = np.bincount(y[idx], minlength=5)
    np.testing.assert_allclose(counts, [10, 20, 30, 5, 35], atol=1)


def test_augment_keeps_shape_and_moves_pixels():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = D.augment(x, g, pad=2)
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    # every output pixel is an input pixel of the same image and channel, or padding
    for i in range(2):
        for c in range(3):
            vals = set(out[i, c].flatten().tolist()) - {0.0}
            assert vals <= set(x[i, c].flatten().tolist())


def test_downsampled_images_are_block_means_and_the_default_keeps_old_keys():
    from implicitreg.engine.data import input_spec, load_for

    cfg = ir.RunConfig(dataset="mnist", n_train=20, n_test=10, model="cnn")
    full, half = load_for(cfg), load_for(cfg.replace(downsample=2))
    assert half.x_train.shape[1:] == (1, 14, 14) == input_spec(cfg.replace(downsample=2))[0]
    torch.testing.assert_close(half.x_train, torch.nn.functional.avg_pool2d(full.x_train, 2))
    assert "downsample" not in cfg.key_dict()
    assert run_key(cfg.replace(downsample=1), "s") == run_key(cfg, "s")
    assert run_key(cfg.replace(downsample=2), "s") != run_key(cfg, "s")
    for bad in (0, 3):
        with pytest.raises(ConfigError, match="downsample"):
            ir.RunConfig(dataset="cifar10", downsample=bad)
    with pytest.raises(ConfigError, match="downsample"):
        ir.RunConfig(dataset="synthetic", downsample=2)
