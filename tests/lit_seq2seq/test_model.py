"""Seq2Seq: shapes, teacher forcing, the one-pass teacher-forced decoder, padding-insensitive
encoder, LSTM, tying, initialisation, config errors."""

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


STYLES = ["lesson", "output", "input_feeding"]


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize(
    ("bidirectional", "attention"), [(True, True), (False, False), (True, False)]
)
@pytest.mark.parametrize("style", STYLES)
def test_forward_shapes(rnn_type: str, bidirectional: bool, attention: bool, style: str) -> None:
    model = make(
        rnn_type=rnn_type, bidirectional=bidirectional, attention=attention, attention_style=style
    )
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


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize("attention", [True, False])
def test_one_pass_teacher_forcing_equals_the_step_loop(rnn_type: str, attention: bool) -> None:
    model = make(rnn_type=rnn_type, attention=attention, attention_style="output")
    assert model.decoder.parallel
    src, lengths, tgt = batch()
    fast, fast_attn = model(src, lengths, tgt, pr_force=1.0, return_attention=True)
    memory, state = model.encode(src, lengths)
    prev, slow, slow_attn = torch.zeros(3, dtype=torch.long), [], []
    for i in range(tgt.size(1)):
        logits, state, w = model.decoder.step(prev, state, memory)
        slow.append(logits)
        slow_attn.append(w)
        prev = tgt[:, i]
    assert torch.allclose(fast, torch.stack(slow, 1), atol=1e-5)
    if attention:
        assert fast_attn is not None and torch.allclose(fast_attn, torch.stack(slow_attn, 1))
    else:
        assert fast_attn is None


def test_sequential_styles_and_partial_forcing_use_the_step_loop() -> None:
    src, lengths, tgt = batch()
    for model, pr_force in ((make(attention_style="lesson"), 1.0),
                            (make(attention_style="input_feeding"), 1.0),
                            (make(attention_style="output"), 0.5)):  # fmt: skip
        calls: list[int] = []
        step = model.decoder.step
        model.decoder.step = lambda prev, *a, s=step, c=calls: (c.append(1), s(prev, *a))[1]  # type: ignore[method-assign]
        model(src, lengths, tgt, pr_force=pr_force)
        assert len(calls) == tgt.size(1)


def test_input_feeding_feeds_the_previous_attentional_state() -> None:
    model = make(attention_style="input_feeding")
    src, lengths, _ = batch()
    memory, state = model.encode(src, lengths)
    assert state.feed is not None and (state.feed == 0).all()
    _, after, _ = model.decoder.step(torch.zeros(3, dtype=torch.long), state, memory)
    assert after.feed is not None and after.feed.shape == (3, 10) and after.feed.abs().sum() > 0
    assert model.decoder.rnn.input_size == 10 + 10  # embedding + attentional state


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


def test_xavier_init_and_embedding_std() -> None:
    model = make(init="xavier", emb_init_std=0.1, dec_emb_dim=64, dec_hidden=64)
    emb = model.decoder.embedding.weight.detach()
    assert abs(float(emb[4:].std()) - 0.1) < 0.02 and (emb[1] == 0).all()
    assert (model.decoder.rnn.bias_hh_l0 == 0).all() and (model.encoder.rnn.bias_ih_l0 == 0).all()
    bound = (6 / sum(model.decoder.rnn.weight_ih_l0.shape)) ** 0.5
    assert float(model.decoder.rnn.weight_ih_l0.detach().abs().max()) <= bound
    vectors = np.ones((11, 64), dtype=np.float32)
    model.load_pretrained(None, vectors)  # vectors arrive at std 1 and join the embedding's scale
    assert torch.allclose(model.decoder.embedding.weight, torch.full((11, 64), 0.1))


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="enc_layers=2 but dec_layers=1"):
        Seq2SeqConfig(dec_layers=1)
    with pytest.raises(ValueError, match="tie_weights needs dec_hidden == dec_emb_dim"):
        make(dec_hidden=12)
    with pytest.raises(ValueError, match="rnn_type='rnn' unknown"):
        make(rnn_type="rnn")
    with pytest.raises(ValueError, match="teacher_forcing='batch' unknown"):
        Seq2SeqConfig(teacher_forcing="batch")
    with pytest.raises(ValueError, match=r"attention_style='luong' unknown; valid: \['lesson'"):
        Seq2SeqConfig(attention_style="luong")
    with pytest.raises(ValueError, match="init='normal' unknown"):
        Seq2SeqConfig(init="normal")
    with pytest.raises(ValueError, match="emb_init_std=0"):
        Seq2SeqConfig(emb_init_std=0)
