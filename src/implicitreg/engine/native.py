"""The one compiled kernel: winsorized sums of a linear layer's per-example weight
gradients (``csrc/winsorize.cpp``), built on first use with the system C++ compiler and
loaded through ctypes.

No compiler, a failed build or ``set_enabled(False)`` (the run layer passes its
``ExecConfig.native_kernel``, ``IMPLICITREG_NATIVE=0``) all mean :func:`kernel` returns
``None`` and callers use the pure-PyTorch path, which gives the same numbers more slowly.
The shared object is cached under ``native/`` of the data root (:func:`.data.data_root`:
``~/.cache/implicitreg`` or the configured ``IMPLICITREG_DATA``), keyed by the source,
the compiler, the target and the CPU's flags. It is built with ``-march=native``: the
kernel's vector width follows the instruction set (16 floats on AVX-512, 8 on AVX2).
:func:`set_target` builds for another target, e.g. ``haswell`` to check the AVX2 build on
an AVX-512 machine.

It is built with ``-fopenmp``; the dynamic loader resolves its ``libgomp.so.1`` to the
copy PyTorch has already loaded, so the kernel and PyTorch share one OpenMP thread pool.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)
SOURCE = Path(__file__).parent / "csrc" / "winsorize.cpp"
MAX_CLIP = 8
LANES = 16
_lib: ctypes.CDLL | None | bool = False  # False: not tried yet
_march = "native"


def set_target(march: str) -> None:
    """Build (or load) the kernel for ``-march=march`` from the next call on."""
    global _lib, _march
    if march != _march:
        _march, _lib = march, False


def lanes() -> int | None:
    """The loaded kernel's vector width in floats (``None`` without a kernel)."""
    lib = kernel()
    return None if lib is None else int(lib.winsorize_lanes())


def _cache_dir() -> Path:
    from .data import data_root

    return data_root() / "native"


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _flags() -> list[str]:
    # No fused multiply-adds: an FMA rounds once where a multiply and an add round twice,
    # so contracting would make the numbers depend on the instruction set built for.
    return ["-O3", f"-march={_march}", "-ffp-contract=off"]


def _build(cxx: str, out: Path) -> bool:
    base = [cxx, *_flags(), "-shared", "-fPIC", str(SOURCE)]
    # Without OpenMP the kernel still works, on one thread.
    for extra in (["-fopenmp"], []):
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            so = Path(tmp) / out.name
            proc = subprocess.run(base + extra + ["-o", str(so)], capture_output=True,
                                  text=True)
            if proc.returncode == 0:
                os.replace(so, out)
                return True
            log.debug("native build failed (%s): %s", " ".join(extra), proc.stderr[-2000:])
    return False


_enabled = True


def set_enabled(on: bool) -> None:
    """Use the kernel (the default) or the PyTorch path: the run layer passes its
    ``ExecConfig.native_kernel`` here, so the engine reads no setting of its own."""
    global _enabled
    _enabled = bool(on)


def kernel() -> ctypes.CDLL | None:
    """The loaded kernel library, or ``None`` when it is disabled or cannot be built."""
    global _lib
    if not _enabled:
        return None
    if _lib is not False:
        return _lib  # type: ignore[return-value]
    _lib = None
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if cxx is None or not SOURCE.is_file():
        log.info("no C++ compiler: winsorized steps use the PyTorch path")
        return None
    key = hashlib.sha256(SOURCE.read_bytes() + cxx.encode() + _cpu_flags().encode()
                         + platform.machine().encode() + " ".join(_flags()).encode()
                         ).hexdigest()[:16]
    out = _cache_dir() / f"winsorize-{key}.so"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.is_file() and not _build(cxx, out):
            log.warning("building %s failed: winsorized steps use the PyTorch path", SOURCE)
            return None
        lib = ctypes.CDLL(str(out))
    except OSError as err:
        log.warning("native kernel unavailable (%s): using the PyTorch path", err)
        return None
    fn = lib.winsorized_outer_sum
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int] * 5
    lib.winsorize_lanes.restype = ctypes.c_int
    lib.winsorize_bounds.restype = ctypes.c_int
    lib.winsorize_bounds.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int] * 3
    _lib = lib
    return lib


def can_take(n: int, c: int, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the kernel handles a batch of ``n`` examples clipped at ``c``."""
    return (device.type == "cpu" and dtype == torch.float32 and 1 <= c <= MAX_CLIP
            and n >= 2 * c + 2 and kernel() is not None)


def _padded(t: torch.Tensor) -> torch.Tensor:
    """``t`` (rows x columns) detached and contiguous, its columns padded with zeros to a
    multiple of LANES (the kernels read whole vectors)."""
    cols = t.shape[1]
    width = -(-cols // LANES) * LANES
    t = t.detach()
    return (torch.nn.functional.pad(t, (0, width - cols)) if width != cols else t).contiguous()


def winsorized_outer_mean(d: torch.Tensor, a: torch.Tensor, c: int) -> torch.Tensor | None:
    """Mean over examples of the per-coordinate winsorized outer products d_i a_i^T
    (``d``: B x J, ``a``: B x K, float32 on the CPU), i.e. the winsorized weight gradient
    of a linear layer; ``None`` when the kernel cannot take this case."""
    n = d.shape[0]
    if not can_take(n, c, d.device, d.dtype) or a.dtype != torch.float32:
        return None
    lib = kernel()
    k = a.shape[1]
    dt = d.detach().t().contiguous()
    ap = _padded(a)
    kp = ap.shape[1]
    out = torch.empty(d.shape[1], kp)
    rc = lib.winsorized_outer_sum(dt.data_ptr(), ap.data_ptr(), out.data_ptr(), n,
                                  d.shape[1], kp, c, torch.get_num_threads())
    if rc != 0:
        return None
    return out[:, :k].div_(n)


def winsorize_bounds(d: torch.Tensor, c: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (c+1)-th largest and the (c+1)-th smallest value of each column of ``d``
    (B x J, float32 on the CPU): the bounds :func:`implicitreg.engine.gradients.winsorize`
    clips to, found in one pass instead of two top-k sorts; ``None`` when the kernel
    cannot take this case."""
    n, j = d.shape
    if not can_take(n, c, d.device, d.dtype):
        return None
    dp = _padded(d)
    jp = dp.shape[1]
    hi, lo = torch.empty(jp), torch.empty(jp)
    if kernel().winsorize_bounds(dp.data_ptr(), hi.data_ptr(), lo.data_ptr(), n, jp, c) != 0:
        return None
    return hi[:j], lo[:j]
