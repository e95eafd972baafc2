"""Additive attention against a hand computation; padding gets zero weight."""

from __future__ import annotations

import torch

from lit_seq2seq.attention import AdditiveAttention


def test_weights_sum_to_one_zero_on_padding_and_match_hand_computation() -> None:
    torch.manual_seed(0)
    attention = AdditiveAttention(key_size=5, query_size=3, hidden_size=7)
    keys = torch.randn(2, 4, 5)
    query = torch.randn(2, 3)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    context, weights = attention(query, attention.project_keys(keys), keys, mask)
    assert weights.shape == (2, 4) and context.shape == (2, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2))
    assert (weights[~mask] == 0).all()

    W1, W2, b2, v = (
        attention.key_layer.weight,
        attention.query_layer.weight,
        attention.query_layer.bias,
        attention.energy_layer.weight[0],
    )
    for i in range(2):
        n = int(mask[i].sum())
        scores = torch.stack(
            [v @ torch.tanh(W1 @ keys[i, j] + W2 @ query[i] + b2) for j in range(n)]
        )
        expected = torch.softmax(scores, 0)
        assert torch.allclose(weights[i, :n], expected, atol=1e-6)
        assert torch.allclose(context[i], (expected[:, None] * keys[i, :n]).sum(0), atol=1e-6)


def test_all_steps_at_once_equal_one_step_at_a_time() -> None:
    torch.manual_seed(1)
    attention = AdditiveAttention(key_size=5, query_size=3, hidden_size=7)
    keys = torch.randn(2, 4, 5)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    queries = torch.randn(2, 6, 3)  # six decoder steps
    projected = attention.project_keys(keys)
    context, weights = attention(queries, projected, keys, mask)
    assert context.shape == (2, 6, 5) and weights.shape == (2, 6, 4)
    for t in range(6):
        c, w = attention(queries[:, t], projected, keys, mask)
        assert torch.allclose(context[:, t], c, atol=1e-6) and torch.allclose(weights[:, t], w)
