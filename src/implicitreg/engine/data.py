"""Datasets as tensors already on the training device.

CIFAR-10 and MNIST come from, in this order:

1. torchvision's canonical files under the data root (``cifar-10-batches-py/``,
   ``MNIST/raw/``), read with ``torchvision.datasets`` and ``download=False``;
2. the offline archives of a ``shared/data`` folder (the configured offline folder, or
   ``shared/data`` found next to an ancestor of the working directory or of this
   package): CIFAR-10 as JPEGs, MNIST as its official 10,000-image test split;
3. torchvision's download (``download=True``), unless downloads are switched off.

Where the data root and the offline folder are, and whether downloading is allowed, are
:class:`DataSettings` that the run layer hands over with :func:`configure` (from its
``ExecConfig``: ``IMPLICITREG_DATA``, ``IMPLICITREG_OFFLINE_DATA``,
``IMPLICITREG_NO_DOWNLOAD``); this module reads no environment variable.

Archives are decoded once and cached as uint8 arrays under ``<data root>/cache``. Every
loaded dataset carries ``source``, a short id that enters the run-store key, and
``source_detail``, a sentence for provenance and for the book.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
CIFAR10_ARCHIVE = "cifar10-jpeg.tar.gz"
CIFAR10_ARCHIVE_SHA256 = "d0797832698c48edb21e7004d0a50cd7e3fb7aa3fd0c8c8afc908166450f5cf0"
MNIST_OFFLINE = {
    "mnist/t10k-images-idx3-ubyte.gz":
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "mnist/t10k-labels-idx1-ubyte.gz":
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
# Per-channel statistics used to normalize inputs (CIFAR-10 training set, MNIST).
MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "mnist": ((0.1307,), (0.3081,)),
}


class DataError(RuntimeError):
    """Data could not be found, downloaded or verified. The message says how to get it."""


@dataclass
class RawData:
    """Undecoded-to-float data: uint8 images (N, H, W, C) and int64 labels, on the CPU."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    source_detail: str
    classes: tuple[str, ...]


@dataclass
class Dataset:
    """Training and test tensors on one device, with the bookkeeping of label noise."""
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    source_detail: str
    classes: tuple[str, ...]
    clean_y_train: torch.Tensor
    """Training labels before label noise."""
    corrupt: torch.Tensor
    """Bool mask of training examples whose label was re-drawn by the noise permutation."""
    train_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Positions of the training examples in the full training set."""

    @property
    def n_train(self) -> int:
        return int(self.y_train.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


# ---------------------------------------------------------------------------- locations
@dataclass(frozen=True)
class DataSettings:
    """Where this process finds datasets. None of it changes a number: a different file
    source is recorded as a different ``source`` and so keys different runs."""
    root: str | None = None
    """Folder of torchvision's files and of the decode cache; ``None``:
    ``~/.cache/implicitreg``."""
    offline: str | None = None
    """Folder of the offline archives; ``None``: a ``shared/data`` folder found next to
    the working directory or this package."""
    download: bool = True
    """Whether torchvision may download a dataset found nowhere else."""


_settings = DataSettings()


def configure(root: str | None = None, offline: str | None = None,
              download: bool | None = None) -> DataSettings:
    """Set this process's :class:`DataSettings`; an argument left ``None`` keeps its
    current value (so settings built in code without them do not undo those of the
    entry point). Returns the settings now in force."""
    global _settings
    changes = {k: v for k, v in (("root", root), ("offline", offline),
                                 ("download", download)) if v is not None}
    _settings = dataclasses.replace(_settings, **changes)
    return _settings


def settings() -> DataSettings:
    """The :class:`DataSettings` in force in this process."""
    return _settings


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding datasets and the decode cache."""
    if root is not None:
        return Path(root).expanduser()
    if _settings.root:
        return Path(_settings.root).expanduser()
    return Path.home() / ".cache" / "implicitreg"


def offline_dirs() -> list[Path]:
    """Candidate ``shared/data`` folders holding the offline archives, best first."""
    if _settings.offline:
        return [Path(_settings.offline).expanduser()]
    seen: list[Path] = []
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for anc in [start, *start.parents]:
            cand = anc / "shared" / "data"
            if cand.is_dir() and cand not in seen:
                seen.append(cand)
    return seen


def _find_offline(relpath: str) -> Path | None:
    for d in offline_dirs():
        if (d / relpath).is_file():
            return d / relpath
    return None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, expected: str) -> None:
    got = sha256_of(path)
    if got != expected:
        raise DataError(
            f"the archive {path} fails its checksum (sha256 {got}, expected {expected}); "
            "it is truncated or altered. Replace it with an intact copy, or remove it so "
            "that torchvision's download is used."
        )


