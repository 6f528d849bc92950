"""implicitreg: train and measure SGD, full-batch GD and explicit implicit-regularization
penalties, with a run store so that a book can be rebuilt from stored results."""
__version__ = "0.1.0"

from .config import ConfigError, RunConfig  # noqa: E402
from .data import DataError  # noqa: E402
from .store import Result, RunStore  # noqa: E402
from .api import results_frame, run, run_batch  # noqa: E402
from .sweeps import run_labeled, run_many, sweep  # noqa: E402
from . import analysis  # noqa: E402,F401  (ir.analysis for notebooks)

__all__ = ["RunConfig", "ConfigError", "DataError", "Result", "RunStore", "run", "run_batch", "run_many", "run_labeled",
           "sweep",
           "results_frame", "__version__"]
