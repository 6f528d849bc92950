"""The run configuration: one dataclass that says everything a training run depends on.

Every field has a docstring. Bad values raise :class:`ConfigError` when the config is
built, before any data is loaded or any step is taken.

Which fields enter a run's key, and how to add one without changing any key:
``CONTRIBUTING.md`` at the top of the project.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any, get_type_hints

DATASETS = ("cifar10", "mnist", "synthetic")
MODELS = ("mlp", "cnn", "resnet18", "resnet18-gn")
METHODS = ("sgd", "sgd-replacement", "gd")
REGULARIZERS = ("none", "gd-modified", "sgd-modified")
PENALTY_GRADS = ("finite-difference", "double-backprop")
PRECISIONS = ("float32", "float64", "bf16-autocast")
DEVICES = ("auto", "cpu", "cuda", "mps")
INITS = ("default", "xavier")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
LR_SCHEDULES = ("constant", "triangular")
LOSSES = ("cross-entropy", "mse")
ACTIVATIONS = ("relu", "tanh")
SHARPNESS_METHODS = ("power", "lanczos")

# Fields added after NUMERICS_VERSION 1, with the default at which a run computes exactly
# what it computed before the field existed. At that default they are left out of the
# run-store key, so that every key (and every stored result, and tests/golden/) made
# before they were added stays valid; any other value enters the key and splits the runs.
ADDED_FIELD_DEFAULTS = {
    "optimizer": "sgd",
    "lr_schedule": "constant",
    "lr_min": 0.0,
    "cycle_steps": 100,
    "downsample": 1,
    "loss": "cross-entropy",
    "activation": "relu",
    "sharpness_method": "power",
    "grad_stats": True,
}

# Fields that say where or how verbosely a run executes, not what it computes. They are
# left out of the run-store key so that a result computed on a GPU is found again when
# the book is rebuilt on a CPU.
EXECUTION_FIELDS = ("device", "data_root", "progress", "checkpoint_every")


class ConfigError(ValueError):
    """A parameter has a value that is not allowed. The message names the parameter,
    the value and what is allowed."""


TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def parse_bool(text: str, name: str, error: type[Exception] = ConfigError) -> bool:
    """The one boolean syntax of the project's environment variables."""
    low = text.strip().lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise error(f"{name}={text!r} is not allowed: one of {TRUE + FALSE}")


