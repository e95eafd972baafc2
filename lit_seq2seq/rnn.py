"""The recurrent layers: a fused GRU/LSTM (``make_rnn``), or a stack of single-layer ones run in
turn (``LayeredRNN``) when something must happen between layers; DropConnect on their
hidden-to-hidden matrices through ``torch.func.functional_call`` (``run_rnn``), which keeps the
fused kernels; locked dropout masks applied to padded or packed sequences (``apply_locked``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence

from lit_common.errors import check_choice

RNNS = {"gru": nn.GRU, "lstm": nn.LSTM}
Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def make_rnn(
    rnn_type: str,
    input_size: int,
    hidden_size: int,
    n_layers: int,
    dropout: float,
    bidirectional: bool = False,
) -> nn.RNNBase:
    """A batch-first fused ``nn.GRU`` or ``nn.LSTM`` (``dropout`` between layers, per step)."""
    check_choice("rnn_type", rnn_type, sorted(RNNS))
    return RNNS[rnn_type](
        input_size,
        hidden_size,
        n_layers,
        batch_first=True,
        dropout=dropout if n_layers > 1 else 0.0,
        bidirectional=bidirectional,
    )


def dropped_weights(rnn: nn.RNNBase, p: float) -> dict[str, torch.Tensor]:
    """DropConnect: each hidden-to-hidden matrix of ``rnn`` (every layer and direction) with a
    fresh dropout mask, keyed by parameter name for ``run_rnn``."""
    return {
        name: F.dropout(getattr(rnn, name), p, training=True)
        for name in rnn._flat_weights_names
        if name.startswith("weight_hh")
    }


def run_rnn(
    rnn: nn.RNNBase,
    inputs: torch.Tensor | PackedSequence,
    hidden: Hidden | None,
    weights: dict[str, torch.Tensor] | None,
) -> tuple[torch.Tensor | PackedSequence, Hidden]:
    """``rnn(inputs, hidden)`` with ``weights`` (``dropped_weights``) in place of its own.

    Args:
        rnn: a batch-first fused RNN.
        inputs: (batch, len, input_size), or a PackedSequence of such rows.
        hidden: (layers * directions, batch, hidden_size) (an (h, c) pair for LSTM), or None.
        weights: parameter name -> replacement tensor of the same shape; None or empty: its own.

    Returns:
        outputs: (batch, len, directions * hidden_size) (packed if ``inputs`` was).
        hidden: the final state, laid out as ``hidden``.
    """
    if not weights:
        return rnn(inputs, hidden)
    return torch.func.functional_call(rnn, weights, (inputs, hidden), strict=False)


def apply_locked(
    x: torch.Tensor | PackedSequence, mask: torch.Tensor | None
) -> torch.Tensor | PackedSequence:
    """Multiply ``x`` by a ``locked_mask``: a padded (batch, len, features) or (batch, features)
    tensor, or a PackedSequence (each packed row gets its own sequence's mask)."""
    if mask is None:
        return x
    if isinstance(x, PackedSequence):
        rows = packed_rows(x)  # (total_tokens,) sequence of each packed row
        return x._replace(data=x.data * mask[rows, 0])
    # The mask stays fp32: under bf16 autocast the product is fp32, and the next layer casts it
    # back, so a bf16 run draws and applies the same mask values as an fp32 one.
    return x * (mask if x.dim() == 3 else mask[:, 0])


def packed_rows(packed: PackedSequence) -> torch.Tensor:
    """(total_tokens,) index, in the caller's batch order, of the sequence each row of
    ``packed.data`` belongs to: time step ``t`` holds the first ``batch_sizes[t]`` sequences of
    the length-sorted order."""
    sizes = packed.batch_sizes.tolist()
    order = torch.cat([torch.arange(size) for size in sizes])
    if packed.sorted_indices is not None:
        order = packed.sorted_indices.cpu()[order]
    return order.to(packed.data.device)


class LayeredRNN(nn.ModuleList):
    """``n_layers`` single-layer RNNs run in turn, so locked dropout can sit between them (a fused
    multi-layer RNN only offers per-step dropout there). Hidden states are laid out as a fused
    RNN's: (n_layers * directions, batch, hidden).

    Args:
        rnn_type: ``gru`` or ``lstm``.
        input_size: features of the first layer's input.
        hidden_size: hidden size per direction.
        n_layers: layers.
        dropout: ordinary dropout between layers, as a fused RNN's ``dropout`` (locked masks, when
            given to ``forward``, come on top).
        bidirectional: read both ways (each layer sees both directions of the one below).
    """

    def __init__(
        self,
        rnn_type: str,
        input_size: int,
        hidden_size: int,
        n_layers: int,
        dropout: float,
        bidirectional: bool = False,
    ) -> None:
        directions = 2 if bidirectional else 1
        super().__init__(
            make_rnn(rnn_type, size, hidden_size, 1, 0.0, bidirectional)
            for size in [input_size] + [hidden_size * directions] * (n_layers - 1)
        )
        self.directions = directions
        self.dropout = dropout

    def forward(
        self,
        inputs: torch.Tensor | PackedSequence,
        hidden: Hidden | None = None,
        between: list[torch.Tensor | None] | None = None,
        weights: list[dict[str, torch.Tensor] | None] | None = None,
    ) -> tuple[torch.Tensor | PackedSequence, Hidden]:
        """Run every layer, ``dropout`` and ``between[i]`` after layer ``i`` (but the last).

        Args:
            inputs: (batch, len, input_size), or a PackedSequence of such rows.
            hidden: (n_layers * directions, batch, hidden_size) initial state (an (h, c) pair
                for LSTM), or None for zeros.
            between: n_layers - 1 locked masks, each (batch, 1, directions * hidden_size) or
                None; None: no locked dropout between layers.
            weights: per layer, its DropConnect matrices (``dropped_weights``) or None.

        Returns:
            outputs: (batch, len, directions * hidden_size) of the top layer (packed if
                ``inputs`` was).
            hidden: (n_layers * directions, batch, hidden_size) final states (a pair for LSTM).
        """
        d = self.directions
        states = []
        x = inputs
        for i, layer in enumerate(self):
            h = None if hidden is None else _slice_hidden(hidden, i * d, (i + 1) * d)
            x, h = run_rnn(layer, x, h, weights[i] if weights else None)
            states.append(h)
            if i < len(self) - 1:
                x = _dropout(x, self.dropout, self.training)
                x = apply_locked(x, between[i] if between else None)
        if isinstance(states[0], tuple):
            return x, (torch.cat([s[0] for s in states]), torch.cat([s[1] for s in states]))
        return x, torch.cat(states)  # (n_layers * directions, batch, hidden)


def _dropout(
    x: torch.Tensor | PackedSequence, p: float, training: bool
) -> torch.Tensor | PackedSequence:
    if not training or p == 0:
        return x
    if isinstance(x, PackedSequence):
        return x._replace(data=F.dropout(x.data, p, True))
    return F.dropout(x, p, True)


def _slice_hidden(hidden: Hidden, start: int, stop: int) -> Hidden:
    if isinstance(hidden, tuple):
        return hidden[0][start:stop], hidden[1][start:stop]
    return hidden[start:stop]
