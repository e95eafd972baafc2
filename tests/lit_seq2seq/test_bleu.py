"""This project's BLEU: sacreBLEU's corpus BLEU with ``tokenize="none"`` on spaCy English tokens,
lowercased, several references per repeated source (its choices, README "BLEU"); the
summed-statistics metric equals sacreBLEU's on the same input."""

from __future__ import annotations

import random

import pytest
import sacrebleu
import torch

from lit_seq2seq.bleu import CorpusBleu, bleu_from_stats, bleu_tokens, corpus_scores, segment_stats


def random_corpus(seed: int, n: int = 300) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    words = ["a", "b", "c", "d", "e", "f", "g", "h"]
    hyps = [" ".join(rng.choices(words, k=rng.randint(0, 9))) for _ in range(n)]
    refs = [
        [" ".join(rng.choices(words, k=rng.randint(1, 9))) for _ in range(rng.randint(1, 3))]
        for _ in range(n)
    ]
    return hyps, refs


def streams(refs: list[list[str]]) -> list[list[str | None]]:
    most = max(len(r) for r in refs)
    return [[r[i] if i < len(r) else None for r in refs] for i in range(most)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_summed_segment_statistics_equal_sacrebleu(seed: int) -> None:
    hyps, refs = random_corpus(seed)
    rows = [segment_stats(h, r) for h, r in zip(hyps, refs, strict=True)]
    stats = [sum(col) for col in zip(*rows, strict=True)]
    expected = sacrebleu.BLEU(tokenize="none").corpus_score(hyps, streams(refs)).score
    assert bleu_from_stats(stats) == pytest.approx(expected, abs=1e-9)


def test_closest_reference_length_ties_go_to_the_shorter() -> None:
    assert segment_stats("a b c", ["a b", "a b c d"])[1] == 2  # |3-2| == |3-4|: the shorter


def test_tokens_are_spacy_english_lowercased_after_space_mapping() -> None:
    assert bleu_tokens("Why is the doctor's car here?") == "why is the doctor 's car here ?"
    assert bleu_tokens("Qui\u202fest-ce\u00a0?") == bleu_tokens("qui est-ce ?")


def test_metric_scores_natural_text_against_raw_references() -> None:
    metric = CorpusBleu()
    metric.update(["why is the doctor's car here?"], [["Why is the doctor's car here?"]])
    assert float(metric.compute()) == pytest.approx(100.0)
    metric.reset()
    metric.update(["where is it?"], [["Where's it?", "Where is it?"]])  # the second reference
    assert float(metric.compute()) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="1 hypotheses but 2 reference sets"):
        metric.update(["a"], [["a"], ["b"]])


def test_metric_split_over_ranks_equals_the_whole_corpus() -> None:
    """DDP sums the statistics tensors: two halves summed give the whole corpus's BLEU."""
    hyps, refs = random_corpus(3, 60)
    whole, first, second = CorpusBleu(), CorpusBleu(), CorpusBleu()
    whole.update(hyps, refs)
    first.update(hyps[:25], refs[:25])
    second.update(hyps[25:], refs[25:])
    summed = first.stats + second.stats
    assert torch.equal(summed, whole.stats)
    assert bleu_from_stats(summed.tolist()) == pytest.approx(float(whole.compute()))


def test_corpus_scores_json_fields_and_signature() -> None:
    out = corpus_scores(
        ["Why is it here?", "who are you?"], [["why is it here?", "Why's it here?"], ["Who?"]]
    )
    assert out["bleu_signature"].startswith("nrefs:var|case:lc|eff:no|tok:none|smooth:exp")
    assert out["sentences"] == 2 and out["references"] == 2
    assert 0 < out["bleu"] <= 100 and 0 < out["chrf"] <= 100
    with pytest.raises(ValueError, match="1 hypotheses and 2 reference sets"):
        corpus_scores(["a"], [["a"], ["b"]])
