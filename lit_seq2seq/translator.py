"""Translate sentences with a trained module: tokenise, encode, decode (greedy or beam) a batch
at a time, and detokenise. ``Translator`` is the Python API; ``python -m lit_seq2seq.translate``
is its command line."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from lit_seq2seq.dataset import pad_batch
from lit_seq2seq.detokenizer import Detokenizer
from lit_seq2seq.module import Seq2SeqModule
from lit_seq2seq.search import Hypothesis, beam_hypotheses, greedy
from lit_seq2seq.tokenizer import Tokenizer
from lit_seq2seq.vocab import Vocab


@dataclass
class Alternative:
    """One entry of a sentence's n-best list: the detokenised text, its summed log-probability,
    its score (log-probability over the length penalty: what beam search ranks by) and whether
    it ended with eos."""

    text: str
    log_prob: float
    score: float
    finished: bool


@dataclass
class Translation:
    """One translated sentence.

    Attributes:
        text: the detokenised translation ("" for an empty input).
        source: the source tokens the model read, eos included.
        tokens: the output tokens, eos excluded.
        attention: (output steps, source length) weights, or None without attention.
        unknown: source tokens the model's French vocabulary lacks (read as ``_unk_``).
        alternatives: the beam's final hypotheses, best first (the first is ``text``), when
            the translator was made with ``n_best``; empty for greedy decoding.
    """

    text: str
    source: list[str]
    tokens: list[str]
    attention: torch.Tensor | None
    unknown: int = 0
    alternatives: list[Alternative] = field(default_factory=list)


class Translator:
    """Tokenise, encode, decode a batch at a time, and detokenise, with a trained module.

    Args:
        module: a module restored with ``Seq2SeqModule.from_checkpoint``.
        beam: beam size; 1 is greedy decoding (each call may ask for another).
        alpha: beam search length penalty exponent.
        max_len: most output tokens of a sentence; default twice its source length plus ten.
        device: where the network runs (``cpu``, ``cuda``, ``cuda:1`` ...).
        attention: keep beam search's attention weights (greedy decoding always has them).
        n_best: fill each ``Translation.alternatives`` with the beam's final hypotheses.

    One translator may serve several threads (a web page): the network runs in eval mode under
    ``no_grad``, and the tokenizer, whose caches are plain Python, runs under a lock.
    """

    def __init__(
        self,
        module: Seq2SeqModule,
        beam: int = 1,
        alpha: float = 1.0,
        max_len: int | None = None,
        device: str | torch.device = "cpu",
        attention: bool = True,
        n_best: bool = False,
    ) -> None:
        assert module.net is not None and module.translation is not None
        self.device = torch.device(device)
        self.net = module.net.eval().to(self.device)
        info = module.translation
        self.tokenizer = Tokenizer(info["src_lang"], lowercase=info["lowercase"])
        self.src_vocab, self.tgt_vocab = Vocab(info["src_vocab"]), Vocab(info["tgt_vocab"])
        self.detokenizer = Detokenizer.from_dict(info.get("detokenizer"))
        self.beam, self.alpha, self.max_len = beam, alpha, max_len
        self.attention, self.n_best = attention, n_best
        self._tokenizing = threading.Lock()

    @torch.no_grad()
    def __call__(self, sentences: Sequence[str], beam: int | None = None) -> list[Translation]:
        """Translate ``sentences`` as one batch; the result is in the same order. ``beam``: this
        call's beam size instead of the translator's (one translator serves every beam size, so
        a server builds the tokenizer once)."""
        beam = self.beam if beam is None else beam
        with self._tokenizing:
            tokenized = list(self.tokenizer.pipe(sentences))
        results = [Translation("", [], [], None) for _ in sentences]
        todo = [i for i, tokens in enumerate(tokenized) if tokens]
        if not todo:
            return results
        ids = [torch.tensor(self.src_vocab.encode(tokenized[i])) for i in todo]
        src, lengths = pad_batch(ids, self.src_vocab.pad_idx)
        src = src.to(self.device)
        beams: list[list[Hypothesis]] = []
        if beam == 1:
            out = greedy(self.net, src, lengths, self.max_len)
            best = [self._until_eos(row) for row in out.tokens.tolist()]
            attns = [
                out.attention[j, : len(b) + 1].cpu() if out.attention is not None else None
                for j, b in enumerate(best)
            ]
        else:
            beams = beam_hypotheses(
                self.net, src, lengths, beam, self.max_len, self.alpha, self.attention
            )
            best = [b[0].ids for b in beams]
            attns = [b[0].attention.cpu() if b[0].attention is not None else None for b in beams]
        for j, i in enumerate(todo):
            words = self.tgt_vocab.decode(best[j])
            source = [*tokenized[i], "_eos_"]
            attention = attns[j][:, : len(source)] if attns[j] is not None else None
            unknown = ids[j].eq(self.src_vocab.unk_idx).sum().item()
            alternatives = [
                Alternative(
                    self.detokenizer(self.tgt_vocab.decode(h.ids)), h.log_prob, h.score, h.finished
                )
                for h in (beams[j] if beams and self.n_best else [])
            ]
            results[i] = Translation(
                self.detokenizer(words), source, words, attention, unknown, alternatives
            )
        return results

    def _until_eos(self, row: list[int]) -> list[int]:
        eos = self.tgt_vocab.eos_idx
        return row[: row.index(eos)] if eos in row else row