def _no_data_message(name: str, root: Path) -> str:
    tv = {"cifar10": "torchvision.datasets.CIFAR10", "mnist": "torchvision.datasets.MNIST"}[name]
    return (
        f"no {name} data found. Either (a) allow the download (unset IMPLICITREG_NO_DOWNLOAD "
        f"and have internet access): it runs {tv}(root='{root}', download=True); or (b) put "
        f"torchvision's files under '{root}' (set IMPLICITREG_DATA or data_root to use "
        "another folder); or (c) point IMPLICITREG_OFFLINE_DATA at a folder holding the "
        f"offline archive ({CIFAR10_ARCHIVE if name == 'cifar10' else 'mnist/t10k-*.gz'})."
    )


def _download_allowed() -> bool:
    return _settings.download


# ---------------------------------------------------------------------------- CIFAR-10
def _cifar10_torchvision(root: Path, download: bool) -> RawData:
    from torchvision.datasets import CIFAR10

    tr = CIFAR10(str(root), train=True, download=download)
    te = CIFAR10(str(root), train=False, download=download)
    return RawData(
        np.asarray(tr.data), np.asarray(tr.targets, dtype=np.int64),
        np.asarray(te.data), np.asarray(te.targets, dtype=np.int64),
        source="torchvision",
        source_detail=f"CIFAR-10, torchvision files in {root}"
        + (" (downloaded)" if download else ""),
        classes=tuple(tr.classes),
    )


def _decode_cifar10_archive(archive: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    index = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    out: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".jpg"):
                continue
            parts = Path(member.name).parts
            split, cls, fname = parts[-3], parts[-2], parts[-1]
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)
            out[split].append((cls, fname, img))
    arrays = {}
    for split, items in out.items():
        # Sort by class then file name so the order does not depend on the tar layout.
        items.sort(key=lambda t: (t[0], t[1]))
        arrays[f"x_{split}"] = np.stack([t[2] for t in items])
        arrays[f"y_{split}"] = np.asarray([index[t[0]] for t in items], dtype=np.int64)
    return arrays


_MEMORY: dict[Path, dict[str, np.ndarray]] = {}


def _cached(root: Path, name: str, build) -> dict[str, np.ndarray]:
    """Decoded arrays: from this process's memory, else the .npz cache, else ``build``."""
    cache = root / "cache" / name
    if cache in _MEMORY:
        return _MEMORY[cache]
    arrays = _cached_on_disk(cache, build)
    _MEMORY.clear()  # keep one dataset in memory at most
    _MEMORY[cache] = arrays
    return arrays


def _cached_on_disk(cache: Path, build) -> dict[str, np.ndarray]:
    if cache.is_file():
        try:
            with np.load(cache) as z:
                return {k: z[k] for k in z.files}
        except Exception:  # a truncated cache file is rebuilt, not trusted
            cache.unlink(missing_ok=True)
    arrays = build()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, cache)
    return arrays


def _cifar10_offline(archive: Path, root: Path) -> RawData:
    _verify(archive, CIFAR10_ARCHIVE_SHA256)
    arrays = _cached(root, f"cifar10-jpeg-{CIFAR10_ARCHIVE_SHA256[:12]}.npz",
                     lambda: _decode_cifar10_archive(archive))
    return RawData(
        arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
        source="offline-cifar10-jpeg",
        source_detail=f"CIFAR-10, JPEG copy (offline archive {archive.name}, sha256 "
        f"{CIFAR10_ARCHIVE_SHA256[:12]}…; a lossy re-encoding of the canonical images)",
        classes=CIFAR10_CLASSES,
    )


# ---------------------------------------------------------------------------- MNIST
def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _mnist_torchvision(root: Path, download: bool) -> RawData:
    from torchvision.datasets import MNIST

    tr = MNIST(str(root), train=True, download=download)
    te = MNIST(str(root), train=False, download=download)
    return RawData(
        tr.data.numpy()[..., None], tr.targets.numpy().astype(np.int64),
        te.data.numpy()[..., None], te.targets.numpy().astype(np.int64),
        source="torchvision",
        source_detail=f"MNIST, torchvision files in {root} (60,000 train / 10,000 test)"
        + (" (downloaded)" if download else ""),
        classes=tuple(str(i) for i in range(10)),
    )


def _mnist_offline(images: Path, labels: Path, holdout: float, seed: int) -> RawData:
    for rel, sha in MNIST_OFFLINE.items():
        _verify(images.parent.parent / rel, sha)
    x = _read_idx(images)[..., None]
    y = _read_idx(labels).astype(np.int64)
    order = stratified_order(y, seed)
    n_test = int(round(holdout * len(y)))
    test_idx, train_idx = np.sort(order[:n_test]), np.sort(order[n_test:])
    return RawData(
        x[train_idx], y[train_idx], x[test_idx], y[test_idx],
        source="offline-mnist-t10k-split",
        source_detail=(
            f"MNIST, offline: the official 10,000-image test split (t10k files) divided "
            f"(stratified, seed {seed}) into {len(train_idx)} training and {len(test_idx)} "
            "held-out images; the 60,000-image training split was not available"
        ),
        classes=tuple(str(i) for i in range(10)),
    )


