"""Greedy decoding stops at eos; batched beam search: one beam is greedy, a sentence's result does
not depend on its batch, wider beams score higher."""

from __future__ import annotations

import pytest
import torch

from lit_seq2seq.model import Seq2Seq, Seq2SeqConfig
from lit_seq2seq.search import beam_search, greedy, length_limits, length_penalty

SMALL = dict(enc_emb_dim=8, enc_hidden=6, dec_emb_dim=10, dec_hidden=10, attn_size=5)
STYLES = ["lesson", "output", "input_feeding"]


def make(seed: int = 0, attention: bool = True, style: str = "lesson", **net: object) -> Seq2Seq:
    torch.manual_seed(seed)
    config = Seq2SeqConfig(
        **SMALL, attention=attention, attention_style=style, out_dropout=0.0, **net
    )
    return Seq2Seq(config, src_vocab_size=13, tgt_vocab_size=11).eval()


def sources(n: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    src = torch.randint(4, 13, (n, 5))
    lengths = torch.randint(2, 6, (n,))
    lengths[0] = 5
    for i, length in enumerate(lengths.tolist()):
        src[i, length - 1] = 2
        src[i, length:] = 1  # padding
    return src, lengths


def test_greedy_stops_when_every_sentence_emitted_eos() -> None:
    model = make()
    with torch.no_grad():
        model.decoder.out.bias.fill_(-100.0)
        model.decoder.out.bias[2] = 100.0  # eos always wins
    src, lengths = sources()
    out = greedy(model, src, lengths, max_len=20)
    assert out.tokens.shape == (6, 1) and out.all_done_step == 0 and out.logits is None
    out = greedy(model, src, lengths, max_len=20, min_len=7, return_logits=True)
    assert out.tokens.shape == (6, 7) and out.all_done_step == 0
    assert out.logits is not None and out.logits.shape == (6, 7, 11)
    assert out.attention is not None and out.attention.shape == (6, 7, 5)


def test_each_sentence_stops_at_its_own_length_limit_never_emitting_bos_or_pad() -> None:
    model = make()
    with torch.no_grad():
        model.decoder.out.bias.fill_(-100.0)
        model.decoder.out.bias[5] = 100.0
        model.decoder.out.bias[2] = -1000.0  # never eos
        model.decoder.out.bias[0] = model.decoder.out.bias[1] = 200.0  # bos and pad: never
    src, lengths = sources()
    limits = length_limits(lengths)
    assert limits.tolist() == (2 * lengths + 10).tolist()
    out = greedy(model, src, lengths)
    assert out.tokens.shape == (6, 20) and int(limits.max()) == 20
    for row, limit in zip(out.tokens.tolist(), limits.tolist(), strict=True):
        assert row[:limit] == [5] * limit and set(row[limit:]) <= {2}  # eos once past it
    best, _ = beam_search(model, src, lengths, beam_size=3)
    assert [len(b) for b in best] == limits.tolist() and all(set(b) == {5} for b in best)
    assert greedy(model, src, lengths, max_len=4).tokens.shape == (6, 4)


def _reference(greedy_tokens: torch.Tensor) -> list[list[int]]:
    return [row[: row.index(2)] if 2 in row else row for row in greedy_tokens.tolist()]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("attention", [True, False])
def test_beam_size_one_equals_greedy(seed: int, style: str, attention: bool) -> None:
    model = make(seed, attention, style)
    src, lengths = sources()
    out = greedy(model, src, lengths, max_len=12)
    best, attns = beam_search(model, src, lengths, beam_size=1, max_len=12)
    assert best == _reference(out.tokens)
    for tokens, attn in zip(best, attns, strict=True):
        if attention:
            assert attn is not None and attn.shape == (len(tokens) + (len(tokens) < 12), 5)
        else:
            assert attn is None


@pytest.mark.parametrize("style", STYLES)
def test_a_sentence_gets_the_same_beam_result_alone_or_in_a_batch(style: str) -> None:
    model = make(4, style=style)
    src, lengths = sources(7, seed=5)
    batched, batched_attn = beam_search(model, src, lengths, beam_size=4, max_len=9, alpha=0.7)
    for i in range(7):
        n = int(lengths[i])
        alone, alone_attn = beam_search(
            model, src[i : i + 1, :n], lengths[i : i + 1], beam_size=4, max_len=9, alpha=0.7
        )
        assert alone[0] == batched[i], i
        assert torch.allclose(alone_attn[0], batched_attn[i][:, :n], atol=1e-5)  # type: ignore[arg-type]


def sequence_logprob(
    model: Seq2Seq, src: torch.Tensor, lengths: torch.Tensor, seq: list[int]
) -> float:
    tgt = torch.tensor([[*seq, 2]])
    with torch.no_grad():
        logits, _ = model(src, lengths, tgt, pr_force=1.0)
    return float(torch.log_softmax(logits, -1)[0, torch.arange(len(seq) + 1), tgt[0]].sum())


@pytest.mark.parametrize("style", STYLES)
def test_wider_beam_never_scores_worse_than_greedy(style: str) -> None:
    model = make(4, style=style)
    with torch.no_grad():
        model.decoder.out.bias[2] += 2.0  # an untrained model that does finish sentences
    src, lengths = sources()
    greedy_best, _ = beam_search(model, src, lengths, beam_size=1, max_len=8, alpha=0.0)
    beam_best, _ = beam_search(model, src, lengths, beam_size=5, max_len=8, alpha=0.0)
    compared = 0
    for i, (g, b) in enumerate(zip(greedy_best, beam_best, strict=True)):
        one = (src[i : i + 1], lengths[i : i + 1])
        if len(g) < 8 and len(b) < 8:  # both finished with eos
            compared += 1
            assert sequence_logprob(model, *one, b) >= sequence_logprob(model, *one, g) - 1e-5
    assert compared >= 3


def test_beam_finds_a_better_sequence_than_greedy_when_greedy_is_trapped() -> None:
    """A hand-made decoder: greedy takes token 4 (p=0.5) then must pay log(0.25) twice; token 5
    (p=0.4) leads to eos at once. Beam search returns [5]; greedy returns [4, 6, 6...]."""
    model = make(0, attention=False)

    def step(prev: torch.Tensor, state: object, memory: object) -> tuple:
        probs = torch.full((prev.size(0), 11), 1e-6)
        for row, p in enumerate(prev.tolist()):
            if p == 0:  # bos
                probs[row, 4], probs[row, 5] = 0.5, 0.4
            elif p == 5:
                probs[row, 2] = 1.0
            else:
                probs[row, 6], probs[row, 7], probs[row, 2] = 0.25, 0.25, 0.25
        return probs.log(), state, None

    model.decoder.step = step  # type: ignore[method-assign]
    src, lengths = sources(2)
    best, _ = beam_search(model, src, lengths, beam_size=3, max_len=6, alpha=0.0)
    assert best == [[5], [5]]
    out = greedy(model, src, lengths, max_len=6)
    assert out.tokens[0, 0] == 4


def test_length_penalty_and_bad_beam() -> None:
    assert length_penalty(1, 0.0) == 1.0 and length_penalty(7, 1.0) == 2.0
    assert torch.equal(length_penalty(torch.tensor([1, 7]), 1.0), torch.tensor([1.0, 2.0]))
    model = make()
    with pytest.raises(ValueError, match="beam_size=0"):
        beam_search(model, *sources(), beam_size=0, max_len=3)


@pytest.mark.parametrize(
    ("attention", "style", "rnn_type", "bidirectional"),
    [
        *((True, style, "gru", True) for style in STYLES),
        (False, "lesson", "gru", False),  # the _base stages
        (False, "lesson", "gru", True),  # _bidir
        (True, "output", "lstm", True),
        (False, "lesson", "lstm", False),
    ],
)
def test_a_shared_encoding_decodes_as_encoding_again(
    attention: bool, style: str, rnn_type: str, bidirectional: bool
) -> None:
    """Validation encodes a batch once for its teacher-forced and greedy passes."""
    model = make(
        seed=3, attention=attention, style=style, rnn_type=rnn_type, bidirectional=bidirectional
    )
    src, lengths = sources()
    tgt = torch.randint(3, 11, (6, 7))
    with torch.no_grad():
        encoded = model.encode(src, lengths)
        forced, _ = model(src, lengths, tgt, pr_force=1.0)
        shared, _ = model(src, lengths, tgt, pr_force=1.0, encoded=encoded)
        alone = greedy(model, src, lengths, min_len=7, return_logits=True)
        both = greedy(model, src, lengths, min_len=7, return_logits=True, encoded=encoded)
        # a wrong encoding is used, not ignored
        other = model.encode(src.roll(1, 0), lengths.roll(1, 0))
        moved = greedy(model, src, lengths, min_len=7, return_logits=True, encoded=other)
    assert torch.equal(forced, shared)
    assert torch.equal(alone.tokens, both.tokens)
    assert alone.logits is not None and both.logits is not None and moved.logits is not None
    assert torch.equal(alone.logits, both.logits)
    assert not torch.equal(alone.logits, moved.logits)


@pytest.mark.parametrize("alpha", [0.0, 0.7, 1.0])
def test_the_n_best_list_is_the_final_beam_ranked_as_the_search_ranks(alpha: float) -> None:
    """``beam_hypotheses``: per sentence at most k hypotheses, best first by log-probability over
    the length penalty, its first the one ``beam_search`` returns, each one's log-probability the
    sum of its tokens' (teacher-forced through the same network)."""
    from lit_seq2seq.search import beam_hypotheses

    model = make(seed=3, style="input_feeding")
    src, lengths = sources(n=5)
    k = 4
    beams = beam_hypotheses(model, src, lengths, k, max_len=7, alpha=alpha)
    best, attention = beam_search(model, src, lengths, k, max_len=7, alpha=alpha)
    assert [b[0].ids for b in beams] == best
    for i, beam in enumerate(beams):
        assert 1 <= len(beam) <= k
        scores = [h.score for h in beam]
        assert scores == sorted(scores, reverse=True)
        first = beam[0].attention
        assert first is not None and attention[i] is not None and torch.equal(first, attention[i])
        for h in beam:
            length = len(h.ids) + int(h.finished)  # eos counts when emitted
            assert h.score == pytest.approx(h.log_prob / length_penalty(length, alpha), rel=1e-5)
            target = torch.tensor([[*h.ids, model.eos_idx][:length]])
            with torch.no_grad():
                memory, state = model.encode(src[i : i + 1], lengths[i : i + 1])
                prev, total = torch.tensor([model.bos_idx]), 0.0
                for token in target[0].tolist():
                    logits, state, _ = model.decoder.step(prev, state, memory)
                    total += torch.log_softmax(logits.float(), -1)[0, token].item()
                    prev = torch.tensor([token])
            assert h.log_prob == pytest.approx(total, abs=1e-4)
