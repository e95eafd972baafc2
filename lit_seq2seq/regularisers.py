"""AWD-LSTM's regularisers for the translator's RNNs, and word dropout.

The lesson ends by asking which of AWD-LSTM's regularisers (Merity, Keskar & Socher, "Regularizing
and Optimizing LSTM Language Models", arXiv:1708.02182, section 4) help a sequence-to-sequence
model. Each is a switch of ``model.net`` (``Seq2SeqConfig``), for the encoder and the decoder, off
(0) by default:

- **weight drop** (section 2; Wan et al. 2013's DropConnect): a dropout mask on the RNN's
  hidden-to-hidden matrices, drawn once per training batch and used at every time step. The fused
  RNN kernels stay in use: the dropped matrices reach them through ``torch.func.functional_call``,
  so gradients flow to the one stored parameter (the state dict, DDP's buckets and checkpoints see
  nothing new).
- **embedding dropout** (section 4.3; Gal & Ghahramani, arXiv:1512.05287): whole rows of the
  embedding matrix (word types) are zeroed for a batch, so a dropped word is missing at every
  position; the rest are scaled by ``1 / (1 - p)``. Only the input lookup sees the dropped matrix:
  a tied output layer keeps the full one, as in AWD-LSTM.
- **locked (variational) dropout** (section 4.2): one mask per sequence and feature, reused at
  every time step, on the RNN's inputs, between its layers and on its outputs.
- **word dropout** (Sennrich & Zhang, "Revisiting Low-Resource Neural Machine Translation",
  arXiv:1905.11901, section 3.2; Nematus' ``dropout_source``/``dropout_target``): whole token
  positions of the source or of the decoder's inputs lose their embedding (zeroed, the rest scaled
  by ``1 / (1 - p)``).
- **AR and TAR** (section 4.6): ``alpha * mean(h_drop ** 2)`` on the decoder's top-layer outputs
  after their dropout, and ``beta * mean((h_t - h_{t-1}) ** 2)`` on the outputs before it, both
  averaged over real (not padding) target positions and hidden units.

Every mask is identity outside training. Masks that must stay fixed across time steps (embedding
rows, locked dropout, weight drop) are drawn once per batch (``DropMasks``), so the step-by-step
decoder uses the same ones at every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from lit_common.errors import InputError
from lit_seq2seq.rnn import Hidden, LayeredRNN, dropped_weights, run_rnn


def bernoulli_mask(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
    """Inverted-dropout mask: 0 with probability ``p``, else ``1 / (1 - p)``; dtype and device of
    ``like``."""
    keep = 1.0 - p
    return like.new_empty(shape).bernoulli_(keep).div_(keep)


def word_dropout(emb: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Drop whole token positions: ``emb`` (batch, [len,] dim) with one draw per position."""
    if not training or p == 0:
        return emb
    return emb * bernoulli_mask((*emb.shape[:-1], 1), p, emb)


def embed(
    embedding: nn.Embedding, ids: torch.Tensor, row_mask: torch.Tensor | None
) -> torch.Tensor:
    """``embedding(ids)`` with the rows of ``row_mask`` (vocab, 1) dropped: embedding dropout.

    Args:
        embedding: the lookup table.
        ids: (batch,) or (batch, len) token ids.
        row_mask: (vocab, 1) ``bernoulli_mask`` over word types, or None.

    Returns:
        (*ids.shape, dim): the same as looking ids up in ``weight * row_mask``, without building
        that (vocab, dim) matrix at every decoder step.
    """
    out = embedding(ids)
    return out if row_mask is None else out * row_mask[ids]


def locked_mask(batch: int, features: int, p: float, like: torch.Tensor) -> torch.Tensor | None:
    """One mask per sequence, reused at every step: (batch, 1, features); None when p is 0."""
    return bernoulli_mask((batch, 1, features), p, like) if p > 0 else None


@dataclass
class SideRegularisers:
    """One side's (encoder or decoder) rates; all 0 (off) by default.

    Attributes:
        weight_drop: DropConnect on the hidden-to-hidden matrices.
        embed_drop: embedding dropout (whole word types).
        locked_in: locked dropout on the RNN's input.
        locked_hidden: locked dropout between RNN layers (needs ``LayeredRNN``).
        locked_out: locked dropout on the RNN's output.
        word_drop: word dropout (whole token positions).
    """

    weight_drop: float = 0.0
    embed_drop: float = 0.0
    locked_in: float = 0.0
    locked_hidden: float = 0.0
    locked_out: float = 0.0
    word_drop: float = 0.0

    @property
    def active(self) -> bool:
        """Whether any mask must be drawn for a training batch (word dropout needs none)."""
        return any(
            rate > 0
            for rate in (
                self.weight_drop, self.embed_drop, self.locked_in, self.locked_hidden,
                self.locked_out,
            )
        )  # fmt: skip

    @property
    def layered(self) -> bool:
        """Whether the RNN must run layer by layer (locked dropout between layers)."""
        return self.locked_hidden > 0


