"""Seq2Seq: shapes, teacher forcing, padding-insensitive encoder, LSTM, tying, config errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from lit_seq2seq.model import Seq2Seq, Seq2SeqConfig

SMALL = dict(enc_emb_dim=8, enc_hidden=6, dec_emb_dim=10, dec_hidden=10, attn_size=5)


def make(**overrides: object) -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(
        Seq2SeqConfig(**{**SMALL, **overrides}), src_vocab_size=13, tgt_vocab_size=11
    ).eval()


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    src = torch.tensor([[5, 6, 7, 2], [8, 2, 1, 1], [9, 10, 2, 1]])
    tgt = torch.tensor([[4, 5, 2], [6, 2, 1], [7, 8, 2]])
    return src, torch.tensor([4, 2, 3]), tgt


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize(
    ("bidirectional", "attention"), [(True, True), (False, False), (True, False)]
)
def test_forward_shapes(rnn_type: str, bidirectional: bool, attention: bool) -> None:
    model = make(rnn_type=rnn_type, bidirectional=bidirectional, attention=attention)
    src, lengths, tgt = batch()
    logits, weights = model(src, lengths, tgt, pr_force=0.5, return_attention=True)
    assert logits.shape == (3, 3, 11)
    if attention:
        assert weights is not None and weights.shape == (3, 3, 4)
        assert torch.allclose(weights.sum(-1), torch.ones(3, 3))
        assert (weights[1, :, 2:] == 0).all() and (weights[2, :, 3:] == 0).all()
    else:
        assert weights is None


def test_teacher_forcing_feeds_targets_when_pr_force_is_one() -> None:
    model = make()
    src, lengths, tgt = batch()
    fed: list[torch.Tensor] = []
    step = model.decoder.step

    def spy(prev: torch.Tensor, *args: object) -> object:
        fed.append(prev.clone())
        return step(prev, *args)

    model.decoder.step = spy  # type: ignore[method-assign]
    model(src, lengths, tgt, pr_force=1.0)
    assert fed[0].tolist() == [0, 0, 0]  # bos
    assert [f.tolist() for f in fed[1:]] == [tgt[:, 0].tolist(), tgt[:, 1].tolist()]
    fed.clear()
    logits, _ = model(src, lengths, tgt, pr_force=0.0)
    assert [f.tolist() for f in fed[1:]] == [logits[:, i].argmax(-1).tolist() for i in range(2)]


def test_token_level_teacher_forcing_mixes_within_a_step() -> None:
    model = make(teacher_forcing="token")
    torch.manual_seed(3)
    src = torch.randint(4, 13, (64, 5))
    tgt = torch.randint(4, 11, (64, 4))
    fed: list[torch.Tensor] = []
    step = model.decoder.step
    model.decoder.step = lambda prev, *a: (fed.append(prev.clone()), step(prev, *a))[1]  # type: ignore[method-assign]
    model(src, torch.full((64,), 5), tgt, pr_force=0.5)
    from_target = (fed[1] == tgt[:, 0]).float().mean()
    assert 0.2 < from_target < 0.9


def test_encoder_ignores_padding() -> None:
    model = make()
    src, lengths, _ = batch()
    padded = torch.cat([src, torch.ones(3, 3, dtype=torch.long)], 1)  # more padding
    out_a, h_a = model.encoder(src, lengths)
    out_b, h_b = model.encoder(padded, lengths)
    assert torch.allclose(out_a, out_b[:, :4], atol=1e-6) and torch.allclose(h_a, h_b, atol=1e-6)
    assert (out_a[1, 2:] == 0).all()


def test_loss_ignores_padding_targets() -> None:
    model = make()
    src, lengths, tgt = batch()
    logits, _ = model(src, lengths, tgt)
    loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=1)
    garbage = logits.clone()
    garbage[tgt == 1] = 100.0  # anything at pad positions
    assert F.cross_entropy(garbage.flatten(0, 1), tgt.flatten(), ignore_index=1) == loss


def test_tied_output_and_pretrained_vectors() -> None:
    model = make()
    assert model.decoder.out.weight is model.decoder.embedding.weight
    src_vecs = np.full((13, 8), 0.5, dtype=np.float32)
    model.load_pretrained(src_vecs, None)
    assert torch.all(model.encoder.embedding.weight == 0.5)
    with pytest.raises(ValueError, match=r"src vectors have shape \(13, 9\)"):
        model.load_pretrained(np.zeros((13, 9), np.float32), None)


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="enc_layers=2 but dec_layers=1"):
        Seq2SeqConfig(dec_layers=1)
    with pytest.raises(ValueError, match="tie_weights needs dec_hidden == dec_emb_dim"):
        make(dec_hidden=12)
    with pytest.raises(ValueError, match="rnn_type='rnn' unknown"):
        make(rnn_type="rnn")
    with pytest.raises(ValueError, match="teacher_forcing='batch' unknown"):
        Seq2SeqConfig(teacher_forcing="batch")
