"""``Seq2Seq``: encoder + decoder loop with teacher forcing; a plain ``nn.Module`` (no Lightning).

One model covers the lesson's five stages through flags: ``bidirectional`` (seq2seq_bidir), teacher
forcing through ``pr_force`` (seq2seq_tf), ``attention`` (seq2seq_attn) and all of them
(seq2seq_all); AWD-LSTM's regularisers and word dropout are switches too (``regularisers.py``,
all off by default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from lit_common.errors import InputError, check_choice
from lit_common.ranges import PROBABILITY, SIZE, Int, Range, Real, check_ranges
from lit_seq2seq.decoder import ATTENTION_STYLES, Decoder, DecoderState, Memory
from lit_seq2seq.encoder import Encoder
from lit_seq2seq.regularisers import SideRegularisers, activation_penalty

TEACHER_FORCING = ("step", "token")
# SideRegularisers' fields, each a model.net setting per side (enc_weight_drop, dec_word_drop...)
REGULARISER_RATES = tuple(field.name for field in fields(SideRegularisers))
INITS = ("pytorch", "xavier")


@dataclass
class Seq2SeqConfig:
    """Network hyperparameters; the defaults are the lesson's ``Seq2SeqRNN_All``.

    Attributes:
        rnn_type: ``gru`` or ``lstm``, for encoder and decoder.
        enc_emb_dim: encoder embedding size (fastText: 300).
        enc_hidden: encoder hidden size per direction.
        enc_layers: encoder layers (must equal ``dec_layers``: each initialises one).
        enc_dropout: between encoder layers.
        enc_emb_dropout: on encoder embeddings.
        bidirectional: bidirectional encoder.
        dec_emb_dim: decoder embedding size.
        dec_hidden: decoder hidden size.
        dec_layers: decoder layers.
        dec_dropout: between decoder layers.
        out_dropout: before the output layer.
        attention: additive attention over the encoder outputs.
        attention_style: how the context reaches the output: ``lesson`` (into the RNN input),
            ``output`` (Luong's attentional state; a fully teacher-forced batch decodes in one
            pass) or ``input_feeding`` (``output`` fed back into the next input, as Joey NMT).
        attn_size: attention hidden size.
        tie_weights: output layer shares the decoder embedding.
        teacher_forcing: ``step`` flips one coin per decoder step for the whole batch (lesson);
            ``token`` flips one per target token.
        dec_emb_dropout: on the decoder's input embeddings.
        init: ``pytorch`` (each layer's default, the lesson) or ``xavier`` (Glorot-uniform weight
            matrices, zero biases; Joey NMT's default).
        emb_init_std: the embeddings' standard deviation; null keeps N(0, 1) (PyTorch's). Word
            vectors arrive at std 1 (``scale: auto``) and are multiplied by it too.
        enc_weight_drop, dec_weight_drop: DropConnect on the RNN's hidden-to-hidden matrices,
            one mask per training batch (AWD-LSTM: 0.5).
        enc_embed_drop, dec_embed_drop: embedding dropout, whole word types (AWD-LSTM: 0.1).
        enc_locked_in, dec_locked_in: locked dropout on the RNN's input (AWD-LSTM: 0.4-0.65).
        enc_locked_hidden, dec_locked_hidden: locked dropout between RNN layers (AWD-LSTM:
            0.2-0.3); the RNN then runs layer by layer (``LayeredRNN``).
        enc_locked_out, dec_locked_out: locked dropout on the RNN's top output (AWD-LSTM: 0.4).
        enc_word_drop, dec_word_drop: word dropout on source tokens and on the decoder's input
            tokens (Sennrich & Zhang 2019).
        ar_alpha: activation regularisation on the decoder's top outputs (AWD-LSTM: 2).
        tar_beta: temporal activation regularisation on them (AWD-LSTM: 1).
    """

    rnn_type: str = "gru"
    enc_emb_dim: int = 300
    enc_hidden: int = 256
    enc_layers: int = 2
    enc_dropout: float = 0.25
    enc_emb_dropout: float = 0.15
    bidirectional: bool = True
    dec_emb_dim: int = 300
    dec_hidden: int = 300
    dec_layers: int = 2
    dec_dropout: float = 0.1
    out_dropout: float = 0.35
    attention: bool = True
    attention_style: str = "lesson"
    attn_size: int = 300
    tie_weights: bool = True
    teacher_forcing: str = "step"
    dec_emb_dropout: float = 0.0
    init: str = "pytorch"
    emb_init_std: float | None = None
    enc_weight_drop: float = 0.0
    dec_weight_drop: float = 0.0
    enc_embed_drop: float = 0.0
    dec_embed_drop: float = 0.0
    enc_locked_in: float = 0.0
    dec_locked_in: float = 0.0
    enc_locked_hidden: float = 0.0
    dec_locked_hidden: float = 0.0
    enc_locked_out: float = 0.0
    dec_locked_out: float = 0.0
    enc_word_drop: float = 0.0
    dec_word_drop: float = 0.0
    ar_alpha: float = 0.0
    tar_beta: float = 0.0

    RANGES: ClassVar[dict[str, Range]] = {
        **dict.fromkeys(("enc_emb_dim", "enc_hidden", "dec_emb_dim", "dec_hidden"), SIZE),
        **dict.fromkeys(("enc_layers", "dec_layers"), Int(1, 64)),
        **dict.fromkeys(
            ("enc_dropout", "enc_emb_dropout", "dec_dropout", "out_dropout", "dec_emb_dropout"),
            PROBABILITY,
        ),
        "attn_size": SIZE,
        "emb_init_std": Real(0.0, low_open=True, null=True),
        **{f"{side}_{name}": PROBABILITY for side in ("enc", "dec") for name in REGULARISER_RATES},
        **dict.fromkeys(("ar_alpha", "tar_beta"), Real(0.0, 1000.0)),
    }

    def __post_init__(self) -> None:
        check_ranges(asdict(self), self.RANGES)
        if self.enc_layers != self.dec_layers:
            raise InputError(
                f"enc_layers={self.enc_layers} but dec_layers={self.dec_layers}: the encoder's "
                "final state initialises the decoder layer for layer, so they must be equal"
            )
        for side, layers in (("enc", self.enc_layers), ("dec", self.dec_layers)):
            if layers == 1 and getattr(self, f"{side}_locked_hidden") > 0:
                raise InputError(
                    f"{side}_locked_hidden={getattr(self, f'{side}_locked_hidden')} needs at least "
                    f"2 layers ({side}_layers=1): it drops between layers"
                )
        for key, valid in (
            ("teacher_forcing", TEACHER_FORCING),
            ("attention_style", ATTENTION_STYLES),
            ("init", INITS),
        ):
            check_choice(key, getattr(self, key), valid)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def regularisers(self, side: str) -> SideRegularisers:
        """The ``enc`` or ``dec`` side's regulariser rates."""
        return SideRegularisers(
            **{name: getattr(self, f"{side}_{name}") for name in REGULARISER_RATES}
        )


