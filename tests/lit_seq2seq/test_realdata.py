"""The translation pipeline on the real Tatoeba questions and GloVe vectors (../shared/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import train
from lit_seq2seq.bleu import corpus_scores
from lit_seq2seq.evaluate import grouped_pairs, translate_all
from lit_seq2seq.module import Seq2SeqModule
from lit_seq2seq.translate import Translator
from tests.conftest import SHARED_DATA

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.slow,
    pytest.mark.train,
    pytest.mark.skipif(
        not (SHARED_DATA / "fra-eng" / "questions.train.tsv").is_file(),
        reason="needs ../shared/data/fra-eng",
    ),
]


def test_tatoeba_questions_with_glove_targets(tmp_path: Path) -> None:
    glove = SHARED_DATA / "wordvec" / "glove.6B.50d.subset.vec"
    cfg = train.compose(
        [
            "data=tatoeba_questions",
            f"paths.shared_data_dir={SHARED_DATA}",
            f"paths.data_dir={tmp_path / 'data'}",
            "data.tgt_vectors.kind=vec",
            f"data.tgt_vectors.path={glove}",
            "model.net.enc_emb_dim=64",
            "model.net.dec_emb_dim=50",
            "model.net.dec_hidden=50",
            "trainer=cpu",
            "trainer.max_epochs=2",
            "logger=csv",
            "test=true",
            "trainer.enable_progress_bar=false",
            "~callbacks.rich_progress_bar",
        ],
        tmp_path,
    )
    metrics = train.train(cfg)
    cache = next((tmp_path / "data" / "cache").iterdir())
    report = json.loads((cache / "report.json").read_text())
    assert report["splits"]["train"]["pairs"] == 8997
    assert report["splits"]["valid"]["pairs"] == 1125 and report["splits"]["test"]["pairs"] == 1123
    assert report["splits"]["valid"]["tgt_unk_rate"] < 0.05
    vectors = json.loads(next(cache.glob("vectors-*/report.json")).read_text())
    assert vectors["tgt"]["vocab_coverage"] > 0.9, vectors["tgt"]["top_missing"]
    assert metrics["test/loss"] > 0 and metrics["test/bleu"] > 0
    assert cache.joinpath("test_references.json").is_file()
    best = next((tmp_path / "checkpoints").glob("best-*.ckpt"))  # the best val/bleu checkpoint
    module = Seq2SeqModule.from_checkpoint(best)
    (result,) = Translator(module)(["Où est la gare ?"])
    assert result.text.endswith("?") and result.text.isascii() and " ?" not in result.text
    # test/bleu of `test=true` (the best checkpoint) is what the evaluate CLI prints for it.
    sources, references, _ = grouped_pairs(
        SHARED_DATA / "fra-eng" / "questions.test.tsv", ["fr", "en"]
    )
    hypotheses, _ = translate_all(Translator(module, attention=False), sources, 100)
    assert corpus_scores(hypotheses, references)["bleu"] == pytest.approx(
        metrics["test/bleu"], abs=0.01
    )