@dataclass(frozen=True)
class RunConfig:
    # ---- data ---------------------------------------------------------------------
    dataset: str = "cifar10"
    """Which data: ``cifar10``, ``mnist`` or ``synthetic`` (a Gaussian-mixture
    classification task generated from ``seed``-independent ``data_seed``)."""
    n_train: int | None = None
    """Number of training examples, a seeded class-stratified subset; ``None`` takes all
    available (50,000 for CIFAR-10; 60,000 for MNIST, or the offline training split)."""
    n_test: int | None = None
    """Number of test examples (stratified subset); ``None`` takes the whole test set."""
    data_seed: int = 0
    """Seed for subsetting, the offline MNIST split, synthetic data and label noise.
    Kept apart from ``seed`` so that runs with different ``seed`` see the same data."""
    label_noise: float = 0.0
    """Fraction p in [0, 1] of *training* examples whose labels are re-drawn by a random
    permutation among themselves (Chatterjee 2020). Test labels are never touched."""
    augment: bool = False
    """Random crops (4-pixel padding) and horizontal flips, applied on the device to the
    whole training tensor once per epoch. Image datasets only."""
    downsample: int = 1
    """Average-pool the images by this factor before training (2: CIFAR-10 at 16×16,
    a quarter of the pixels and of a CNN's cost); 1 keeps the full resolution. Image
    datasets only; it must divide the image side (32 for CIFAR-10, 28 for MNIST)."""
    synthetic_dim: int = 32
    """Input dimension of the ``synthetic`` dataset."""
    synthetic_classes: int = 10
    """Number of classes of the ``synthetic`` dataset."""
    mnist_holdout: float = 0.2
    """Offline MNIST only (the 10,000 official test images): fraction held out as the
    test set; the rest is the training set. Stratified and seeded by ``data_seed``."""
    data_root: str | None = None
    """Folder for datasets (default: ``$IMPLICITREG_DATA`` or ``~/.cache/implicitreg``)."""

    # ---- model ----------------------------------------------------------------------
    model: str = "mlp"
    """``mlp`` (fully connected, ``activation``), ``cnn`` (small conv net, no
    normalization layers), ``resnet18`` (CIFAR ResNet-18 with BatchNorm) or ``resnet18-gn`` (GroupNorm: free of
    BatchNorm, so full-batch and per-example gradients are well defined)."""
    widths: tuple[int, ...] = (2048,)
    """Hidden widths of the MLP, e.g. ``(2048,)`` for 784-2048-10 or ``(256, 256, 256)``."""
    cnn_width: int = 32
    """Channels of the first convolution of ``cnn`` (doubled at each of 3 stages)."""
    activation: str = "relu"
    """Nonlinearity of the ``mlp``: ``relu`` or ``tanh`` (smooth, as in Cohen et al.'s
    fc-tanh networks). The other models use ReLU."""
    init: str = "default"
    """Weight initialization: ``default`` (PyTorch's) or ``xavier`` (Glorot uniform,
    zero biases, as in Coherent Gradients)."""

    loss: str = "cross-entropy"
    """The training loss, a mean over examples: ``cross-entropy``, or ``mse``:
    ½‖f(x) − onehot(y)‖² summed over the classes (Cohen et al.'s square loss). Every
    gradient, penalty, probe and Hessian-vector product of the run uses it."""

    # ---- method -----------------------------------------------------------------------
    method: str = "sgd"
    """``sgd``: each epoch a random reshuffle into m = n_train // batch_size minibatches;
    ``sgd-replacement``: each step draws an independent minibatch (examples may repeat
    across steps); ``gd``: the full-batch gradient, accumulated over chunks."""
    batch_size: int = 128
    """Minibatch size B for ``sgd`` and ``sgd-replacement``; ignored by ``gd``."""
    fixed_partition: bool = False
    """``sgd`` only: draw the partition into m minibatches once and shuffle only their
    order each epoch, the exact setting of Smith et al.'s analysis. Needs B | n_train."""
    gd_chunk: int = 1000
    """``gd`` only: examples per forward/backward chunk. Memory stays bounded; the step is
    mathematically the full-batch step (BatchNorm, if present, normalizes per chunk)."""

    # ---- explicit regularizer -------------------------------------------------------
    reg: str = "none"
    """``none``; ``gd-modified``: λ‖∇C‖² of the step's batch; ``sgd-modified``:
    λ(1/m)Σ_k‖∇Ĉ_k‖² over micro-batches of size ``micro_batch`` inside each step."""
    reg_scale: float = 1.0
    """λ as a multiple of ε/4 (ε = ``lr``): 1 is the strength of the implicit term."""
    micro_batch: int = 32
    """Micro-batch size b of ``sgd-modified``; must divide ``batch_size`` for SGD."""
    penalty_grad: str = "finite-difference"
    """How ∇(‖g‖²) = 2Hg is computed: ``finite-difference`` (Hessian-vector product by a
    forward difference of gradients, one extra backward pass) or ``double-backprop``."""
    fd_step: float = 1e-3
    """Length of the finite-difference step along g/‖g‖."""

    winsorize: int = 0
    """Winsorized SGD (Chatterjee 2020): within each minibatch, per parameter coordinate,
    the c largest and c smallest per-example gradient values are clipped to the next
    value inward before averaging. 0 is plain SGD. Needs 2c < batch_size."""

    # ---- optimizer ------------------------------------------------------------------
    optimizer: str = "sgd"
    """The update rule: ``sgd`` (heavy-ball SGD/GD with ``momentum``, the setting of the
    theory), ``adam`` (torch.optim.Adam's arithmetic: β = (0.9, 0.999), eps 1e-8, L2
    ``weight_decay``; needs ``momentum`` = 0) or ``rmsprop`` (torch.optim.RMSprop's:
    α = 0.99, eps 1e-8, with ``momentum``). All of them apply to the gradient of
    ``method``'s batch: ``method="gd", optimizer="adam"`` is full-batch Adam."""
    lr: float = 0.1
    """Learning rate ε: the constant step, or the peak of a cyclical ``lr_schedule``."""
    lr_schedule: str = "constant"
    """``constant`` (ε = ``lr`` at every step, the setting of the theory) or
    ``triangular`` (Smith's cyclical rate: from ``lr_min`` up linearly to ``lr`` over the
    first half of each cycle of ``cycle_steps`` steps, and back down over the second)."""
    lr_min: float = 0.0
    """``triangular`` only: the learning rate at the start and end of each cycle
    (0 <= ``lr_min`` < ``lr``)."""
    cycle_steps: int = 100
    """``triangular`` only: steps per cycle (an even number >= 2); step s of a cycle uses
    ``lr_min`` + (``lr`` − ``lr_min``)·(1 − |2s/cycle_steps − 1|)."""
    momentum: float = 0.0
    """Heavy-ball momentum (0 is plain SGD/GD, the setting of the theory); for
    ``rmsprop``, the momentum of its buffer."""
    weight_decay: float = 0.0
    """L2 weight decay added to the gradient."""
    clip_grad: float | None = None
    """Clip the total gradient norm to this value (``None``: no clipping)."""
    epochs: int = 1
    """Training length in epochs (one epoch of ``gd`` is one step)."""
    steps: int | None = None
    """Training length in steps; overrides ``epochs`` when given."""
    seed: int = 0
    """Seed for initialization and minibatch order."""
    order_seed: int | None = None
    """Seed for the minibatch order alone (``None``: ``seed``), so that two runs can share
    an initialization and differ only in the order of their minibatches."""

    # ---- execution and measurement ----------------------------------------------------
    device: str = "auto"
    """``auto`` (cuda > mps > cpu), ``cpu``, ``cuda`` or ``mps``."""
    precision: str = "float32"
    """``float32``, ``float64`` (for numerical checks) or ``bf16-autocast`` (GPU)."""
    eval_every: int | None = None
    """Evaluate every this many steps (``None``: once per epoch, at least 10 times)."""
    eval_examples: int = 2048
    """Size of the fixed training subset on which gradient statistics are measured."""
    grad_stats: bool = True
    """At each evaluation, record ``grad_norm2_full``, ``grad_norm2_minibatch`` and
    ``grad_variance`` on the evaluation subset (see :func:`engine.probes.grad_stats`).
    They cost the gradients of every minibatch of that subset, as much as an epoch of
    training on it; a study that reads none of them turns them off."""
    sharpness: bool = False
    """Measure the top Hessian eigenvalue (power iteration on Hessian-vector products)."""
    sharpness_iters: int = 20
    """Hessian-vector products per ``sharpness`` measurement: power-iteration steps (it
    may stop earlier when converged), or the fixed size of the Lanczos basis."""
    sharpness_method: str = "power"
    """``power``: power iteration from a fresh random vector (the largest-magnitude
    eigenvalue); ``lanczos``: ``sharpness_iters`` Lanczos steps with full
    reorthogonalization (the largest eigenvalue), started from the previous
    measurement's top eigenvector, as Cohen et al. measure it. ``lanczos`` also records
    ``gd_multiplier``, the factor by which one full-batch step of size ``lr`` from the
    evaluated point multiplies the gradient's component along that eigenvector, and
    ``top_grad_share``, that component over the gradient's norm."""
    track_examples: bool | None = None
    """Record for every training example the first evaluation step at which it is
    classified as its (possibly noisy) label; ``None``: on when ``label_noise > 0``."""
    layer_stats: bool = False
    """At each evaluation, per parameter tensor: the norm of the mean minibatch gradient
    and the root-mean-square deviation of the minibatch gradients from it (drift and
    diffusion), over minibatches of size ``batch_size`` on the evaluation subset."""
    coherence_probe: int = 0
    """Size of a fixed sample of training examples on which, at each evaluation, the
    fractions f_p and f_c of ‖g‖² due to pristine and corrupt examples are measured from
    per-example gradients (0: off; needs label noise)."""
    coherence_nulls: int = 3
    """Null worlds for ``coherence_probe``: random reassignments of the corrupt flags."""
    deterministic: bool = False
    """Ask PyTorch for deterministic kernels (bit-identical reruns on one machine)."""
    progress: bool = True
    """Show a progress bar (tqdm); hidden when not attached to a terminal."""
    checkpoint_every: int | None = None
    """Also write a resumable checkpoint every this many steps. Runs started through
    ``implicitreg.run`` checkpoint every 5 minutes of wall time regardless, and resume
    from the checkpoint when restarted."""

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "widths" and isinstance(self.widths, list):
                object.__setattr__(self, "widths", tuple(self.widths))
        validate(self)

    # ---- helpers --------------------------------------------------------------------
    @property
    def reg_lambda(self) -> float:
        """λ in absolute units: ``reg_scale * lr / 4``."""
        return self.reg_scale * self.lr / 4.0

    @staticmethod
    def reg_scale_for(lam: float, lr: float) -> float:
        """The ``reg_scale`` of an absolute λ at learning rate ``lr``: λ is stated in
        absolute units everywhere in the chapters and converted here, once."""
        return lam / (lr / 4.0)

    @property
    def tracks_examples(self) -> bool:
        return self.label_noise > 0 if self.track_examples is None else self.track_examples

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        return d

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(
                f"unknown RunConfig parameter(s) {unknown}; allowed: {sorted(known)}"
            )
        return cls(**d)

    def key_dict(self) -> dict[str, Any]:
        """The part of the config that determines the result: without the execution
        fields (see EXECUTION_FIELDS) and without fields that the chosen dataset, model
        and regularizer ignore, so that e.g. ``cnn_width`` does not split MLP runs."""
        d = self.to_dict()
        for name in EXECUTION_FIELDS:
            d.pop(name)
        ignored = []
        if self.model != "cnn":
            ignored.append("cnn_width")
        if self.model != "mlp":
            ignored.append("widths")
        if self.dataset != "synthetic":
            ignored += ["synthetic_dim", "synthetic_classes"]
        else:
            ignored.append("downsample")
        if self.dataset != "mnist":
            ignored.append("mnist_holdout")
        if self.reg != "sgd-modified":
            ignored.append("micro_batch")
        if self.reg == "none":
            ignored += ["reg_scale", "penalty_grad", "fd_step"]
        if not self.coherence_probe:
            ignored.append("coherence_nulls")
        if not self.sharpness:
            ignored += ["sharpness_iters", "sharpness_method"]
        if self.model != "mlp":
            ignored.append("activation")
        if self.lr_schedule == "constant":
            ignored += ["lr_min", "cycle_steps"]
        for name, default in ADDED_FIELD_DEFAULTS.items():
            if name not in ignored and d[name] == default:
                ignored.append(name)  # see ADDED_FIELD_DEFAULTS: old keys stay valid
        for name in ignored:
            d.pop(name)
        return d

    def lr_at(self, step: int) -> float:
        """The learning rate of training step ``step`` (0-based) under ``lr_schedule``."""
        if self.lr_schedule == "constant":
            return self.lr
        s = step % self.cycle_steps
        frac = 1.0 - abs(2.0 * s / self.cycle_steps - 1.0)
        return self.lr_min + (self.lr - self.lr_min) * frac


