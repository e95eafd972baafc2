"""lit_seq2seq/prepare.py on its own: no DataModule, no Trainer."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from lit_seq2seq.corpus import SyntheticCorpus
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
