"""The decoder: one step at a time, optionally attending over the encoder outputs.

Each step embeds the previous token; with attention, the lesson's ``l3`` combines that embedding
with the attention context into the RNN input; the RNN output goes through dropout and the output
layer, whose weights can be tied to the decoder embedding (Press & Wolf, arXiv:1608.05859; needs the
hidden size to equal the embedding size).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lit_seq2seq.attention import AdditiveAttention
from lit_seq2seq.encoder import Hidden, make_rnn


@dataclass
class Memory:
    """What the decoder reads at every step, computed once per batch.

    Attributes:
        outputs: (batch, src_len, enc_output_size) encoder outputs.
        projected_keys: (batch, src_len, attn_size), or None without attention.
        mask: (batch, src_len) bool, True at real source tokens.
    """

    outputs: torch.Tensor
    projected_keys: torch.Tensor | None
    mask: torch.Tensor

    def repeat(self, times: int) -> Memory:
        """Each row ``times`` times in a row, for beam search."""
        keys = self.projected_keys
        return Memory(
            self.outputs.repeat_interleave(times, 0),
            None if keys is None else keys.repeat_interleave(times, 0),
            self.mask.repeat_interleave(times, 0),
        )


class Decoder(nn.Module):
    """One decoding step: previous token + state (+ attention) -> logits over the target vocabulary.

    Args:
        vocab_size: target vocabulary size.
        emb_dim: embedding size.
        hidden_size: RNN hidden size.
        n_layers: RNN layers.
        dropout: between RNN layers.
        out_dropout: before the output layer.
        rnn_type: ``gru`` or ``lstm``.
        enc_output_size: size of each encoder output.
        attention: attend over the encoder outputs; False gives the lesson's plain seq2seq.
        attn_size: attention tanh layer size.
        tie_weights: share the output layer's weights with the embedding.
        pad_idx: padding id.
    """

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int,
        hidden_size: int,
        n_layers: int,
        dropout: float,
        out_dropout: float,
        rnn_type: str,
        enc_output_size: int,
        attention: bool,
        attn_size: int,
        tie_weights: bool,
        pad_idx: int,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_idx)
        self.attention = (
            AdditiveAttention(enc_output_size, hidden_size, attn_size) if attention else None
        )
        if attention:
            self.combine = nn.Linear(emb_dim + enc_output_size, emb_dim)  # the lesson's l3
        self.rnn = make_rnn(rnn_type, emb_dim, hidden_size, n_layers, dropout)
        self.rnn_type = rnn_type
        self.out_dropout = nn.Dropout(out_dropout)
        self.out = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            if hidden_size != emb_dim:
                raise ValueError(
                    f"tie_weights needs dec_hidden == dec_emb_dim, got {hidden_size} and {emb_dim}"
                )
            self.out.weight = self.embedding.weight

    def step(
        self, prev: torch.Tensor, hidden: Hidden, memory: Memory
    ) -> tuple[torch.Tensor, Hidden, torch.Tensor | None]:
        """Decode one position.

        Args:
            prev: (batch,) previous target ids (bos at the first step).
            hidden: (n_layers, batch, hidden_size), or an (h, c) pair for LSTM.
            memory: the encoder side.

        Returns:
            logits: (batch, vocab_size).
            hidden: the new state.
            weights: (batch, src_len) attention weights, or None without attention.
        """
        emb = self.embedding(prev)  # (batch, emb)
        weights = None
        if self.attention is not None:
            top = hidden[0][-1] if isinstance(hidden, tuple) else hidden[-1]  # (batch, hidden)
            assert memory.projected_keys is not None
            context, weights = self.attention(
                top, memory.projected_keys, memory.outputs, memory.mask
            )
            emb = self.combine(torch.cat([emb, context], dim=-1))  # (batch, emb)
        output, hidden = self.rnn(emb.unsqueeze(1), hidden)  # (batch, 1, hidden)
        logits = self.out(self.out_dropout(output.squeeze(1)))  # (batch, vocab)
        return logits, hidden, weights
