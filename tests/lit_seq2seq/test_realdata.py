"""The headline path on the real Tatoeba question splits and GloVe vectors (../shared/data):
``test=true`` on the fixed splits, and the module's ``test/bleu`` equal to what
``python -m lit_seq2seq.evaluate`` prints for the same checkpoint. Small (a few dozen batches,
small layers) so it runs in ``make test`` on every change; the split files themselves are
rebuilt byte for byte in ``test_download.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import train
from lit_seq2seq import evaluate
from lit_seq2seq.module import Seq2SeqModule
from lit_seq2seq.translator import Translator
from tests.conftest import SHARED_DATA

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.train,
    pytest.mark.skipif(
        not (SHARED_DATA / "fra-eng" / "questions.train.tsv").is_file(),
        reason="needs ../shared/data/fra-eng",
    ),
]


def test_tatoeba_questions_with_glove_targets(tmp_path: Path, capsys: Any) -> None:
    glove = SHARED_DATA / "wordvec" / "glove.6B.50d.subset.vec"
    cfg = train.compose(
        [
            "data=tatoeba_questions",
            f"paths.shared_data_dir={SHARED_DATA}",
            f"paths.data_dir={tmp_path / 'data'}",
            "data.tgt_vectors.kind=vec",
            f"data.tgt_vectors.path={glove}",
            "data.src_vectors.epochs=1",
            "model.net.enc_emb_dim=64",
            "model.net.enc_hidden=64",
            "model.net.dec_emb_dim=50",
            "model.net.dec_hidden=50",
            "model.net.attn_size=64",
            "model.optimizer.lr=1e-2",
            "trainer=cpu",
            "trainer.max_epochs=2",
            "+trainer.limit_train_batches=40",
            "callbacks.teacher_forcing.epochs=1",
            "logger=csv",
            "test=true",
            "trainer.enable_progress_bar=false",
            "~callbacks.rich_progress_bar",
        ],
        tmp_path,
    )
    metrics = train.train(cfg)
    cache = next(
        p for p in (tmp_path / "data" / "cache").iterdir() if (p / "report.json").is_file()
    )
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
    capsys.readouterr()
    pairs = SHARED_DATA / "fra-eng" / "questions.test.tsv"
    assert evaluate.main(["--ckpt", str(best), "--pairs", str(pairs)]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["bleu"] == pytest.approx(metrics["test/bleu"], abs=0.01)
    assert printed["bleu"] > 0
