"""The networks the book trains: an MLP, a small CNN without normalization layers, and a
CIFAR ResNet-18 with BatchNorm or (free of BatchNorm) GroupNorm."""
from __future__ import annotations

import math

import torch
from torch import nn


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Fully connected network on flattened inputs, e.g. 784-2048-10; ReLU or tanh."""

    def __init__(self, in_features: int, widths: tuple[int, ...], num_classes: int,
                 activation: str = "relu"):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_features
        for w in widths:
            layers += [nn.Linear(prev, w), ACTIVATIONS[activation]()]
            prev = w
        layers.append(nn.Linear(prev, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Three conv stages (width w, 2w, 4w), each conv-ReLU-maxpool, then a linear head.
    No normalization layer, so per-example and full-batch gradients are well defined.
    About 0.3M parameters at w=32: trains on a CPU in minutes on a CIFAR-10 subset."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
        )
        self.head = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(min(32, channels // 4) or 1, channels)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.n1 = _norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.n2 = _norm(norm, cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          _norm(norm, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.n1(self.conv1(x)))
        out = self.n2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """The CIFAR variant of ResNet-18 (3x3 stem, no max-pool), as in Geiping et al. 2022
    and Novack et al. 2023. ``norm='bn'`` (BatchNorm) or ``'gn'`` (GroupNorm)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, norm: str = "bn"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
                                  _norm(norm, 64), nn.ReLU())
        blocks: list[nn.Module] = []
        cin = 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            blocks += [BasicBlock(cin, cout, stride, norm), BasicBlock(cout, cout, 1, norm)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.head = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, *,
                widths: tuple[int, ...] = (2048,), cnn_width: int = 32,
                init: str = "default", activation: str = "relu") -> nn.Module:
    """Build a model by name (see :data:`implicitreg.engine.config.MODELS`)."""
    if name == "mlp":
        model: nn.Module = MLP(math.prod(input_shape), widths, num_classes, activation)
    elif name == "cnn":
        model = SmallCNN(input_shape[0], num_classes, cnn_width)
    elif name in ("resnet18", "resnet18-gn"):
        model = ResNet18(input_shape[0], num_classes, "bn" if name == "resnet18" else "gn")
    else:
        raise ValueError(f"unknown model {name!r}")
    if init == "xavier":
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return model


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def model_for(cfg, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The (freshly initialized, from the global RNG) model of a
    :class:`~implicitreg.engine.config.RunConfig`, carrying the run's loss."""
    from .objective import set_loss

    model = build_model(cfg.model, input_shape, num_classes, widths=cfg.widths,
                        cnn_width=cfg.cnn_width, init=cfg.init, activation=cfg.activation)
    return set_loss(model, cfg.loss)
