"""Additive (Bahdanau) attention as the fast.ai lesson writes it.

Bahdanau, Cho & Bengio, "Neural Machine Translation by Jointly Learning to Align and Translate",
arXiv:1409.0473, section 3.1: ``score(s, h_j) = v^T tanh(W1 h_j + W2 s)``. The lesson's ``W1`` over
the encoder outputs is computed once per batch (``project_keys``); each decoder step adds ``W2`` of
the decoder's top hidden state, applies tanh and ``v``, and softmaxes over source positions. Padded
source positions are masked to ``-inf`` before the softmax, so they get exactly zero weight.
"""

from __future__ import annotations

import torch
from torch import nn


class AdditiveAttention(nn.Module):
    """``context, weights = attention(query, projected_keys, values, mask)``.

    Args:
        key_size: size of each encoder output (values and keys).
        query_size: size of the decoder hidden state.
        hidden_size: size of the tanh layer (the lesson uses the decoder size).
    """

    def __init__(self, key_size: int, query_size: int, hidden_size: int) -> None:
        super().__init__()
        self.key_layer = nn.Linear(key_size, hidden_size, bias=False)  # W1
        self.query_layer = nn.Linear(query_size, hidden_size)  # W2 (the lesson's l2)
        self.energy_layer = nn.Linear(hidden_size, 1, bias=False)  # v

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """(batch, src_len, key_size) -> (batch, src_len, hidden_size); once per batch."""
        return self.key_layer(keys)

    def forward(
        self,
        query: torch.Tensor,
        projected_keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from one decoder step over the source.

        Args:
            query: (batch, query_size) decoder state.
            projected_keys: (batch, src_len, hidden_size) from ``project_keys``.
            values: (batch, src_len, key_size) encoder outputs.
            mask: (batch, src_len) bool, True at real tokens, False at padding.

        Returns:
            context: (batch, key_size) weighted sum of ``values``.
            weights: (batch, src_len), rows sum to 1, 0 where ``mask`` is False.
        """
        self._check_shapes(query, projected_keys, values, mask)
        query = self.query_layer(query).unsqueeze(1)  # (batch, 1, hidden)
        scores = self.energy_layer(torch.tanh(projected_keys + query)).squeeze(-1)  # (batch, src)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (batch, src_len)
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # (batch, key_size)
        return context, weights

    @staticmethod
    def _check_shapes(
        query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> None:
        batch, src_len = mask.shape
        assert query.dim() == 2 and query.size(0) == batch, f"query {tuple(query.shape)}"
        assert keys.shape[:2] == (batch, src_len), (
            f"keys {tuple(keys.shape)} vs mask {(batch, src_len)}"
        )
        assert values.shape[:2] == (batch, src_len), f"values {tuple(values.shape)}"
        assert mask.dtype == torch.bool, f"mask must be bool, got {mask.dtype}"
