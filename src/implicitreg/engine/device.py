"""Where a run computes and in which precision."""
from __future__ import annotations

import os

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda > mps > cpu; an explicit device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from .config import ConfigError

        raise ConfigError("RunConfig.device = 'cuda' is not allowed: no CUDA device is "
                          "visible; use 'auto' or 'cpu'")
    return torch.device(name)


def set_determinism(on: bool) -> None:
    """Deterministic kernels. On CUDA this also needs CUBLAS_WORKSPACE_CONFIG, set here."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=False)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = not on
        torch.backends.cudnn.deterministic = on


def set_float32_matmul(precision: str) -> None:
    """Full float32 arithmetic for ``float32`` runs: TF32 (on by default for cuDNN
    convolutions on recent GPUs) rounds to 10 mantissa bits, which would swamp the
    finite-difference penalty gradient. ``bf16-autocast`` runs are low precision anyway."""
    if precision != "bf16-autocast":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def param_dtype(precision: str) -> torch.dtype:
    """Parameter and data dtype of a precision setting (bf16 autocast keeps float32
    parameters)."""
    return torch.float64 if precision == "float64" else torch.float32


def upcast(t: torch.Tensor) -> torch.Tensor:
    """Half-precision values are summed in float32; float32/64 keep their precision."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
