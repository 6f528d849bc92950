"""implicitreg: train and measure SGD, full-batch GD and explicit implicit-regularization
penalties, with a run store so that a book can be rebuilt from stored results.

Package map: ``engine/`` computes a run's numbers (its source is what the numerics
version guards); ``runs/`` stores, loads and schedules runs; ``analysis/`` holds the
statistics and landscape tools the chapters apply to finished runs; ``book/`` executes the
chapters and builds the book. ``cli.py`` and ``bench.py`` are the command line and the
step-cost benchmark."""
__version__ = "0.1.0"

from .engine.config import ConfigError, RunConfig  # noqa: E402
from .engine.data import DataError  # noqa: E402
from .runs.execution import ExecConfig  # noqa: E402
from .runs.runner import MissingRunError, restore, run, run_batch  # noqa: E402
from .runs.store import Result, RunStore  # noqa: E402
from .runs.sweeps import run_labeled, run_many, sweep  # noqa: E402
from . import analysis  # noqa: E402,F401  (ir.analysis for notebooks)

__all__ = ["RunConfig", "ConfigError", "DataError", "ExecConfig", "MissingRunError",
           "Result", "RunStore", "run", "run_batch", "run_many", "run_labeled", "sweep",
           "restore", "__version__"]
