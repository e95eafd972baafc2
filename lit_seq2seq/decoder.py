"""The decoder: one step at a time, or every position at once when fully teacher forced.

Three ways for the attention context to reach the output (``attention_style``):

- ``lesson``: the context of the *previous* state joins the embedding of the previous token
  (the lesson's ``l3``) as the RNN input, and the RNN output alone feeds the output layer
  (the fast.ai lesson; the order of Bahdanau et al., arXiv:1409.0473).
- ``output``: the RNN reads the embedding; its *new* top state queries the encoder, and Luong's
  attentional state ``tanh(W_c [h_t; c_t])`` feeds the output layer (Luong, Pham & Manning,
  arXiv:1508.04025, section 3, eq. 5). With every step teacher forced, nothing depends on an
  earlier step's output, so ``forward_teacher`` runs the whole target sequence in one RNN call and
  one batched attention: far fewer kernel launches than a Python loop over steps.
- ``input_feeding``: ``output`` plus the previous attentional state fed with the next embedding
  (Luong et al. section 3.3; Joey NMT's recurrent decoder); sequential again.

The output layer's weights can be tied to the decoder embedding (Press & Wolf, arXiv:1608.05859;
needs the hidden size to equal the embedding size).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lit_common.errors import InputError, check_choice
from lit_seq2seq.attention import AdditiveAttention
from lit_seq2seq.regularisers import DropMasks, SideRegularisers, embed, recur, word_dropout
from lit_seq2seq.rnn import Hidden, LayeredRNN, apply_locked, make_rnn

ATTENTION_STYLES = ("lesson", "output", "input_feeding")


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

    def select(self, rows: torch.Tensor) -> Memory:
        """The memories of ``rows`` (batch indices), in that order."""
        keys = self.projected_keys
        return Memory(self.outputs[rows], None if keys is None else keys[rows], self.mask[rows])

    def repeat(self, times: int) -> Memory:
        """Each row ``times`` times in a row, for beam search."""
        return self.select(
            torch.arange(self.mask.size(0), device=self.mask.device).repeat_interleave(times)
        )


@dataclass
class DecoderState:
    """The recurrent state carried from one step to the next.

    Attributes:
        hidden: (n_layers, batch, hidden_size), or an (h, c) pair of those for LSTM.
        feed: (batch, hidden_size) previous attentional state (``input_feeding``), else None.
    """

    hidden: Hidden
    feed: torch.Tensor | None = None

    def select(self, rows: torch.Tensor) -> DecoderState:
        """The states of ``rows`` (batch indices), in that order: beam search's reordering."""
        hidden = (
            tuple(h[:, rows] for h in self.hidden)
            if isinstance(self.hidden, tuple)
            else self.hidden[:, rows]
        )
        return DecoderState(hidden, None if self.feed is None else self.feed[rows])  # type: ignore[arg-type]

    def repeat(self, times: int) -> DecoderState:
        """Each row ``times`` times in a row, for beam search."""
        rows = torch.arange(self.batch_size(), device=self.device()).repeat_interleave(times)
        return self.select(rows)

    def top(self) -> torch.Tensor:
        """(batch, hidden_size): the top layer's hidden state, the attention query."""
        return self.hidden[0][-1] if isinstance(self.hidden, tuple) else self.hidden[-1]

    def batch_size(self) -> int:
        return self.top().size(0)

    def device(self) -> torch.device:
        return self.top().device