# ---------------------------------------------------------------------------- synthetic
def _synthetic(n_train: int, n_test: int, dim: int, classes: int, seed: int) -> RawData:
    """A Gaussian mixture: one random mean per class, isotropic noise. Vector inputs."""
    g = np.random.default_rng(seed)
    # Means of norm ~3 and unit noise per coordinate: classes overlap, so test accuracy
    # stays well below 100% and the optimizers have something to differ on.
    means = g.normal(size=(classes, dim)) * (3.0 / np.sqrt(dim))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % classes
        g.shuffle(y)
        x = means[y] + g.normal(size=(n, dim))
        return x.astype(np.float32), y.astype(np.int64)

    xtr, ytr = draw(n_train)
    xte, yte = draw(n_test)
    return RawData(xtr, ytr, xte, yte, source="synthetic",
                   source_detail=f"synthetic Gaussian mixture ({classes} classes, dimension "
                   f"{dim}, seed {seed})", classes=tuple(str(i) for i in range(classes)))


# ---------------------------------------------------------------------------- public API
def _mnist_files_present(root: Path) -> bool:
    raw = root / "MNIST" / "raw"
    return all((raw / f).is_file() or (raw / f"{f}.gz").is_file() for f in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte"))


def resolve_source(name: str, root: str | os.PathLike | None = None) -> str:
    """The source id :func:`load_raw` would use, found by looking at files only."""
    root_p = data_root(root)
    if name == "cifar10":
        if (root_p / "cifar-10-batches-py").is_dir():
            return "torchvision"
        return "offline-cifar10-jpeg" if _find_offline(CIFAR10_ARCHIVE) else "torchvision"
    if name == "mnist":
        if _mnist_files_present(root_p):
            return "torchvision"
        offline = all(_find_offline(rel) for rel in MNIST_OFFLINE)
        return "offline-mnist-t10k-split" if offline else "torchvision"
    return name


def load_raw(name: str, root: str | os.PathLike | None = None, *, mnist_holdout: float = 0.2,
             data_seed: int = 0, synthetic_sizes: tuple[int, int] = (1024, 1024),
             synthetic_dim: int = 32, synthetic_classes: int = 10) -> RawData:
    """Find and read a dataset (see the module docstring for the order of sources)."""
    root_p = data_root(root)
    if name == "synthetic":
        return _synthetic(*synthetic_sizes, synthetic_dim, synthetic_classes, data_seed)
    if name == "cifar10":
        if (root_p / "cifar-10-batches-py").is_dir():
            return _cifar10_torchvision(root_p, download=False)
        archive = _find_offline(CIFAR10_ARCHIVE)
        if archive is not None:
            return _cifar10_offline(archive, root_p)
        if _download_allowed():
            try:
                return _cifar10_torchvision(root_p, download=True)
            except Exception as exc:  # no network, disk full, ...
                raise DataError(_no_data_message(name, root_p) + f" (download failed: {exc})")
        raise DataError(_no_data_message(name, root_p))
    if name == "mnist":
        if _mnist_files_present(root_p):
            return _mnist_torchvision(root_p, download=False)
        images = _find_offline("mnist/t10k-images-idx3-ubyte.gz")
        labels = _find_offline("mnist/t10k-labels-idx1-ubyte.gz")
        if images is not None and labels is not None:
            return _mnist_offline(images, labels, mnist_holdout, data_seed)
        if _download_allowed():
            try:
                return _mnist_torchvision(root_p, download=True)
            except Exception as exc:
                raise DataError(_no_data_message(name, root_p) + f" (download failed: {exc})")
        raise DataError(_no_data_message(name, root_p))
    raise DataError(f"unknown dataset {name!r}; allowed: cifar10, mnist, synthetic")


def stratified_order(y: np.ndarray, seed: int) -> np.ndarray:
    """A seeded order of indices whose every prefix is (nearly) class-balanced: within
    each class indices are shuffled, and classes are interleaved in proportion."""
    g = np.random.default_rng(seed)
    keys = np.empty(len(y), dtype=np.float64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rank = g.permutation(len(idx))
        keys[idx] = (rank + g.random(len(idx))) / len(idx)
    return np.argsort(keys, kind="stable")


def stratified_subset(y: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded, class-stratified subset of size n (all if None)."""
    if n is None or n >= len(y):
        return np.arange(len(y))
    return np.sort(stratified_order(y, seed)[:n])


def corrupt_labels(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick exactly round(fraction * n) examples and permute their labels among
    themselves (Chatterjee 2020). Returns (noisy labels, bool mask of picked examples)."""
    n = len(y)
    k = int(round(fraction * n))
    g = np.random.default_rng(seed + 7919)  # a stream apart from the subset's
    picked = g.choice(n, size=k, replace=False)
    noisy = y.copy()
    noisy[picked] = y[picked][g.permutation(k)]
    mask = np.zeros(n, dtype=bool)
    mask[picked] = True
    return noisy, mask


def _to_float(x: np.ndarray, name: str) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x))
    if t.dtype != torch.uint8:  # synthetic vectors
        return t.float()
    t = t.permute(0, 3, 1, 2).float().div_(255.0)
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in MEAN_STD[name])
    return (t - mean) / std


