"""TranslationDataModule and its preparation (prepare.py): report, cache reuse and invalidation,
splits, loaders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import lit_seq2seq.prepare as prepare_module
from lit_seq2seq.corpus import SyntheticCorpus, TsvCorpus
from lit_seq2seq.datamodule import TranslationDataModule
from lit_seq2seq.wordvecs import VectorSource

NONE = VectorSource(kind="none")


def make(tmp_path: Path, **kwargs: Any) -> TranslationDataModule:
    settings = dict(
        train=SyntheticCorpus(600, seed=0),
        cache_dir=tmp_path / "cache",
        batch_size=32,
        src_vectors=NONE,
        tgt_vectors=NONE,
        src_emb_dim=8,
        tgt_emb_dim=8,
    )
    return TranslationDataModule(**{**settings, **kwargs})


def test_prepare_setup_report_and_loaders(tmp_path: Path) -> None:
    dm = make(tmp_path, src_len_percentile=80, tgt_len_percentile=90)
    dm.prepare_data()
    dm.setup("fit")
    report = dm.report
    train, valid = report["splits"]["train"], report["splits"]["valid"]
    assert train["pairs"] + valid["pairs"] == 600 and valid["pairs"] > 0
    assert train["truncated_pairs"] > 0 and train["read"]["kept"] == 600
    limits = report["length_limits"]
    assert max(dm.datasets["train"].src.lengths()) == limits["src"]
    assert max(dm.datasets["valid"].src.lengths()) > limits["src"], "valid is not truncated"
    for split in ("train", "valid"):
        ds = dm.datasets[split]
        assert all(ds[i][0][-1] == 2 and ds[i][1][-1] == 2 for i in range(len(ds))), "eos last"
    # No English sentence in both splits.
    tgt = dm.tgt_vocab
    english = {
        split: {tuple(tgt.decode(dm.datasets[split][i][1])) for i in range(len(dm.datasets[split]))}
        for split in ("train", "valid")
    }
    assert not english["train"] & english["valid"]
    batch = next(iter(dm.train_dataloader()))
    assert batch.src.size(0) <= 32 and (batch.src[:, 0] != 1).all()
    assert len(dm.val_dataloader()) == -(-valid["pairs"] // 32)
    info = dm.model_info()
    assert info["src_vocab"][:4] == ["_bos_", "_pad_", "_eos_", "_unk_"] and info["lowercase"]


def test_cache_is_reused_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dm = make(tmp_path)
    dm.prepare_data()
    first = dm.cache_path
    calls = []
    real = prepare_module.Tokenizer
    monkeypatch.setattr(
        prepare_module, "Tokenizer", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    make(tmp_path).prepare_data()
    assert calls == [], "unchanged settings reuse the cache"
    changed = make(tmp_path, max_vocab=50)
    changed.prepare_data()
    assert calls and changed.cache_path != first
    assert json.loads((changed.cache_path / "report.json").read_text())["vocab_sizes"]["src"] == 50
    # Vectors have their own key: a new vector source keeps the tokenised data.
    calls.clear()
    vec = make(
        tmp_path, src_vectors=VectorSource(kind="train", epochs=1, bucket=1000), src_emb_dim=64
    )
    vec.prepare_data()
    assert calls == [] and vec.cache_path == first and vec.vectors_path != dm.vectors_path


def test_tsv_with_separate_valid_and_counted_skips(tmp_path: Path) -> None:
    train = tmp_path / "train.tsv"
    train.write_bytes(
        "Où est le chat ?\tWhere is the cat?\n\nQui est là ?\tWho is there?\n".encode()
        + b"\xff\tbad\nPourquoi ?\tWhy?\n"
    )
    valid = tmp_path / "valid.tsv"
    valid.write_text("Où est le chien ?\tWhere is the dog?\n")
    dm = make(tmp_path, train=TsvCorpus(train), valid=TsvCorpus(valid), batch_size=2)
    dm.prepare_data()
    dm.setup()
    read = dm.report["splits"]["train"]["read"]
    assert read["kept"] == 3 and read["skipped"] == {"empty line": 1, "invalid UTF-8": 1}
    assert dm.report["splits"]["valid"]["pairs"] == 1
    assert dm.report["splits"]["valid"]["tgt_unk_rate"] == pytest.approx(1 / 5)  # "dog"


def test_corpus_empty_after_filtering_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("Bonjour.\tHello.\n")
    dm = make(tmp_path, train=TsvCorpus(path, en_pattern=r"^Wh"))
    with pytest.raises(
        ValueError, match=r"train corpus is empty after reading and filtering \(1 lines"
    ):
        dm.prepare_data()


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match=r"valid_fraction=1\.5"):
        TranslationDataModule(SyntheticCorpus(10), valid_fraction=1.5)
    with pytest.raises(ValueError, match="src_len_percentile=0"):
        TranslationDataModule(SyntheticCorpus(10), src_len_percentile=0)


def test_evaluation_pairs_keep_raw_references_grouped_by_source(tmp_path: Path) -> None:
    train = tmp_path / "train.tsv"
    train.write_text(
        "Où est le chat ?\tWhere's the cat?\nQui est là ?\tWho is there?\n"
        "Pourquoi pas ?\tWhy not?\nQui es-tu ?\tWho are you?\n"
    )
    valid = tmp_path / "valid.tsv"
    valid.write_text(
        "Qui est là ?\tWho's there?\nOù est le chien ?\tWhere's the dog?\n"
        "Qui\u202fest là ?\tWho is here?\n"  # the same sentence once spaces are normalised
    )
    dm = make(tmp_path, train=TsvCorpus(train), valid=TsvCorpus(valid), batch_size=2)
    dm.prepare_data()
    dm.setup()
    refs = dm.datasets["valid"].references
    assert refs == [["Who's there?", "Who is here?"], ["Where's the dog?"], None]
    assert dm.report["splits"]["valid"]["scored_sources"] == 2
    assert dm.datasets["train"].references is None
    batches = list(dm.val_dataloader())
    seen = [r for b in batches for r in (b.references or (None,) * b.src.size(0))]
    assert sorted(map(str, seen)) == sorted(map(str, refs))
    assert "dog" not in dm.tgt_vocab.stoi, "scored against the raw text, not _unk_"
    assert 0.5 <= dm.report["detokenizer_round_trip"] <= 1.0
    info = dm.model_info()
    assert "'s" in info["detokenizer"]["attach_left"] and "?" in info["detokenizer"]["attach_left"]


def test_degenerate_vectors_are_reported_with_the_setting_to_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    shared = rng.standard_normal(8)
    monkeypatch.setattr(  # what a few fastText epochs on a small corpus give: one direction
        prepare_module,
        "lookup",
        lambda source, words, dim, sentences: {
            w: shared + 1e-2 * rng.standard_normal(8) for w in words[4:]
        },
    )
    dm = make(tmp_path, src_vectors=VectorSource(kind="train", epochs=1, center=False))
    with caplog.at_level("INFO"):
        dm.prepare_data()
    dm.setup()
    src = dm.report["vectors"]["src"]
    assert src["spread"]["mean_cosine"] > 0.99 and src["degenerate"]
    warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("fr vectors (train) are degenerate" in w and "data.src_vectors.kind=none" in w
               for w in warning), warning  # fmt: skip
    assert any("mean pairwise cosine" in r.getMessage() for r in caplog.records)
    centred = make(tmp_path, src_vectors=VectorSource(kind="train", epochs=1, center=True))
    centred.prepare_data()
    centred.setup()
    assert centred.report["vectors"]["src"]["spread"]["mean_cosine"] < 0.5