class Decoder(nn.Module):
    """Previous token + state (+ attention) -> logits over the target vocabulary.

    Args:
        vocab_size: target vocabulary size.
        emb_dim: embedding size.
        hidden_size: RNN hidden size.
        n_layers: RNN layers.
        dropout: between RNN layers.
        out_dropout: before the output layer (on the attentional state with ``output`` and
            ``input_feeding``).
        rnn_type: ``gru`` or ``lstm``.
        enc_output_size: size of each encoder output.
        attention: attend over the encoder outputs; False gives the lesson's plain seq2seq.
        attn_size: attention tanh layer size.
        tie_weights: share the output layer's weights with the embedding.
        pad_idx: padding id.
        attention_style: ``lesson``, ``output`` or ``input_feeding`` (see the module docstring).
        emb_dropout: on the embeddings of the previous tokens.
        regularisers: AWD-LSTM's regularisers and word dropout for this side (all off: None);
            locked output dropout acts on the top RNN output, before attention.
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
        attention_style: str = "lesson",
        emb_dropout: float = 0.0,
        regularisers: SideRegularisers | None = None,
    ) -> None:
        super().__init__()
        check_choice("attention_style", attention_style, ATTENTION_STYLES)
        self.style = attention_style if attention else "none"
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_idx)
        self.emb_dropout = nn.Dropout(emb_dropout)
        self.attention = (
            AdditiveAttention(enc_output_size, hidden_size, attn_size) if attention else None
        )
        rnn_input = emb_dim
        if self.style == "lesson":
            self.combine = nn.Linear(emb_dim + enc_output_size, emb_dim)  # the lesson's l3
        elif self.style in ("output", "input_feeding"):
            self.attentional = nn.Linear(hidden_size + enc_output_size, hidden_size)  # Luong W_c
            if self.style == "input_feeding":
                rnn_input = emb_dim + hidden_size
        self.reg = regularisers or SideRegularisers()
        rnn_class = LayeredRNN if self.reg.layered else make_rnn
        self.rnn = rnn_class(rnn_type, rnn_input, hidden_size, n_layers, dropout)
        self.rnn_input = rnn_input
        self.rnn_type, self.hidden_size = rnn_type, hidden_size
        self.out_dropout = nn.Dropout(out_dropout)
        self.out = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            if hidden_size != emb_dim:
                raise InputError(
                    f"tie_weights needs dec_hidden == dec_emb_dim, got {hidden_size} and {emb_dim}"
                )
            self.out.weight = self.embedding.weight

    @property
    def parallel(self) -> bool:
        """Whether a fully teacher-forced sequence can be decoded in one pass (no step loop)."""
        return self.style in ("none", "output")

    def initial_state(self, hidden: Hidden) -> DecoderState:
        """The state before the first step, from the encoder's bridged final state."""
        feed = None
        if self.style == "input_feeding":
            top = hidden[0][-1] if isinstance(hidden, tuple) else hidden[-1]
            feed = top.new_zeros(top.shape)  # (batch, hidden_size)
        return DecoderState(hidden, feed)

    def draw_masks(self, batch: int) -> DropMasks | None:
        """The regularisers' masks for a training batch of ``batch`` sentences, shared by all
        its steps; None in eval mode or when every regulariser that needs one is off."""
        if not (self.training and self.reg.active):
            return None
        return DropMasks.draw(
            self.reg, self.embedding, self.rnn, batch, self.rnn_input, self.hidden_size
        )

    def step(
        self,
        prev: torch.Tensor,
        state: DecoderState,
        memory: Memory,
        masks: DropMasks | None = None,
        trace: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """Decode one position.

        Args:
            prev: (batch,) previous target ids (bos at the first step).
            state: the recurrent state (``initial_state`` at the first step).
            memory: the encoder side.
            masks: the batch's regularisation masks (``draw_masks``), None outside training.
            trace: when a list, the top RNN output before and after its locked dropout, each
                (batch, hidden), is appended (AR/TAR).

        Returns:
            logits: (batch, vocab_size).
            state: the new state.
            weights: (batch, src_len) attention weights, or None without attention.
        """
        emb = embed(self.embedding, prev, masks.rows if masks else None)  # (batch, emb)
        emb = self.emb_dropout(word_dropout(emb, self.reg.word_drop, self.training))
        weights = None
        if self.style == "lesson":
            context, weights = self._attend(state.top(), memory)  # (batch, enc_out)
            emb = self.combine(torch.cat([emb, context], dim=-1))  # (batch, emb)
        elif self.style == "input_feeding":
            assert state.feed is not None
            emb = torch.cat([emb, state.feed], dim=-1)  # (batch, emb + hidden)
        emb = apply_locked(emb, masks.inputs if masks else None)
        output, hidden = recur(self.rnn, emb.unsqueeze(1), state.hidden, masks)
        output = output.squeeze(1)  # (batch, 1, hidden) -> (batch, hidden)
        output = self._locked_output(output, masks, trace)
        if self.style in ("output", "input_feeding"):
            output, weights = self._attentional(output, memory)
        feed = output if self.style == "input_feeding" else None
        logits = self.out(self.out_dropout(output))  # (batch, vocab)
        return logits, DecoderState(hidden, feed), weights

    def forward_teacher(
        self,
        inputs: torch.Tensor,
        state: DecoderState,
        memory: Memory,
        masks: DropMasks | None = None,
        trace: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every position of a fully teacher-forced sequence at once (``parallel`` styles only).

        Equal to calling ``step`` on ``inputs[:, 0], inputs[:, 1], ...``: the RNN is causal, so
        padding at the end of a row cannot change the positions before it.

        Args:
            inputs: (batch, tgt_len) previous tokens: bos, then the target shifted by one.
            state: ``initial_state`` of the batch.
            memory: the encoder side.
            masks: the batch's regularisation masks (``draw_masks``), None outside training.
            trace: when a list, the top RNN outputs before and after their locked dropout, each
                (batch, tgt_len, hidden), are appended (AR/TAR).

        Returns:
            logits: (batch, tgt_len, vocab_size).
            weights: (batch, tgt_len, src_len) attention weights, or None without attention.
        """
        assert self.parallel, f"attention_style={self.style!r} decodes one step at a time"
        emb = embed(self.embedding, inputs, masks.rows if masks else None)  # (batch, tgt_len, emb)
        emb = self.emb_dropout(word_dropout(emb, self.reg.word_drop, self.training))
        emb = apply_locked(emb, masks.inputs if masks else None)
        output, _ = recur(self.rnn, emb, state.hidden, masks)  # (batch, tgt_len, hidden)
        output = self._locked_output(output, masks, trace)
        weights = None
        if self.style == "output":
            output, weights = self._attentional(output, memory)
        return self.out(self.out_dropout(output)), weights  # (batch, tgt_len, vocab)

    @staticmethod
    def _locked_output(
        output: torch.Tensor,
        masks: DropMasks | None,
        trace: list[tuple[torch.Tensor, torch.Tensor]] | None,
    ) -> torch.Tensor:
        """The top RNN output after its locked dropout; both recorded in ``trace`` if asked."""
        dropped = apply_locked(output, masks.outputs if masks else None)
        if trace is not None:
            trace.append((output, dropped))
        return dropped

    def _attend(
        self, query: torch.Tensor, memory: Memory
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert self.attention is not None and memory.projected_keys is not None
        return self.attention(query, memory.projected_keys, memory.outputs, memory.mask)

    def _attentional(
        self, output: torch.Tensor, memory: Memory
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Luong's ``tanh(W_c [h; c])`` for (batch, hidden) or (batch, tgt_len, hidden) states."""
        context, weights = self._attend(output, memory)
        return torch.tanh(self.attentional(torch.cat([output, context], dim=-1))), weights