@dataclass
class DropMasks:
    """The masks of one training batch for one side, drawn once (``draw``) so every time step of
    the step-by-step decoder uses the same ones. ``None`` entries are off.

    Attributes:
        rows: (vocab, 1) embedding-dropout mask.
        inputs: (batch, 1, input_features) locked mask on the RNN input.
        between: per layer gap, (batch, 1, hidden * directions) locked masks.
        outputs: (batch, 1, output_features) locked mask on the RNN output.
        weights: the hidden-to-hidden matrices with DropConnect (``dropped_weights``): one dict
            for a fused RNN, one per layer for a ``LayeredRNN``.
    """

    rows: torch.Tensor | None = None
    inputs: torch.Tensor | None = None
    between: list[torch.Tensor | None] = field(default_factory=list)
    outputs: torch.Tensor | None = None
    weights: list[dict[str, torch.Tensor]] | dict[str, torch.Tensor] | None = None

    @classmethod
    def draw(
        cls,
        rates: SideRegularisers,
        embedding: nn.Embedding,
        rnn: nn.RNNBase | LayeredRNN,
        batch: int,
        input_features: int,
        output_features: int,
    ) -> DropMasks:
        """Fresh masks for a batch of ``batch`` sequences (call in training mode only)."""
        like = embedding.weight
        rows = None
        if rates.embed_drop > 0:
            rows = bernoulli_mask((embedding.num_embeddings, 1), rates.embed_drop, like)
        between: list[torch.Tensor | None] = []
        weights: list[dict[str, torch.Tensor]] | dict[str, torch.Tensor] | None = None
        if isinstance(rnn, LayeredRNN):
            width = rnn[0].hidden_size * rnn.directions
            between = [
                locked_mask(batch, width, rates.locked_hidden, like) for _ in range(len(rnn) - 1)
            ]
            if rates.weight_drop > 0:
                weights = [dropped_weights(layer, rates.weight_drop) for layer in rnn]
        elif rates.weight_drop > 0:
            weights = dropped_weights(rnn, rates.weight_drop)
        return cls(
            rows=rows,
            inputs=locked_mask(batch, input_features, rates.locked_in, like),
            between=between,
            outputs=locked_mask(batch, output_features, rates.locked_out, like),
            weights=weights,
        )


def recur(
    rnn: nn.RNNBase | LayeredRNN,
    inputs: torch.Tensor | PackedSequence,
    hidden: Hidden | None,
    masks: DropMasks | None,
) -> tuple[torch.Tensor | PackedSequence, Hidden]:
    """Run a fused RNN or a ``LayeredRNN`` with a batch's masks (None: a plain call); shapes as
    ``run_rnn``."""
    if masks is None:
        return rnn(inputs, hidden)
    if isinstance(rnn, LayeredRNN):
        weights = masks.weights if isinstance(masks.weights, list) else None
        return rnn(inputs, hidden, masks.between, weights)
    weights = masks.weights if isinstance(masks.weights, dict) else None
    return run_rnn(rnn, inputs, hidden, weights)


def activation_penalty(
    raw: torch.Tensor, dropped: torch.Tensor, real: torch.Tensor, alpha: float, beta: float
) -> torch.Tensor:
    """AWD-LSTM's AR + TAR over the real positions of a batch of decoder outputs.

    Args:
        raw: (batch, tgt_len, hidden) top-layer RNN outputs before their dropout (TAR).
        dropped: (batch, tgt_len, hidden) the same after it (AR).
        real: (batch, tgt_len) bool, True at real target positions (padding is at the end).
        alpha: AR weight: ``alpha * mean(dropped ** 2)``.
        beta: TAR weight: ``beta * mean((raw_t - raw_{t-1}) ** 2)`` over steps ``t >= 1`` whose
            position is real (so is ``t - 1``).

    Returns:
        A scalar; 0 when both weights are 0.
    """
    if raw.shape != dropped.shape or raw.shape[:2] != real.shape:
        raise InputError(
            f"activation_penalty: raw {tuple(raw.shape)}, dropped {tuple(dropped.shape)} and "
            f"real {tuple(real.shape)} must agree on (batch, tgt_len)"
        )
    penalty = raw.new_zeros(())
    hidden = raw.size(-1)
    if alpha > 0:
        weight = real.unsqueeze(-1).to(dropped.dtype)
        count = real.sum().clamp(min=1) * hidden
        penalty = penalty + alpha * (dropped.pow(2) * weight).sum() / count
    if beta > 0 and raw.size(1) > 1:
        steps = real[:, 1:]  # (batch, tgt_len - 1)
        diff = (raw[:, 1:] - raw[:, :-1]).pow(2) * steps.unsqueeze(-1).to(raw.dtype)
        penalty = penalty + beta * diff.sum() / (steps.sum().clamp(min=1) * hidden)
    return penalty