def load(name: str, *, n_train: int | None = None, n_test: int | None = None,
         label_noise: float = 0.0, data_seed: int = 0, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32, root: str | os.PathLike | None = None,
         mnist_holdout: float = 0.2, synthetic_dim: int = 32,
         synthetic_classes: int = 10, downsample: int = 1) -> Dataset:
    """Load a dataset, subset it, add label noise, normalize it and move it to ``device``
    once, so that training takes index slices of device tensors and copies nothing."""
    raw = load_raw(name, root, mnist_holdout=mnist_holdout, data_seed=data_seed,
                   synthetic_sizes=(n_train or 1024, n_test or 1024),
                   synthetic_dim=synthetic_dim, synthetic_classes=synthetic_classes)
    if n_train is not None and n_train > len(raw.y_train):
        from .config import ConfigError

        raise ConfigError(f"n_train = {n_train} is not allowed: at most {len(raw.y_train)} "
                          f"for {raw.source_detail}")
    tr = stratified_subset(raw.y_train, n_train, data_seed)
    te = stratified_subset(raw.y_test, n_test, data_seed + 1)
    y_clean = raw.y_train[tr]
    y_noisy, mask = corrupt_labels(y_clean, label_noise, data_seed)
    dev = torch.device(device)

    def prepare(x: np.ndarray) -> torch.Tensor:
        t = _to_float(x, name)
        # Averaging k×k blocks after normalization: the cheap inputs of the CPU scale.
        return torch.nn.functional.avg_pool2d(t, downsample) if downsample > 1 else t

    return Dataset(
        name=name,
        x_train=prepare(raw.x_train[tr]).to(dev, dtype),
        y_train=torch.from_numpy(y_noisy).to(dev),
        x_test=prepare(raw.x_test[te]).to(dev, dtype),
        y_test=torch.from_numpy(raw.y_test[te].copy()).to(dev),
        source=raw.source,
        source_detail=raw.source_detail,
        classes=raw.classes,
        clean_y_train=torch.from_numpy(y_clean.copy()).to(dev),
        corrupt=torch.from_numpy(mask).to(dev),
        train_index=tr,
    )


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crops with zero padding and random horizontal flips, for the whole batch of
    images at once on their device (no per-sample Python)."""
    n, c, h, w = x.shape
    dev = x.device
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device="cpu").to(dev)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device="cpu").to(dev)
    flip = (torch.rand(n, generator=generator, device="cpu") < 0.5).to(dev)
    rows = (torch.arange(h, device=dev)[None, :] + dy[:, None])  # (n, h)
    cols = (torch.arange(w, device=dev)[None, :] + dx[:, None])  # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    idx_n = torch.arange(n, device=dev)[:, None, None, None]
    idx_c = torch.arange(c, device=dev)[None, :, None, None]
    return xp[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]


def load_for(cfg, device: str | torch.device = "cpu") -> Dataset:
    """The dataset of a :class:`~implicitreg.engine.config.RunConfig`, on ``device``."""
    from .device import param_dtype

    return load(cfg.dataset, n_train=cfg.n_train, n_test=cfg.n_test,
                label_noise=cfg.label_noise, data_seed=cfg.data_seed, device=device,
                dtype=param_dtype(cfg.precision), root=cfg.data_root,
                mnist_holdout=cfg.mnist_holdout, synthetic_dim=cfg.synthetic_dim,
                synthetic_classes=cfg.synthetic_classes, downsample=cfg.downsample)


def input_spec(cfg) -> tuple[tuple[int, ...], int]:
    """(input shape, number of classes) of a config's dataset, without loading it."""
    k = cfg.downsample
    shape = {"mnist": (1, 28 // k, 28 // k), "cifar10": (3, 32 // k, 32 // k)}.get(
        cfg.dataset, (cfg.synthetic_dim,))
    return shape, (cfg.synthetic_classes if cfg.dataset == "synthetic" else 10)
