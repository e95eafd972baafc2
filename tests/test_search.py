"""Greedy decoding stops at eos; beam search with one beam is greedy; wider beams score higher."""

from __future__ import annotations

import pytest
import torch

from lit_seq2seq.model import Seq2Seq, Seq2SeqConfig
from lit_seq2seq.search import beam_search, greedy, length_penalty

SMALL = dict(enc_emb_dim=8, enc_hidden=6, dec_emb_dim=10, dec_hidden=10, attn_size=5)


def make(seed: int = 0, attention: bool = True) -> Seq2Seq:
    torch.manual_seed(seed)
    config = Seq2SeqConfig(**SMALL, attention=attention, out_dropout=0.0)
    return Seq2Seq(config, src_vocab_size=13, tgt_vocab_size=11).eval()


def sources() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    src = torch.randint(4, 13, (6, 5))
    src[:, -1] = 2
    return src, torch.full((6,), 5)


def test_greedy_stops_when_every_sentence_emitted_eos() -> None:
    model = make()
    with torch.no_grad():
        model.decoder.out.bias.fill_(-100.0)
        model.decoder.out.bias[2] = 100.0  # eos always wins
    src, lengths = sources()
    out = greedy(model, src, lengths, max_len=20)
    assert out.tokens.shape == (6, 1) and out.all_done_step == 0
    out = greedy(model, src, lengths, max_len=20, stop_early=False)
    assert out.tokens.shape == (6, 20) and out.all_done_step == 0
    assert out.attention is not None and out.attention.shape == (6, 20, 5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("attention", [True, False])
def test_beam_size_one_equals_greedy(seed: int, attention: bool) -> None:
    model = make(seed, attention)
    src, lengths = sources()
    out = greedy(model, src, lengths, max_len=12)
    expected = []
    for row in out.tokens.tolist():
        expected.append(row[: row.index(2)] if 2 in row else row)
    best, attns = beam_search(model, src, lengths, beam_size=1, max_len=12)
    assert best == expected
    if attention:
        for tokens, attn in zip(best, attns, strict=True):
            assert attn is not None and attn.shape[0] == len(tokens) + (len(tokens) < 12)


def sequence_logprob(
    model: Seq2Seq, src: torch.Tensor, lengths: torch.Tensor, seq: list[int]
) -> float:
    tgt = torch.tensor([[*seq, 2]])
    logits, _ = model(src, lengths, tgt)
    return float(torch.log_softmax(logits, -1)[0, torch.arange(len(seq) + 1), tgt[0]].sum())


def test_wider_beam_never_scores_worse_than_greedy() -> None:
    model = make(4)
    src, lengths = sources()
    greedy_best, _ = beam_search(model, src, lengths, beam_size=1, max_len=8, alpha=0.0)
    beam_best, _ = beam_search(model, src, lengths, beam_size=5, max_len=8, alpha=0.0)
    for i, (g, b) in enumerate(zip(greedy_best, beam_best, strict=True)):
        one = (src[i : i + 1], lengths[i : i + 1])
        if len(g) < 8 and len(b) < 8:  # both finished with eos
            assert sequence_logprob(model, *one, b) >= sequence_logprob(model, *one, g) - 1e-5


def test_length_penalty_and_bad_beam() -> None:
    assert length_penalty(1, 0.0) == 1.0 and length_penalty(7, 1.0) == 2.0
    model = make()
    with pytest.raises(ValueError, match="beam_size=0"):
        beam_search(model, *sources(), beam_size=0, max_len=3)
