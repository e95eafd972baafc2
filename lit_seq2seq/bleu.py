"""Corpus BLEU and chrF: sacreBLEU's arithmetic on this project's choice of input.

Hypotheses and references are plain text. Both are scored the same way: U+202F / U+00A0 spaces
mapped to plain spaces, tokenised with spaCy's rule-based English tokenizer (``spacy.blank("en")``),
lowercased, and passed to sacreBLEU with ``tokenize="none"`` (no further tokenisation). A source
that occurs several times in a test set is one segment scored against all of its references.

Standard: sacreBLEU's corpus BLEU and its signature. This project's choices (README "Scoring"):
lowercasing, spaCy tokens instead of sacreBLEU's default ``13a`` on detokenised text, and repeated
sources merged into multi-reference segments (about +0.3 BLEU on the Tatoeba question test split).
Scores therefore compare with other toolkits scored the same way, not with published sacreBLEU
figures.

``CorpusBleu`` keeps sacreBLEU's sufficient statistics (lengths, n-gram matches and totals) as
summed tensors, so the score of a validation set sharded over DDP ranks is the score of the whole
set; ``bleu_tokens`` + ``segment_stats`` reproduce sacreBLEU's counting (closest reference length,
ties to the shorter; matches clipped by the most frequent occurrence in any reference), which
``tests/lit_seq2seq/test_bleu.py`` checks against ``sacrebleu.corpus_bleu``.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sacrebleu
import torch
from torchmetrics import Metric

from lit_seq2seq.tokenizer import normalize

MAX_ORDER = 4


@functools.lru_cache(maxsize=1)
def _english() -> Any:
    import spacy

    return spacy.blank("en")


def bleu_tokens(text: str) -> str:
    """``text`` as scored: spaCy English tokens, lowercased, joined by single spaces."""
    doc = _english()(normalize(text))
    return " ".join(t.text.lower() for t in doc if not t.is_space)


def _ngrams(tokens: Sequence[str]) -> Counter[tuple[str, ...]]:
    return Counter(
        tuple(tokens[i : i + n])
        for n in range(1, MAX_ORDER + 1)
        for i in range(len(tokens) - n + 1)
    )


def segment_stats(hypothesis: str, references: Sequence[str]) -> list[int]:
    """sacreBLEU's statistics of one segment of already tokenised text.

    Returns:
        ``[hyp_len, ref_len, correct_1..4, total_1..4]`` (10 counts).
    """
    hyp = hypothesis.split()
    refs = [r.split() for r in references]
    if not refs:
        raise ValueError("segment_stats needs at least one reference")
    ref_len = min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]  # closest, ties shorter
    max_ref: Counter[tuple[str, ...]] = Counter()
    for ref in refs:
        max_ref |= _ngrams(ref)  # union keeps the largest count of each n-gram
    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    for gram, count in _ngrams(hyp).items():
        n = len(gram) - 1
        total[n] += count
        correct[n] += min(count, max_ref[gram])
    return [len(hyp), ref_len, *correct, *total]


def bleu_from_stats(stats: Sequence[float]) -> float:
    """Corpus BLEU (0-100) from summed ``segment_stats``, with sacreBLEU's default smoothing."""
    values = [round(float(s)) for s in stats]
    if values[0] == 0:
        return 0.0
    score = sacrebleu.BLEU.compute_bleu(
        correct=values[2 : 2 + MAX_ORDER],
        total=values[2 + MAX_ORDER :],
        sys_len=values[0],
        ref_len=values[1],
        smooth_method="exp",
    )
    return float(score.score)


class CorpusBleu(Metric):
    """Corpus BLEU over natural-text hypotheses and raw reference strings, summed over ranks.

    ``update(hypotheses, references)`` takes one list of references per hypothesis (several when
    the source occurs several times); ``compute()`` returns BLEU on a 0-100 scale.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("stats", torch.zeros(2 + 2 * MAX_ORDER, dtype=torch.float64), "sum")

    def update(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
        if len(hypotheses) != len(references):
            raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
        for hyp, refs in zip(hypotheses, references, strict=True):
            row = segment_stats(bleu_tokens(hyp), [bleu_tokens(r) for r in refs])
            self.stats += torch.tensor(row, dtype=torch.float64, device=self.stats.device)

    def compute(self) -> torch.Tensor:
        return torch.tensor(bleu_from_stats(self.stats.tolist()))


def corpus_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, Any]:
    """sacreBLEU's own BLEU and chrF of natural-text hypotheses, with their signatures.

    Args:
        hypotheses: one per segment.
        references: the references of each segment (one or more).

    Returns:
        ``bleu``, ``bleu_signature``, ``chrf``, ``chrf_signature``, ``sentences``, ``references``
        (the most references of one segment).
    """
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"{len(hypotheses)} hypotheses and {len(references)} reference sets")
    n_refs = max(len(r) for r in references)
    hyps = [bleu_tokens(h) for h in hypotheses]
    streams = [
        [bleu_tokens(refs[i]) if i < len(refs) else None for refs in references]
        for i in range(n_refs)
    ]
    bleu = sacrebleu.BLEU(tokenize="none", lowercase=True)
    bleu_score = bleu.corpus_score(hyps, streams)  # type: ignore[arg-type]
    chrf = sacrebleu.CHRF(lowercase=True)
    chrf_streams = [
        [normalize(refs[i]) if i < len(refs) else None for refs in references]
        for i in range(n_refs)
    ]
    chrf_hyps = [normalize(h) for h in hypotheses]
    chrf_score = chrf.corpus_score(chrf_hyps, chrf_streams)  # type: ignore[arg-type]
    return {
        "bleu": round(float(bleu_score.score), 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf": round(float(chrf_score.score), 2),
        "chrf_signature": str(chrf.get_signature()),
        "sentences": len(hypotheses),
        "references": n_refs,
    }
