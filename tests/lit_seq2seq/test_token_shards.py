"""lit_seq2seq/token_shards.py and the sharded preparation: the same cache however the corpus is
cut into shards or spread over tokenising processes, a percentile without the values, and the
ragged arrays written a block at a time."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pytest

from lit_seq2seq import token_shards
from lit_seq2seq.corpus import SyntheticCorpus, TsvCorpus
from lit_seq2seq.dataset import Ragged, RaggedWriter
from lit_seq2seq.prepare import Preparation
from lit_seq2seq.token_shards import TokenIds, percentile_of_counts, tokenise_to_shards
from lit_seq2seq.wordvecs import VectorSource

NONE = VectorSource(kind="none")


@pytest.mark.parametrize("q", [0.0, 3.5, 50.0, 90.0, 97.0, 99.0, 100.0])
def test_percentile_of_counts_is_numpys_percentile(q: float) -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 1000, 12345):
        values = rng.integers(2, 60, size=n)
        expected = np.percentile(values, q)
        assert percentile_of_counts(np.bincount(values), q) == expected


def test_ragged_writer_writes_what_ragged_save_writes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    seqs = [rng.integers(0, 500, size=rng.integers(1, 9)).tolist() for _ in range(300)]
    Ragged.from_lists(seqs).save(tmp_path / "whole")
    writer = RaggedWriter(tmp_path / "blocks", len(seqs), sum(map(len, seqs)))
    for start, stop in ((0, 100), (100, 100), (100, 250), (250, 300)):  # an empty block too
        block = seqs[start:stop]
        flat = np.asarray([t for s in block for t in s], dtype=np.int32)
        writer.add(flat, np.asarray([len(s) for s in block], dtype=np.int64))
    writer.close()
    for suffix in (".flat.npy", ".offsets.npy"):
        assert filecmp.cmp(tmp_path / f"whole{suffix}", tmp_path / f"blocks{suffix}", shallow=False)
    short = RaggedWriter(tmp_path / "short", 3, 10)
    short.add(np.arange(4, dtype=np.int32), np.asarray([4]))
    with pytest.raises(ValueError, match=r"wrote \(1, 4\), announced \(3, 10\)"):
        short.close()
    with pytest.raises(ValueError, match="add up to 3, not 4"):
        RaggedWriter(tmp_path / "bad", 1, 4).add(np.arange(4, dtype=np.int32), np.asarray([3]))


def test_shards_number_tokens_in_order_of_first_appearance(tmp_path: Path) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("Où est le chat ?\tWhere is the cat?\n\t\nQui est là ?\tWho is there?\n")
    ids = {"src": TokenIds(), "tgt": TokenIds()}
    part = tokenise_to_shards("train", TsvCorpus(str(tsv), ["fr", "en"]), tmp_path, ids, True)
    assert ids["tgt"].itos == ["where", "is", "the", "cat", "?", "who", "there"]
    flat, lengths = next(part.side("tgt"))
    assert flat.tolist() == [0, 1, 2, 3, 4, 5, 1, 6, 4] and lengths.tolist() == [5, 4]
    assert len(part) == 2 and part.read["skipped"]  # the empty line was read and skipped
    assert list(part.spaced_tgt(ids["tgt"].itos, 1)) == [
        [("where", True), ("is", True), ("the", True), ("cat", False), ("?", False)]
    ]


def prepared(tmp_path: Path, name: str, **kwargs: object) -> Path:
    corpus = {"train": SyntheticCorpus(3000, seed=3), "valid": None, "test": None}
    prep = Preparation(
        corpora=corpus,  # type: ignore[arg-type]
        cache_root=tmp_path / name,
        vectors={"src": NONE, "tgt": NONE},
        max_vocab=80,
        percentiles={"src": 90.0, "tgt": 97.0},
        **kwargs,  # type: ignore[arg-type]
    )
    prep.run()
    return prep.cache_path


def test_the_cache_is_the_same_however_the_corpus_is_sharded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A held-out split, unknown words and truncation, across shard boundaries: one shard of
    # everything, 23 shards, and 23 shards tokenised by 2 processes give byte-identical caches.
    whole = prepared(tmp_path, "whole")
    monkeypatch.setattr(token_shards, "SHARD_PAIRS", 131)
    sharded = prepared(tmp_path, "sharded")
    parallel = prepared(tmp_path, "parallel", n_process=2)
    report = json.loads((whole / "report.json").read_text())
    assert report["splits"]["train"]["truncated_pairs"] > 0
    assert report["splits"]["valid"]["src_unk_rate"] > 0
    files = sorted(p.name for p in whole.iterdir() if p.is_file())
    assert "train_tgt.flat.npy" in files and not (whole / "shards").exists()
    for other in (sharded, parallel):
        assert sorted(p.name for p in other.iterdir() if p.is_file()) == files
        for name in files:
            assert filecmp.cmp(whole / name, other / name, shallow=False), (other, name)
