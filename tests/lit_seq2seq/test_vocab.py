"""Vocab: the lesson's specials, frequency order, eos appended, JSON round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lit_seq2seq.vocab import SPECIALS, Vocab


def test_specials_at_lesson_indices() -> None:
    vocab = Vocab.build([["a"]])
    assert vocab.itos[:4] == ["_bos_", "_pad_", "_eos_", "_unk_"] == list(SPECIALS)
    assert (vocab.bos_idx, vocab.pad_idx, vocab.eos_idx, vocab.unk_idx) == (0, 1, 2, 3)


def test_build_orders_by_frequency_and_caps_size() -> None:
    sentences = [["b", "a", "c"], ["a", "c"], ["a"], ["d"]]
    assert Vocab.build(sentences).itos[4:] == ["a", "c", "b", "d"]
    assert Vocab.build(sentences, max_size=6).itos[4:] == ["a", "c"]
    assert Vocab.build(sentences, min_freq=2).itos[4:] == ["a", "c"]
    with pytest.raises(ValueError, match="max_size=4"):
        Vocab.build(sentences, max_size=4)


def test_encode_appends_eos_and_maps_unknown() -> None:
    vocab = Vocab.build([["le", "chat"]])
    assert vocab.encode(["le", "chien"]) == [vocab.stoi["le"], vocab.unk_idx, vocab.eos_idx]
    assert vocab.decode([0, vocab.stoi["chat"], 1, 2, vocab.stoi["le"]]) == ["chat"]


def test_rejects_bad_itos() -> None:
    with pytest.raises(ValueError, match="must start with"):
        Vocab(["a", "_bos_", "_pad_", "_eos_", "_unk_"])
    with pytest.raises(ValueError, match="duplicate"):
        Vocab([*SPECIALS, "a", "a"])


def test_json_round_trip(tmp_path: Path) -> None:
    vocab = Vocab.build([["l'", "école", "où"]])
    vocab.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json") == vocab
    assert "école" in (tmp_path / "v.json").read_text(encoding="utf-8")


WORD = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6).filter(
    lambda w: w not in SPECIALS
)


@given(
    sentences=st.lists(st.lists(WORD, max_size=8), max_size=12),
    max_size=st.integers(5, 40),
    min_freq=st.integers(1, 3),
)
def test_build_properties(sentences: list[list[str]], max_size: int, min_freq: int) -> None:
    """Specials first and once, no duplicates, the cap kept, only words counted min_freq times,
    and encode/decode round-trips every kept word (others become _unk_)."""
    vocab = Vocab.build(sentences, max_size, min_freq)
    assert tuple(vocab.itos[:4]) == SPECIALS and len(vocab) <= max_size
    assert len(set(vocab.itos)) == len(vocab)
    counts: dict[str, int] = {}
    for sentence in sentences:
        for word in sentence:
            counts[word] = counts.get(word, 0) + 1
    assert all(counts.get(w, 0) >= min_freq for w in vocab.itos[4:])
    for sentence in sentences:
        ids = vocab.encode(sentence)
        assert ids[-1] == vocab.eos_idx and len(ids) == len(sentence) + 1
        for i, word in zip(ids, sentence, strict=False):
            assert vocab.itos[i] == word if word in vocab.stoi else i == vocab.unk_idx
        assert [w for w in vocab.decode(ids) if w != "_unk_"] == [
            w for w in sentence if w in vocab.stoi
        ]
