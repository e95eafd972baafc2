"""``DeviseNet``: backbone body -> concat pooling -> regression head, as a plain ``nn.Module``.

``features`` gives the pooled activations that precomputation caches; ``forward`` accepts either
images or such cached activations, so the head trains on the cache many times faster.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from lit_common.ranges import PROBABILITY, SIZE, Int, Range, check_ranges
from lit_devise.backbone import build_body
from lit_devise.head import ConcatPool, DeviseHead


@dataclass
class DeviseNetConfig:
    """Architecture of ``DeviseNet``.

    Attributes:
        backbone: torchvision classifier name (``resnet50``, ``resnet18``, ``densenet121``, ...)
            or ``cifar_resnet20``.
        weights: torchvision weights name (``DEFAULT``, ``IMAGENET1K_V2``; downloaded once into
            torchvision's cache), or None for random init.
        weights_path: a local state dict of the whole classifier, loaded after ``weights``.
        init_seed: seed of the backbone's random initialisation (what ``weights`` do not set).
        freeze: keep the backbone fixed (and its BatchNorm statistics); needed for precompute.
        hidden: hidden width of the head.
        dropout_in: head dropout before its first linear layer.
        dropout_hidden: head dropout before its output layer.
    """

    backbone: str = "resnet50"
    weights: str | None = None
    weights_path: str | None = None
    init_seed: int = 0
    freeze: bool = True
    hidden: int = 1024
    dropout_in: float = 0.2
    dropout_hidden: float = 0.2

    RANGES: ClassVar[dict[str, Range]] = {
        "init_seed": Int(0, 2**32 - 1),
        "hidden": SIZE,
        "dropout_in": PROBABILITY,
        "dropout_hidden": PROBABILITY,
    }

    def __post_init__(self) -> None:
        check_ranges(asdict(self), self.RANGES)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeviseNet(nn.Module):
    """Images (or their pooled activations) -> predicted word vectors.

    Args:
        config: the architecture.
        out_dim: word-vector dimension.
    """

    def __init__(self, config: DeviseNetConfig, out_dim: int) -> None:
        super().__init__()
        self.config = config
        self.body, channels = build_body(
            config.backbone, config.weights, config.weights_path, config.init_seed
        )
        self.pool = ConcatPool()
        self.feature_dim = 2 * channels
        self.head = DeviseHead(
            self.feature_dim, out_dim, config.hidden, config.dropout_in, config.dropout_hidden
        )
        if config.freeze:
            self.body.requires_grad_(False)

    def train(self, mode: bool = True) -> DeviseNet:
        super().train(mode)
        if self.config.freeze:  # a frozen body keeps its BatchNorm running statistics
            self.body.eval()
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(batch, 3, H, W) normalised images -> (batch, feature_dim) pooled activations."""
        return self.pool(self.body(images))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 3, H, W) images or (batch, feature_dim) activations -> (batch, out_dim)."""
        if x.dim() == 4:
            x = self.features(x)
        elif x.dim() != 2 or x.size(1) != self.feature_dim:
            raise ValueError(
                f"expected images (batch, 3, H, W) or activations (batch, {self.feature_dim}), "
                f"got {tuple(x.shape)}"
            )
        return self.head(x)