class Seq2Seq(nn.Module):
    """French ids in, English logits out.

    Args:
        config: network hyperparameters.
        src_vocab_size: source vocabulary size.
        tgt_vocab_size: target vocabulary size.
        pad_idx: padding id (both vocabularies).
        bos_idx: first decoder input.
        eos_idx: end of sentence.
    """

    def __init__(
        self,
        config: Seq2SeqConfig,
        src_vocab_size: int,
        tgt_vocab_size: int,
        pad_idx: int = 1,
        bos_idx: int = 0,
        eos_idx: int = 2,
    ) -> None:
        super().__init__()
        c = config
        self.config = c
        self.pad_idx, self.bos_idx, self.eos_idx = pad_idx, bos_idx, eos_idx
        self.encoder = Encoder(
            src_vocab_size, c.enc_emb_dim, c.enc_hidden, c.enc_layers, c.enc_dropout,
            c.enc_emb_dropout, c.rnn_type, c.bidirectional, c.dec_hidden, pad_idx,
            c.regularisers("enc"),
        )  # fmt: skip
        self.decoder = Decoder(
            tgt_vocab_size, c.dec_emb_dim, c.dec_hidden, c.dec_layers, c.dec_dropout,
            c.out_dropout, c.rnn_type, self.encoder.output_size, c.attention, c.attn_size,
            c.tie_weights, pad_idx, c.attention_style, c.dec_emb_dropout, c.regularisers("dec"),
        )  # fmt: skip
        self._initialise()

    def _initialise(self) -> None:
        """Apply ``init`` and ``emb_init_std``; the padding rows stay zero."""
        c = self.config
        embeddings = (self.encoder.embedding, self.decoder.embedding)
        if c.init == "xavier":
            skip = {id(e.weight) for e in embeddings}
            for param in self.parameters():
                if id(param) in skip:
                    continue
                if param.dim() > 1:
                    nn.init.xavier_uniform_(param)
                else:
                    nn.init.zeros_(param)
        if c.emb_init_std is not None:
            with torch.no_grad():
                for emb in embeddings:
                    emb.weight.normal_(0.0, c.emb_init_std)
                    emb.weight[self.pad_idx] = 0.0

    def load_pretrained(self, src: np.ndarray | None, tgt: np.ndarray | None) -> None:
        """Copy word-vector initialisations into the embeddings (shapes must match), times
        ``emb_init_std`` when set: the data pipeline delivers them at std 1."""
        for name, emb, matrix in (
            ("src", self.encoder.embedding, src),
            ("tgt", self.decoder.embedding, tgt),
        ):
            if matrix is None:
                continue
            if tuple(matrix.shape) != tuple(emb.weight.shape):
                raise InputError(
                    f"{name} vectors have shape {tuple(matrix.shape)} but the embedding is "
                    f"{tuple(emb.weight.shape)}; make sure data and model embedding sizes agree"
                )
            with torch.no_grad():
                emb.weight.copy_(torch.from_numpy(matrix) * (self.config.emb_init_std or 1.0))

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[Memory, DecoderState]:
        """Encoder side of a batch: (Memory, initial decoder state); see ``Encoder.forward``."""
        outputs, hidden = self.encoder(src, src_lengths)
        attention = self.decoder.attention
        keys = attention.project_keys(outputs) if attention is not None else None
        return Memory(outputs, keys, src != self.pad_idx), self.decoder.initial_state(hidden)

    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt: torch.Tensor,
        pr_force: float = 0.0,
        return_attention: bool = False,
        encoded: tuple[Memory, DecoderState] | None = None,
        trace: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the decoder for ``tgt_len`` steps, feeding targets with probability ``pr_force``.

        Args:
            src: (batch, src_len) source ids.
            src_lengths: (batch,) source lengths.
            tgt: (batch, tgt_len) target ids (eos included, no bos).
            pr_force: probability of feeding the reference token instead of the prediction.
            return_attention: also return the attention weights.
            encoded: ``encode(src, src_lengths)`` when the caller has it already (validation
                decodes the same batch twice, teacher-forced and greedy).
            trace: when a list, it receives one pair: the decoder's top RNN outputs before and
                after their locked dropout, each (batch, tgt_len, dec_hidden), for
                ``activation_penalty``.

        Returns:
            logits: (batch, tgt_len, tgt_vocab).
            attention: (batch, tgt_len, src_len), or None.

        With ``pr_force >= 1`` every input is the reference, and decoders that allow it
        (``Decoder.parallel``) run all positions in one pass instead of a loop over steps.
        """
        memory, state = encoded if encoded is not None else self.encode(src, src_lengths)
        prev = torch.full_like(tgt[:, 0], self.bos_idx)  # (batch,)
        masks = self.decoder.draw_masks(tgt.size(0))  # one draw for every step of the batch
        if pr_force >= 1.0 and self.decoder.parallel:
            inputs = torch.cat([prev.unsqueeze(1), tgt[:, :-1]], 1)  # (batch, tgt_len)
            logits, attention = self.decoder.forward_teacher(inputs, state, memory, masks, trace)
            return logits, attention if return_attention else None
        logits, weights = [], []
        steps: list[tuple[torch.Tensor, torch.Tensor]] | None = [] if trace is not None else None
        for i in range(tgt.size(1)):
            step_logits, state, w = self.decoder.step(prev, state, memory, masks, steps)
            logits.append(step_logits)
            if return_attention and w is not None:
                weights.append(w)
            prev = step_logits.argmax(-1)
            if pr_force > 0:
                if self.config.teacher_forcing == "step":
                    if torch.rand(()) < pr_force:
                        prev = tgt[:, i]
                else:
                    force = torch.rand(prev.shape, device=prev.device) < pr_force
                    prev = torch.where(force, tgt[:, i], prev)
        if trace is not None and steps:
            trace.append(
                (torch.stack([r for r, _ in steps], 1), torch.stack([d for _, d in steps], 1))
            )
        attention = torch.stack(weights, 1) if weights else None
        return torch.stack(logits, 1), attention

    def activation_penalty(
        self, trace: list[tuple[torch.Tensor, torch.Tensor]], real: torch.Tensor
    ) -> torch.Tensor:
        """AR + TAR (``ar_alpha``, ``tar_beta``) of a ``forward(..., trace=[])`` call.

        Args:
            trace: the list ``forward`` filled.
            real: (batch, tgt_len) bool, True at real target tokens.
        """
        ((raw, dropped),) = trace
        return activation_penalty(raw, dropped, real, self.config.ar_alpha, self.config.tar_beta)
