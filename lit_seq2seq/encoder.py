"""The encoder: embedding -> dropout -> GRU/LSTM (optionally bidirectional) -> bridge to the
decoder, with AWD-LSTM's regularisers when switched on (``lit_seq2seq/regularisers.py``).

As in the lesson, the final hidden state of every layer (both directions concatenated) goes through
a bias-free linear "bridge" to the decoder's hidden size and initialises the decoder, layer for
layer. Sequences are packed, so a backward direction starts at each sentence's last real token, not
at padding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lit_seq2seq.regularisers import DropMasks, SideRegularisers, embed, recur, word_dropout
from lit_seq2seq.rnn import Hidden, LayeredRNN, apply_locked, make_rnn

__all__ = ["Encoder", "Hidden", "make_rnn"]


class Encoder(nn.Module):
    """Encode source ids into per-position outputs and an initial decoder state.

    Args:
        vocab_size: source vocabulary size.
        emb_dim: embedding size (300 for fastText vectors).
        hidden_size: RNN hidden size per direction.
        n_layers: RNN layers; must equal the decoder's.
        dropout: between RNN layers.
        emb_dropout: on the embeddings.
        rnn_type: ``gru`` or ``lstm``.
        bidirectional: read the source both ways.
        dec_hidden_size: the decoder's hidden size (the bridge's output).
        pad_idx: padding id (zero embedding, no gradient).
        regularisers: AWD-LSTM's regularisers and word dropout for this side (all off: None).
    """

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int,
        hidden_size: int,
        n_layers: int,
        dropout: float,
        emb_dropout: float,
        rnn_type: str,
        bidirectional: bool,
        dec_hidden_size: int,
        pad_idx: int,
        regularisers: SideRegularisers | None = None,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_idx)
        self.emb_dropout = nn.Dropout(emb_dropout)
        self.reg = regularisers or SideRegularisers()
        rnn_class = LayeredRNN if self.reg.layered else make_rnn
        self.rnn = rnn_class(rnn_type, emb_dim, hidden_size, n_layers, dropout, bidirectional)
        self.directions = 2 if bidirectional else 1
        self.n_layers, self.rnn_type = n_layers, rnn_type
        self.output_size = hidden_size * self.directions
        self.bridge = nn.Linear(self.output_size, dec_hidden_size, bias=False)  # lesson's out_enc
        if rnn_type == "lstm":
            self.bridge_cell = nn.Linear(self.output_size, dec_hidden_size, bias=False)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, Hidden]:
        """Encode a padded batch.

        Args:
            src: (batch, src_len) ids, padded at the end.
            src_lengths: (batch,) real lengths.

        Returns:
            outputs: (batch, src_len, output_size), zeros at padding.
            hidden: (n_layers, batch, dec_hidden_size) for the decoder; a (h, c) pair for LSTM.
        """
        masks = None
        if self.training and self.reg.active:  # drawn once per batch
            masks = DropMasks.draw(
                self.reg, self.embedding, self.rnn, src.size(0),
                self.embedding.embedding_dim, self.output_size,
            )  # fmt: skip
        emb = embed(self.embedding, src, masks.rows if masks else None)  # (batch, src_len, emb)
        emb = self.emb_dropout(word_dropout(emb, self.reg.word_drop, self.training))
        emb = apply_locked(emb, masks.inputs if masks else None)
        packed = pack_padded_sequence(
            emb, src_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        packed_out, hidden = recur(self.rnn, packed, None, masks)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src.size(1))
        outputs = apply_locked(outputs, masks.outputs if masks else None)
        if self.rnn_type == "lstm":
            return outputs, (
                self._bridge(hidden[0], self.bridge),
                self._bridge(hidden[1], self.bridge_cell),
            )
        return outputs, self._bridge(hidden, self.bridge)

    def _bridge(self, state: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
        # (layers * directions, batch, hidden) -> (layers, batch, directions * hidden) -> bridge
        _, batch, hidden = state.shape
        state = state.view(self.n_layers, self.directions, batch, hidden)
        state = state.permute(0, 2, 1, 3).reshape(self.n_layers, batch, self.directions * hidden)
        return layer(state)  # (layers, batch, dec_hidden)
