"""Additive (Bahdanau) attention as the fast.ai lesson writes it.

Bahdanau, Cho & Bengio, "Neural Machine Translation by Jointly Learning to Align and Translate",
arXiv:1409.0473, section 3.1: ``score(s, h_j) = v^T tanh(W1 h_j + W2 s)``. The lesson's ``W1`` over
the encoder outputs is computed once per batch (``project_keys``); each query adds ``W2`` of a
decoder state, applies tanh and ``v``, and softmaxes over source positions. Padded source positions
are masked to ``-inf`` before the softmax, so they get exactly zero weight.

A query is one decoder step, ``(batch, query_size)``, or every step of a teacher-forced sequence at
once, ``(batch, tgt_len, query_size)``: the second form is what lets a fully teacher-forced decoder
attend for all positions in one batched computation.
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
        """Attend from one decoder step (or from every step at once) over the source.

        Args:
            query: (batch, query_size) decoder state, or (batch, tgt_len, query_size).
            projected_keys: (batch, src_len, hidden_size) from ``project_keys``.
            values: (batch, src_len, key_size) encoder outputs.
            mask: (batch, src_len) bool, True at real tokens, False at padding.

        Returns:
            context: (batch, key_size) weighted sum of ``values``; (batch, tgt_len, key_size) for
                a 3-d query.
            weights: (batch, src_len), rows sum to 1, 0 where ``mask`` is False;
                (batch, tgt_len, src_len) for a 3-d query.
        """
        self._check_shapes(query, projected_keys, values, mask)
        one_step = query.dim() == 2
        if one_step:
            query = query.unsqueeze(1)  # (batch, 1, query_size)
        query = self.query_layer(query).unsqueeze(2)  # (batch, tgt_len, 1, hidden)
        energy = torch.tanh(projected_keys.unsqueeze(1) + query)  # (batch, tgt_len, src, hidden)
        scores = self.energy_layer(energy).squeeze(-1)  # (batch, tgt_len, src_len)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (batch, tgt_len, src_len)
        context = torch.bmm(weights, values)  # (batch, tgt_len, key_size)
        if one_step:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights

    @staticmethod
    def _check_shapes(
        query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> None:
        batch, src_len = mask.shape
        assert query.dim() in (2, 3) and query.size(0) == batch, f"query {tuple(query.shape)}"
        assert keys.shape[:2] == (batch, src_len), (
            f"keys {tuple(keys.shape)} vs mask {(batch, src_len)}"
        )
        assert values.shape[:2] == (batch, src_len), f"values {tuple(values.shape)}"
        assert mask.dtype == torch.bool, f"mask must be bool, got {mask.dtype}"
