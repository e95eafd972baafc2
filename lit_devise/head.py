"""The lesson's regression head: concat pooling, two BatchNorm-Dropout-Linear blocks, no softmax.

fast.ai 0.7's ``ConvnetBuilder(..., is_reg=True, xtra_fc=[1024], ps=[0.2, 0.2])`` on top of the
backbone: ``AdaptiveConcatPool2d`` (max and average pooling side by side), ``Flatten``, then
``BatchNorm1d -> Dropout -> Linear(1024) -> ReLU -> BatchNorm1d -> Dropout -> Linear(dim)``.
The output is a point in word-vector space.
"""

from __future__ import annotations

import torch
from torch import nn

from lit_common.errors import InputError


class ConcatPool(nn.Module):
    """(batch, C, H, W) -> (batch, 2C): global max pooling, then global average pooling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.amax(dim=(2, 3)), x.mean(dim=(2, 3))], dim=1)


class DeviseHead(nn.Sequential):
    """(batch, in_features) pooled activations -> (batch, out_dim) predicted word vectors.

    Args:
        in_features: twice the backbone's channels (concat pooling).
        out_dim: word-vector dimension.
        hidden: width of the hidden layer (lesson: 1024).
        dropout_in: dropout before the first linear layer (lesson: 0.2).
        dropout_hidden: dropout before the output layer (lesson: 0.2).
    """

    def __init__(
        self,
        in_features: int,
        out_dim: int,
        hidden: int = 1024,
        dropout_in: float = 0.2,
        dropout_hidden: float = 0.2,
    ) -> None:
        for name, p in (("dropout_in", dropout_in), ("dropout_hidden", dropout_hidden)):
            if not 0.0 <= p < 1.0:
                raise InputError(f"{name}={p} must be in [0, 1)")
        super().__init__(
            nn.BatchNorm1d(in_features),
            nn.Dropout(dropout_in),
            nn.Linear(in_features, hidden),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden),
            nn.Dropout(dropout_hidden),
            nn.Linear(hidden, out_dim),
        )
