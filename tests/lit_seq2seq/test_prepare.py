"""lit_seq2seq/prepare.py on its own: no DataModule, no Trainer."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from lit_seq2seq.corpus import CorpusError, SyntheticCorpus
from lit_seq2seq.prepare import Preparation, references_by_source
from lit_seq2seq.wordvecs import VectorSource

NONE = VectorSource(kind="none")


def preparation(tmp_path: Path, **kwargs: object) -> Preparation:
    settings = {
        "corpora": {"train": SyntheticCorpus(300, seed=1), "valid": None, "test": None},
        "cache_root": tmp_path / "cache",
        "vectors": {"src": NONE, "tgt": NONE},
        "emb_dims": {"src": 8, "tgt": 8},
    }
    return Preparation(**(settings | kwargs))  # type: ignore[arg-type]


def test_preparation_runs_and_loads_without_a_trainer(tmp_path: Path) -> None:
    prep = preparation(tmp_path, max_vocab=30, percentiles={"src": 90.0, "tgt": 100.0})
    prep.run()
    assert (
        prep.cache_path / "report.json"
    ).is_file() and prep.vectors_path.parent == prep.cache_path
    data = prep.load()
    assert len(data.src_vocab) == 30 and data.src_vocab.itos[:4] == [
        "_bos_",
        "_pad_",
        "_eos_",
        "_unk_",
    ]
    splits = data.report["splits"]
    assert set(data.datasets) == {"train", "valid"}
    assert splits["train"]["pairs"] + splits["valid"]["pairs"] == 300
    assert len(data.datasets["train"]) == splits["train"]["pairs"]
    assert max(data.datasets["train"].src.lengths()) == data.report["length_limits"]["src"]
    assert data.pretrained["src"].shape == (30, 8)
    assert data.report["vectors"]["src"]["source"]["kind"] == "none"


def test_cache_keys_follow_the_settings(tmp_path: Path) -> None:
    prep = preparation(tmp_path)
    assert prep.cache_path == preparation(tmp_path).cache_path
    assert dataclasses.replace(prep, min_freq=2).cache_path != prep.cache_path
    vectors = {"src": VectorSource(kind="none", scale=2.0), "tgt": NONE}
    moved = dataclasses.replace(prep, vectors=vectors)
    assert moved.cache_path == prep.cache_path and moved.vectors_path != prep.vectors_path


def test_a_repeated_source_is_scored_once_with_all_its_references() -> None:
    refs = references_by_source(["a ?", "b ?", "a ?"], ["x", "y", "z"])
    assert refs == [["x", "z"], ["y"], None]
    assert json.loads(json.dumps(refs)) == refs


def test_a_min_freq_that_leaves_only_specials_is_refused(tmp_path: Path) -> None:
    """data.min_freq=1000000 would train a model that can only say _unk_: refused instead."""
    with pytest.raises(CorpusError, match=r"data\.min_freq=1000000 leaves the French vocabulary"):
        preparation(tmp_path, min_freq=1_000_000).run()


def test_a_vector_file_replaced_in_place_is_new_input(tmp_path: Path) -> None:
    """The vectors' cache key holds the file's SHA-256: the same path, size and even mtime with
    other numbers is another key (the old key followed the path only)."""
    vec = tmp_path / "fr.vec"
    vec.write_text("2 8\nun " + " ".join(["0.5"] * 8) + "\nde " + " ".join(["0.25"] * 8) + "\n")
    source = VectorSource(kind="vec", path=str(vec))
    prep = preparation(tmp_path, vectors={"src": source, "tgt": NONE})
    before, stat = prep.vectors_path, vec.stat()
    vec.write_text(vec.read_text().replace("0.5", "0.7"))  # same size
    os.utime(vec, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old mtime
    assert vec.stat().st_size == stat.st_size and vec.stat().st_mtime_ns == stat.st_mtime_ns
    assert prep.vectors_path != before
    assert (
        prep.vectors_path
        == preparation(tmp_path, vectors={"src": source, "tgt": NONE}).vectors_path
    )
