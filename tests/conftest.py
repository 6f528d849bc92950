import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("IMPLICITREG_PROGRESS", "0")


@pytest.fixture
def store(tmp_path):
    from implicitreg import RunStore

    return RunStore(tmp_path / "runs")


@pytest.fixture
def tiny():
    """A tiny synthetic config that trains in well under a second."""
    from implicitreg import RunConfig

    return RunConfig(dataset="synthetic", n_train=256, n_test=128, synthetic_dim=16,
                     widths=(32,), batch_size=32, epochs=2, lr=0.1, progress=False)


@pytest.fixture
def f64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