def _type_ok(value: Any, hint: Any) -> bool:
    text = str(hint)
    if text.startswith("tuple"):
        return isinstance(value, tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)
    if value is None:
        return "None" in text
    if isinstance(value, bool):
        return "bool" in text
    if isinstance(value, int):
        return "int" in text or "float" in text
    if isinstance(value, float):
        return "float" in text
    if isinstance(value, str):
        return "str" in text
    return False


def type_words(hint: Any) -> str:
    """A field's type in words, for error messages: "a float", "an integer or None"."""
    text = str(hint)
    if text.startswith("tuple"):
        return "a tuple of integers"
    words = {"bool": "a boolean", "int": "an integer", "float": "a float", "str": "a string"}
    names = [hint.__name__] if isinstance(hint, type) else [
        n.strip() for n in text.split("|")]
    found = [words[n] for n in names if n in words]
    return " or ".join(found + (["None"] if "None" in names else [])) or text


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"RunConfig.{name} = {value!r} is not allowed: {allowed}")


def validate(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` naming the first bad parameter."""
    hints = get_type_hints(RunConfig)
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if not _type_ok(value, hints[f.name]):
            _fail(f.name, value, f"expected {type_words(hints[f.name])}")
    choices = {
        "dataset": DATASETS, "model": MODELS, "method": METHODS, "reg": REGULARIZERS,
        "penalty_grad": PENALTY_GRADS, "precision": PRECISIONS, "device": DEVICES,
        "init": INITS, "optimizer": OPTIMIZERS, "lr_schedule": LR_SCHEDULES,
        "loss": LOSSES, "activation": ACTIVATIONS, "sharpness_method": SHARPNESS_METHODS,
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            _fail(name, getattr(cfg, name), f"one of {list(allowed)}")
    for name in ["winsorize", "coherence_probe", "coherence_nulls"]:
        if getattr(cfg, name) < 0:
            _fail(name, getattr(cfg, name), "an integer >= 0")
    if cfg.winsorize:
        if cfg.method == "gd" or cfg.reg != "none":
            _fail("winsorize", cfg.winsorize, "0 unless method is sgd/sgd-replacement "
                  "and reg is 'none'")
        if 2 * cfg.winsorize >= cfg.batch_size:
            _fail("winsorize", cfg.winsorize, f"less than batch_size/2 = {cfg.batch_size / 2:g}")
    if (cfg.winsorize or cfg.coherence_probe) and cfg.model == "resnet18":
        _fail("model", cfg.model, "a model without BatchNorm when per-example gradients "
              "are needed (winsorize, coherence_probe): e.g. 'resnet18-gn'")
    if cfg.coherence_probe and cfg.label_noise == 0:
        _fail("coherence_probe", cfg.coherence_probe,
              "0 unless label_noise > 0 (there are no corrupt examples to attribute)")
    positive_ints = ["batch_size", "gd_chunk", "micro_batch", "epochs", "eval_examples",
                     "sharpness_iters", "synthetic_dim", "cnn_width"]
    for name in positive_ints:
        if getattr(cfg, name) < 1:
            _fail(name, getattr(cfg, name), "an integer >= 1")
    if cfg.order_seed is not None and cfg.order_seed < 0:
        _fail("order_seed", cfg.order_seed, "None or an integer >= 0")
    for name in ["n_train", "n_test", "steps", "eval_every", "checkpoint_every"]:
        v = getattr(cfg, name)
        if v is not None and v < 1:
            _fail(name, v, "None or an integer >= 1")
    if cfg.synthetic_classes < 2:
        _fail("synthetic_classes", cfg.synthetic_classes, "an integer >= 2")
    if not cfg.widths or any(w < 1 for w in cfg.widths):
        _fail("widths", cfg.widths, "a non-empty tuple of integers >= 1")
    for name in ["lr", "fd_step"]:
        v = getattr(cfg, name)
        if not (math.isfinite(v) and v > 0):
            _fail(name, v, "a finite number > 0")
    for name in ["momentum"]:
        v = getattr(cfg, name)
        if not (0 <= v < 1):
            _fail(name, v, "a number in [0, 1)")
    for name in ["weight_decay", "reg_scale"]:
        v = getattr(cfg, name)
        if not (math.isfinite(v) and v >= 0):
            _fail(name, v, "a finite number >= 0")
    if cfg.optimizer == "adam" and cfg.momentum != 0:
        _fail("momentum", cfg.momentum, "0 with optimizer='adam' (Adam's first-moment "
              "average, β1 = 0.9, is its momentum)")
    if cfg.lr_schedule != "constant":
        if not (math.isfinite(cfg.lr_min) and 0 <= cfg.lr_min < cfg.lr):
            _fail("lr_min", cfg.lr_min, f"a number in [0, lr={cfg.lr:g}) (the bottom of "
                  "the cycle, below its peak lr)")
        if cfg.cycle_steps < 2 or cfg.cycle_steps % 2:
            _fail("cycle_steps", cfg.cycle_steps, "an even integer >= 2 (half the cycle "
                  "rises, half falls)")
    if cfg.clip_grad is not None and not (math.isfinite(cfg.clip_grad) and cfg.clip_grad > 0):
        _fail("clip_grad", cfg.clip_grad, "None or a finite number > 0")
    if not (0.0 <= cfg.label_noise <= 1.0):
        _fail("label_noise", cfg.label_noise, "a fraction in [0, 1]")
    if not (0.0 < cfg.mnist_holdout < 1.0):
        _fail("mnist_holdout", cfg.mnist_holdout, "a fraction in (0, 1)")
    if cfg.reg == "sgd-modified" and cfg.method != "gd" and cfg.batch_size % cfg.micro_batch:
        _fail("micro_batch", cfg.micro_batch,
              f"a divisor of batch_size={cfg.batch_size} (the step's batch is split into "
              "equal micro-batches)")
    if cfg.downsample < 1:
        _fail("downsample", cfg.downsample, "an integer >= 1 (1: full resolution)")
    side = {"cifar10": 32, "mnist": 28}.get(cfg.dataset)
    if cfg.downsample > 1 and (side is None or side % cfg.downsample):
        _fail("downsample", cfg.downsample,
              "1 for the synthetic dataset (no images)" if side is None else
              f"a divisor of the image side {side} of {cfg.dataset}")
    if cfg.augment and cfg.dataset == "synthetic":
        _fail("augment", cfg.augment, "False for the synthetic dataset (no images)")
    if cfg.model != "mlp" and cfg.dataset == "synthetic":
        _fail("model", cfg.model, "'mlp' for the synthetic dataset (vector inputs)")
    if cfg.activation != "relu" and cfg.model != "mlp":
        _fail("activation", cfg.activation, "'relu' unless model is 'mlp' (the other "
              "models are ReLU networks)")
    if cfg.fixed_partition and cfg.method != "sgd":
        _fail("fixed_partition", cfg.fixed_partition, "True only with method='sgd'")
    if cfg.precision == "bf16-autocast" and cfg.reg != "none" and cfg.penalty_grad == "finite-difference":
        # A forward difference of bf16 gradients is dominated by rounding error.
        _fail("precision", cfg.precision,
              "'float32' or 'float64' with the finite-difference penalty gradient")


def check_against_data(cfg: RunConfig, n_available: int) -> int:
    """Check the sizes that need the dataset's size; return the training-set size."""
    n = cfg.n_train or n_available
    if cfg.n_train is not None and cfg.n_train > n_available:
        _fail("n_train", cfg.n_train, f"at most {n_available} for dataset {cfg.dataset!r}")
    if cfg.method != "gd" and cfg.batch_size > n:
        _fail("batch_size", cfg.batch_size, f"at most n_train={n}")
    if cfg.fixed_partition and n % cfg.batch_size:
        _fail("batch_size", cfg.batch_size,
              f"a divisor of n_train={n} when fixed_partition=True")
    if cfg.reg == "sgd-modified" and cfg.method == "gd" and cfg.micro_batch > n:
        _fail("micro_batch", cfg.micro_batch, f"at most n_train={n}")
    return n


def config_fields_doc() -> dict[str, str]:
    """Field name -> docstring, read from this module's source (for the CLI's help)."""
    import ast
    import inspect

    src = inspect.getsource(RunConfig)
    tree = ast.parse(src)
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(
            nxt.value, ast.Constant
        ):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())  # type: ignore[attr-defined]
    return docs


__all__ = ["RunConfig", "ConfigError", "validate", "check_against_data", "config_fields_doc"]
